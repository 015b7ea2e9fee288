"""The gRPC servicer: translates protobuf messages to handler calls and back, nothing more."""

from __future__ import annotations

import time
from typing import Callable

import grpc
import numpy as np

from ._proto import runner_pb2, runner_pb2_grpc
from .errors import RunnerError
from .handlers.base import EmbedOptions, Handler
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
        opts = EmbedOptions(prompt_name=request.prompt_name or None, dimensions=request.dimensions or None,
                            truncate=not request.refuse_long)
        texts = list(request.texts)
        kind = request.kind
        if kind == runner_pb2.SPARSE:
            out, elapsed = self._call(context, len(texts), lambda: self._handler.sparse(texts, opts))
            return runner_pb2.EmbedResponse(
                sparse=[runner_pb2.SparseVector(indices=i.tolist(), values=v.tolist())
                        for i, v in zip(out.indices, out.values)],
                token_counts=out.token_counts, compute_seconds=elapsed)
        if kind == runner_pb2.MULTI_VECTOR:
            out, elapsed = self._call(context, len(texts), lambda: self._handler.multi_vector(texts, opts))
            packed = np.concatenate(out.vectors) if out.vectors else np.empty((0, 0), np.float32)
            return runner_pb2.EmbedResponse(
                vectors=packed.astype("<f4", copy=False).tobytes(), dimensions=packed.shape[1],
                vector_counts=[v.shape[0] for v in out.vectors], token_counts=out.token_counts,
                compute_seconds=elapsed)
        out, elapsed = self._call(context, len(texts), lambda: self._handler.embed(texts, opts))
        return runner_pb2.EmbedResponse(
            vectors=out.vectors.astype("<f4", copy=False).tobytes(), dimensions=out.vectors.shape[1],
            token_counts=out.token_counts, compute_seconds=elapsed)

    def Rerank(self, request, context):
        docs = list(request.documents)
        out, elapsed = self._call(context, len(docs), lambda: self._handler.score(
            request.query, docs, truncate=not request.refuse_long, raw=request.raw_scores))
        return runner_pb2.RerankResponse(scores=out.scores.tolist(), token_counts=out.token_counts,
                                         compute_seconds=elapsed)

    def _call(self, context, inputs: int, work: Callable):
        """Runs work, logs the batch, and turns errors into gRPC statuses (without internals)."""
        # A batch may hold several requests; the gateway sends their ids comma-separated.
        request_id = dict(context.invocation_metadata()).get("x-request-id", "")
        started = time.perf_counter()
        try:
            out = work()
        except RunnerError as exc:
            context.abort(exc.code, str(exc))
        except Exception:
            self._logger.error("batch_failed", exc_info=True, request_id=request_id)
            context.abort(grpc.StatusCode.INTERNAL, "the model failed on this batch")
        elapsed = time.perf_counter() - started
        self._logger.info("batch_done", request_id=request_id, inputs=inputs, tokens=sum(out.token_counts),
                          compute_ms=round(elapsed * 1000, 3))
        return out, elapsed

    def Info(self, request, context):
        h = self._handler
        return runner_pb2.InfoResponse(
            id=self._name,
            dimensions=h.dimensions,
            max_tokens=h.max_tokens,
            capabilities=list(h.capabilities),
            device=self._device,
            dtype=str(h.dtype).removeprefix("torch."),
            prompt_names=list(h.prompt_names),
            matryoshka_dims=list(h.matryoshka_dims),
            score_activation=h.score_activation if "rerank" in h.capabilities else "",
        )
