"""Serves the gateway's Calls stream: which thread answers each call, and when results go back.

The gateway keeps one bidirectional stream open per runner and sends every computing call on it
(proto/runner.proto). A stream message costs a fraction of a unary call: no new HTTP/2 stream
or headers, and in the synchronous server no hand-off from gRPC's polling thread to a pool
thread per call (the performance docs have the measurement).

Two ways to serve it, as the device profile says:

- In turn, on the stream's own thread, where forward passes run on the host's cores. Calls there
  take turns anyway (a second call tokenising during a pass takes a core from the pass's thread
  team), so the thread that reads a call computes it, forward passes included, and writes its
  result before reading the next. Nothing is handed between threads.
- Overlapping, on an accelerator: a reader thread hands each call to a pool thread, which
  tokenises it while the device computes the previous one; results go back as they finish.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Executor, Future
from typing import Callable, Iterator

import grpc

from . import call_deadline, compute_threads, logs
from ._proto import runner_pb2

#: Answers one call; never raises (a failure is a CallResult with an error).
Answer = Callable[[runner_pb2.Call], runner_pb2.CallResult]


class CallStream:
    """Serves Calls streams with answer; pool None serves each stream's calls in turn on its
    own thread, a pool overlaps them on its threads."""

    def __init__(self, answer: Answer, pool: Executor | None) -> None:
        self._answer = answer
        self._pool = pool

    def serve(self, calls: Iterator[runner_pb2.Call]) -> Iterator[runner_pb2.CallResult]:
        """The results of calls, one per call, until the gateway closes the stream."""
        return self._in_turn(calls) if self._pool is None else self._overlapping(calls, self._pool)

    def _in_turn(self, calls: Iterator[runner_pb2.Call]) -> Iterator[runner_pb2.CallResult]:
        try:
            for call in calls:
                # The call's routine log lines go out once its result has been sent.
                with logs.held():
                    with compute_threads.on_this_thread():
                        result = self._in_time(call)
                    yield result
        finally:
            # The next stream (a gateway reconnecting) may be served by another of gRPC's threads.
            compute_threads.release_team()

    def _overlapping(self, calls: Iterator[runner_pb2.Call], pool: Executor) -> Iterator[runner_pb2.CallResult]:
        results: queue.SimpleQueue[runner_pb2.CallResult | None] = queue.SimpleQueue()
        running: set[Future] = set()

        def read() -> None:
            try:
                for call in calls:
                    future = pool.submit(self._into, call, results)
                    running.add(future)
                    future.add_done_callback(running.discard)
            except grpc.RpcError:
                pass  # the gateway went away; the calls already read still finish
            finally:
                for future in list(running):
                    future.result()
                results.put(None)

        threading.Thread(target=read, name="calls-reader", daemon=True).start()
        while (result := results.get()) is not None:
            yield result

    def _into(self, call: runner_pb2.Call, results: queue.SimpleQueue) -> None:
        """Puts the call's result in results, then writes its routine log lines."""
        with logs.held():
            results.put(self._in_time(call))

    def _in_time(self, call: runner_pb2.Call) -> runner_pb2.CallResult:
        """The call's result, unless the gateway stopped waiting for it before it started."""
        if call.deadline_ms and time.time() * 1000 > call.deadline_ms:
            return runner_pb2.CallResult(id=call.id, error=runner_pb2.CallError(
                code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0], message="the call's deadline passed before it started"))
        with call_deadline.until(call.deadline_ms):
            return self._answer(call)
