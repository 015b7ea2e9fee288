#!/usr/bin/env python3
"""What serving two models at once costs, against serving one alone, on the same cores.

    .venv/bin/python bench/bench_side_by_side.py                       # default threads
    .venv/bin/python bench/bench_side_by_side.py --set RUNNER_THREADS=1

The server serves all-minilm-l6-v2 twice: under its catalog name and, from the same folder, as
`twin` (MODELS=name=folder), so the two runners do identical work. Each round sends the 512-text
corpus of bench_embeddings.py in one request to one model alone, then one such request to each
model at the same time, and reports both as texts per second over all requests. A ratio of 1
means two busy models share the cores as well as one uses them; below 1, they get in each other's
way (threads oversubscribed, caches thrashed). Figures are medians over the rounds; this is a
measurement, not a test.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import threading
import time

from bench_embeddings import MODEL, ROOT, Client, corpus, start_server


def one_request(url: str, model: str, texts: list[str]) -> None:
    Client(url).embed(texts, model)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra server setting")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from chaos import cpu_description

    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)
    texts = corpus()
    extra = dict(kv.split("=", 1) for kv in args.set)
    proc, url = start_server({"MODELS": f"{MODEL},twin={ROOT / 'models' / MODEL}", "PRECISION": "fp32", **extra})
    try:
        for model in (MODEL, "twin"):
            one_request(url, model, texts[:64])  # warm both
        alone, together = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            one_request(url, MODEL, texts)
            alone.append(len(texts) / (time.perf_counter() - t))
            threads = [threading.Thread(target=one_request, args=(url, m, texts)) for m in (MODEL, "twin")]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            together.append(2 * len(texts) / (time.perf_counter() - t))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    a, b = statistics.median(alone), statistics.median(together)
    print(f"settings {extra or 'default'}: one model alone {a:.1f} texts/s; two at once {b:.1f} texts/s in all "
          f"= {b / a:.2f}x alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
