"""Scenario 5, process lifecycle: a hung runner, a gateway killed outright, and a graceful drain.

- sigstop: a SIGSTOPped runner answers nothing. In-flight requests must get 503 within
  RUNNER_CALL_TIMEOUT_S (10 s here) rather than hang; requests sent meanwhile must not be given to
  the stopped runner, so they fail with the probe that follows the first timeout; and the health
  probe (3 misses) must kill and replace the runner.
- gateway_kill: runner sockets live in a private 0700 directory edge-embed-<gatewaypid>-<random>
  inside SOCKET_DIR, as 0600 files, and refuse gRPC calls without the runner's secret. After a
  gateway SIGKILL its runners exit by themselves and remove their sockets; the next gateway
  started on the same SOCKET_DIR removes the dead gateway's directory (and no live one's).
- drain: SIGTERM lets in-flight requests finish with 200, then the gateway exits 0 and its
  runners are gone.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import httpx

from .config import MODEL
from .processes import alive, is_runner, runner_processes_using, signal_pid, wait_until
from .results import Context, Row, check, info
from .server import Server
from .texts import Corpus, check_embeddings
from .restarts import recover

CALL_TIMEOUT_S = 10


# --------------------------------------------------------------------------------------------
# SIGSTOP


async def hang_requests(server: Server, runner_pid: int, early: list[list[str]], late: list[list[str]]) -> tuple[float, list, list]:
    """Sends `early`, SIGSTOPs the runner while they run, then sends `late`; returns outcomes."""
    async with server.async_client(16, timeout=120) as client:
        async def one(texts: list[str]) -> tuple[int | str, float]:
            started = time.monotonic()
            try:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": texts})
                return res.status_code, time.monotonic() - started
            except httpx.HTTPError as exc:
                return type(exc).__name__, time.monotonic() - started

        first = [asyncio.create_task(one(t)) for t in early]
        await asyncio.sleep(0.5)
        signal_pid(runner_pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        await asyncio.sleep(1.0)
        second = [asyncio.create_task(one(t)) for t in late]
        return stopped_at, list(await asyncio.gather(*first)), list(await asyncio.gather(*second))


def run_sigstop(ctx: Context) -> list[Row]:
    """SIGSTOP the runner under load; time the 503s and the replacement."""
    name = "sigstop"
    corpus = Corpus(ctx.seed + 5)
    # Two requests of one runner call each (32 inputs = BATCH_WINDOW_MAX_SIZE), as many as the
    # MAX_CONCURRENT=2 slots: both are at the runner when it stops, none is half-dispatched.
    early = [[corpus.full(f"stop{r}-{i}") for i in range(32)] for r in range(2)]
    late = [[corpus.query(f"late{r}")] for r in range(3)]
    env = {"EMBEDDING_CACHE_SIZE": "0", "RUNNER_CALL_TIMEOUT_S": str(CALL_TIMEOUT_S), "MAX_CONCURRENT": "2"}
    pid = None
    try:
        with Server(ctx, "sigstop", env) as server:
            pid = server.runner_pid()
            ctx.say(f"{name}: SIGSTOP runner {pid} under {len(early)} in-flight requests")
            stopped_at, first, second = asyncio.run(hang_requests(server, pid, early, late))
            took = recover(server, pid, 90)
            replaced = time.monotonic() - stopped_at if took is not None else None
            after = server.embed(["after the hang"], timeout=30).status_code if took is not None else None
            killed_line = bool(server.lines("runner_unresponsive_killing"))
            old_alive = alive(pid)
    finally:
        if pid is not None and alive(pid):  # never leave a stopped process behind
            signal_pid(pid, signal.SIGCONT)
            if is_runner(pid):
                signal_pid(pid, signal.SIGKILL)
    statuses = [s for s, _ in first + second]
    bad = [s for s in statuses if s not in (200, 503)]
    slow_first = max((t for _, t in first), default=0.0)
    slow_second = max((t for _, t in second), default=0.0)
    return [
        info(name, "in-flight answers", " ".join(f"{s}/{t:.1f}s" for s, t in first)),
        check(name, "in-flight requests answered", f"{len(first)} of {len(early)}, slowest {slow_first:.1f} s",
              f"all, each <= {CALL_TIMEOUT_S} s + 2", slow_first <= CALL_TIMEOUT_S + 2),
        # They are never sent to the stopped runner: they fail when its timed-out call's probe does.
        check(name, "requests sent during the hang: slowest", f"{slow_second:.1f} s", f"<= {CALL_TIMEOUT_S} s + 2",
              slow_second <= CALL_TIMEOUT_S + 2),
        check(name, "answers other than 200/503", len(bad), "0", not bad),
        check(name, "at least one 503 (the hang was seen)", statuses.count(503), ">= 1", statuses.count(503) >= 1),
        check(name, "SIGSTOP to a new ready runner", "not replaced in 90 s" if replaced is None else f"{replaced:.1f} s",
              "<= 40 s (probe 3 x 5 s + restart)", replaced is not None and replaced <= 40),
        info(name, "runner_unresponsive_killing logged", killed_line),
        check(name, "stopped runner gone", "alive" if old_alive else "gone", "gone", not old_alive),
        check(name, "request after recovery", after, "200", after == 200),
    ]


# --------------------------------------------------------------------------------------------
# Gateway SIGKILL, socket directory and runner auth


def grpc_health(sock: str, metadata: list[tuple[str, str]] | None) -> str:
    """The gRPC status name of a health Check on the runner socket (OK:SERVING when it answers)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"unix:{sock}") as channel:
        try:
            res = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5, metadata=metadata)
            return f"OK:{health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)}"
        except grpc.RpcError as exc:
            return exc.code().name


def socket_rows(name: str, server: Server, sock_dir: Path) -> tuple[list[Row], Path | None]:
    """Checks the private socket directory, file modes and runner auth; returns rows and the dir."""
    sock = server.runner_socket()
    if sock is None:
        return [check(name, "runner socket path in runner_ready", "missing", "present", False)], None
    path = Path(sock)
    private = path.parent
    pattern = rf"edge-embed-{server.pid}-[A-Za-z0-9_.-]+"
    rows = [check(name, "socket dir is SOCKET_DIR/edge-embed-<gatewaypid>-<random>",
                  str(private.relative_to(sock_dir.parent)) if private.is_relative_to(sock_dir.parent) else str(private),
                  f"{sock_dir.name}/edge-embed-{server.pid}-*",
                  private.parent == sock_dir and re.fullmatch(pattern, private.name) is not None)]
    try:
        dmode, smode = stat.S_IMODE(private.stat().st_mode), path.stat().st_mode
        rows += [check(name, "socket dir mode", oct(dmode), "0o700", dmode == 0o700),
                 check(name, "socket file mode", oct(stat.S_IMODE(smode)), "0o600",
                       stat.S_ISSOCK(smode) and stat.S_IMODE(smode) == 0o600)]
    except FileNotFoundError:
        rows.append(check(name, "socket file exists", "missing", "present", False))
    try:
        bare = grpc_health(sock, None)
        wrong = grpc_health(sock, [("authorization", "Bearer not-the-secret")])
        rows += [check(name, "runner health call without a secret", bare, "UNAUTHENTICATED", bare == "UNAUTHENTICATED"),
                 check(name, "runner health call with a wrong secret", wrong, "UNAUTHENTICATED", wrong == "UNAUTHENTICATED")]
    except ImportError as exc:
        rows.append(check(name, "gRPC client for the auth check", f"missing: {exc}", "importable", False))
    return rows, private


def run_gateway_kill(ctx: Context) -> list[Row]:
    """SIGKILL the gateway; runners and sockets must go; a fresh start cleans the stale dir."""
    name = "gateway_kill"
    sock_dir = Path(tempfile.mkdtemp(prefix="chaos-sock-", dir="/tmp"))
    live_dir = sock_dir / f"edge-embed-{os.getpid()}-chaoslive"  # a live process's: must be kept
    rows: list[Row] = []
    try:
        server = Server(ctx, "gateway-kill", {"SOCKET_DIR": str(sock_dir)}).start()
        try:
            more, private = socket_rows(name, server, sock_dir)
            rows += more
            runners = [p for p in server.runner_pids() if is_runner(p)]
            sock = server.runner_socket()
            ctx.say(f"{name}: SIGKILL gateway {server.pid} (runners {runners})")
            killed_at = time.monotonic()
            server.kill()
            gone = wait_until(lambda: not any(is_runner(p) for p in runners), 15, 0.05)
            runner_exit = time.monotonic() - killed_at
            sock_gone = wait_until(lambda: sock is None or not Path(sock).exists(), 5, 0.05)
        finally:
            server.stop()
        orphans = runner_processes_using(str(sock_dir))
        rows += [
            check(name, "runners exited after gateway SIGKILL", f"{len(runners)} of {len(runners)} in {runner_exit:.2f} s"
                  if gone else f"NO, {sum(map(is_runner, runners))} left", ">= 1 runner, all, <= 10 s",
                  bool(runners) and bool(gone) and runner_exit <= 10),
            check(name, "orphan runner processes", len(orphans), "0", not orphans),
            check(name, "runner socket files left", 0 if sock_gone else 1, "0", bool(sock_gone)),
            info(name, "dead gateway's private dir still there before restart", bool(private and private.exists())),
        ]
        stale = sock_dir / f"edge-embed-{server.pid}-chaosplanted"  # the dead gateway's pid
        stale.mkdir(mode=0o700)
        (stale / "left.sock").write_text("")
        live_dir.mkdir(mode=0o700)
        with Server(ctx, "gateway-kill-fresh", {"SOCKET_DIR": str(sock_dir)}) as fresh:
            old_gone = not (private and private.exists()) and not stale.exists()
            live_kept = live_dir.exists()
            fresh_private = Path(fresh.runner_socket() or "/nonexistent").parent
        fresh_cleaned = not fresh_private.exists()
        rows += [
            check(name, "fresh start removed the dead gateway's dirs", "yes" if old_gone else "no", "yes", old_gone),
            check(name, "fresh start kept a live process's dir", "yes" if live_kept else "no", "yes", live_kept),
            info(name, "own private dir removed after SIGTERM", fresh_cleaned),
        ]
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------------------------
# SIGTERM drain


async def drain_requests(server: Server, batches: list[list[str]]) -> tuple[list, int | str, float | None]:
    """Starts the batches, SIGTERMs the gateway mid-way; returns answers, a late probe, exit time."""
    async with server.async_client(16, timeout=120) as client:
        async def one(texts: list[str]):
            try:
                res = await client.post("/v1/embeddings", json={"model": MODEL, "input": texts})
                return res.status_code, (res.json() if res.status_code == 200 else res.text[:200])
            except httpx.HTTPError as exc:
                return type(exc).__name__, None

        tasks = [asyncio.create_task(one(b)) for b in batches]
        await asyncio.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        await asyncio.sleep(0.2)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10, trust_env=False) as fresh:
                late: int | str = (await fresh.post("/v1/embeddings", json={"model": MODEL, "input": "late"})).status_code
        except httpx.HTTPError as exc:
            late = type(exc).__name__
        answers = await asyncio.gather(*tasks)
        try:
            await asyncio.to_thread(server.proc.wait, 60)
            exit_s = time.monotonic() - sent
        except Exception:  # noqa: BLE001 - a gateway that does not exit is the finding
            exit_s = None
    return list(answers), late, exit_s


def run_drain(ctx: Context) -> list[Row]:
    """SIGTERM under in-flight work; every in-flight answer must be a correct 200."""
    name = "drain"
    corpus = Corpus(ctx.seed + 6)
    per = ctx.pick(48, 24)
    batches = [[corpus.passage(f"drain{r}-{i}") for i in range(per)] for r in range(4)]
    ctx.reference.prepare(t for b in batches for t in b)
    with Server(ctx, "drain", {"EMBEDDING_CACHE_SIZE": "0"}) as server:
        runners = server.runner_pids()
        ctx.say(f"{name}: SIGTERM with {len(batches)} requests of {per} passages in flight")
        answers, late, exit_s = asyncio.run(drain_requests(server, batches))
        code = server.proc.returncode
        runners_left = [p for p in runners if is_runner(p)]
        complete = bool(server.lines("shutdown_complete"))
    problems = []
    for (status, body), texts in zip(answers, batches):
        problems += [f"status {status}: {body}"] if status != 200 else check_embeddings(ctx.reference, texts, body)
    for p in problems[:5]:
        ctx.say(f"{name}: {p}")
    return [
        check(name, "in-flight requests answered 200 with correct vectors", f"{sum(s == 200 for s, _ in answers)}/{len(batches)}",
              f"{len(batches)}/{len(batches)}", not problems),
        info(name, "request sent after SIGTERM", late),
        check(name, "gateway exit code", code, "0", code == 0),
        check(name, "SIGTERM to exit", "did not exit in 60 s" if exit_s is None else f"{exit_s:.1f} s", "<= 30 s (SHUTDOWN_TIMEOUT_S)",
              exit_s is not None and exit_s <= 30),
        check(name, "runners left after exit", len(runners_left), "0", not runners_left),
        info(name, "shutdown_complete logged", complete),
    ]
