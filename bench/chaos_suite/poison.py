"""Scenario 2, poison isolation: one client's bad input must not fail anyone else's request.

Innocent one-text requests and poison requests (lone surrogates, invalid UTF-8, over-long
inputs with truncate false, out-of-vocabulary token ids) go out at the same moment on one
model, with the cache off and a batch window, so that they share runner batches. Every
innocent must get 200 with the right vector; every offender a 400 naming its own input index
(in its own numbering, even when the gateway split it across runner calls).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass

import httpx

from .config import MODEL
from .results import Context, Row, check, info
from .server import Server, error_of
from .texts import Corpus, check_embeddings

INNOCENTS = 96
INDEX_RE = re.compile(r"input\[(\d+)\]")


@dataclass
class Poison:
    """One offending request: its body bytes, the index it breaks, and what the answer must say."""

    kind: str
    body: bytes
    index: int | None
    code: str | None
    message_starts: bool = False


def dumps(body: dict) -> bytes:
    """JSON with every non-ASCII character escaped, so a lone surrogate travels as \\udXXX."""
    return json.dumps(body, ensure_ascii=True).encode()


def poisons(corpus: Corpus, rnd: int) -> list[Poison]:
    """The offenders of one round, each at a different index (some past a 32-input call boundary)."""
    fill = lambda n, tag: [corpus.query(f"p{rnd}{tag}{i}") for i in range(n)]  # noqa: E731
    out = []
    for j, n, bad in ((3, 5, "\ud800"), (0, 1, "\udfff"), (17, 20, "\udc00\ud800"), (33, 36, "\ud83d")):
        texts = fill(n, f"s{j}")
        texts[j] = f"lone {bad} surrogate"
        out.append(Poison(f"surrogate@{j}/{n}", dumps({"model": MODEL, "input": texts}), j, "invalid_unicode"))
    for j, n in ((2, 4), (0, 1), (34, 40)):
        texts = fill(n, f"u{j}")
        texts[j] = "MARKER"
        raw = dumps({"model": MODEL, "input": texts}).replace(b"MARKER", b"bad \xff\xfe\xc3 bytes")
        out.append(Poison(f"invalid-utf8@{j}/{n}", raw, None, "invalid_utf8"))
    for j, n in ((0, 3), (7, 10), (31, 33), (40, 45)):
        texts = fill(n, f"l{j}")
        texts[j] = corpus.too_long(f"p{rnd}long{j}")
        out.append(Poison(f"too-long@{j}/{n}", dumps({"model": MODEL, "input": texts, "truncate": False}), j,
                          "input_too_long", message_starts=True))
    for j, n in ((1, 3), (0, 1), (35, 38)):
        ids = [[101, 2000 + i, 102] for i in range(n)]
        ids[j] = [101, 999_999, 102]
        out.append(Poison(f"oov-ids@{j}/{n}", dumps({"model": MODEL, "input": ids, "tokenizer": "model"}), j, None))
    return out


def judge(p: Poison, res: httpx.Response) -> str | None:
    """None if the offender got the 400 it should, else what was wrong."""
    err = error_of(res)
    msg = str(err.get("message", ""))
    if res.status_code != 400:
        return f"{p.kind}: status {res.status_code}: {res.text[:160]}"
    if p.code and err.get("code") != p.code:
        return f"{p.kind}: code {err.get('code')!r}, want {p.code!r}: {msg[:120]}"
    if p.index is not None:
        named = {int(m) for m in INDEX_RE.findall(msg)}
        if named != {p.index}:
            return f"{p.kind}: message names {sorted(named)}, want input[{p.index}]: {msg[:160]}"
        if p.message_starts and not msg.startswith(f"input[{p.index}]"):
            return f"{p.kind}: message does not start with input[{p.index}]: {msg[:160]}"
    return None


async def one_round(ctx: Context, server: Server, innocents: list[str], bad: list[Poison]) -> tuple[list[str], list[str]]:
    """Sends innocents and poisons together; returns (innocent problems, offender problems)."""
    ref = ctx.reference
    async with server.async_client(len(innocents) + len(bad) + 8) as client:
        async def innocent(text: str) -> str | None:
            try:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": [text]})
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__} for {text[:30]!r}"
            if res.status_code != 200:
                return f"{res.status_code} for {text[:30]!r}: {res.text[:160]}"
            problems = check_embeddings(ref, [text], res.json())
            return problems[0] if problems else None

        async def offender(p: Poison) -> str | None:
            try:
                res = await client.post("/v1/embeddings", content=p.body, headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                return f"{p.kind}: {type(exc).__name__}"
            return judge(p, res)

        jobs = [("i", innocent(t)) for t in innocents] + [("p", offender(p)) for p in bad]
        random.Random(ctx.seed).shuffle(jobs)
        results = await asyncio.gather(*(j for _, j in jobs))
    innocent_problems = [r for (kind, _), r in zip(jobs, results) if kind == "i" and r]
    offender_problems = [r for (kind, _), r in zip(jobs, results) if kind == "p" and r]
    return innocent_problems, offender_problems


def run(ctx: Context) -> list[Row]:
    """Several rounds on one server with the cache off and a 10 ms batch window."""
    name = "poison"
    corpus = Corpus(ctx.seed + 2)
    rounds = ctx.pick(3, 1)
    plan = [([corpus.query(f"inn{r}-{i}") for i in range(INNOCENTS)], poisons(corpus, r)) for r in range(rounds)]
    ctx.reference.prepare(t for innocents, _ in plan for t in innocents)
    innocent_bad: list[str] = []
    offender_bad: list[str] = []
    with Server(ctx, "poison", {"EMBEDDING_CACHE_SIZE": "0", "BATCH_WINDOW_MS": "10"}) as server:
        for r, (innocents, bad) in enumerate(plan):
            ctx.say(f"{name}: round {r + 1}/{rounds}: {len(innocents)} innocents, {len(bad)} offenders")
            i_bad, o_bad = asyncio.run(one_round(ctx, server, innocents, bad))
            innocent_bad += i_bad
            offender_bad += o_bad
        status = server.settled_health()
        alive_after = server.running()
        shared = sum(1 for r in server.lines("batch_done")
                     if (r.get("failed") or 0) > 0 and "," in str(r.get("request_id", "")))
    for line in (innocent_bad[:5] + offender_bad[:12]):
        ctx.say(f"{name}: {line}")
    n_inn = sum(len(i) for i, _ in plan)
    n_off = sum(len(p) for _, p in plan)
    return [
        check(name, f"innocent requests affected (of {n_inn})", len(innocent_bad), "0", not innocent_bad),
        check(name, f"offenders without a 400 naming their own index (of {n_off})", len(offender_bad), "0", not offender_bad),
        info(name, "runner batches mixing an offender with other requests", shared),
        check(name, "gateway alive and /health after", f"{'alive' if alive_after else 'DEAD'}, {status}", "alive, 200",
              alive_after and status == 200),
    ]
