"""Scenario 8, log floods: rejected requests are counted, not logged one line each.

A client that keeps getting 401 (API_KEY set, wrong key) or 429 (queue full) can send thousands
of requests a second. Their log lines must be rate-limited with a periodic summary, so the
gateway's stdout stays under 1 MB per minute, while /metrics still counts every rejection.
"""

from __future__ import annotations

import asyncio
import collections
import time

import httpx

from .config import MODEL
from .results import Context, Row, check, info
from .server import Server, metric_sum
from .texts import Corpus

KEY = "chaos-suite-key"
CONNECTIONS = 32
MAX_REQUESTS = 1_000_000
TARGET_MB_PER_MIN = 1.0


async def flood(server: Server, seconds: float, headers: dict[str, str], body: dict) -> collections.Counter:
    """CONNECTIONS closed-loop clients sending body as fast as they can; returns status counts."""
    counts: collections.Counter = collections.Counter()
    deadline = time.monotonic() + seconds
    async with server.async_client(CONNECTIONS + 4, timeout=30) as client:
        async def loop() -> None:
            while time.monotonic() < deadline and sum(counts.values()) < MAX_REQUESTS:
                try:
                    res = await client.post("/v1/embeddings", json=body, headers=headers)
                    counts[res.status_code] += 1
                except httpx.HTTPError as exc:
                    counts[type(exc).__name__] += 1
        await asyncio.gather(*(loop() for _ in range(CONNECTIONS)))
    return counts


def one_flood(ctx: Context, server: Server, label: str, status: int, headers: dict[str, str], body: dict) -> list[Row]:
    """Runs one flood and measures log bytes and metric counts over it."""
    name = f"log_floods[{label}]"
    seconds = ctx.pick(60, 10)
    ops = {"authorization": f"Bearer {KEY}"}
    before_metrics = server.metrics(ops)
    records_before = len(server.records())
    bytes_before = server.log_bytes()
    started = time.monotonic()
    ctx.say(f"{name}: flooding for {seconds}s")
    counts = asyncio.run(flood(server, seconds, headers, body))
    time.sleep(1.0)  # let the gateway write out what it buffered
    elapsed = time.monotonic() - started
    written = server.log_bytes() - bytes_before
    new_records = server.records()[records_before:]
    after_metrics = server.metrics(ops)
    counted = (metric_sum(after_metrics, "http_requests_total", status=str(status))
               - metric_sum(before_metrics, "http_requests_total", status=str(status)))
    got = counts.get(status, 0)
    others = {k: v for k, v in counts.items() if k not in (status, 200)}
    mb_per_min = written / 1e6 / (elapsed / 60)
    summaries = sum(1 for r in new_records if any(w in str(r.get("msg")) for w in ("suppress", "summary")))
    top = ", ".join(f"{m} x{n}" for m, n in collections.Counter(str(r.get("msg")) for r in new_records).most_common(4))
    return [
        info(name, "requests sent / rejected", f"{sum(counts.values())} / {got} ({got / elapsed:.0f}/s)"),
        check(name, "gateway log output", f"{mb_per_min:.3f} MB/min ({written / 1e3:.0f} kB in {elapsed:.0f} s)",
              f"<= {TARGET_MB_PER_MIN} MB/min", mb_per_min <= TARGET_MB_PER_MIN),
        check(name, f"{status}s counted in /metrics", f"{counted:.0f} of {got}", f">= {got}", got > 0 and counted >= got),
        check(name, f"answers other than {status}/200", sum(others.values()), "0", not others),
        info(name, "periodic summary lines (msg with suppress/summary)", summaries),
        info(name, "most frequent log lines", top or "none"),
    ]


def run(ctx: Context) -> list[Row]:
    """One server with API_KEY, a 1-slot runner and a 4-deep queue; a 401 flood, then a 429 flood."""
    corpus = Corpus(ctx.seed + 8)
    texts = [corpus.passage(f"flood{i}", 60, 120) for i in range(16)]
    env = {"API_KEY": KEY, "MAX_QUEUE_SIZE": "4", "MAX_CONCURRENT": "1", "EMBEDDING_CACHE_SIZE": "0"}
    with Server(ctx, "log-floods", env) as server:
        rows = one_flood(ctx, server, "401", 401, {"authorization": "Bearer wrong-key"}, {"model": MODEL, "input": "x"})
        rows += one_flood(ctx, server, "429", 429, {"authorization": f"Bearer {KEY}"}, {"model": MODEL, "input": texts})
        status = server.settled_health()
    rows.append(check("log_floods", "/health after", status, "200", status == 200))
    return rows
