"""The gRPC servicer: translates protobuf messages to handler calls and back, nothing more."""

from __future__ import annotations

import time

import grpc

from ._proto import runner_pb2, runner_pb2_grpc
from .errors import RunnerError
from .handlers.base import Handler
from .logs import JsonLogger


class RunnerService(runner_pb2_grpc.RunnerServicer):
    """Each call runs on one of the server's worker threads, never on gRPC's polling thread.

    A synchronous server rather than grpc.aio: the forward pass then runs on the thread that
    received the call, which saves a thread hand-off (about a millisecond) on every request.
    """

    def __init__(self, name: str, device: str, handler: Handler, logger: JsonLogger) -> None:
        self._name = name
        self._device = device
        self._handler = handler
        self._logger = logger

    def Embed(self, request, context):
        # A batch may hold several requests; the gateway sends their ids comma-separated.
        request_id = dict(context.invocation_metadata()).get("x-request-id", "")
        texts = list(request.texts)
        started = time.perf_counter()
        try:
            result = self._handler.embed(texts)
        except RunnerError as exc:
            context.abort(exc.code, str(exc))
        except Exception:
            self._logger.error("embed_failed", exc_info=True, request_id=request_id)
            context.abort(grpc.StatusCode.INTERNAL, "the model failed on this batch")
        elapsed = time.perf_counter() - started
        self._logger.info("batch_done", request_id=request_id, inputs=len(texts),
                          tokens=sum(result.token_counts), compute_ms=round(elapsed * 1000, 3))
        return runner_pb2.EmbedResponse(
            vectors=result.vectors.astype("<f4", copy=False).tobytes(),
            dimensions=self._handler.dimensions,
            token_counts=result.token_counts,
            compute_seconds=elapsed,
        )

    def Info(self, request, context):
        return runner_pb2.InfoResponse(
            id=self._name,
            dimensions=self._handler.dimensions,
            max_tokens=self._handler.max_tokens,
            capabilities=list(self._handler.capabilities),
            device=self._device,
            dtype=str(self._handler.dtype).removeprefix("torch."),
        )
