#!/usr/bin/env python3
"""Where one request's time goes on an idle server, step by step, read from its own traces.

Starts the server (MiniLM, cache off) with OTLP export pointed at a receiver in this process,
sends one-text requests with a pause before each, as bench_embeddings.py's idle measure does,
and reports the median of each gap between the spans of one trace: the gateway's work before
the queue, the gRPC request leg (gateway client span to runner server span), tokenising, the hop
to the compute thread, the forward pass, and the way back. It is the decomposition behind the
"idle p50 vs in-process" figure, so that the overhead can be attributed rather than guessed.

    .venv/bin/python bench/bench_trace_breakdown.py [--requests 60] [--pause-ms 50] [--set NAME=VALUE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embeddings import MODEL, start_server  # noqa: E402 (bench/ is no package)
from machine import cpu_description  # noqa: E402
from otlp_receiver import start_receiver  # noqa: E402

RPC = "edgeembed.runner.v1.Runner/Embed"
#: Each step: its name, and the (span, edge) pairs it runs between; edges are "start" or "end".
STEPS = [
    ("gateway: HTTP start -> queue", ("http", "start"), ("queue", "start")),
    ("queue", ("queue", "start"), ("queue", "end")),
    ("gRPC request leg", ("client", "start"), ("runner", "start")),
    ("runner: before tokenising", ("runner", "start"), ("tokenize", "start")),
    ("tokenise", ("tokenize", "start"), ("tokenize", "end")),
    ("pad, hop to the compute thread", ("tokenize", "end"), ("forward", "start")),
    ("forward", ("forward", "start"), ("forward", "end")),
    ("runner: after forward", ("forward", "end"), ("runner", "end")),
    ("gRPC reply leg", ("runner", "end"), ("client", "end")),
    ("gateway: batch end -> HTTP end", ("batch", "end"), ("http", "end")),
    ("whole request (server side)", ("http", "start"), ("http", "end")),
]

#: The gateway-to-runner hop, both ways, taken per request: the request leg plus the reply leg.
HOP = "hop (request + reply leg)"


def spans_by_role(spans: list[dict]) -> dict[str, dict]:
    """The spans of one trace, by the role each plays in a request."""
    roles = {}
    for s in spans:
        if s["name"] == RPC:
            roles["client" if s["service"] == "edge-embed" else "runner"] = s
        elif s["name"].startswith("POST "):
            roles["http"] = s
        else:
            roles[s["name"]] = s
    return roles


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=60, help="one-text requests; the first 10 warm up and are left out")
    p.add_argument("--pause-ms", type=float, default=50, help="pause before each request, so the server idles")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra server setting")
    p.add_argument("--json", help="also write the medians to this file")
    args = p.parse_args()
    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)

    receiver = start_receiver()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200",
           **dict(kv.split("=", 1) for kv in args.set)}
    proc, url = start_server(env)
    traces = []
    try:
        conn = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=30)
        for i in range(args.requests):
            time.sleep(args.pause_ms / 1000)
            trace_id = secrets.token_hex(16)
            body = json.dumps({"model": MODEL, "input": f"a short text on an idle server, number {i}",
                               "encoding_format": "base64"})
            conn.request("POST", "/v1/embeddings", body, {"content-type": "application/json",
                                                          "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
            res = conn.getresponse()
            res.read()
            if res.status != 200:
                raise RuntimeError(f"HTTP {res.status}")
            if i >= 10:
                traces.append(trace_id)
    finally:
        proc.send_signal(signal.SIGTERM)  # stopping flushes both processes' spans
        proc.wait(timeout=60)
        receiver.shutdown()

    gaps: dict[str, list[float]] = {name: [] for name, _, _ in STEPS}
    gaps[HOP] = []
    for trace_id in traces:
        roles = spans_by_role([s for s in receiver.spans if s["trace_id"] == trace_id])
        for name, (a, edge_a), (b, edge_b) in STEPS:
            if a in roles and b in roles:
                gaps[name].append((roles[b][edge_b] - roles[a][edge_a]) / 1e6)
        if "client" in roles and "runner" in roles:
            client, runner = roles["client"], roles["runner"]
            gaps[HOP].append((runner["start"] - client["start"] + client["end"] - runner["end"]) / 1e6)
    medians = {name: round(statistics.median(v), 3) for name, v in gaps.items() if v}
    print(f"medians of {len(traces)} requests, {args.pause_ms:g} ms pause before each:")
    for name, ms in medians.items():
        print(f"  {name:34s} {ms:8.3f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "flags": flags, "requests": len(traces),
                                               "pause_ms": args.pause_ms, "median_ms": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
