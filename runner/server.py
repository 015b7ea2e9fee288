"""Builds the gRPC server around a loaded handler: warmup, health, serve, stop.

Only the gateway that started the runner may use it: the socket file is private to the user,
and every call must carry the secret the gateway passed at spawn.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import compute_threads, tracing
from .device_profile import DeviceProfile
from ._proto import runner_pb2_grpc
from .errors import Unauthenticated
from .handlers.base import EmbedOptions, Handler
from .logs import JsonLogger
from .service import RunnerService

_WARMUP_TEXT = "Warm-up sentence so that kernels and tokenizer copies exist before traffic."
_MAX_MESSAGE = 256 * 1024 * 1024
# Threads beyond the workers: one serves the gateway's Calls stream for as long as it is open,
# and two more answer health checks and Info even while every worker waits on a long forward
# pass; otherwise the gateway would take a busy runner for a hung one and restart it. The gateway
# bounds its calls to the workers, not the pool.
_SPARE_THREADS = 3
#: The exit status of a runner that stopped because its device broke (sysexits' EX_SOFTWARE).
EXIT_DEVICE_BROKEN = 70


@dataclass(frozen=True)
class ServeOptions:
    """How the runner serves; each field comes from a command-line flag the gateway sets."""

    socket: str
    workers: int
    warmup: bool
    warmup_batch_size: int
    warmup_steps: int


def warm_up(handler: Handler, pool: ThreadPoolExecutor, opts: ServeOptions, logger: JsonLogger,
            passes_here: bool) -> None:
    """Runs the warmup batch on every thread of a make_pool pool, so each has its tokenizer and
    kernels; with passes_here, the forward passes too run on each (they will, on whichever thread
    serves the Calls stream in turn), one thread at a time, as calls will (a backend may allow
    only one pass at a time).

    A barrier makes each task wait until all are running, which forces the pool to hand one
    task to each of its threads instead of letting one thread take them all.
    """
    threads = opts.workers + _SPARE_THREADS  # every thread make_pool made, spares included
    barrier = threading.Barrier(threads)
    turn = threading.Lock() if passes_here else contextlib.nullcontext()
    batch = [_WARMUP_TEXT] * opts.warmup_batch_size

    def step() -> None:
        if "text-embedding" in handler.capabilities:
            handler.embed(batch, EmbedOptions())
        if "sparse-embedding" in handler.capabilities:
            handler.sparse(batch, EmbedOptions())
        if "multi-vector" in handler.capabilities:
            handler.multi_vector(batch, EmbedOptions())
        if "rerank" in handler.capabilities:
            handler.score(_WARMUP_TEXT, batch, truncate=True, raw=False)
        if "classify" in handler.capabilities:
            handler.classify(batch, truncate=True, raw=False)

    def task() -> None:
        barrier.wait(timeout=60)
        with compute_threads.on_this_thread() if passes_here else contextlib.nullcontext():
            for _ in range(opts.warmup_steps):
                with turn:
                    step()
        # Only the thread that will serve the Calls stream keeps CPU threads for passes, and it
        # starts them on its first call.
        compute_threads.release_team()

    started = time.perf_counter()
    for future in [pool.submit(task) for _ in range(threads)]:
        future.result()
    logger.info("warmup_ok", workers=threads, steps=opts.warmup_steps,
                batch_size=opts.warmup_batch_size,
                seconds=round(time.perf_counter() - started, 3))


class BearerAuth(grpc.ServerInterceptor):
    """Refuses every call, health checks included, without `authorization: Bearer <secret>`.

    The socket's file mode already keeps other users out; the secret also keeps out the same
    user's other processes, so that nothing but the gateway that started the runner can use it.
    """

    def __init__(self, secret: str) -> None:
        self._expected = f"Bearer {secret}".encode()

    def intercept_service(self, continuation, handler_call_details):
        """The method's own handler for a call with the secret, a refusal of the same shape for
        any other."""
        given = dict(handler_call_details.invocation_metadata).get("authorization", "")
        if hmac.compare_digest(given.encode(), self._expected):  # constant time: leaks no prefix
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is not None and handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(_refuse)
        return grpc.unary_unary_rpc_method_handler(_refuse)


def _refuse(request, context) -> None:
    context.abort(Unauthenticated.code, "this runner serves only the gateway that started it")


def socket_path(address: str) -> Path | None:
    """The file behind a unix:///abs/path or unix:relative/path address; None for other kinds."""
    for scheme in ("unix://", "unix:"):
        if address.startswith(scheme):
            return Path(address[len(scheme):])
    return None


def remove_socket(address: str) -> None:
    """Deletes the socket file, so that no stale file outlives the runner; gone already is fine."""
    path = socket_path(address)
    if path is not None:
        path.unlink(missing_ok=True)


def _bind_private(server: grpc.Server, address: str) -> None:
    """Binds address with a socket file only this user can open (mode 0600).

    The umask makes the file private from the moment it exists; the chmod states the mode
    outright rather than trusting every platform's bind to honour the umask.
    """
    previous = os.umask(0o077)
    try:
        server.add_insecure_port(address)
    finally:
        os.umask(previous)
    path = socket_path(address)
    if path is not None:
        path.chmod(0o600)


def build_server(name: str, device: str, handler: Handler, pool: ThreadPoolExecutor, socket: str,
                 secret: str, logger: JsonLogger, profile: DeviceProfile,
                 on_device_broken: Callable[[], None] = lambda: None) -> tuple[grpc.Server, health.HealthServicer]:
    """The gRPC server with the runner and health services, bound to socket, not yet started."""
    server = grpc.server(pool, interceptors=[BearerAuth(secret)], options=[
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
    ])
    runner_pb2_grpc.add_RunnerServicer_to_server(
        RunnerService(name, device, handler, logger, profile, pool, on_device_broken), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _bind_private(server, socket)
    return server, health_servicer


def make_pool(workers: int) -> ThreadPoolExecutor:
    """The server's threads: the workers plus spares for health checks."""
    return ThreadPoolExecutor(max_workers=workers + _SPARE_THREADS, thread_name_prefix="worker")


def serve(name: str, device: str, handler: Handler, opts: ServeOptions, secret: str, logger: JsonLogger,
          profile: DeviceProfile) -> int:
    """Serves until SIGTERM/SIGINT, then lets in-flight calls finish for a few seconds; returns
    the exit status: 0, or EXIT_DEVICE_BROKEN when a call broke the device, so that the gateway
    starts a fresh runner.

    The socket file is removed however serving ends, a failure after binding included.
    """
    # The same threads run warmup and then the calls, so warmup really reaches every thread.
    pool = make_pool(opts.workers)
    if opts.warmup:
        warm_up(handler, pool, opts, logger, passes_here=profile.host_compute)
    if profile.host_compute:
        # gRPC's threads run every later pass (call_stream.py); the compute thread has run its last.
        handler.release_compute_team()
    # After warmup, whose calls are no one's requests.
    tracing.start(name, device, logger)
    # Caught from before binding on, so that a stop request always goes through the cleanup.
    stop = threading.Event()
    broken = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def on_device_broken() -> None:
        broken.set()
        stop.set()

    try:
        server, health_servicer = build_server(name, device, handler, pool, opts.socket, secret, logger, profile,
                                               on_device_broken)
        server.start()
        # Only now, after warmup, do health checks say SERVING; the gateway waits for this.
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        logger.info("serving", socket=opts.socket, device=device, dimensions=handler.dimensions,
                    max_tokens=handler.max_tokens)
        stop.wait()
        logger.info("stopping", device_broken=broken.is_set())
        health_servicer.enter_graceful_shutdown()
        # In-flight calls on a broken device only fail too; they need no time to finish.
        server.stop(grace=1 if broken.is_set() else 5).wait()
    finally:
        remove_socket(opts.socket)
        tracing.stop()
    return EXIT_DEVICE_BROKEN if broken.is_set() else 0
