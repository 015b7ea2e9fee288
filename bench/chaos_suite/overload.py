"""Scenario 6, overload at 10x capacity with a small queue: shed load cleanly, serve the rest right.

With MAX_CONCURRENT=1 and MAX_QUEUE_SIZE=4, capacity is measured first with two closed-loop
clients; then an open-loop load at ten times that rate arrives. The excess must get 429 with
Retry-After, every admitted request 200 with correct vectors, and nothing else: no 500s, no
hangs, and the served throughput must not collapse under the rejections.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

from .config import MODEL
from .results import Context, Row, check, info, ms, percentile
from .server import Server
from .texts import Corpus, check_embeddings

PER_REQUEST = 8
MAX_OUTSTANDING = 400


@dataclass
class Outcomes:
    """Counts of what the load got back."""

    ok: int = 0
    rejected: int = 0
    no_retry_after: int = 0
    other: list[str] = field(default_factory=list)
    hangs: int = 0
    wrong: list[str] = field(default_factory=list)
    ok_latencies: list[float] = field(default_factory=list)
    reject_latencies: list[float] = field(default_factory=list)
    dropped_by_client: int = 0


async def capacity(server: Server, pool: list[str], seconds: float) -> float:
    """Requests per second two closed-loop clients get (the queue never fills with two)."""
    rng = random.Random(7)
    done = 0
    async with server.async_client(4) as client:
        for _ in range(3):  # warm the path first; the first calls are slower
            await client.post("/v1/embeddings", json={"model": MODEL, "input": rng.sample(pool, PER_REQUEST)})
        deadline = time.monotonic() + seconds

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": rng.sample(pool, PER_REQUEST)})
                done += res.status_code == 200
        started = time.monotonic()
        await asyncio.gather(loop(), loop())
    return done / (time.monotonic() - started)


async def flood(ctx: Context, server: Server, pool: list[str], rate: float, seconds: float) -> tuple[Outcomes, float]:
    """Open-loop arrivals at `rate` per second for `seconds`; returns outcomes and wall time."""
    out = Outcomes()
    rng = random.Random(8)
    ref = ctx.reference
    outstanding: set[asyncio.Task] = set()
    async with server.async_client(MAX_OUTSTANDING + 8, timeout=60) as client:
        async def one(texts: list[str]) -> None:
            started = time.perf_counter()
            try:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": texts})
            except httpx.TimeoutException:
                out.hangs += 1
                return
            except httpx.HTTPError as exc:
                out.other.append(type(exc).__name__)
                return
            took = time.perf_counter() - started
            if res.status_code == 200:
                out.ok += 1
                out.ok_latencies.append(took)
                out.wrong += check_embeddings(ref, texts, res.json())
            elif res.status_code == 429:
                out.rejected += 1
                out.reject_latencies.append(took)
                out.no_retry_after += "retry-after" not in res.headers
            else:
                out.other.append(f"{res.status_code}: {res.text[:120]}")

        started = time.monotonic()
        n = 0
        while (now := time.monotonic()) - started < seconds:
            due = int((now - started) * rate) + 1
            while n < due:
                n += 1
                if len(outstanding) >= MAX_OUTSTANDING:
                    out.dropped_by_client += 1
                    continue
                task = asyncio.create_task(one(rng.sample(pool, PER_REQUEST)))
                outstanding.add(task)
                task.add_done_callback(outstanding.discard)
            await asyncio.sleep(0.002)
        send_window = time.monotonic() - started
        if outstanding:
            await asyncio.gather(*list(outstanding))
    return out, send_window


def run(ctx: Context) -> list[Row]:
    """Capacity first, then the flood, on one server."""
    name = "overload"
    corpus = Corpus(ctx.seed + 7)
    pool = [corpus.passage(f"ov{i}", 20, 60) for i in range(ctx.pick(300, 150))]
    ctx.reference.prepare(pool)
    seconds = ctx.pick(20, 10)
    env = {"MAX_QUEUE_SIZE": "4", "MAX_CONCURRENT": "1", "EMBEDDING_CACHE_SIZE": "0"}
    with Server(ctx, "overload", env) as server:
        cap = asyncio.run(capacity(server, pool, ctx.pick(10, 5)))
        rate = 10 * cap
        ctx.say(f"{name}: capacity {cap:.1f} req/s ({PER_REQUEST} texts each); flooding at {rate:.0f} req/s for {seconds}s")
        out, window = asyncio.run(flood(ctx, server, pool, rate, seconds))
        status = server.settled_health()
    total = out.ok + out.rejected + len(out.other) + out.hangs
    goodput = out.ok / window if window else 0.0
    for line in (out.other[:5] + out.wrong[:5]):
        ctx.say(f"{name}: {line}")
    return [
        info(name, "capacity (2 closed-loop clients)", f"{cap:.1f} req/s"),
        info(name, "requests sent at 10x / dropped by the client", f"{total} / {out.dropped_by_client}"),
        info(name, "429 share", f"{out.rejected / total:.1%}" if total else "n/a"),
        check(name, "429s without Retry-After", out.no_retry_after, "0", out.no_retry_after == 0),
        check(name, "answers other than 200/429", len(out.other), "0", not out.other),
        check(name, "hangs (no answer in 60 s)", out.hangs, "0", out.hangs == 0),
        check(name, "admitted requests with wrong vectors", len(out.wrong), "0", not out.wrong),
        check(name, "served throughput under overload", f"{goodput:.1f} req/s = {goodput / cap:.2f} x capacity" if cap else "n/a",
              ">= 0.5 x capacity", cap > 0 and goodput >= 0.5 * cap),
        info(name, "200 p50 / p99", f"{ms(percentile(out.ok_latencies, 50))} / {ms(percentile(out.ok_latencies, 99))}"),
        info(name, "429 p50 / p99", f"{ms(percentile(out.reject_latencies, 50))} / {ms(percentile(out.reject_latencies, 99))}"),
        check(name, "/health after", status, "200", status == 200),
    ]
