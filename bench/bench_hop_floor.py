#!/usr/bin/env python3
"""What the gateway-to-runner hop costs with no model in it, and how much of that is waking threads.

Starts bench/hop_floor_runner.py (the runner's real gRPC server, RunnerService and CallStream
around a handler that holds its thread for a fixed time) and has the gateway's real RunnerClient
(bench/hop_floor_client.ts) call it one text at a time. The hop is each round trip less the
handler's time. It is measured for handlers of 0, 2.5 and 10 ms (no forward pass, MiniLM's int8
and its fp32 pass for one short text on the 2-core VM), back to back and after a pause, and once more
with Node's event loop kept polling while the call is out. The hop that bench_trace_breakdown.py
reads from a real server's traces compares with these: what is left above them is the server's own.

    .venv/bin/python bench/bench_hop_floor.py [--calls 1000] [--work-ms 0 2.5 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_description  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def measure(address: str, calls: int, pause_ms: float, mode: str) -> dict:
    out = subprocess.run([str(ROOT / "node_modules/.bin/node"), str(ROOT / "bench/hop_floor_client.ts"), address,
                          str(calls), str(pause_ms), mode], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=1000, help="back-to-back calls per case; a tenth of them after a pause")
    p.add_argument("--pause-ms", type=float, default=50)
    p.add_argument("--work-ms", type=float, nargs="+", default=[0, 2.5, 10], help="the handler's time per call")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    model, flags = cpu_description()
    print(f"CPU: {model}\nflags: {flags}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for work in args.work_ms:
            address = f"unix://{tmp}/floor.sock"
            # Its log lines go to a file, as the gateway reads them off the pipe: a pipe nobody reads would fill.
            log = Path(tmp) / f"runner-{work:g}.log"
            with log.open("w") as out:
                runner = subprocess.Popen([sys.executable, str(ROOT / "bench/hop_floor_runner.py"), address,
                                           "--work-ms", str(work)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 30
                while not log.read_text().startswith("ready"):
                    if runner.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"the floor runner did not start:\n{log.read_text()}")
                    time.sleep(0.05)
                cases = [("back to back", 0, "idle", args.calls), ("back to back, Node polling", 0, "busy", args.calls),
                         (f"after {args.pause_ms:g} ms", args.pause_ms, "idle", max(20, args.calls // 10))]
                for name, pause, mode, calls in cases:
                    got = measure(address, calls, pause, mode)
                    rows.append({"work_ms": work, "case": name, "hop_p50_ms": round(got["p50_ms"] - work, 3),
                                 "hop_p10_ms": round(got["p10_ms"] - work, 3), "calls": got["calls"]})
                    print(f"handler {work:5.1f} ms, {name:28s} hop p50 {rows[-1]['hop_p50_ms']:.3f} ms "
                          f"(p10 {rows[-1]['hop_p10_ms']:.3f})", flush=True)
            finally:
                runner.terminate()
                runner.wait(timeout=10)
                time.sleep(0.2)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": model, "flags": flags, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
