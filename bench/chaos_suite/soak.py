"""Scenario 10, soak: minutes of mixed moderate traffic with no errors and no runaway memory.

Four clients with think time mix every dialect (OpenAI float and base64, TEI /embed, llama.cpp
/embedding, /tokenize, /detokenize, /v1/models, /health, /metrics) at the default settings,
cache included. Embedding answers are checked against references. Gateway and runner RSS are
sampled every 10 s; leaks and slow error build-up only show over a run this long.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import numpy as np

from .config import MODEL
from .processes import rss_mb
from .results import Context, Row, check, info
from .server import Server
from .texts import Corpus, check_embeddings

CLIENTS = 4
SAMPLE_EVERY_S = 10.0


async def client_loop(ctx: Context, client: httpx.AsyncClient, rng: random.Random, pool: list[str],
                      deadline: float, stats: dict) -> None:
    """One client: a random kind of request, a check of its answer, a pause, until the deadline."""
    ref = ctx.reference
    while time.monotonic() < deadline and stats["requests"] < 200_000:
        kind = rng.choices(["openai", "embed", "llama", "tokenize", "detokenize", "models", "health", "metrics"],
                           [50, 10, 10, 10, 5, 5, 5, 5])[0]
        texts = rng.sample(pool, rng.randint(1, 16))
        stats["requests"] += 1
        try:
            if kind == "openai":
                fmt = rng.choice(["float", "base64"])
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": texts, "encoding_format": fmt})
                problems = check_embeddings(ref, texts, res.json()) if res.status_code == 200 else []
            elif kind == "embed":
                res = await client.post("/embed", json={"inputs": texts})
                problems = ([] if res.status_code != 200 else check_embeddings(
                    ref, texts, {"data": [{"index": i, "embedding": v} for i, v in enumerate(res.json())]}))
            elif kind == "llama":
                res = await client.post("/embedding", json={"content": texts[0]})
                problems = []
                if res.status_code == 200:
                    vec = np.asarray(res.json()[0]["embedding"][0])
                    bad = ref.mismatch(texts[0], vec)
                    problems = [bad] if bad else []
            elif kind == "tokenize":
                res = await client.post("/tokenize", json={"content": texts[0], "add_special": True})
                problems = []
            elif kind == "detokenize":
                res = await client.post("/detokenize", json={"tokens": [7592, 2088]})
                problems = []
            else:
                res = await client.get({"models": "/v1/models", "health": "/health", "metrics": "/metrics"}[kind])
                problems = []
        except httpx.HTTPError as exc:
            stats["errors"].append(f"{kind}: {type(exc).__name__}")
            continue
        stats["statuses"][res.status_code] = stats["statuses"].get(res.status_code, 0) + 1
        if res.status_code == 429:
            stats["r429"] += 1
        elif not 200 <= res.status_code < 300:
            stats["errors"].append(f"{kind}: {res.status_code}: {res.text[:120]}")
        stats["wrong"] += problems
        await asyncio.sleep(rng.uniform(0.0, 0.2))


async def sampler(server: Server, deadline: float, samples: list[tuple[float, float | None, float | None]]) -> None:
    """Gateway and runner RSS every SAMPLE_EVERY_S until the deadline."""
    start = time.monotonic()
    while True:
        samples.append((time.monotonic() - start, rss_mb(server.pid), rss_mb(server.runner_pid())))
        if time.monotonic() + SAMPLE_EVERY_S > deadline:
            break
        await asyncio.sleep(SAMPLE_EVERY_S)
    samples.append((time.monotonic() - start, rss_mb(server.pid), rss_mb(server.runner_pid())))


async def drive(ctx: Context, server: Server, pool: list[str], seconds: float) -> tuple[dict, list]:
    """The clients and the sampler, for `seconds`."""
    stats: dict = {"requests": 0, "errors": [], "wrong": [], "r429": 0, "statuses": {}}
    samples: list = []
    deadline = time.monotonic() + seconds
    async with server.async_client(CLIENTS + 2, timeout=60) as client:
        await asyncio.gather(sampler(server, deadline, samples),
                             *(client_loop(ctx, client, random.Random(ctx.seed + 100 + i), pool, deadline, stats)
                               for i in range(CLIENTS)))
    return stats, samples


def rss_figures(series: list[float | None]) -> str:
    """start / end / max of an RSS series in MB."""
    values = [v for v in series if v is not None]
    if not values:
        return "n/a"
    return f"{values[0]:.0f} / {values[-1]:.0f} / {max(values):.0f} MB"


def run(ctx: Context) -> list[Row]:
    """--soak-seconds of traffic (30 s under --quick unless given) on a default server."""
    name = "soak"
    seconds = ctx.soak_seconds
    corpus = Corpus(ctx.seed + 10)
    pool = corpus.mixed_pool(ctx.pick(400, 150), "soak")
    ctx.reference.prepare(pool)
    with Server(ctx, "soak", {}) as server:
        restarts_before = len(server.runner_pids())
        log_before = server.log_bytes()
        ctx.say(f"{name}: {CLIENTS} clients of mixed traffic for {seconds:.0f}s, RSS every {SAMPLE_EVERY_S:.0f}s")
        stats, samples = asyncio.run(drive(ctx, server, pool, seconds))
        log_mb_min = (server.log_bytes() - log_before) / 1e6 / (seconds / 60)
        restarts = len(server.runner_pids()) - restarts_before
        status = server.settled_health()
    for line in stats["errors"][:5] + stats["wrong"][:5]:
        ctx.say(f"{name}: {line}")
    return [
        info(name, "requests / per status", f"{stats['requests']} / {dict(sorted(stats['statuses'].items()))}"),
        check(name, "non-2xx answers other than 429", len(stats["errors"]), "0", not stats["errors"]),
        info(name, "429s", stats["r429"]),
        check(name, "wrong vectors", len(stats["wrong"]), "0", not stats["wrong"]),
        check(name, "runner restarts", restarts, "0", restarts == 0),
        info(name, "gateway RSS start / end / max", rss_figures([g for _, g, _ in samples])),
        info(name, "runner RSS start / end / max", rss_figures([r for _, _, r in samples])),
        info(name, "RSS samples", len(samples)),
        info(name, "gateway log output", f"{log_mb_min:.3f} MB/min"),
        check(name, "/health after", status, "200", status == 200),
    ]
