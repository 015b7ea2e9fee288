#!/usr/bin/env python3
"""Idle one-text latency of the whole server against the bare encoder in process, alternating.

Starts the server on one model (MiniLM by default, or a folder such as a stand-in from
scripts/make_standins.py), cache off, fp32, and loads the same weights in this process as a
bare encoder: the tokenizer and the transformer's forward pass, nothing else. Then, text by text,
it pauses (so that both sides idle, as a lone request finds them), encodes the text in process,
pauses again and sends it to the server. The difference of the medians is what serving costs a
lone request: HTTP, the gateway, the gRPC hop and the runner's own work around the pass.

    .venv/bin/python bench/bench_idle.py [--folder /tmp/standins/bge-small-en-v1.5] [--texts 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embeddings import MODEL, ROOT, start_server  # noqa: E402 (bench/ is no package)
from machine import cpu_description  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", help="serve this model folder (as MODELS=name=folder) instead of MiniLM")
    p.add_argument("--texts", type=int, default=200, help="one-text requests; the first 20 warm up and are left out")
    p.add_argument("--pause-ms", type=float, default=50, help="pause before each encode and each request")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra server setting")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)

    folder = Path(args.folder) if args.folder else ROOT / "models" / MODEL
    name = "idle-bench" if args.folder else MODEL
    env = {"PRECISION": "fp32", **({"MODELS": f"{name}={folder}"} if args.folder else {}),
           **dict(kv.split("=", 1) for kv in args.set)}
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder).eval()

    def bare(text: str) -> None:
        with torch.inference_mode():
            encoder(**tokenizer([text], return_tensors="pt"))

    proc, url = start_server(env)
    served, in_process = [], []
    try:
        conn = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=30)
        for i in range(args.texts):
            text = f"a short query about idle latency, number {i}"
            time.sleep(args.pause_ms / 1000)
            started = time.perf_counter()
            bare(text)
            local = time.perf_counter() - started
            time.sleep(args.pause_ms / 1000)
            started = time.perf_counter()
            conn.request("POST", "/v1/embeddings", json.dumps({"model": name, "input": text, "encoding_format": "base64"}),
                         {"content-type": "application/json"})
            res = conn.getresponse()
            res.read()
            remote = time.perf_counter() - started
            if res.status != 200:
                raise RuntimeError(f"HTTP {res.status}")
            if i >= 20:
                in_process.append(local * 1000)
                served.append(remote * 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    figures = {"model": str(folder.name), "texts": len(served), "pause_ms": args.pause_ms,
               "in_process_p50_ms": round(statistics.median(in_process), 3),
               "served_p50_ms": round(statistics.median(served), 3)}
    figures["difference_ms"] = round(figures["served_p50_ms"] - figures["in_process_p50_ms"], 3)
    print(f"{folder.name}, {len(served)} texts, {args.pause_ms:g} ms pause before each: "
          f"bare encoder in process p50 {figures['in_process_p50_ms']:.3f} ms, "
          f"server p50 {figures['served_p50_ms']:.3f} ms, difference {figures['difference_ms']:+.3f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "flags": flags, **figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
