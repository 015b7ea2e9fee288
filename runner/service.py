"""The gRPC servicer: translates protobuf messages to handler calls and back, nothing more."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

import grpc
import numpy as np

from . import compute_threads, tracing
from .device import device_broken, out_of_memory
from .device_profile import DeviceProfile
from ._proto import runner_pb2, runner_pb2_grpc
from .errors import InputFailure, RunnerError
from .handlers.base import EmbedOptions, Handler
from .logs import JsonLogger


class RunnerService(runner_pb2_grpc.RunnerServicer):
    """Each call runs on one of the server's worker threads, never on gRPC's polling thread.

    Handlers decide which inputs fail; their failures are copied into each reply's `errors` as
    they are, next to the rows of the inputs that did not fail.

    A synchronous server rather than grpc.aio: the forward pass then runs on the thread that
    received the call, which saves a thread hand-off (about a millisecond) on every request.

    Where forward passes run on the host's cores (the device profile says so), calls take turns
    from tokenising to reply. Tokenising the next call while a forward pass runs takes a core from
    the pass's thread team, which then waits at every barrier (the performance docs have the
    measurement). The next call waits here rather than in the gateway, so no round trip separates
    two calls. On an accelerator, tokenising alongside the device's work costs it nothing, so
    calls overlap there.

    An error that leaves the device unusable (a sticky CUDA error) fails the call as UNAVAILABLE
    and calls on_device_broken, which stops the runner so that the gateway starts a fresh one:
    every later call on the same context would fail the same way.
    """

    def __init__(self, name: str, device: str, handler: Handler, logger: JsonLogger, profile: DeviceProfile,
                 on_device_broken: Callable[[], None] = lambda: None) -> None:
        self._name = name
        self._device = device
        self._handler = handler
        self._logger = logger
        self._profile = profile
        self._on_device_broken = on_device_broken
        self._threads = compute_threads.alone()
        self._turn = threading.Lock() if profile.host_compute else contextlib.nullcontext()

    def Embed(self, request, context):
        opts = EmbedOptions(prompt_name=request.prompt_name or None, dimensions=request.dimensions or None,
                            truncate=not request.refuse_long,
                            truncate_side="left" if request.truncate_left else "right",
                            normalize=not request.no_normalize)
        texts = [list(t.ids) for t in request.token_ids] if request.token_ids else list(request.texts)
        kind = request.kind
        if kind == runner_pb2.SPARSE:
            out, elapsed = self._call(context, "Embed", len(texts), lambda: self._handler.sparse(texts, opts))
            return runner_pb2.EmbedResponse(
                sparse=[runner_pb2.SparseVector(indices=i.tolist(), values=v.tolist())
                        for i, v in zip(out.indices, out.values)],
                token_counts=out.token_counts, compute_seconds=elapsed, errors=_errors(out.errors))
        if kind in (runner_pb2.MULTI_VECTOR, runner_pb2.TOKEN_EMBEDDINGS):
            compute = self._handler.multi_vector if kind == runner_pb2.MULTI_VECTOR else self._handler.token_embeddings
            out, elapsed = self._call(context, "Embed", len(texts), lambda: compute(texts, opts))
            packed = np.concatenate(out.vectors) if out.vectors else np.empty((0, 0), np.float32)
            return runner_pb2.EmbedResponse(
                vectors=packed.astype("<f4", copy=False).tobytes(), dimensions=packed.shape[1],
                vector_counts=[v.shape[0] for v in out.vectors], token_counts=out.token_counts,
                compute_seconds=elapsed, errors=_errors(out.errors))
        out, elapsed = self._call(context, "Embed", len(texts), lambda: self._handler.embed(texts, opts))
        return runner_pb2.EmbedResponse(
            vectors=out.vectors.astype("<f4", copy=False).tobytes(), dimensions=out.vectors.shape[1],
            token_counts=out.token_counts, compute_seconds=elapsed, errors=_errors(out.errors))

    def Rerank(self, request, context):
        docs = list(request.documents)
        out, elapsed = self._call(context, "Rerank", len(docs), lambda: self._handler.score(
            request.query, docs, truncate=not request.refuse_long, raw=request.raw_scores,
            max_doc_tokens=request.max_doc_tokens or None))
        return runner_pb2.RerankResponse(scores=out.scores.tolist(), token_counts=out.token_counts,
                                         compute_seconds=elapsed, errors=_errors(out.errors))

    def Classify(self, request, context):
        # An empty text_pair means a lone text: the gateway never sends empty texts.
        inputs = [(x.text, x.text_pair) if x.text_pair else x.text for x in request.inputs]
        out, elapsed = self._call(context, "Classify", len(inputs), lambda: self._handler.classify(
            inputs, truncate=not request.refuse_long, raw=request.raw_scores,
            truncate_side="left" if request.truncate_left else "right"))
        return runner_pb2.ClassifyResponse(scores=out.scores.ravel().tolist(),
                                           token_counts=out.token_counts, compute_seconds=elapsed,
                                           errors=_errors(out.errors))

    def _call(self, context, method: str, inputs: int, work: Callable):
        """Runs work in the call's span, logs computed batches, and turns errors into gRPC
        statuses (no internals)."""
        metadata = dict(context.invocation_metadata())
        # A batch may hold several requests; the gateway sends their ids comma-separated.
        request_id = metadata.get("x-request-id", "")
        asked = metadata.get("x-compute-threads", "")
        # 0: as the previous call left them; never more than this runner started with.
        threads = min(int(asked), self._threads) if asked.isdigit() else 0
        # The gateway sends the batch's trace ids whether or not tracing is on, so log lines join.
        ids = {"request_id": request_id, **({"trace_id": metadata["x-trace-id"]} if "x-trace-id" in metadata else {})}
        attributes = {"rpc.system": "grpc", "rpc.method": method, "edge_embed.inputs": inputs,
                      "edge_embed.request_ids": request_id.split(",") if request_id else []} if tracing.enabled() else {}
        with tracing.server_span(f"edgeembed.runner.v1.Runner/{method}", metadata, **attributes):
            try:
                with self._turn, compute_threads.requested_for_call(threads):
                    started = time.perf_counter()  # the wait for the turn is not compute time
                    out = work()
                    elapsed = time.perf_counter() - started
            except RunnerError as exc:
                context.abort(exc.code, str(exc))
            except Exception as exc:
                if out_of_memory(exc):  # outside the passes, which split themselves until they fit
                    self._logger.warn("out_of_memory", **ids)
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the device is out of memory; retry shortly")
                if device_broken(exc):
                    self._logger.error("device_broken", exc_info=True, **ids)
                    tracing.failed("the device failed")
                    self._on_device_broken()
                    context.abort(grpc.StatusCode.UNAVAILABLE, "the runner's device failed; it is restarting")
                self._logger.error("batch_failed", exc_info=True, **ids)
                tracing.failed("the model failed on this batch")
                context.abort(grpc.StatusCode.INTERNAL, "the model failed on this batch")
        if hasattr(out, "token_counts"):
            self._logger.info("batch_done", **ids, inputs=inputs, failed=len(out.errors),
                              tokens=sum(out.token_counts), compute_ms=round(elapsed * 1000, 3),
                              threads_asked=threads)
        return out, elapsed

    def Tokenize(self, request, context):
        texts = list(request.texts)
        out, _ = self._call(context, "Tokenize", len(texts), lambda: self._handler.tokenize(texts, request.add_special_tokens))
        return runner_pb2.TokenizeResponse(texts=[
            runner_pb2.TokenizedText(tokens=[runner_pb2.Token(id=t.id, text=t.text, special=t.special,
                                                              start=t.start, stop=t.stop) for t in tokens])
            for tokens in out.texts], errors=_errors(out.errors))

    def Detokenize(self, request, context):
        sequences = [list(s.ids) for s in request.sequences]
        out, _ = self._call(context, "Detokenize", len(sequences),
                            lambda: self._handler.detokenize(sequences, request.skip_special_tokens))
        return runner_pb2.DetokenizeResponse(texts=out.texts, errors=_errors(out.errors))

    def Info(self, request, context):
        h = self._handler
        return runner_pb2.InfoResponse(
            id=self._name,
            dimensions=h.dimensions,
            max_tokens=h.max_tokens,
            capabilities=list(h.capabilities),
            device=self._device,
            dtype=str(h.dtype).removeprefix("torch."),
            pooling=h.pooling,
            labels=list(h.labels),
            **_precision_fields(h.precision),
            compute_threads=self._threads,
            prompt_names=list(h.prompt_names),
            matryoshka_dims=list(h.matryoshka_dims),
            score_activation=h.score_activation if "rerank" in h.capabilities else "",
            vocab_size=h.vocab_size,
            profile=runner_pb2.DeviceProfile(**self._profile.fields()),
        )


def _errors(failures: tuple[InputFailure, ...]) -> list[runner_pb2.InputError]:
    """The handler's failed inputs as the reply's `errors`."""
    return [runner_pb2.InputError(index=f.index, message=f.message, code=f.code) for f in failures]


def _precision_fields(report) -> dict:
    """Info's precision fields from the handler's PrecisionReport; none for a bare handler."""
    if report is None:
        return {}
    fields = {"precision": report.precision, "precision_detail": report.detail}
    if report.fidelity is not None:
        fields["fidelity"] = runner_pb2.Fidelity(**report.fidelity.__dict__)
    return fields

