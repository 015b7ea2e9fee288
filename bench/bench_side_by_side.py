#!/usr/bin/env python3
"""What serving two models at once costs, against serving one alone, on the same cores.

    .venv/bin/python bench/bench_side_by_side.py

Three servers run side by side, differing only in RUNNER_THREADS: 0 (the default: the gateway
splits the cores between the runners computing at once), the core count (every runner always uses
every core, which is what the default does for a model alone), and 1. Each serves
all-minilm-l6-v2 twice: under its catalog name and, from the same folder, as `twin`
(MODELS=name=folder), so the two runners do identical work. Each round, for each server in turn,
sends the 512-text corpus of bench_embeddings.py in one request to one model alone, then one such
request to each model at the same time, and reports both as texts per second over all requests.
Only one server computes at a time. A ratio of 1 means two busy models share the cores as well as
one uses them; below 1, they get in each other's way (threads oversubscribed, caches thrashed).
Figures are medians over the rounds; this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time

from bench_embeddings import MODEL, ROOT, Client, corpus, start_server


def timed(url: str, models: tuple[str, ...], texts: list[str]) -> float:
    """Texts per second over one request of texts to each of models, sent at the same time."""
    errors: list[Exception] = []

    def send(model: str) -> None:
        try:
            Client(url).embed(texts, model)
        except Exception as exc:  # a failed request must not count as a fast one
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(m,)) for m in models]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed, first: {errors[0]}")
    return len(models) * len(texts) / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra setting for every server")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from machine import cpu_description

    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)
    texts = corpus()
    extra = dict(kv.split("=", 1) for kv in args.set)
    configs = {"0 (split when busy)": "0", f"{os.cpu_count()} (every core, always)": str(os.cpu_count()), "1": "1"}
    servers = {}
    try:
        for label, threads in configs.items():
            servers[label] = start_server({"MODELS": f"{MODEL},twin={ROOT / 'models' / MODEL}", "PRECISION": "fp32",
                                           "RUNNER_THREADS": threads, **extra})
            for model in (MODEL, "twin"):
                timed(servers[label][1], (model,), texts[:64])  # warm both
        alone = {label: [] for label in configs}
        together = {label: [] for label in configs}
        for _ in range(args.rounds):
            for label, (_, url) in servers.items():
                alone[label].append(timed(url, (MODEL,), texts))
                together[label].append(timed(url, (MODEL, "twin"), texts))
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers.values():
            proc.wait(timeout=60)
    base = statistics.median(alone["0 (split when busy)"])
    print("\n| RUNNER_THREADS | One model alone | Two models at once, in all | Two at once / alone |")
    print("| --- | --- | --- | --- |")
    for label in configs:
        a, b = statistics.median(alone[label]), statistics.median(together[label])
        print(f"| {label} | {a:.1f} texts/s ({a / base:.2f}x) | {b:.1f} texts/s ({b / base:.2f}x) | {b / a:.2f} |")
    print(f"(x: against one model alone with the default; medians of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
