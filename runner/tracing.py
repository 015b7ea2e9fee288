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
    """An OTLP endpoint is named (or the exporter is otlp), and nothing switches tracing off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or exporter == "otlp")


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
    """Sends the spans still buffered; called as the runner stops."""
    global _tracer
    if _provider is not None:
        _tracer = None
        _provider.shutdown()


@contextlib.contextmanager
def server_span(name: str, metadata: Mapping[str, str], **attributes) -> Iterator[None]:
    """A span for one gRPC call, continuing the trace in its traceparent metadata."""
    if _tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract(carrier=dict(metadata))
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes):
        yield


def span(name: str, **attributes):
    """A child of the current span, on the current thread; a no-op while tracing is off."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.start_as_current_span(name, attributes=attributes)


def trace_id() -> str | None:
    """The current span's trace id, for log lines; None while tracing is off or outside a span."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
