"""Scenario 1, correctness under concurrency: every vector the server returns is the right one.

64 clients send random mixes of options (1–40 inputs with duplicates within and across
requests, float or base64, dimensions absent or 384, normalize true or false, token-id inputs
of the model's own vocabulary), and a few abort mid-request. Batching, the cache and
cancellation all reorder and share work; a bug there shows up as a vector that belongs to
another text or another option set. Run once with the cache off and once with the default cache.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

from .config import DIM, MODEL
from .results import Context, Row, check, info, ms, percentile
from .server import Server, metric_sum
from .texts import Corpus, check_embeddings

CLIENTS = 64
ABORT_SHARE = 0.05
TOKEN_ID_SHARE = 0.08


@dataclass
class Tally:
    """What the clients saw, shared by all of them (one event loop, so no locks)."""

    requests: int = 0
    aborted: int = 0
    vectors: int = 0
    mismatches: list[str] = field(default_factory=list)
    bad_status: list[str] = field(default_factory=list)
    shed: int = 0
    latencies: list[float] = field(default_factory=list)


def build_request(rng: random.Random, pool: list[str], token_ids: dict[str, list[int]]) -> tuple[dict, list[str], bool]:
    """A random request body, the texts its inputs stand for, and whether vectors are normalised."""
    body: dict = {"model": MODEL, "truncate": True, "encoding_format": rng.choice(["float", "base64"])}
    # 1–40 inputs, skewed small (mean ~12): 64 clients of 40 inputs each would keep a 2-core
    # server past QUEUE_TIMEOUT_MS, which tests admission control, not correctness.
    n = 1 + int(39 * rng.random() ** 2.5)
    if token_ids and rng.random() < TOKEN_ID_SHARE:
        texts = rng.choices(list(token_ids), k=min(n, 8))
        ids = [token_ids[t] for t in texts]
        body["input"] = ids[0] if len(ids) == 1 and rng.random() < 0.5 else ids
        body["tokenizer"] = "model"
    else:
        texts = rng.choices(pool, k=n)
        if n > 2 and rng.random() < 0.3:  # duplicates inside one request
            texts[rng.randrange(n)] = texts[0]
        body["input"] = texts[0] if n == 1 and rng.random() < 0.5 else texts
    if rng.random() < 0.5:
        body["dimensions"] = DIM
    normalize = rng.random() < 0.7
    if not normalize or rng.random() < 0.3:
        body["normalize"] = normalize
    return body, texts, normalize


async def client_loop(ctx: Context, client: httpx.AsyncClient, rng: random.Random, pool: list[str],
                      token_ids: dict[str, list[int]], tally: Tally, deadline: float, cap: int) -> None:
    """One closed-loop client until the deadline or the shared request cap."""
    ref = ctx.reference
    while time.monotonic() < deadline and tally.requests < cap:
        body, texts, normalize = build_request(rng, pool, token_ids)
        tally.requests += 1
        abort_after = rng.uniform(0.01, 0.4) if rng.random() < ABORT_SHARE else None
        started = time.perf_counter()
        try:
            call = client.post("/v1/embeddings", json=body)
            res = await (asyncio.wait_for(call, abort_after) if abort_after else call)
        except asyncio.TimeoutError:
            tally.aborted += 1
            continue
        except httpx.HTTPError as exc:
            tally.bad_status.append(f"{type(exc).__name__}: {exc}")
            continue
        tally.latencies.append(time.perf_counter() - started)
        if res.status_code in (429, 503) and "retry-after" in res.headers:
            tally.shed += 1  # load shedding with a retry hint; an SDK retries these
        elif res.status_code != 200:
            tally.bad_status.append(f"{res.status_code}: {res.text[:160]}")
        else:
            problems = check_embeddings(ref, texts, res.json(), normalize)
            tally.vectors += len(texts)
            for p in problems:
                tally.mismatches.append(f"{p} (options {dict((k, v) for k, v in body.items() if k != 'input')})")
        await asyncio.sleep(rng.uniform(0.0, 0.3))


async def drive(ctx: Context, server: Server, pool: list[str], token_ids: dict[str, list[int]], seconds: float, cap: int) -> Tally:
    """Runs CLIENTS clients against server and returns what they saw."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    async with server.async_client(CLIENTS + 8) as client:
        await asyncio.gather(*(client_loop(ctx, client, random.Random(ctx.seed + i), pool, token_ids, tally, deadline, cap)
                               for i in range(CLIENTS)))
    return tally


def model_token_ids(server: Server, texts: list[str]) -> dict[str, list[int]]:
    """The model's own ids for texts, with special tokens, from the server's /tokenize."""
    out = {}
    with server.client(30) as c:
        for text in texts:
            res = c.post("/tokenize", json={"content": text, "add_special": True})
            if res.status_code == 200 and isinstance(res.json().get("tokens"), list):
                out[text] = res.json()["tokens"]
    return out


def one_mode(ctx: Context, label: str, env: dict[str, str], pool: list[str], id_texts: list[str]) -> list[Row]:
    """One server, one run of the clients, the rows for it."""
    name = f"correctness[{label}]"
    seconds = ctx.pick(25, 10)
    cap = ctx.pick(4000, 1200)
    with Server(ctx, f"correctness-{label}", env) as server:
        token_ids = model_token_ids(server, id_texts)
        before = server.metrics()
        ctx.say(f"{name}: {CLIENTS} clients for {seconds}s (cap {cap} requests)")
        tally = asyncio.run(drive(ctx, server, pool, token_ids, seconds, cap))
        after = server.metrics()
        status = server.settled_health()
    hits = metric_sum(after, "embedding_cache_hits_total") - metric_sum(before, "embedding_cache_hits_total")
    rows = [
        check(name, "token-id texts fetched from /tokenize", f"{len(token_ids)}/{len(id_texts)}", "all", len(token_ids) == len(id_texts)),
        info(name, "requests sent / aborted by the client", f"{tally.requests} / {tally.aborted}"),
        check(name, "vectors checked", tally.vectors, "> 0", tally.vectors > 0),
        check(name, "vectors that differ from the reference", len(tally.mismatches), "0", not tally.mismatches),
        check(name, "answers neither 200 nor 429/503 with Retry-After", len(tally.bad_status), "0", not tally.bad_status),
        info(name, "shed with 429/503 + Retry-After", f"{tally.shed} of {tally.requests - tally.aborted}"),
        info(name, "latency p50 / p99", f"{ms(percentile(tally.latencies, 50))} / {ms(percentile(tally.latencies, 99))}"),
        info(name, "cache hits", int(hits)),
        check(name, "/health after the run", status, "200", status == 200),
    ]
    for line in tally.mismatches[:5] + tally.bad_status[:5]:
        ctx.say(f"{name}: {line}")
    return rows


def run(ctx: Context) -> list[Row]:
    """Both cache modes; references for the whole pool are computed first, with no server up."""
    corpus = Corpus(ctx.seed)
    pool = corpus.mixed_pool(ctx.pick(400, 160), "c")
    id_texts = [corpus.query(f"ids{i}") for i in range(20)] + [corpus.unicode(f"idsu{i}") for i in range(5)]
    seconds = ctx.reference.prepare(pool + id_texts)
    ctx.say(f"correctness: {len(pool) + len(id_texts)} references in {seconds:.1f}s")
    rows = one_mode(ctx, "cache=0", {"EMBEDDING_CACHE_SIZE": "0"}, pool, id_texts)
    rows += one_mode(ctx, "cache=default", {}, pool, id_texts)
    return rows
