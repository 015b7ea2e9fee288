"""Scenario 4, runner SIGKILL loop: the supervisor brings the runner back fast, every time.

The runner is SIGKILLed seven times, 15 s apart (about two minutes), while light traffic flows. The
restart backoff starts at 0.5 s and doubles, but resets once the restarted runner has served a
request, so with traffic between kills the recovery time (kill to /health 200 with a new
runner) must stay under 10 s and must not grow from the first kill to the last.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx

from .config import MODEL
from .processes import alive, signal_pid, wait_until
from .results import Context, Row, check, info
from .server import Server


class LightTraffic:
    """A background client sending 1–4 short texts every 200 ms; remembers every outcome."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.outcomes: list[tuple[float, int | str, float]] = []  # (when, status or error, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "LightTraffic":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        n = 0
        with httpx.Client(base_url=self.server.url, timeout=30, trust_env=False) as c:
            while not self._stop.is_set() and n < 100_000:
                n += 1
                texts = [f"light traffic {n} item {i} about rivers and engines" for i in range(1 + n % 4)]
                started = time.perf_counter()
                try:
                    status: int | str = c.post("/v1/embeddings", json={"model": MODEL, "input": texts}).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.outcomes.append((time.monotonic(), status, time.perf_counter() - started))
                self._stop.wait(0.2)

    def ok_since(self, t: float) -> bool:
        """True once a request sent after t has been answered 200."""
        return any(when > t and status == 200 for when, status, _ in self.outcomes)


def recover(server: Server, old_pid: int, timeout: float) -> float | None:
    """Seconds from now until a new runner is ready and /health says 200; None on timeout."""
    started = time.monotonic()

    def back() -> bool:
        pids = server.runner_pids()
        return bool(pids) and pids[-1] != old_pid and server.health()[0] == 200

    return time.monotonic() - started if wait_until(back, timeout, 0.05) else None


def runner_restarts(body: object) -> int | None:
    """The restart count /health gives for the model's first runner; None if the body has none."""
    try:
        return body["models"][MODEL]["runners"][0]["restarts"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None


def run(ctx: Context) -> list[Row]:
    """Kills at a fixed cadence; each recovery is timed from the SIGKILL."""
    name = "runner_kill"
    kills = ctx.pick(7, 3)
    cadence = ctx.pick(15.0, 10.0)
    recoveries: list[float | None] = []
    orphans = 0
    with Server(ctx, "runner-kill", {"EMBEDDING_CACHE_SIZE": "0"}) as server, LightTraffic(server) as traffic:
        time.sleep(2)
        for k in range(kills):
            round_start = time.monotonic()
            pid = server.runner_pid()
            signal_pid(pid, signal.SIGKILL)
            took = recover(server, pid, 60)
            recoveries.append(took)
            ctx.say(f"{name}: kill {k + 1}/{kills} of pid {pid}: "
                    f"{'not back within 60 s' if took is None else f'back in {took:.2f} s'}")
            if took is None:
                break
            orphans += int(alive(pid))
            # A served request resets the backoff; then wait out the rest of the cadence.
            wait_until(lambda: traffic.ok_since(round_start + took), 20, 0.1)
            time.sleep(max(0.0, cadence - (time.monotonic() - round_start)))
        health = server.health()
        restarts = runner_restarts(health[1])
    statuses = [s for _, s, _ in traffic.outcomes]
    unexpected = [s for s in statuses if s not in (200, 503)]
    slow_503 = [t for _, s, t in traffic.outcomes if s == 503 and t > 10]
    done = [r for r in recoveries if r is not None]
    first, last = (done[0], done[-1]) if done else (float("nan"), float("nan"))
    return [
        check(name, "kills recovered", f"{len(done)}/{kills}", f"{kills}/{kills}", len(done) == kills),
        check(name, "recovery times (s)", " ".join(f"{r:.1f}" for r in done) or "none", "each <= 10 s",
              len(done) == kills and max(done) <= 10),
        check(name, "last vs first recovery", f"{last:.1f} s vs {first:.1f} s", "last <= 1.5 x first + 2 s",
              len(done) == kills and last <= 1.5 * first + 2),
        check(name, "killed runners still alive", orphans, "0", orphans == 0),
        check(name, "restarts in /health", restarts, str(kills), restarts == kills),
        info(name, "light requests 200 / 503", f"{statuses.count(200)} / {statuses.count(503)}"),
        check(name, "light requests neither 200 nor 503", len(unexpected), "0", not unexpected),
        check(name, "503s slower than 10 s", len(slow_503), "0", not slow_503),
    ]
