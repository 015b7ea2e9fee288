"""OpenTelemetry spans for the runner, under the gateway's runner-call span.

The gateway sends each computing call's W3C traceparent as gRPC metadata. The runner's spans
(the call, its tokenising, its forward pass) continue that trace, so one request gives one trace
across both processes. Spans are exported over OTLP/HTTP only when the standard OTEL_* variables
ask for it, by the same rule as the gateway's (gateway/src/tracing/setup.ts); otherwise the SDK
is never imported and every helper here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping

from .logs import JsonLogger

_tracer = None
_provider = None


def requested(env: Mapping[str, str] = os.environ) -> bool:
    """OTEL_TRACES_EXPORTER lists otlp, or is unset while an OTLP endpoint is named; and the SDK is
    not disabled."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()}
    if exporters:
        return "otlp" in exporters and "none" not in exporters
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def enabled() -> bool:
    """Whether spans are being made, for callers that would otherwise compute their attributes."""
    return _tracer is not None


def start(model: str, device: str, logger: JsonLogger) -> None:
    """Starts the SDK when requested. The runner's service name is the gateway's plus `-runner`,
    so the two processes stay apart in a trace view even when OTEL_SERVICE_NAME names them."""
    global _tracer, _provider
    if not requested():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = (os.environ.get("OTEL_SERVICE_NAME", "").strip() or "edge-embed") + "-runner"
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; the sampler comes from OTEL_TRACES_SAMPLER.
    resource = Resource.create({"service.name": service, "edge_embed.model": model, "edge_embed.device": device})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = _provider.get_tracer("edge-embed-runner")
    logger.info("tracing_started", service=service)


def stop() -> None:
    """Sends the spans still buffered, waiting at most 3 s: the gateway kills a runner that takes
    10 s to stop, and a slow collector must not be what makes it."""
    global _tracer, _provider
    if _provider is not None:
        provider, _tracer, _provider = _provider, None, None
        provider.force_flush(timeout_millis=3000)
        provider.shutdown()


@contextlib.contextmanager
def server_span(name: str, metadata: Mapping[str, str], **attributes) -> Iterator[None]:
    """A span for one gRPC call, continuing the trace in its traceparent metadata."""
    if _tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract(carrier=dict(metadata))
    # A refused input ends the call with an error status too; only failed() marks the span, so
    # that client errors do not read as server faults.
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes,
                                       set_status_on_exception=False):
        yield


def failed(message: str) -> None:
    """Marks the current span as a server fault."""
    if _tracer is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    trace.get_current_span().set_status(Status(StatusCode.ERROR, message))


def span(name: str, **attributes):
    """A child of the current span, on the current thread; a no-op while tracing is off."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.start_as_current_span(name, attributes=attributes)

