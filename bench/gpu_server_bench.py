#!/usr/bin/env python3
"""The whole server on a GPU, over HTTP, against sentence-transformers in process: one command.

Made for a lent GPU machine with Python, PyTorch, Transformers and sentence-transformers but no
Node and no network. What it lacks travels in .gpu-wheels, packed here by scripts/gpu_pack.sh:
the runner's wheels, Node's binary, the gateway's production packages and its generated gRPC
code. The model is a stand-in of all-MiniLM-L6-v2's exact shape with random weights (throughput
does not depend on the values), so that no weights need to travel.

    here:   bash scripts/gpu_pack.sh
    there:  python3 bench/gpu_server_bench.py            # JSON to $OUT/gpu_server_bench.json

One JSON reports, from the same run:
  - S: sentence-transformers in process, fp32 and fp16, at batch 32, 128 and 512 over the bench
    corpus; S is the best of them;
  - the runner alone over gRPC, started as the supervisor starts it (32 x 1, 4 x 32, 1 x 512);
  - the whole server at its defaults (MODEL_DEVICE set, the cache off) over HTTP: 32 x 1,
    128 x 1, 4 x 32, 16 x 32, 1 x 512 and 4 x 512 (clients x texts per request, closed loops for
    --seconds each, the clients spread over --processes processes), round by round, the idle
    one-text latency, and one request of 2048 texts of about 512 tokens; plus the device profile
    and precision each runner chose (/v1/models);
  - each figure as a ratio to S, and the issue's targets met or not.

Rehearsal on the CPU, the same paths with a tiny stand-in and short rounds (the tests run it):

    .venv/bin/python bench/gpu_server_bench.py --device cpu
"""

from __future__ import annotations

import argparse
import json
import lzma
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import gpu_check_env as machine  # noqa: E402  (stdlib only)
import gpu_server_clients as clients  # noqa: E402  (stdlib only)

#: The server's shapes: (clients, texts per request).
SHAPES = [(32, 1), (128, 1), (4, 32), (16, 32), (1, 512), (4, 512)]
#: The runner-alone shapes, as bench/gpu_check.py measures them.
RUNNER_SHAPES = [(32, 1), (4, 32), (1, 512)]
MODEL = "minilm"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--wheels", type=Path, default=ROOT / ".gpu-wheels", help="what scripts/gpu_pack.sh packed")
    p.add_argument("--corpus", type=int, help="texts in the corpus (default 512 on cuda, 64 on cpu)")
    p.add_argument("--seconds", type=float, help="per shape and round (default 6 on cuda, 1 on cpu)")
    p.add_argument("--rounds", type=int, default=2, help="rounds over the server's shapes; the first shows a cold start")
    p.add_argument("--processes", type=int, help="client processes (default 12 on cuda, 2 on cpu)")
    p.add_argument("--idle-requests", type=int, help="one-text requests for the idle latency (default 100 on cuda, 20 on cpu)")
    p.add_argument("--big-request", type=int, help="texts of about 512 tokens in one request, at the end "
                   "(default 2048 on cuda, 64 on cpu)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a server setting, e.g. MAX_CONCURRENT=2")
    p.add_argument("--out", type=Path, help="the JSON (default $OUT/gpu_server_bench.json, else bench/results/)")
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    args.corpus = args.corpus or (512 if cuda else 64)
    args.seconds = args.seconds or (6.0 if cuda else 1.0)
    args.processes = args.processes or (12 if cuda else 2)
    args.idle_requests = args.idle_requests or (100 if cuda else 20)
    args.big_request = args.big_request or (2048 if cuda else 64)
    if args.out is None:
        args.out = Path(os.environ["OUT"]) / "gpu_server_bench.json" if os.environ.get("OUT") else \
            ROOT / "bench" / "results" / f"gpu_server_bench-{args.device}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    return args


# ---------------------------------------------------------------------------------------------
# What a bare machine lacks, from the pack.

def python_path(wheels: Path, work: Path) -> str:
    """A PYTHONPATH under which the runner's imports work: as it is where they already do, else
    with the pack's wheels installed into a folder of their own (the supervisor passes PYTHONPATH
    on to every runner it starts)."""
    probe = "import grpc, grpc_health.v1.health, google.protobuf, runner._proto.runner_pb2_grpc"
    if _ok([sys.executable, "-c", probe], os.environ.get("PYTHONPATH", "")):
        return os.environ.get("PYTHONPATH", "")
    _restore(wheels / "proto-stubs", ROOT / "runner" / "_proto", "*.py")
    site = work / "site"
    pins = [line.strip() for line in (wheels / "requirements.txt").read_text().splitlines() if line.strip()]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--find-links", str(wheels), "--target", str(site), *pins], check=True, timeout=180)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    if not _ok([sys.executable, "-c", probe], path):
        raise SystemExit(f"gpu_server_bench: the runner's imports fail even with the pack's wheels in {site}")
    return path


def _ok(cmd: list[str], pythonpath: str) -> bool:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), pythonpath) if p)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=120).returncode == 0


def _restore(source: Path, target: Path, pattern: str) -> None:
    if source.is_dir() and not any(target.glob(pattern)):
        target.mkdir(parents=True, exist_ok=True)
        for f in source.glob(pattern):
            shutil.copy2(f, target / f.name)


def node_binary(wheels: Path, work: Path) -> str:
    """Node 24 and the gateway's packages and generated code: those of this checkout where it has
    them, else unpacked from the pack."""
    local = ROOT / "node_modules" / ".bin" / "node"
    pack = wheels / "node"
    if not (ROOT / "node_modules" / "fastify").is_dir():
        with tarfile.open(pack / "node_modules.tar.xz") as tar:
            tar.extractall(ROOT, filter="data")
    if not (ROOT / "gateway" / "src" / "generated" / "runner.ts").is_file():
        with tarfile.open(pack / "generated.tar.xz") as tar:
            tar.extractall(ROOT, filter="data")
    if local.exists():
        return str(local)
    binary = work / "node"
    with lzma.open(pack / "node.xz") as src, open(binary, "wb") as dst:
        shutil.copyfileobj(src, dst)
    binary.chmod(0o755)
    return str(binary)


# ---------------------------------------------------------------------------------------------
# The measurements.

def in_process(model: Path, texts: list[str], device: str) -> dict:
    """sentence-transformers' own encode on the same weights and texts: texts per second per
    dtype and batch size, best of two passes after a warm one."""
    import torch
    from sentence_transformers import SentenceTransformer

    out = {}
    for dtype in ("fp32", "fp16") if device == "cuda" else ("fp32",):
        st = SentenceTransformer(str(model), device=device)
        if dtype == "fp16":
            st.half()
        for batch in (32, 128, 512):
            st.encode(texts[:batch], batch_size=batch)
            best = float("inf")
            for _ in range(2):
                if device == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                st.encode(texts, batch_size=batch)
                best = min(best, time.perf_counter() - started)
            out[f"{dtype}_batch{batch}"] = round(len(texts) / best, 1)
        del st
    return out


def runner_alone(model: Path, texts: list[str], device: str, work: Path, seconds_left: float) -> dict:
    """One runner over gRPC with the supervisor's flags and the device profile's choices."""
    import gpu_check_model as models
    import gpu_check_runners as runners

    catalog, models_dir = models.write_catalog(work / "alone", model, {MODEL: "float32"})
    runner = runners.Runner(MODEL, f"{device}:0" if device == "cuda" else device, runners.Settings(
        python=sys.executable, catalog=catalog, models_dir=models_dir, socket_dir=work / "alone", workers=0))
    runner.start()
    try:
        runner.wait_ready(time.monotonic() + min(180.0, seconds_left))
        out = {"ready_s": round(runner.ready_s or 0, 2)}
        for n_clients, per in RUNNER_SHAPES:
            out[f"{n_clients}x{per}"] = round(runners.closed_loop(runner, texts, n_clients, per, 120)["texts_per_s"], 1)
        out["idle_p50_ms"] = round(runners.idle_latency(runner, texts[:20], 0.05, 30)["p50_ms"], 2)
        return out
    finally:
        runner.stop()


class Server:
    """The gateway as a user starts it, with the model served from its folder."""

    def __init__(self, node: str, model: Path, device: str, pythonpath: str, settings: dict[str, str], log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MODELS": f"{MODEL}={model}", "MODEL_DEVICE": device, "PORT": str(self.port),
               "EMBEDDING_CACHE_SIZE": "0", "RUNNER_PYTHON": sys.executable, "PYTHONPATH": pythonpath,
               "LOG_LEVEL": "info", **settings}
        self._log = open(log, "w")
        self.proc = subprocess.Popen([node, "gateway/src/main.ts"], cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"the gateway was not healthy within {timeout:.0f} s")

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def shape(url: str, texts: list[str], n_clients: int, per: int, seconds: float, processes: int,
          pool: multiprocessing.pool.Pool) -> dict:
    """n_clients closed-loop clients of per texts each for seconds, spread over processes."""
    # Whole batches of per texts; a shape larger than the corpus sends all of it.
    batches = [texts[i:i + per] for i in range(0, len(texts) - per + 1, per)] or [texts]
    groups = min(processes, n_clients)
    shares = [n_clients // groups + (1 if k < n_clients % groups else 0) for k in range(groups)]
    started = time.time()
    until = started + seconds
    # Each group takes its own slice of the batches, so that no two send the same texts at once.
    results = pool.starmap(clients.run_clients, [
        (url, MODEL, batches[k::groups] or batches, share, until, 300.0) for k, share in enumerate(shares)])
    wall = max(time.time(), until) - started
    errors = [e for r in results for e in r["errors"]]
    latencies = sorted(x for r in results for x in r["latencies"])
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, first: {errors[0]}")
    return {"texts_per_s": round(sum(r["texts"] for r in results) / wall, 1),
            "requests": sum(r["requests"] for r in results),
            "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None}


def server_figures(args, node: str, model: Path, texts: list[str], pythonpath: str, work: Path) -> dict:
    settings = dict(s.split("=", 1) for s in args.set)
    server = Server(node, model, args.device, pythonpath, settings, work / "gateway.log")
    out: dict = {"settings": settings}
    try:
        out["healthy_s"] = round(server.wait_healthy(180), 2)
        listed = next(m for m in server.get("/v1/models")["data"] if m["id"] == MODEL)
        out["model"] = {k: listed.get(k) for k in ("precision", "precision_detail", "fidelity", "device_profiles")}
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.processes) as pool:
            # Every process imports its module once before anything is timed.
            pool.map(time.sleep, [0] * args.processes)
            rounds = []
            for _ in range(args.rounds):
                rounds.append({f"{c}x{p}": shape(server.url, texts, c, p, args.seconds, args.processes, pool)
                               for c, p in SHAPES})
        out["rounds"] = rounds
        queries = [t for t in texts if t.endswith("?")] or texts
        out["idle"] = clients.idle(server.url, MODEL, (queries * args.idle_requests)[:args.idle_requests], 0.05, 60)
        out["big_request"] = big_request(server.url, texts, args.big_request)
    finally:
        server.stop()
        out["gateway_log_tail"] = (work / "gateway.log").read_text(errors="replace").splitlines()[-5:]
    return out


def big_request(url: str, texts: list[str], count: int) -> dict:
    """One request of count texts of about 512 tokens each (the model cuts them at its limit): it
    must succeed at the default settings, however the runner has to cut it to fit its memory."""
    long = " ".join(texts[-1].split() * (2600 // max(1, len(texts[-1])) + 1))[:2600]
    batch = [f"{i} {long}" for i in range(count)]
    started = time.perf_counter()
    result = clients.run_clients(url, MODEL, [batch], 1, time.time(), 1800.0)
    seconds = time.perf_counter() - started
    return {"texts": count, "ok": not result["errors"] and result["texts"] == count, "seconds": round(seconds, 2),
            "errors": result["errors"][:1]}


def summarise(report: dict) -> dict:
    """Each server figure against S, and the issue's targets."""
    s = max(report["in_process"].values())
    server = report["server"]
    last = server["rounds"][-1]
    ratios = {k: round(v["texts_per_s"] / s, 3) for k, v in last.items()}
    first = server["rounds"][0]
    # The first round against the later ones, shape by shape: a cold start shows as a low first.
    cold = {k: round(first[k]["texts_per_s"] / statistics.mean(r[k]["texts_per_s"] for r in server["rounds"][1:]), 3)
            for k in first} if len(server["rounds"]) > 1 else {}
    targets = {
        "16x32 >= 1.5 S": ratios["16x32"] >= 1.5, "4x512 >= 1.5 S": ratios["4x512"] >= 1.5,
        "32x1 >= 0.3 S": ratios["32x1"] >= 0.3, "128x1 >= 0.6 S": ratios["128x1"] >= 0.6,
        "idle p50 <= 4 ms": server["idle"]["p50_ms"] <= 4.0,
        "first round within 20%": all(v >= 0.8 for v in cold.values()) if cold else None,
        "big request succeeds": server["big_request"]["ok"],
    }
    return {"S_texts_per_s": s, "ratios_to_S": ratios, "first_round_to_later": cold, "targets": targets}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import gpu_check_corpus as corpus
    import gpu_check_model as models

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="eegs-"))
    report: dict = {"device": args.device, "host": machine.host(), "gpu": machine.gpus(), "errors": []}
    try:
        pythonpath = python_path(args.wheels, work)
        sys.path[:0] = [p for p in pythonpath.split(os.pathsep) if p]
        node = node_binary(args.wheels, work)
        prepared = models.prepare("standin" if args.device == "cuda" else "tiny", work, args.wheels, None, "auto")
        report["model"] = prepared.describe()
        texts = corpus.texts(args.corpus)
        report["corpus_texts"] = len(texts)
        report["in_process"] = in_process(prepared.path, texts, args.device)
        report["runner_alone"] = runner_alone(prepared.path, texts, args.device, work, 300 - (time.monotonic() - started))
        report["server"] = server_figures(args, node, prepared.path, texts, pythonpath, work)
        report["summary"] = summarise(report)
    except Exception as exc:
        report["errors"].append(f"{type(exc).__name__}: {str(exc)[:1000]}")
    report["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report.get(k) for k in ("in_process", "runner_alone", "summary", "errors", "seconds")}, indent=2))
    print(f"written to {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
