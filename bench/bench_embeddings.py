#!/usr/bin/env python3
"""Server throughput and latency against the in-process limit, on the default model.

    .venv/bin/python bench/bench_embeddings.py            # starts its own server
    .venv/bin/python bench/bench_embeddings.py --url http://127.0.0.1:8000   # an already running one

Baseline L is sentence-transformers' encode(batch_size=32) on the same texts, in this process.
The server is measured over HTTP, with its cache off so that every text is computed:
  - 32 concurrent clients sending 1 text each;
  - 4 concurrent clients sending 32 texts each;
  - 1 client sending all 512 texts in one request;
  - 1 client sending 1 short text at a time (idle latency), against in-process encode of 1 text,
    the two alternating text by text so that both see the same machine state.
Each serving path (--precisions, default fp32, bf16 and int8) gets its own server in the same run, and
so does Infinity, on the same weights, where it is installed (--infinity). A path's
ceiling C is the runner's own handler, loaded in this process with the same precision and handed
all 512 texts in one call, its passes run on the calling thread as a runner on a CPU runs them:
what the server would reach with no gateway, no gRPC and no client in the way. Rounds (--rounds)
time L, C and each shape back to back while the server idles between shapes, and every ratio is
taken within its round, then the median over rounds is reported, so that a slow spell of a noisy
machine moves both sides of a ratio alike. Each path also gets its
fidelity to L, and its MFU: throughput times the encoder's FLOPs per text, over the fp32 GEMM
peak measured in the same round on the same threads (a peak taken once would make every MFU of the
run high or low with the machine's mood at that moment).
This is a measurement, not a test: the figures vary with the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
MODEL = "all-minilm-l6-v2"
WORDS = (
    "the of and to in is was for on are with as by at from his that be this have an which or "
    "had not but were they their has been one its all new more when who also she can first two "
    "time after there would into years other these many some may most over such only could "
    "state city school during between under world system part work government people number "
    "model server vector search query document embedding latency throughput memory batch token "
    "river mountain history music science language market energy health water light garden "
    "network engine signal process design theory planet animal village company history record"
).split()


def corpus(n_queries: int = 256, n_passages: int = 256, seed: int = 0) -> list[str]:
    """A fixed mix of short queries (4–12 words) and passages (80–220 words, ~100–300 tokens)."""
    rng = random.Random(seed)
    queries = [" ".join(rng.choices(WORDS, k=rng.randint(4, 12))) + "?" for _ in range(n_queries)]
    passages = [" ".join(rng.choices(WORDS, k=rng.randint(80, 220))) + "." for _ in range(n_passages)]
    texts = queries + passages
    rng.shuffle(texts)
    return texts


def load_reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(ROOT / "models" / MODEL), device="cpu", local_files_only=True)


def rate(encode, texts: list[str]) -> float:
    """Texts per second of one in-process call of encode on all texts."""
    t = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - t)


class Client:
    """One keep-alive HTTP connection, as an SDK would hold; asks for base64 like the SDKs do."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def embed(self, texts: list[str], model: str = MODEL) -> float:
        body = json.dumps({"model": model, "input": texts, "encoding_format": "base64"})
        t = time.perf_counter()
        self.conn.request("POST", "/v1/embeddings", body, {"content-type": "application/json"})
        res = self.conn.getresponse()
        data = json.loads(res.read())
        elapsed = time.perf_counter() - t
        if res.status != 200:
            raise RuntimeError(f"HTTP {res.status}: {data}")
        assert len(base64.b64decode(data["data"][0]["embedding"])) == 384 * 4
        return elapsed


def load(url: str, texts: list[str], clients: int, per_request: int) -> dict:
    """Closed-loop clients share the corpus as a work list; returns throughput and latencies."""
    chunks = [texts[i:i + per_request] for i in range(0, len(texts), per_request)]
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        client = Client(url)
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop()
            try:
                latencies.append(client.embed(chunk))
            except Exception as exc:  # reported, not hidden
                errors.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    latencies.sort()
    return {
        "texts_per_s": len(texts) / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def idle(url: str, model, singles: list[str]) -> dict:
    """One text at a time, in process and over HTTP, alternating; medians of each."""
    client = Client(url)
    for text in singles[:5]:
        client.embed([text])
        model.encode([text])
    served, local = [], []
    for text in singles:
        # A pause before each call lets the other side's worker threads go back to sleep, as
        # they would between requests to an idle server.
        time.sleep(0.05)
        served.append(client.embed([text]))
        time.sleep(0.05)
        t = time.perf_counter()
        model.encode([text])
        local.append(time.perf_counter() - t)
    served.sort()
    return {"p50_ms": statistics.median(served) * 1000, "p99_ms": served[int(len(served) * 0.99) - 1] * 1000,
            "in_process_p50_ms": statistics.median(local) * 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict, checkout: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """checkout's gateway (and so its runners) serving MiniLM with the cache off, unless env_extra says otherwise."""
    port = free_port()
    env = {**os.environ, "MODELS": MODEL, "PORT": str(port), "LOG_LEVEL": "warn",
           "EMBEDDING_CACHE_SIZE": "0", **env_extra}
    proc = subprocess.Popen([str(checkout / "node_modules/.bin/node"), "gateway/src/main.ts"], cwd=checkout, env=env)
    return proc, wait_healthy(proc, port, "/health")


def start_infinity(executable: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """Infinity on the same weights, under the same model name and the /v1 prefix, so the same
    client measures it; offline, as the weights are local, and without its usage telemetry, which
    would only fail to connect. Its cache is off by default."""
    port = free_port()
    proc = subprocess.Popen([executable, "v2", "--model-id", str(ROOT / "models" / MODEL), "--served-model-name", MODEL,
                             "--url-prefix", "/v1", "--port", str(port), "--log-level", "warning", *extra],
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"})
    return proc, wait_healthy(proc, port, "/v1/models")


def wait_healthy(proc: subprocess.Popen, port: int, path: str) -> str:
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return f"http://127.0.0.1:{port}"
        except OSError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"server did not become healthy (exit code {proc.wait()})")


def gemm_peak_gflops(threads: int) -> float:
    """fp32 matrix-multiply peak of this CPU with the runner's thread count, measured now."""
    import torch

    torch.set_num_threads(threads)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    runs = []
    # The best of many: a noisy neighbour only ever slows a run down.
    for _ in range(20):
        t = time.perf_counter()
        a @ b
        runs.append(time.perf_counter() - t)
    return 2 * n**3 / min(runs) / 1e9


def flops_per_token(model, texts: list[str]) -> tuple[float, int]:
    """Forward FLOPs per token of the encoder (2 per weight of every Linear, plus attention at the
    corpus's mean length), and the corpus's token count."""
    import torch

    encoder = model[0].auto_model
    linear = sum(m.weight.numel() for m in encoder.modules() if isinstance(m, torch.nn.Linear))
    lengths = [len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    config = encoder.config
    mean_len = sum(lengths) / len(lengths)
    attention = 4 * config.num_hidden_layers * config.hidden_size * mean_len
    return 2 * linear + attention, sum(lengths)


def runner_encode(precision: str):
    """The runner's own handler for the model, loaded in this process with precision: encode(texts)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from runner import compute_threads
    from runner.catalog import load_catalog
    from runner.fidelity import Thresholds
    from runner.handlers.base import EmbedOptions
    from runner.loader import load_handler
    from runner.precision import apply_precision

    entry = load_catalog(ROOT / "configs/model_config.yaml")[MODEL]
    handler = load_handler(entry, ROOT / "models", torch.device("cpu"), 16384)
    handler = apply_precision(handler, MODEL, precision, Thresholds(0.999, 0.995, 0.95), torch.get_num_threads())
    # As a runner on a CPU serves: passes on the calling thread (which runs L's too), and no idle
    # thread team left on the compute thread to slow every pass (runner/compute_threads.py).
    handler.release_compute_team()
    opts = EmbedOptions(prompt_name=None, dimensions=None, truncate=True, truncate_side="right", normalize=True)

    def encode(texts: list[str]):
        with compute_threads.on_this_thread():
            return handler.embed(texts, opts)

    return encode


def fidelity(url: str, model, texts: list[str]) -> dict:
    """Cosines of the server's vectors to in-process sentence-transformers on the same texts."""
    import numpy as np

    client = Client(url)
    body = json.dumps({"model": MODEL, "input": texts, "encoding_format": "float"})
    client.conn.request("POST", "/v1/embeddings", body, {"content-type": "application/json"})
    got = np.array([d["embedding"] for d in json.loads(client.conn.getresponse().read())["data"]])
    want = model.encode(texts)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    return {"mean_cosine": float(cos.mean()), "worst_cosine": float(cos.min())}


SHAPES = {"clients32_x1": (32, 1, "32 clients x 1 text "), "clients4_x32": (4, 32, "4 clients x 32 texts"),
          "clients1_x512": (1, 512, "1 client x 512 texts")}


def measure_path(url: str, reference, top, texts: list[str], singles: list[str], rounds: int, work: float,
                 threads: int) -> dict:
    """One serving path: throughput at each shape, idle latency, MFU and fidelity.

    Each round times L (reference), the ceiling C (top, the runner's handler in this process,
    when the server was started here) and every shape back to back, and ratios are taken within
    the round, so a slow spell of a noisy machine shifts both sides of a ratio alike. Figures are
    medians over the rounds.
    """
    load(url, texts[:64], 8, 8)  # warm the HTTP path
    reference.encode(texts[:64], batch_size=32)
    if top:
        top(texts[:64])
    per_round: list[dict] = []
    for _ in range(rounds):
        r = {"peak_gflops": gemm_peak_gflops(threads), "L": rate(lambda t: reference.encode(t, batch_size=32), texts)}
        if top:
            r["C"] = rate(top, texts)
        for key, (clients, per_request, _) in SHAPES.items():
            r[key] = load(url, texts, clients, per_request)
        per_round.append(r)
    med = statistics.median
    mfu = lambda key: med(r[key] * work / (r["peak_gflops"] * 1e9) for r in per_round)  # noqa: E731
    out: dict = {"rounds": per_round, "L_texts_per_s": med(r["L"] for r in per_round), "L_mfu": mfu("L")}
    if top:
        out["ceiling"] = {"texts_per_s": med(r["C"] for r in per_round),
                          "ratio_to_L": med(r["C"] / r["L"] for r in per_round), "mfu": mfu("C")}
    for key in SHAPES:
        rates = [r[key]["texts_per_s"] for r in per_round]
        out[key] = {"texts_per_s": med(rates), "ratio_to_L": med(x / r["L"] for x, r in zip(rates, per_round)),
                    "mfu": med(x * work / (r["peak_gflops"] * 1e9) for x, r in zip(rates, per_round)),
                    "p50_ms": med(r[key]["p50_ms"] for r in per_round), "p99_ms": med(r[key]["p99_ms"] for r in per_round)}
        if top:
            out[key]["ratio_to_C"] = med(x / r["C"] for x, r in zip(rates, per_round))
    out["one_vs_batched"] = med(r["clients32_x1"]["texts_per_s"] / r["clients4_x32"]["texts_per_s"] for r in per_round)
    quiet = idle(url, reference, singles)
    out["idle"] = {**quiet, "over_in_process_ms": quiet["p50_ms"] - quiet["in_process_p50_ms"]}
    out["fidelity"] = fidelity(url, reference, texts[:128])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="measure this running server instead of starting one (its cache should be off)")
    p.add_argument("--precisions", default="fp32,bf16,int8",
                   help="serving paths to start and measure in this run, comma-separated (default fp32,bf16,int8)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="extra server setting for the started server, e.g. --set BATCH_WINDOW_MS=0")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per path; figures are their medians")
    p.add_argument("--infinity", default=shutil.which("infinity_emb"), metavar="EXECUTABLE",
                   help="also measure Infinity (michaelfeil/infinity) on the same weights, started from this "
                        "infinity_emb executable; default: the one on PATH, if any ('' skips it; never with --url)")
    p.add_argument("--infinity-args", default="--engine torch",
                   help="extra infinity_emb v2 arguments (default: --engine torch)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()

    from machine import cpu_description

    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)
    texts = corpus()
    singles = corpus(n_queries=60, n_passages=0, seed=1)
    print(f"corpus: {len(texts)} texts; baseline: in-process sentence-transformers, batch_size=32", flush=True)
    reference = load_reference()
    import torch

    threads = torch.get_num_threads()  # what the in-process baseline and each runner use
    per_token, tokens = flops_per_token(reference, texts)
    work = per_token * tokens / len(texts)  # FLOPs per text of this corpus
    print(f"{per_token / 1e6:.1f} MFLOP per token, {tokens} tokens; fp32 GEMM peak measured every round on {threads} threads",
          flush=True)

    figures: dict = {"cpu": cpu, "flags": flags, "threads": threads, "rounds": args.rounds, "paths": {}}
    paths = ["external"] if args.url else args.precisions.split(",")
    if args.infinity and not args.url:
        paths.append("infinity")
    elif not args.url:
        print("Infinity: not measured (none on PATH, or --infinity '')", flush=True)
    for path in paths:
        top = None if path in ("external", "infinity") else runner_encode(path)
        if path == "external":
            proc, url = None, args.url
        elif path == "infinity":
            proc, url = start_infinity(args.infinity, shlex.split(args.infinity_args))
        else:
            proc, url = start_server({**dict(kv.split("=", 1) for kv in args.set), "PRECISION": path})
        try:
            f = figures["paths"][path] = measure_path(url, reference, top, texts, singles, args.rounds, work, threads)
        finally:
            if proc:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        del top
        quiet = f["idle"]
        peaks = [r["peak_gflops"] for r in f["rounds"]]
        print(f"[{path}] fp32 GEMM peak {min(peaks):.0f}-{max(peaks):.0f} GFLOP/s over the rounds; "
              f"L = {f['L_texts_per_s']:.1f} texts/s (MFU {f['L_mfu']:.2f}); "
              f"fidelity to L: mean cosine {f['fidelity']['mean_cosine']:.5f}, worst {f['fidelity']['worst_cosine']:.5f}")
        if "ceiling" in f:
            print(f"[{path}] ceiling C, runner in process, one call: {f['ceiling']['texts_per_s']:.1f} texts/s = "
                  f"{f['ceiling']['ratio_to_L']:.2f} L, MFU {f['ceiling']['mfu']:.2f}")
        for key, (_, _, label) in SHAPES.items():
            s = f[key]
            to_c = f" = {s['ratio_to_C']:.2f} C" if "ratio_to_C" in s else ""
            print(f"[{path}] {label}: {s['texts_per_s']:.1f} texts/s = {s['ratio_to_L']:.2f} L{to_c}, MFU {s['mfu']:.2f}; "
                  f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")
        print(f"[{path}] 32 x 1 is {f['one_vs_batched']:.2f}x its 4 x 32")
        print(f"[{path}] idle, 1 client      : p50 {quiet['p50_ms']:.2f} ms vs in-process {quiet['in_process_p50_ms']:.2f} ms: "
              f"{quiet['over_in_process_ms']:+.2f} ms; p99 {quiet['p99_ms']:.2f} ms", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
