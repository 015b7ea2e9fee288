"""One request gives one connected trace across the gateway and its runner, exported over OTLP.

A real gateway and runner serve MiniLM with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a receiver
in this process, which decodes what both SDKs send. The request goes through the openai SDK
with a W3C traceparent, as a traced client would send it.
"""

from __future__ import annotations

import json
import secrets
import sys
import time

import pytest
from openai import OpenAI

from conftest import start_gateway, stop_gateway
from support import MODEL, ROOT

sys.path.insert(0, str(ROOT / "bench"))
from otlp_receiver import start_receiver  # noqa: E402 (bench/ is no package)


def _tree(spans: list[dict], root_parent: str) -> list[str]:
    """The trace as indented lines of service, name and duration, children by start time."""
    children: dict[str, list[dict]] = {}
    for s in spans:
        children.setdefault(s["parent"], []).append(s)
    t0 = min(s["start"] for s in spans)
    lines = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x["start"]):
            lines.append(f"{'  ' * depth}{s['name']} [{s['service']}] +{(s['start'] - t0) / 1e6:.2f} ms, "
                         f"{(s['end'] - s['start']) / 1e6:.2f} ms")
            walk(s["span_id"], depth + 1)

    walk(root_parent, 0)
    return lines


@pytest.fixture(scope="module")
def receiver():
    server = start_receiver()
    yield server
    server.shutdown()
    server.server_close()


def test_one_request_is_one_trace_across_both_processes(receiver, tmp_path):
    log = tmp_path / "gateway.log"
    proc, url = start_gateway({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200",
                               "LOG_LEVEL": "info"}, log=log)
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    request_id = "trace-test-1"
    try:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused")
        out = client.embeddings.create(model=MODEL, input=["tracing across processes", "a second text"],
                                       extra_headers={"traceparent": f"00-{trace_id}-{client_span}-01",
                                                      "x-request-id": request_id})
        assert len(out.data) == 2
    finally:
        # Stopping flushes both processes' span buffers.
        assert stop_gateway(proc) == 0

    deadline = time.time() + 15
    while True:
        with receiver.lock:
            spans = [s for s in receiver.spans if s["trace_id"] == trace_id]
        services = {s["service"] for s in spans}
        if {"edge-embed", "edge-embed-runner"} <= services and len(spans) >= 7 or time.time() > deadline:
            break
        time.sleep(0.2)

    by_name = {s["name"]: s for s in spans}
    assert set(by_name) >= {"POST /v1/embeddings", "queue", "batch", "edgeembed.runner.v1.Runner/Embed",
                            "tokenize", "forward"}, sorted(by_name)
    # Connected: every span hangs from another span of this trace, or from the client's span.
    ids = {s["span_id"] for s in spans}
    assert all(s["parent"] in ids or s["parent"] == client_span for s in spans)
    http = by_name["POST /v1/embeddings"]
    assert http["parent"] == client_span and http["service"] == "edge-embed"
    assert http["attributes"]["edge_embed.request_id"] == request_id
    assert http["attributes"]["http.response.status_code"] == 200
    assert by_name["queue"]["parent"] == http["span_id"]
    batch = by_name["batch"]
    assert batch["parent"] == http["span_id"] and request_id in batch["attributes"]["edge_embed.request_ids"]
    rpc = [s for s in spans if s["name"] == "edgeembed.runner.v1.Runner/Embed"]
    client_side = next(s for s in rpc if s["service"] == "edge-embed")
    server_side = next(s for s in rpc if s["service"] == "edge-embed-runner")
    assert client_side["parent"] == batch["span_id"] and server_side["parent"] == client_side["span_id"]
    assert request_id in server_side["attributes"]["edge_embed.request_ids"]
    assert by_name["tokenize"]["parent"] == server_side["span_id"]
    assert by_name["forward"]["parent"] == server_side["span_id"]
    for s in spans:
        assert s["start"] <= s["end"]

    # Logs join traces: the gateway's and the runner's lines for this request carry its trace id.
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    mine = [x for x in lines if request_id in str(x.get("request_id", ""))]
    assert mine and all(x.get("trace_id") == trace_id for x in mine), mine
    assert any(x.get("msg") == "batch_done" for x in mine)

    tree = "\n".join(_tree(spans, client_span))
    out_dir = ROOT / ".test-results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "trace-tree.txt").write_text(tree + "\n")
    print(tree)

