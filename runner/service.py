"""The gRPC servicer: translates protobuf messages to handler calls and back, nothing more."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Executor
from typing import Callable

import grpc
import numpy as np

from . import compute_threads, tracing
from .call_stream import CallStream
from .device import device_broken, out_of_memory
from .device_profile import DeviceProfile
from ._proto import runner_pb2, runner_pb2_grpc
from .errors import CallExpired, InputFailure, RunnerError, UnsupportedOption
from .handlers.base import EmbedOptions, Handler
from .logs import JsonLogger
from .normalization import embd_normalize


class RunnerService(runner_pb2_grpc.RunnerServicer):
    """Answers the gateway's Calls stream (runner/call_stream.py decides on which threads) and Info.

    Handlers decide which inputs fail; their failures are copied into each result's `errors` as
    they are, next to the rows of the inputs that did not fail.

    Where forward passes run on the host's cores (the device profile says so), calls take turns
    from tokenising to result. Tokenising the next call while a forward pass runs takes a core
    from the pass's thread team, which then waits at every barrier (the performance docs have the
    measurement). The stream's own thread then answers every call in turn, so that no call waits
    on a round trip to the gateway or on a thread hand-off. On an accelerator, tokenising
    alongside the device's work costs it nothing, so calls overlap there, on pool's threads.

    An error that leaves the device unusable (a sticky CUDA error) fails the call as UNAVAILABLE
    and calls on_device_broken, which stops the runner so that the gateway starts a fresh one:
    every later call on the same context would fail the same way.
    """

    def __init__(self, name: str, device: str, handler: Handler, logger: JsonLogger, profile: DeviceProfile,
                 pool: Executor, on_device_broken: Callable[[], None] = lambda: None) -> None:
        self._name = name
        self._device = device
        self._handler = handler
        self._logger = logger
        self._profile = profile
        self._on_device_broken = on_device_broken
        self._threads = compute_threads.alone()
        # Taken even when one stream serves calls in turn: a second stream (a gateway reconnecting
        # while the old one finishes) must not compute alongside the first.
        self._turn = threading.Lock() if profile.host_compute else contextlib.nullcontext()
        self._stream = CallStream(self._answer, None if profile.host_compute else pool)

    def Calls(self, request_iterator, context):
        return self._stream.serve(request_iterator)

    def _answer(self, call: runner_pb2.Call) -> runner_pb2.CallResult:
        """The call's result, or the error it failed with; never raises."""
        kind = call.WhichOneof("body")
        try:
            return runner_pb2.CallResult(id=call.id, **{kind: getattr(self, f"_{kind}")(getattr(call, kind), call)})
        except _Failed as failed:
            error = runner_pb2.CallError(code=failed.code.value[0], message=failed.message, param=failed.param,
                                        error_code=failed.error_code)
            return runner_pb2.CallResult(id=call.id, error=error)
        except Exception:  # building the result: a fault of ours, which must not end the stream
            self._logger.error("call_failed", exc_info=True, request_id=",".join(call.request_ids))
            code, message = grpc.StatusCode.INTERNAL, "the runner failed on this call"
        return runner_pb2.CallResult(id=call.id, error=runner_pb2.CallError(code=code.value[0], message=message))

    def _embed(self, request: runner_pb2.EmbedRequest, call: runner_pb2.Call) -> runner_pb2.EmbedResponse:
        norm = request.norm if request.HasField("norm") else None
        opts = EmbedOptions(prompt_name=request.prompt_name or None, dimensions=request.dimensions or None,
                            truncate=not request.refuse_long,
                            truncate_side="left" if request.truncate_left else "right",
                            normalize=not request.no_normalize and norm is None)
        texts = [list(t.ids) for t in request.token_ids] if request.token_ids else list(request.texts)
        kind = request.kind
        if kind == runner_pb2.SPARSE:
            out, elapsed = self._call(call, "Embed", len(texts), lambda: self._handler.sparse(texts, opts))
            return runner_pb2.EmbedResponse(
                sparse=[runner_pb2.SparseVector(indices=i.tolist(), values=v.tolist())
                        for i, v in zip(out.indices, out.values)],
                token_counts=out.token_counts, compute_seconds=elapsed, errors=_errors(out.errors))
        if kind in (runner_pb2.MULTI_VECTOR, runner_pb2.TOKEN_EMBEDDINGS):
            compute = self._handler.multi_vector if kind == runner_pb2.MULTI_VECTOR else self._handler.token_embeddings
            out, elapsed = self._call(call, "Embed", len(texts), lambda: compute(texts, opts))
            packed = np.concatenate(out.vectors) if out.vectors else np.empty((0, 0), np.float32)
            return runner_pb2.EmbedResponse(
                vectors=packed.astype("<f4", copy=False).tobytes(), dimensions=packed.shape[1],
                vector_counts=[v.shape[0] for v in out.vectors], token_counts=out.token_counts,
                compute_seconds=elapsed, errors=_errors(out.errors))
        out, elapsed = self._call(call, "Embed", len(texts), lambda: self._handler.embed(texts, opts))
        vectors = out.vectors if norm is None else embd_normalize(out.vectors, norm)
        return runner_pb2.EmbedResponse(
            vectors=vectors.astype("<f4", copy=False).tobytes(), dimensions=vectors.shape[1],
            token_counts=out.token_counts, compute_seconds=elapsed, errors=_errors(out.errors))

    def _rerank(self, request: runner_pb2.RerankRequest, call: runner_pb2.Call) -> runner_pb2.RerankResponse:
        docs = list(request.documents)
        out, elapsed = self._call(call, "Rerank", len(docs), lambda: self._handler.score(
            request.query, docs, truncate=not request.refuse_long, raw=request.raw_scores,
            max_doc_tokens=request.max_doc_tokens or None,
            truncate_side="left" if request.truncate_left else "right", sigmoid=request.sigmoid))
        return runner_pb2.RerankResponse(scores=out.scores.tolist(), token_counts=out.token_counts,
                                         compute_seconds=elapsed, errors=_errors(out.errors))

    def _classify(self, request: runner_pb2.ClassifyRequest, call: runner_pb2.Call) -> runner_pb2.ClassifyResponse:
        # An empty text_pair means a lone text: the gateway never sends empty texts.
        inputs = [(x.text, x.text_pair) if x.text_pair else x.text for x in request.inputs]
        out, elapsed = self._call(call, "Classify", len(inputs), lambda: self._handler.classify(
            inputs, truncate=not request.refuse_long, raw=request.raw_scores,
            truncate_side="left" if request.truncate_left else "right"))
        return runner_pb2.ClassifyResponse(scores=out.scores.ravel().tolist(),
                                           token_counts=out.token_counts, compute_seconds=elapsed,
                                           errors=_errors(out.errors))

    def _tokenize(self, request: runner_pb2.TokenizeRequest, call: runner_pb2.Call) -> runner_pb2.TokenizeResponse:
        texts = list(request.texts)
        out, _ = self._call(call, "Tokenize", len(texts), lambda: self._handler.tokenize(texts, request.add_special_tokens))
        return runner_pb2.TokenizeResponse(texts=[
            runner_pb2.TokenizedText(tokens=[runner_pb2.Token(id=t.id, text=t.text, special=t.special,
                                                              start=t.start, stop=t.stop) for t in tokens])
            for tokens in out.texts], errors=_errors(out.errors))

    def _detokenize(self, request: runner_pb2.DetokenizeRequest,
                    call: runner_pb2.Call) -> runner_pb2.DetokenizeResponse:
        sequences = [list(s.ids) for s in request.sequences]
        out, _ = self._call(call, "Detokenize", len(sequences),
                            lambda: self._handler.detokenize(sequences, request.skip_special_tokens))
        return runner_pb2.DetokenizeResponse(texts=out.texts, errors=_errors(out.errors))

    def _call(self, call: runner_pb2.Call, method: str, inputs: int, work: Callable):
        """Runs work in the call's span, logs computed batches, and turns errors into gRPC
        statuses (no internals)."""
        # A batch may hold several requests; their ids name them in the log lines.
        request_id = ",".join(call.request_ids)
        # 0: as the previous call left them; never more than this runner started with.
        threads = min(call.compute_threads, self._threads)
        # The gateway sends the batch's trace ids whether or not tracing is on, so log lines join.
        ids = {"request_id": request_id, **({"trace_id": ",".join(call.trace_ids)} if call.trace_ids else {})}
        attributes = {"rpc.system": "grpc", "rpc.method": method, "edge_embed.inputs": inputs,
                      "edge_embed.request_ids": list(call.request_ids)} if tracing.enabled() else {}
        with tracing.server_span(f"edgeembed.runner.v1.Runner/{method}", call.trace_context, **attributes):
            try:
                with self._turn, compute_threads.requested_for_call(threads):
                    started = time.perf_counter()  # the wait for the turn is not compute time
                    out = work()
                    elapsed = time.perf_counter() - started
            except CallExpired as exc:
                self._logger.warn("call_expired", **ids, inputs=inputs)
                raise _Failed(exc.code, str(exc)) from None
            except UnsupportedOption as exc:
                raise _Failed(exc.code, str(exc), exc.param, exc.error_code) from None
            except RunnerError as exc:
                raise _Failed(exc.code, str(exc)) from None
            except Exception as exc:
                if out_of_memory(exc):  # outside the passes, which split themselves until they fit
                    self._logger.warn("out_of_memory", **ids)
                    raise _Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "the device is out of memory; retry shortly") from None
                if device_broken(exc):
                    self._logger.error("device_broken", exc_info=True, **ids)
                    tracing.failed("the device failed")
                    self._on_device_broken()
                    raise _Failed(grpc.StatusCode.UNAVAILABLE, "the runner's device failed; it is restarting") from None
                self._logger.error("batch_failed", exc_info=True, **ids)
                tracing.failed("the model failed on this batch")
                raise _Failed(grpc.StatusCode.INTERNAL, "the model failed on this batch") from None
        if hasattr(out, "token_counts"):
            self._logger.info("batch_done", **ids, inputs=inputs, failed=len(out.errors),
                              tokens=sum(out.token_counts), compute_ms=round(elapsed * 1000, 3),
                              threads_asked=threads)
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


class _Failed(Exception):
    """A call that failed as a whole, with the status the gateway reads it as, and for an
    unsupported option, the request field and error code the client gets."""

    def __init__(self, code: grpc.StatusCode, message: str, param: str = "", error_code: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.error_code = error_code
        self.message = message


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

