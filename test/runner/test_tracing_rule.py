"""The runner turns tracing on by the gateway's rule (gateway/src/tracing/setup.ts)."""

from runner import tracing


def test_requested_follows_the_standard_variables():
    assert not tracing.requested({})
    assert not tracing.requested({"OTEL_SERVICE_NAME": "x"})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "console, otlp"})
    assert not tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
