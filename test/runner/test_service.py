"""The gRPC servicer in process, over a real unix socket, with a fake handler (no model)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
import pytest
import torch

from runner._proto import runner_pb2, runner_pb2_grpc
from runner.errors import InvalidInput
from runner.handlers.base import EmbedOutput, Handler
from runner.logs import JsonLogger
from runner.server import ServeOptions, build_server, make_pool, warm_up
from runner.service import RunnerService


class FakeHandler(Handler):
    capabilities = ("text-embedding",)
    dimensions = 3
    max_tokens = 8
    dtype = torch.float32
    vocab_size = 10

    def tokenize(self, texts, add_special_tokens):
        return [[]]

    def detokenize(self, sequences, skip_special_tokens):
        return [""]

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.calls = 0

    def embed(self, texts, opts):
        self.threads.add(threading.get_ident())
        self.calls += 1
        if texts == ["boom"]:
            raise RuntimeError("secret internal detail")
        if texts == ["bad"]:
            raise InvalidInput("bad input")
        vectors = np.array([[len(t), i, -1.5] for i, t in enumerate(texts)], dtype=np.float32)
        return EmbedOutput(vectors, [len(t) + 2 for t in texts])


def call(tmp_path, capsys, fn):
    server = grpc.server(ThreadPoolExecutor(2))
    runner_pb2_grpc.add_RunnerServicer_to_server(
        RunnerService("fake", "cpu", FakeHandler(), JsonLogger("info", model="fake")), server)
    address = f"unix://{tmp_path}/r.sock"
    server.add_insecure_port(address)
    server.start()
    try:
        with grpc.insecure_channel(address) as channel:
            return fn(runner_pb2_grpc.RunnerStub(channel))
    finally:
        server.stop(None)


def test_embed_packs_little_endian_float32(tmp_path, capsys):
    def go(stub):
        return stub.Embed(runner_pb2.EmbedRequest(texts=["ab", "cde"]),
                          metadata=[("x-request-id", "req-1,req-2")])

    reply = call(tmp_path, capsys, go)
    assert reply.dimensions == 3
    assert list(reply.token_counts) == [4, 5]
    vectors = np.frombuffer(reply.vectors, dtype="<f4").reshape(2, 3)
    assert vectors.tolist() == [[2, 0, -1.5], [3, 1, -1.5]]
    assert reply.compute_seconds >= 0
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    batch = next(line for line in logged if line["msg"] == "batch_done")
    assert batch["request_id"] == "req-1,req-2"
    assert batch["model"] == "fake"


def test_info(tmp_path, capsys):
    reply = call(tmp_path, capsys, lambda stub: stub.Info(runner_pb2.InfoRequest()))
    assert (reply.id, reply.dimensions, reply.max_tokens, reply.device, reply.dtype) == ("fake", 3, 8, "cpu", "float32")
    assert list(reply.capabilities) == ["text-embedding"]


@pytest.mark.parametrize("text, code, detail", [
    ("bad", grpc.StatusCode.INVALID_ARGUMENT, "bad input"),
    ("boom", grpc.StatusCode.INTERNAL, "the model failed on this batch"),
])
def test_errors_map_to_status_codes_without_leaking(tmp_path, capsys, text, code, detail):
    def go(stub):
        with pytest.raises(grpc.RpcError) as info:
            stub.Embed(runner_pb2.EmbedRequest(texts=[text]))
        return info.value

    err = call(tmp_path, capsys, go)
    assert err.code() == code
    assert err.details() == detail
    assert "secret" not in err.details()


def test_warmup_reaches_every_thread(capsys):
    handler = FakeHandler()
    opts = ServeOptions(socket="unused", workers=3, warmup=True, warmup_batch_size=2, warmup_steps=2)
    with make_pool(opts.workers) as pool:
        warm_up(handler, pool, opts, JsonLogger("info", model="fake"))
    threads = 3 + 2  # workers plus the spares that keep health checks answered
    assert len(handler.threads) == threads
    assert handler.calls == 2 * threads
    assert '"msg": "warmup_ok"' in capsys.readouterr().out


def test_health_is_answered_while_every_worker_is_busy(tmp_path):
    """A long forward pass must not look like a hung runner to the gateway's health probe."""
    release = threading.Event()

    class Slow(FakeHandler):
        def embed(self, texts, opts):
            release.wait(timeout=30)
            return super().embed(texts, opts)

    pool = make_pool(workers=1)
    address = f"unix://{tmp_path}/busy.sock"
    server, health_servicer = build_server("fake", "cpu", Slow(), pool, address, JsonLogger("warn"))
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        with grpc.insecure_channel(address) as channel:
            busy = runner_pb2_grpc.RunnerStub(channel).Embed.future(runner_pb2.EmbedRequest(texts=["x"]))
            time.sleep(0.2)
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            assert not busy.done()
            release.set()
            assert busy.result(timeout=10).dimensions == 3
    finally:
        release.set()
        server.stop(None)
