#!/usr/bin/env python3
"""Where the serving path spends its CPU, read by a profiler on both sides of the gRPC hop.

Starts the server (MiniLM by default, cache and tracing off) with the gateway under Node's CPU
profiler (--cpu-prof) and its runner under py-spy, sends one-text requests one after another
(or with --pause-ms between them), or, with --clients N, N closed-loop clients sending distinct
texts (bench/capacity_load.ts, the capacity bench's load), then prints each side's top functions by
self time and by total time. Spans (bench_trace_breakdown.py) say how long each step takes; this says what the
processes do meanwhile, including the work no span covers.

    .venv/bin/python bench/profile_hop.py [--seconds 15] [--pause-ms 0] [--top 25] [--set NAME=VALUE]
    .venv/bin/python bench/profile_hop.py --clients 128 --folder /tmp/standins/bge-small-en-v1.5

py-spy must be able to read the runner's memory (ptrace); the setup installs it in .venv.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embeddings import MODEL, ROOT, start_server  # noqa: E402 (bench/ is no package)
from machine import cpu_description  # noqa: E402


def runner_pid(gateway_pid: int) -> int:
    """The gateway's one Python child: the runner."""
    out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(gateway_pid)], capture_output=True, text=True).stdout
    return next(int(line.split()[0]) for line in out.splitlines() if "python" in line)


def node_top(profile: dict, top: int) -> list[tuple[str, float, float]]:
    """(function, self %, total %) from a .cpuprofile, by self time; idle and GC included as V8 names them."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {child: n["id"] for n in profile["nodes"] for child in n.get("children", ())}
    hits = collections.Counter(profile["samples"])
    total_samples = sum(hits.values()) or 1
    self_time: collections.Counter = collections.Counter()
    total_time: collections.Counter = collections.Counter()
    for node_id, count in hits.items():
        seen = set()
        at = node_id
        self_time[_node_name(nodes[node_id])] += count
        while at is not None:
            name = _node_name(nodes[at])
            if name not in seen:
                total_time[name] += count
                seen.add(name)
            at = parent.get(at)
    return [(name, 100 * n / total_samples, 100 * total_time[name] / total_samples) for name, n in self_time.most_common(top)]


def _node_name(node: dict) -> str:
    frame = node["callFrame"]
    url = frame["url"].rsplit("/node_modules/", 1)[-1].rsplit("/gateway/src/", 1)[-1]
    return f"{frame['functionName'] or '(anonymous)'} {url}:{frame['lineNumber'] + 1}" if url else frame["functionName"]


def pyspy_top(collapsed: str, top: int) -> list[tuple[str, float, float]]:
    """(function, self %, total %) from py-spy's collapsed stacks, by self time."""
    self_time: collections.Counter = collections.Counter()
    total_time: collections.Counter = collections.Counter()
    total_samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total_samples += n
        frames = [_frame_name(f) for f in stack.split(";")]
        self_time[frames[-1]] += n
        for name in set(frames):
            total_time[name] += n
    total_samples = total_samples or 1
    return [(name, 100 * n / total_samples, 100 * total_time[name] / total_samples) for name, n in self_time.most_common(top)]


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function file.py:123"; threads' names stay as they are.
    name, _, where = frame.partition(" (")
    return f"{name} {where.rstrip(')').rsplit('/', 1)[-1]}" if where else name


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15, help="how long to send requests while profiling")
    p.add_argument("--pause-ms", type=float, default=0, help="pause before each request (0: back to back)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--clients", type=int, default=0, help="closed-loop clients with distinct texts (0: one request at a time)")
    p.add_argument("--folder", help="serve this model folder (as MODELS=name=folder) instead of MiniLM")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra server setting")
    p.add_argument("--keep", help="also keep the raw profiles in this folder")
    args = p.parse_args()
    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)

    folder = Path(args.keep or tempfile.mkdtemp(prefix="profile-hop-"))
    folder.mkdir(parents=True, exist_ok=True)
    model = "profiled" if args.folder else MODEL
    env = {"NODE_OPTIONS": f"--cpu-prof --cpu-prof-dir={folder}", **({"MODELS": f"{model}={args.folder}"} if args.folder else {}),
           **dict(kv.split("=", 1) for kv in args.set)}
    proc, url = start_server(env)
    requests = 0
    try:
        conn = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=30)

        def send(i: int) -> None:
            body = json.dumps({"model": model, "input": f"a short text, number {i}",
                               "encoding_format": "base64"})
            conn.request("POST", "/v1/embeddings", body, {"content-type": "application/json"})
            res = conn.getresponse()
            res.read()
            if res.status != 200:
                raise RuntimeError(f"HTTP {res.status}")

        for i in range(50):  # warm both processes before profiling
            send(i)
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(runner_pid(proc.pid)),
                                "--rate", "1000", "--duration", str(int(args.seconds)), "--format", "raw",
                                "--threads", "--nonblocking", "--output", str(folder / "runner.txt")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        until = time.monotonic() + args.seconds
        if args.clients:
            out = subprocess.run([str(ROOT / "node_modules/.bin/node"), str(ROOT / "bench/capacity_load.ts"), url, model,
                                  str(args.clients), str(args.seconds), "miss"], capture_output=True, text=True, check=True)
            requests = json.loads(out.stdout.strip().splitlines()[-1])["requests"]
        else:
            while time.monotonic() < until:
                if args.pause_ms:
                    time.sleep(args.pause_ms / 1000)
                send(requests)
                requests += 1
        if spy.wait(timeout=60) != 0:
            print(f"py-spy failed: {spy.stderr.read().strip()}", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean exit writes the Node profile
        proc.wait(timeout=60)

    load = f"{args.clients} clients" if args.clients else f"{args.pause_ms:g} ms pause before each"
    print(f"{requests} one-text requests in {args.seconds:g} s, {load} ({1000 * args.seconds / max(requests, 1):.3f} ms each)")
    [node_profile] = folder.glob("*.cpuprofile")
    for side, rows in (("gateway (Node --cpu-prof)", node_top(json.loads(node_profile.read_text()), args.top)),
                       ("runner (py-spy, every thread)", pyspy_top((folder / "runner.txt").read_text(), args.top))):
        print(f"\n{side}: self %  total %  function")
        for name, self_pct, total_pct in rows:
            print(f"  {self_pct:6.1f} {total_pct:7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
