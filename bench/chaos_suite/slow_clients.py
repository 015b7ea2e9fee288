"""Scenario 9, slow and vanishing clients: neither may tie up the server.

- slow_loris: ~20 raw connections at once, half sending their headers a byte every 2 s, half
  sending a chunked body a byte every 3 s. The gateway's header and request timeouts must close
  each within 30 s, while a normal request still gets 200 meanwhile.
- disconnect_storm: many clients send large requests and vanish, some mid-upload and some
  while waiting for the answer. The server must stay healthy, later requests must get 200, and
  the work of the vanished clients must be dropped: the queue empties and the runner goes idle
  instead of computing everything anyway.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import httpx

from .config import HOST, MODEL
from .processes import cpu_seconds
from .results import Context, Row, check, info, ms, percentile
from .server import Server, metric_sum
from .texts import Corpus

CLOSE_TARGET_S = 30.0
GIVE_UP_S = 75.0


# --------------------------------------------------------------------------------------------
# Slow-loris


async def slow_connection(port: int, kind: str) -> float | None:
    """One trickling client; seconds from its connect until the server closed it (None: open at GIVE_UP_S)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    closed = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        try:
            while await reader.read(4096):
                pass
        except (ConnectionError, OSError):
            pass
        if not closed.done():
            closed.set_result(time.monotonic())

    watcher = asyncio.create_task(watch())
    if kind == "headers":
        first, step, interval = f"POST /v1/embeddings HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ", b"a", 2.0
    else:
        first = (f"POST /v1/embeddings HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n")
        step, interval = b"1\r\n \r\n", 3.0
    try:
        writer.write(first.encode())
        await writer.drain()
        while time.monotonic() - started < GIVE_UP_S and not closed.done():
            await asyncio.wait([closed], timeout=interval)
            if closed.done():
                break
            try:
                writer.write(step)
                await writer.drain()
            except (ConnectionError, OSError):
                if not closed.done():
                    closed.set_result(time.monotonic())
    finally:
        writer.close()
        watcher.cancel()
    return closed.result() - started if closed.done() else None


async def normal_probe(server: Server, until: asyncio.Future) -> list[int | str]:
    """A normal request every 2 s until `until` resolves; returns their statuses."""
    out: list[int | str] = []
    async with server.async_client(2, timeout=20) as client:
        while not until.done() and len(out) < 100:
            try:
                out.append((await client.post("/v1/embeddings", json={"model": MODEL, "input": "normal"})).status_code)
            except httpx.HTTPError as exc:
                out.append(type(exc).__name__)
            await asyncio.wait([until], timeout=2)
    return out


async def loris(server: Server, per_kind: int) -> tuple[dict[str, list[float | None]], list[int | str]]:
    """per_kind slow-header and per_kind slow-body connections at once, with the normal probe."""
    kinds = ["headers"] * per_kind + ["body"] * per_kind
    all_done = asyncio.get_running_loop().create_future()
    probe = asyncio.create_task(normal_probe(server, all_done))
    times = await asyncio.gather(*(slow_connection(server.port, k) for k in kinds))
    all_done.set_result(True)
    out: dict[str, list[float | None]] = {"headers": [], "body": []}
    for kind, t in zip(kinds, times):
        out[kind].append(t)
    return out, await probe


def run_slow_loris(ctx: Context) -> list[Row]:
    """Default timeouts; closes are timed from the moment all connections opened."""
    name = "slow_loris"
    per_kind = 10
    with Server(ctx, "slow-loris", {}) as server:
        ctx.say(f"{name}: {2 * per_kind} trickling connections (up to {GIVE_UP_S:.0f} s)")
        closes, probes = asyncio.run(loris(server, per_kind))
        status = server.settled_health()
    rows = []
    for kind, label in (("headers", "slow headers"), ("body", "slow chunked body")):
        got = closes[kind]
        still_open = sum(t is None for t in got)
        worst = max((t for t in got if t is not None), default=float("nan"))
        rows.append(check(name, f"{label}: closed by server (worst)", f"{len(got) - still_open}/{len(got)}, {worst:.1f} s",
                          f"all, <= {CLOSE_TARGET_S:.0f} s (+1 s slack)", still_open == 0 and worst <= CLOSE_TARGET_S + 1))
    bad = [p for p in probes if p != 200]
    rows += [check(name, "normal requests meanwhile not 200", f"{len(bad)} of {len(probes)}", "0", bool(probes) and not bad),
             check(name, "/health after", status, "200", status == 200)]
    return rows


# --------------------------------------------------------------------------------------------
# Disconnect storm


async def vanish_mid_upload(port: int, body: bytes) -> None:
    """Announces the whole body, sends half of it, and hangs up."""
    _, writer = await asyncio.open_connection(HOST, port)
    writer.write((f"POST /v1/embeddings HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[: len(body) // 2])
    await writer.drain()
    await asyncio.sleep(random.uniform(0.05, 0.5))
    writer.close()


async def vanish_waiting(client: httpx.AsyncClient, texts: list[str], after: float) -> None:
    """Sends the whole request and hangs up while the answer is being computed."""
    try:
        await asyncio.wait_for(client.post("/v1/embeddings", json={"model": MODEL, "input": texts}), after)
    except (asyncio.TimeoutError, httpx.HTTPError):
        pass


async def storm(server: Server, batches: list[list[str]], rng: random.Random) -> None:
    """Half the clients vanish mid-upload, half while waiting, all at about the same time."""
    async with server.async_client(len(batches) + 4) as client:
        jobs = []
        for i, texts in enumerate(batches):
            if i % 2:
                body = json.dumps({"model": MODEL, "input": texts}).encode()
                jobs.append(vanish_mid_upload(server.port, body))
            else:
                jobs.append(vanish_waiting(client, texts, rng.uniform(0.2, 1.5)))
        await asyncio.gather(*jobs)


def settle(server: Server, runner: int, limit: float) -> tuple[float | None, float]:
    """Seconds until queue depth is 0 and the runner has been idle for 2 s; and its last CPU share."""
    started = time.monotonic()
    share = float("nan")
    while time.monotonic() - started < limit:
        depth = metric_sum(server.metrics(), "embedding_queue_depth")
        cpu0 = cpu_seconds(runner) or 0.0
        time.sleep(2.0)
        share = ((cpu_seconds(runner) or 0.0) - cpu0) / 2.0
        if depth == 0 and share < 0.15:
            return time.monotonic() - started - 2.0, share
    return None, share


def run_disconnect_storm(ctx: Context) -> list[Row]:
    """Rounds of vanishing clients; after each, the server must settle and serve."""
    name = "disconnect_storm"
    corpus = Corpus(ctx.seed + 9)
    rounds, clients = ctx.pick(3, 1), ctx.pick(40, 24)
    rng = random.Random(ctx.seed)
    settle_times: list[float | None] = []
    after: list[int | str] = []
    with Server(ctx, "disconnect-storm", {"EMBEDDING_CACHE_SIZE": "0"}) as server:
        runner = server.runner_pid()
        calls_before = metric_sum(server.metrics(), "runner_calls_total")
        inputs = 0
        for r in range(rounds):
            batches = [[corpus.passage(f"storm{r}-{c}-{i}", 150, 220) for i in range(64)] for c in range(clients)]
            inputs += sum(map(len, batches[::2]))  # only the waiting half was ever complete
            ctx.say(f"{name}: round {r + 1}/{rounds}: {clients} clients x 64 passages vanish")
            asyncio.run(storm(server, batches, rng))
            took, share = settle(server, runner, 60)
            settle_times.append(took)
            ctx.say(f"{name}: settled in {'never' if took is None else f'{took:.1f} s'} (runner CPU {share:.0%})")
            with server.client(30) as c:
                for i in range(5):
                    try:
                        after.append(c.post("/v1/embeddings", json={"model": MODEL, "input": [f"after storm {r} {i}"]}).status_code)
                    except httpx.HTTPError as exc:
                        after.append(type(exc).__name__)
        calls = metric_sum(server.metrics(), "runner_calls_total") - calls_before
        status = server.settled_health()
        latencies = []
        with server.client(30) as c:
            for i in range(10):
                started = time.perf_counter()
                c.post("/v1/embeddings", json={"model": MODEL, "input": [f"final {i}"]})
                latencies.append(time.perf_counter() - started)
    done = [t for t in settle_times if t is not None]
    bad_after = [s for s in after if s != 200]
    return [
        check(name, "rounds where queue emptied and runner went idle", f"{len(done)}/{rounds}", f"{rounds}/{rounds}", len(done) == rounds),
        check(name, "time to settle after the storm (worst)", f"{max(done):.1f} s" if done else "never", "<= 20 s",
              len(done) == rounds and max(done) <= 20),
        info(name, "runner calls made vs needed had nobody left", f"{calls:.0f} vs {inputs / 32:.0f}"),
        check(name, "requests after a storm not 200", f"{len(bad_after)} of {len(after)}", "0", not bad_after),
        info(name, "one-text latency after the storms p50", ms(percentile(latencies, 50))),
        check(name, "/health after", status, "200", status == 200),
    ]
