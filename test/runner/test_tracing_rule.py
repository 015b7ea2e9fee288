"""The runner turns tracing on by the gateway's rule, and its helpers cost nothing while it is off."""

import contextlib

from runner import tracing


def test_requested_follows_the_standard_variables():
    assert not tracing.requested({})
    assert not tracing.requested({"OTEL_SERVICE_NAME": "x"})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})


def test_off_means_no_spans_and_no_trace_id():
    assert isinstance(tracing.span("forward"), contextlib.nullcontext)
    with tracing.server_span("call", {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}):
        assert tracing.trace_id() is None
