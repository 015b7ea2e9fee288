"""HTTP clients for bench/gpu_server_bench.py, in processes of their own: one Python process cannot
send requests fast enough to keep a GPU server busy, so each shape's clients are spread over
several, each running some of them on threads. Standard library only, so that a process spawned
on a bare machine starts in milliseconds."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit


def post(conn: http.client.HTTPConnection, model: str, texts: list[str]) -> int:
    """One /v1/embeddings request on a kept-alive connection; returns the texts answered."""
    body = json.dumps({"model": model, "input": texts, "encoding_format": "base64"})
    conn.request("POST", "/v1/embeddings", body, {"content-type": "application/json"})
    reply = conn.getresponse()
    data = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {data[:200]!r}")
    return len(texts)


def run_clients(url: str, model: str, batches: list[list[str]], clients: int, until: float, timeout: float) -> dict:
    """Closed-loop clients until the clock reaches until (time.time()): each sends its next batch as
    soon as the last is answered, cycling through batches from its own offset. Every client sends
    at least one request, so a shape slower than its window still counts."""
    where = urlsplit(url)
    lock = threading.Lock()
    done = {"texts": 0, "requests": 0, "errors": []}
    latencies: list[float] = []

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
        i = k
        try:
            while True:
                started = time.perf_counter()
                n = post(conn, model, batches[i % len(batches)])
                elapsed = time.perf_counter() - started
                with lock:
                    done["texts"] += n
                    done["requests"] += 1
                    latencies.append(elapsed)
                i += clients
                if time.time() >= until:
                    return
        except Exception as exc:  # reported, not hidden
            with lock:
                done["errors"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, until - time.time()) + timeout)
    return {**done, "latencies": latencies}


def idle(url: str, model: str, texts: list[str], pause_s: float, timeout: float) -> dict:
    """One text at a time with a pause before each, so that every request meets an idle server."""
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
    try:
        for text in texts[:3]:
            post(conn, model, [text])
        times = []
        for text in texts:
            time.sleep(pause_s)
            started = time.perf_counter()
            post(conn, model, [text])
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    times.sort()
    return {"requests": len(times), "p50_ms": statistics.median(times) * 1000,
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000}
