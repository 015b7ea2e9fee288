"""Builds the gRPC server around a loaded handler: warmup, health, serve, stop."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ._proto import runner_pb2_grpc
from .handlers.base import Handler
from .logs import JsonLogger
from .service import RunnerService

_WARMUP_TEXT = "Warm-up sentence so that kernels and tokenizer copies exist before traffic."


@dataclass(frozen=True)
class ServeOptions:
    """How the runner serves; each field comes from a command-line flag the gateway sets."""

    socket: str
    workers: int
    warmup: bool
    warmup_batch_size: int
    warmup_steps: int


def warm_up(handler: Handler, pool: ThreadPoolExecutor, opts: ServeOptions, logger: JsonLogger) -> None:
    """Runs the warmup batch on every worker thread, so each has its tokenizer and kernels.

    A barrier makes each task wait until all are running, which forces the pool to hand one
    task to each of its threads instead of letting one thread take them all.
    """
    barrier = threading.Barrier(opts.workers)
    batch = [_WARMUP_TEXT] * opts.warmup_batch_size

    def task() -> None:
        barrier.wait(timeout=60)
        for _ in range(opts.warmup_steps):
            handler.embed(batch)

    started = time.perf_counter()
    for future in [pool.submit(task) for _ in range(opts.workers)]:
        future.result()
    logger.info("warmup_ok", workers=opts.workers, steps=opts.warmup_steps,
                batch_size=opts.warmup_batch_size,
                seconds=round(time.perf_counter() - started, 3))


async def serve(name: str, device: str, handler: Handler, opts: ServeOptions, logger: JsonLogger) -> None:
    """Serves until SIGTERM/SIGINT, then lets in-flight calls finish for a few seconds."""
    pool = ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="forward")
    if opts.warmup:
        await asyncio.get_running_loop().run_in_executor(None, warm_up, handler, pool, opts, logger)

    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", 256 * 1024 * 1024),
        ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ])
    runner_pb2_grpc.add_RunnerServicer_to_server(RunnerService(name, device, handler, pool, logger), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(opts.socket)
    await server.start()
    # Only now, after warmup, do health checks say SERVING; the gateway waits for this.
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    logger.info("serving", socket=opts.socket, device=device, dimensions=handler.dimensions,
                max_tokens=handler.max_tokens)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("stopping")
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    pool.shutdown(wait=False, cancel_futures=True)
