"""Scenario 3, a very large request at default settings: it succeeds, and nobody starves meanwhile.

One request of 2048 inputs of ~256 tokens takes about a minute on a 2-core CPU. QUEUE_TIMEOUT_MS
bounds only the wait before its first inputs reach a runner, so it must finish with 200 and
correct vectors. While it runs, a client sends one-text requests in a loop; their p99 must stay
within 3 forward passes of 32 such inputs (measured first, on the same server), which only
holds if the gateway interleaves small requests between the big one's runner calls.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from .config import MODEL
from .results import Context, Row, check, info, ms, percentile
from .server import Server
from .texts import Corpus, check_embeddings


async def measure(ctx: Context, server: Server, big: list[str], singles: list[str]) -> dict:
    """Fires the big request, loops one-text requests until it is answered; returns the figures."""
    out: dict = {"single_latencies": [], "single_bad": []}
    ref = ctx.reference
    async with server.async_client(8, timeout=600) as client:
        async def big_call() -> None:
            started = time.perf_counter()
            try:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": big, "encoding_format": "base64"},
                                        timeout=ctx.pick(420, 200))
                out["big_status"] = res.status_code
                out["big_body"] = res.json() if res.status_code == 200 else res.text[:300]
            except httpx.HTTPError as exc:
                out["big_status"] = f"{type(exc).__name__}"
            out["big_seconds"] = time.perf_counter() - started

        task = asyncio.create_task(big_call())
        await asyncio.sleep(1.0)  # let its first runner calls start
        for text in singles:
            if task.done():
                break
            started = time.perf_counter()
            try:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": text}, timeout=120)
            except httpx.HTTPError as exc:
                out["single_bad"].append(type(exc).__name__)
                continue
            out["single_latencies"].append(time.perf_counter() - started)
            if res.status_code != 200:
                out["single_bad"].append(f"{res.status_code}: {res.text[:120]}")
            else:
                out["single_bad"] += check_embeddings(ref, [text], res.json())
            await asyncio.sleep(0.02)
        out["singles_during"] = len(out["single_latencies"])
        await task
    return out


def pass_seconds(server: Server, batches: list[list[str]]) -> float:
    """Median time of one 32-input request of ~256-token texts: one full forward pass."""
    times = []
    with server.client(120) as c:
        for texts in batches:
            started = time.perf_counter()
            res = c.post("/v1/embeddings", json={"model": MODEL, "input": texts, "encoding_format": "base64"})
            times.append(time.perf_counter() - started)
            if res.status_code != 200:
                raise RuntimeError(f"32-input request failed: {res.status_code} {res.text[:200]}")
    return sorted(times)[len(times) // 2]


def run(ctx: Context) -> list[Row]:
    """Default settings; sample references are computed before the server starts."""
    name = "big_request"
    corpus = Corpus(ctx.seed + 3)
    n_big = ctx.pick(2048, 512)
    big = [corpus.full(f"big{i}") for i in range(n_big)]
    passes = [[corpus.full(f"pass{b}-{i}") for i in range(32)] for b in range(ctx.pick(4, 3))]
    singles = [corpus.query(f"one{i}") for i in range(ctx.pick(800, 400))]
    # Every row in the full run, as the target asks; a sample in --quick.
    sample = sorted(random.Random(ctx.seed).sample(range(n_big), ctx.pick(n_big, 64)))
    ctx.say(f"{name}: references for {len(sample)} sampled rows and {len(singles)} one-text requests")
    ctx.reference.prepare([big[i] for i in sample] + singles)

    with Server(ctx, "big-request", {}) as server:
        server.embed(passes[0])  # warm-up, not timed
        one_pass = pass_seconds(server, passes[1:])
        ctx.say(f"{name}: one 32 x ~256-token pass takes {one_pass * 1000:.0f} ms; sending {n_big} inputs")
        out = asyncio.run(measure(ctx, server, big, singles))
        status = server.settled_health()

    problems: list[str] = []
    body = out.get("big_body")
    if out.get("big_status") == 200 and isinstance(body, dict):
        data = body.get("data", [])
        if len(data) != n_big:
            problems.append(f"{len(data)} rows for {n_big} inputs")
        else:
            problems = check_embeddings(ctx.reference, [big[i] for i in sample],
                                        {"data": [{**data[i], "index": k} for k, i in enumerate(sample)]})
    lat = out["single_latencies"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    for line in problems[:5] + out["single_bad"][:5]:
        ctx.say(f"{name}: {line}")
    if out.get("big_status") != 200:
        ctx.say(f"{name}: big request answer: {str(body)[:300]}")
    return [
        info(name, "one 32-input pass of ~256-token texts", ms(one_pass)),
        check(name, f"{n_big} x ~256-token request status", out.get("big_status"), "200", out.get("big_status") == 200),
        info(name, f"{n_big}-input request time", f"{out.get('big_seconds', float('nan')):.1f} s"),
        check(name, f"sampled rows differing from reference (of {len(sample)})", len(problems) if out.get("big_status") == 200 else "n/a",
              "0", out.get("big_status") == 200 and not problems),
        check(name, "one-text requests answered meanwhile", out["singles_during"], ">= 5 (for a p99)", out["singles_during"] >= 5),
        check(name, "one-text failures or wrong vectors meanwhile", len(out["single_bad"]), "0", not out["single_bad"]),
        info(name, "one-text p50 meanwhile", ms(p50)),
        check(name, "one-text p99 meanwhile", f"{ms(p99)} = {p99 / one_pass:.2f} passes", "<= 3 passes",
              bool(lat) and p99 <= 3 * one_pass),
        check(name, "/health after", status, "200", status == 200),
    ]
