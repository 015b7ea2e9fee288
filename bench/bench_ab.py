#!/usr/bin/env python3
"""This checkout's server against another checkout's, in alternating rounds: does a change help?

On a shared VM a figure taken minutes apart moves by 20% or more, more than most changes do. So
both servers run side by side (MiniLM, cache off, the same precision), and each round loads one
and then the other with the bench_embeddings shapes (32 clients x 1 text, 4 x 32, 1 x 512 over
its corpus), in the opposite order on the next round; each ratio is taken within its round and
the median over rounds reported. The other checkout needs its own setup (`./scripts/setup.sh`,
then the weights), e.g. a clone of main:

    git clone -q . /tmp/base && (cd /tmp/base && ./scripts/setup.sh && .venv/bin/python scripts/download_models.py all-minilm-l6-v2)
    .venv/bin/python bench/bench_ab.py --base /tmp/base --precision bf16 [--rounds 4]
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
from bench_embeddings import MODEL, corpus, load, start_server  # noqa: E402 (bench/ is no package)
from machine import cpu_description  # noqa: E402

#: Clients and texts per request of each shape, as bench_embeddings.py names them.
SHAPES = {"32x1": (32, 1), "4x32": (4, 32), "1x512": (1, 512)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, type=Path, help="the other checkout, set up, with MiniLM in its models/")
    p.add_argument("--precision", default="fp32", help="PRECISION for both servers")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="extra setting for this checkout's server only, e.g. --set GOMP_SPINCOUNT=10000")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    if not (args.base / "node_modules/.bin/node").is_file() or not (args.base / "models" / MODEL).is_dir():
        p.error(f"{args.base} needs ./scripts/setup.sh and models/{MODEL} first")
    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)
    texts = corpus()
    common = {"PRECISION": args.precision}
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        servers["base"] = start_server(common, args.base.resolve())
        servers["this"] = start_server({**common, **dict(kv.split("=", 1) for kv in args.set)})
        for _, url in servers.values():
            load(url, texts[:128], 4, 32)  # warm both
        rates: dict[str, dict[str, list[float]]] = {name: {shape: [] for shape in SHAPES} for name in servers}
        for r in range(args.rounds):
            for name in ("base", "this") if r % 2 == 0 else ("this", "base"):
                for shape, (clients, per_request) in SHAPES.items():
                    rates[name][shape].append(load(servers[name][1], texts, clients, per_request)["texts_per_s"])
            print(f"round {r + 1}: " + ", ".join(f"{shape} {rates['this'][shape][-1] / rates['base'][shape][-1]:.2f}"
                                                 for shape in SHAPES), flush=True)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    out = {"cpu": cpu, "flags": flags, "precision": args.precision, "shapes": {}}
    for shape in SHAPES:
        base, this = rates["base"][shape], rates["this"][shape]
        ratio = statistics.median(t / b for b, t in zip(base, this))
        out["shapes"][shape] = {"base_texts_per_s": statistics.median(base), "this_texts_per_s": statistics.median(this),
                                "ratio": ratio}
        print(f"[{args.precision}] {shape}: this {statistics.median(this):.1f} texts/s, base "
              f"{statistics.median(base):.1f}: {ratio:.2f}x (median of the rounds' ratios)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
