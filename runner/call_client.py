"""A Python client of a runner's Calls stream, for the tests and bench scripts that talk to a
runner without the gateway (the gateway's own is gateway/src/runners/call-stream.ts).

One stream per client, as the gateway keeps; calls from several threads share it.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

import grpc

from ._proto import runner_pb2, runner_pb2_grpc


class CallFailed(Exception):
    """A call that failed as a whole: the CallError's status and message, and for an option the
    model does not offer, its field and error code."""

    def __init__(self, code: grpc.StatusCode, message: str, param: str = "", error_code: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.param = param
        self.error_code = error_code


_CODES = {code.value[0]: code for code in grpc.StatusCode}


class CallsClient:
    """Sends calls on one Calls stream of channel, with metadata (the secret) on the stream."""

    def __init__(self, channel: grpc.Channel, metadata: tuple = ()) -> None:
        self._outgoing: queue.SimpleQueue[runner_pb2.Call | None] = queue.SimpleQueue()
        self._waiting: dict[int, Future] = {}
        self._ended: CallFailed | None = None  # why the stream ended, once it has
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._results = runner_pb2_grpc.RunnerStub(channel).Calls(iter(self._outgoing.get, None), metadata=metadata)
        threading.Thread(target=self._read, name="calls-client", daemon=True).start()

    def call(self, kind: str, request: Any, timeout: float = 60, **fields) -> Any:
        """The response to request, sent as the Call body kind ("embed", "rerank", ...) with the
        Call's other fields (request_ids, compute_threads, ...); CallFailed if the call failed."""
        return self.send(kind, request, timeout, **fields).result(timeout)

    def send(self, kind: str, request: Any, timeout: float = 60, **fields) -> Future:
        """Sends a call without waiting; the future holds what call would return."""
        call_id = next(self._ids)
        future: Future = Future()
        with self._lock:
            if self._ended is not None:
                future.set_exception(self._ended)
                return future
            self._waiting[call_id] = future
        self._outgoing.put(runner_pb2.Call(id=call_id, deadline_ms=int((time.time() + timeout) * 1000),
                                           **{kind: request}, **fields))
        return future

    def close(self) -> None:
        """Ends the stream once the calls sent are answered."""
        self._outgoing.put(None)

    def _read(self) -> None:
        try:
            for result in self._results:
                with self._lock:
                    future = self._waiting.pop(result.id)
                kind = result.WhichOneof("body")
                if kind == "error":
                    future.set_exception(CallFailed(_CODES[result.error.code], result.error.message,
                                                    result.error.param, result.error.error_code))
                else:
                    future.set_result(getattr(result, kind))
            ended = CallFailed(grpc.StatusCode.CANCELLED, "the stream ended")
        except grpc.RpcError as exc:
            ended = CallFailed(exc.code(), exc.details() or "")
        with self._lock:
            self._ended = ended
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(ended)
