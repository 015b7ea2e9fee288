#!/usr/bin/env python3
"""How many one-text requests a second the server answers when every text is new, against how
many it answers from its cache, in one run.

Starts the server (MiniLM, or a model folder such as the bge-small-en-v1.5 stand-in from
scripts/make_standins.py) with its cache on, and runs closed-loop clients in Node
(bench/capacity_load.ts): first every client repeating a few cached texts, then every request a
text never sent before, alternating for --rounds. Cache hits never leave the gateway, so their rate
is the ceiling of the HTTP path on this machine; the ratio says how much of it the path through
the batcher, the gRPC hop and the runner keeps. A GPU serving one-text traffic needs the path
itself to keep up.

    .venv/bin/python bench/bench_capacity.py [--folder /tmp/standins/bge-small-en-v1.5] [--clients 128]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embeddings import MODEL, ROOT, start_server  # noqa: E402 (bench/ is no package)
from machine import cpu_description  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", help="serve this model folder (as MODELS=name=folder) instead of MiniLM")
    p.add_argument("--clients", type=int, default=128)
    p.add_argument("--seconds", type=float, default=10, help="length of each phase")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra server setting")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)

    name = "capacity-bench" if args.folder else MODEL
    env = {"EMBEDDING_CACHE_SIZE": "100000", "LOG_LEVEL": "warn",
           **({"MODELS": f"{name}={args.folder}"} if args.folder else {}), **dict(kv.split("=", 1) for kv in args.set)}
    proc, url = start_server(env)
    rates: dict[str, list[float]] = {"hit": [], "miss": []}
    try:
        for _ in range(args.rounds):
            for mode in ("hit", "miss"):
                out = subprocess.run([str(ROOT / "node_modules/.bin/node"), str(ROOT / "bench/capacity_load.ts"), url, name,
                                      str(args.clients), str(args.seconds), mode], capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                if result["failed"]:
                    raise RuntimeError(f"{result['failed']} requests failed in the {mode} phase")
                rates[mode].append(result["per_second"])
                print(f"  {mode:4s} {result['per_second']:9.0f} requests/s", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    hit, miss = statistics.median(rates["hit"]), statistics.median(rates["miss"])
    print(f"{args.clients} clients, one short text each: cache hits {hit:.0f}/s, new texts {miss:.0f}/s, "
          f"ratio {miss / hit:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "flags": flags, "clients": args.clients,
                                               "hit_per_second": hit, "miss_per_second": miss, "ratio": miss / hit}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
