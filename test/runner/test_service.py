"""The gRPC server in process, over a real unix socket, with a fake handler (no model)."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
import pytest
import torch

from omp_teams import gone, openmp_threads, parallel_region
from runner import compute_threads
from runner.call_client import CallFailed, CallsClient
from runner._proto import runner_pb2, runner_pb2_grpc
from runner.errors import InputFailure, InvalidInput, OutOfDeviceMemory, UnsupportedOption
from runner.handlers.base import (DetokenizeOutput, EmbedOutput, Handler, MultiVectorOutput, ScoreOutput,
                                  SparseOutput, Token, TokenizeOutput)
from runner.logs import JsonLogger
from runner import server as server_module
from runner.device_profile import DeviceProfile, derive
from runner.server import ServeOptions, build_server, make_pool, serve, socket_path, warm_up

SECRET = "3f9a1c0d5e7b2468"
#: What the fake handler refuses, wherever it appears in a call.
TOO_LONG = "too long"


def refused(index: int) -> InputFailure:
    return InputFailure(index, "has 9 tokens, more than this model's 8; shorten it or allow truncation",
                        "input_too_long")


class FakeHandler(Handler):
    """Computes every kind in three dimensions, but lists only dense, which is what warmup runs.

    Inputs equal to TOO_LONG fail, and so do sequences with ids outside the vocabulary.
    """

    capabilities = ("text-embedding",)
    dimensions = 3
    max_tokens = 8
    dtype = torch.float32
    vocab_size = 10

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.calls = 0

    @staticmethod
    def failures(inputs) -> tuple[InputFailure, ...]:
        return tuple(refused(i) for i, x in enumerate(inputs) if x == TOO_LONG)

    def tokenize(self, texts, add_special_tokens):
        return TokenizeOutput([[] if t == TOO_LONG else [Token(1, t, False, 0, len(t))] for t in texts],
                              self.failures(texts))

    def detokenize(self, sequences, skip_special_tokens):
        bad = [i for i, s in enumerate(sequences) if max(s) >= self.vocab_size]
        return DetokenizeOutput(["" if i in bad else "x" * len(s) for i, s in enumerate(sequences)], tuple(
            InputFailure(i, "has token id 99, outside this model's vocabulary of 10", "invalid_token_ids")
            for i in bad))

    def embed(self, texts, opts):
        self.threads.add(threading.get_ident())
        self.calls += 1
        self.compute_threads = compute_threads.requested()
        if texts == ["boom"]:
            raise RuntimeError("secret internal detail")
        if texts == ["bad"]:
            raise InvalidInput("bad input")
        if texts == ["seven"]:
            raise UnsupportedOption("dimensions", "unsupported_dimensions", "dimensions=7 is not supported by this model")
        if texts == ["sticky"]:
            raise torch.AcceleratorError("CUDA error: an illegal memory access was encountered")
        if texts == ["full"]:
            raise OutOfDeviceMemory("one input of 9 tokens does not fit in the free memory of cuda:0")
        vectors = np.array([[0, 0, 0] if t == TOO_LONG else [len(t), i, -1.5] for i, t in enumerate(texts)],
                           dtype=np.float32)
        return EmbedOutput(vectors, [0 if t == TOO_LONG else len(t) + 2 for t in texts], self.failures(texts))

    def sparse(self, texts, opts):
        rows = [np.array([], np.uint32) if t == TOO_LONG else np.array([1, 4], np.uint32) for t in texts]
        return SparseOutput(rows, [r.astype(np.float32) for r in rows], [len(r) for r in rows],
                            self.failures(texts))

    def multi_vector(self, texts, opts):
        rows = [np.ones((0 if t == TOO_LONG else 2, 3), np.float32) for t in texts]
        return MultiVectorOutput(rows, [len(r) for r in rows], self.failures(texts))

    def score(self, query, documents, truncate, raw, max_doc_tokens=None, truncate_side="right", sigmoid=False):
        scores = np.array([0 if d == TOO_LONG else 0.5 for d in documents], np.float32)
        return ScoreOutput(scores, [0 if d == TOO_LONG else 3 for d in documents], self.failures(documents))


class Bearer(grpc.UnaryUnaryClientInterceptor):
    """What the gateway does: the runner's secret on every call."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(details._replace(metadata=[*(details.metadata or ()), self._header]), request)


def profile_of(device: str) -> DeviceProfile:
    """The profile a runner on device would derive from a CPU's or an accelerator's timings."""
    if device == "cpu":
        return derive(0.004, 16, 0.05, 2048, True, 16384)
    return derive(0.005, 16, 0.006, 16384, False, 16384)


@contextmanager
def serving(tmp_path, handler=None, workers=2, device="cpu", on_device_broken=lambda: None):
    """A started server around handler (a FakeHandler by default); yields its address."""
    address = f"unix://{tmp_path}/r.sock"
    pool = make_pool(workers)
    server, health_servicer = build_server("fake", device, handler or FakeHandler(), pool, address,
                                           SECRET, JsonLogger("info", model="fake"), profile_of(device),
                                           on_device_broken)
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield address
    finally:
        server.stop(None)
        pool.shutdown(wait=False)


@contextmanager
def channel(address: str, token: str = SECRET):
    """A channel that sends token as the gateway sends the runner's secret."""
    with grpc.insecure_channel(address) as plain:
        yield grpc.intercept_channel(plain, Bearer(token))


@contextmanager
def calls(address: str, token: str = SECRET):
    """A Calls stream that carries token as the gateway's carries the runner's secret."""
    with grpc.insecure_channel(address) as plain:
        client = CallsClient(plain, (("authorization", f"Bearer {token}"),))
        try:
            yield client
        finally:
            client.close()


def call(tmp_path, capsys, fn):
    with serving(tmp_path) as address, calls(address) as client:
        return fn(client)


def batch_done_line(capsys) -> dict:
    """The call's batch_done log line. It is written after the call's result has gone out
    (runner/logs.py held), so the client may hold the result before the line is written."""
    out, deadline = "", time.monotonic() + 5
    while "batch_done" not in out and time.monotonic() < deadline:
        time.sleep(0.01)
        out += capsys.readouterr().out
    return next(json.loads(line) for line in out.splitlines() if "batch_done" in line)


def embed(client: CallsClient, *texts: str, **fields):
    return client.call("embed", runner_pb2.EmbedRequest(texts=texts), **fields)


def test_embed_packs_little_endian_float32(tmp_path, capsys):
    reply = call(tmp_path, capsys, lambda client: embed(client, "ab", "cde", request_ids=["req-1", "req-2"]))
    assert reply.dimensions == 3
    assert list(reply.token_counts) == [4, 5]
    vectors = np.frombuffer(reply.vectors, dtype="<f4").reshape(2, 3)
    assert vectors.tolist() == [[2, 0, -1.5], [3, 1, -1.5]]
    assert reply.compute_seconds >= 0
    batch = batch_done_line(capsys)
    assert batch["request_id"] == "req-1,req-2"
    assert batch["model"] == "fake"


def test_norm_replaces_the_models_own_normalisation(tmp_path, capsys):
    seen = []

    class Recording(FakeHandler):
        def embed(self, texts, opts):
            seen.append(opts.normalize)
            return super().embed(texts, opts)

    with serving(tmp_path, Recording()) as address, calls(address) as client:
        taxicab = client.call("embed", runner_pb2.EmbedRequest(texts=["ab"], norm=1))
        own = embed(client, "ab")
    assert seen == [False, True]
    np.testing.assert_allclose(np.frombuffer(taxicab.vectors, "<f4"), [2 / 3.5, 0, -1.5 / 3.5], rtol=1e-6)
    assert np.frombuffer(own.vectors, "<f4").tolist() == [2, 0, -1.5]


def test_info(tmp_path, capsys):
    with serving(tmp_path) as address, channel(address) as ch:
        reply = runner_pb2_grpc.RunnerStub(ch).Info(runner_pb2.InfoRequest())
    assert (reply.id, reply.dimensions, reply.max_tokens, reply.device, reply.dtype) == ("fake", 3, 8, "cpu", "float32")
    assert list(reply.capabilities) == ["text-embedding"]
    assert reply.compute_threads == torch.get_num_threads()
    assert (reply.profile.host_compute, reply.profile.concurrency, reply.profile.call_tokens) == (True, 1, 4096)


def test_a_call_asks_for_the_threads_it_names_at_most_its_own_and_only_that_call(tmp_path):
    handler = FakeHandler()
    with serving(tmp_path, handler, workers=1) as address, calls(address) as client:
        embed(client, "a", compute_threads=1)
        assert handler.compute_threads == 1
        embed(client, "a")
        assert handler.compute_threads == 0
        # Never more than the runner started with.
        embed(client, "a", compute_threads=999)
        assert handler.compute_threads == torch.get_num_threads()


@pytest.mark.parametrize("text, code, detail", [
    ("bad", grpc.StatusCode.INVALID_ARGUMENT, "bad input"),
    ("boom", grpc.StatusCode.INTERNAL, "the model failed on this batch"),
    ("full", grpc.StatusCode.RESOURCE_EXHAUSTED, "one input of 9 tokens does not fit in the free memory of cuda:0"),
])
def test_errors_map_to_status_codes_without_leaking(tmp_path, capsys, text, code, detail):
    def go(client):
        with pytest.raises(CallFailed) as info:
            embed(client, text)
        # The stream goes on serving.
        assert embed(client, "ab").dimensions == 3
        return info.value

    err = call(tmp_path, capsys, go)
    assert err.code == code
    assert err.message == detail
    assert "secret" not in err.message


def test_an_unsupported_option_fails_the_call_naming_its_field_and_code(tmp_path, capsys):
    def go(client):
        with pytest.raises(CallFailed) as info:
            embed(client, "seven")
        return info.value

    err = call(tmp_path, capsys, go)
    assert (err.code, err.param, err.error_code) == (grpc.StatusCode.INVALID_ARGUMENT, "dimensions", "unsupported_dimensions")
    assert err.message == "dimensions=7 is not supported by this model"


def test_a_call_whose_deadline_passed_before_it_started_is_not_computed(tmp_path):
    handler = FakeHandler()
    with serving(tmp_path, handler) as address, calls(address) as client:
        with pytest.raises(CallFailed) as info:
            client.send("embed", runner_pb2.EmbedRequest(texts=["a"]), timeout=-1).result(10)
        assert embed(client, "b").dimensions == 3
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert handler.calls == 1


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_calls_are_answered_on_the_streams_own_thread_on_a_cpu_and_on_pool_threads_on_a_gpu(tmp_path, device):
    """On a CPU the thread that reads a call computes it, passes included: no hand-off."""
    passes_on = set()

    class Passing(FakeHandler):
        def embed(self, texts, opts):
            compute_threads.run_passes(pool, lambda: passes_on.add(threading.get_ident()))
            time.sleep(0.05)  # so that on a GPU the next call starts on another thread
            return super().embed(texts, opts)

    handler = Passing()
    with ThreadPoolExecutor(max_workers=1) as pool, serving(tmp_path, handler, workers=2, device=device) as address, \
            calls(address) as client:
        assert all(f.result(10).dimensions == 3 for f in [client.send("embed", runner_pb2.EmbedRequest(texts=["x"]))
                                                          for _ in range(4)])
    if device == "cpu":  # one thread read, computed and ran the passes of every call
        assert len(handler.threads) == 1 and passes_on == handler.threads
    else:  # calls overlapped on several threads; passes ran on the compute thread (pool's one)
        assert len(handler.threads) > 1 and len(passes_on) == 1 and passes_on.isdisjoint(handler.threads)


def test_warmup_reaches_every_thread(capsys):
    handler = FakeHandler()
    opts = ServeOptions(socket="unused", workers=3, warmup=True, warmup_batch_size=2, warmup_steps=2)
    with make_pool(opts.workers) as pool:
        warm_up(handler, pool, opts, JsonLogger("info", model="fake"), passes_here=True)
    threads = 3 + 3  # workers plus the spares: the Calls stream's and two for health checks
    assert len(handler.threads) == threads
    assert handler.calls == 2 * threads
    assert '"msg": "warmup_ok"' in capsys.readouterr().out


class Parallel(FakeHandler):
    """Runs a parallel region in every embed call, and keeps the OpenMP threads that were then
    alive and had not been before it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.before = openmp_threads()
        self.teams: set[int] = set()

    def embed(self, texts, opts):
        self.teams |= parallel_region() - self.before
        return super().embed(texts, opts)


def test_warmup_leaves_no_cpu_threads_of_passes_on_the_threads_that_ran_it(capsys):
    """Only the thread that serves the Calls stream will run passes; idle teams elsewhere would
    make every pass wait for its threads to wake (compute_threads.release_team)."""
    handler = Parallel()
    opts = ServeOptions(socket="unused", workers=1, warmup=True, warmup_batch_size=1, warmup_steps=1)
    with make_pool(opts.workers) as pool:
        warm_up(handler, pool, opts, JsonLogger("info", model="fake"), passes_here=True)
        assert handler.teams and gone(handler.teams)


def test_a_stream_served_in_turn_leaves_no_cpu_threads_of_passes_behind(tmp_path):
    """The gateway's next stream may be served by another of gRPC's threads."""
    handler = Parallel()
    with serving(tmp_path, handler) as address:
        with calls(address) as client:
            embed(client, "a")
            assert handler.teams and not gone(handler.teams, within_s=0.2), "kept while the stream is served"
        assert gone(handler.teams)


@pytest.mark.parametrize("device, most_at_once", [("cpu", 1), ("cuda:0", 2)])
def test_calls_take_turns_on_a_cpu_and_overlap_on_a_gpu(tmp_path, device, most_at_once):
    lock = threading.Lock()
    now = [0]
    most = [0]
    both_in = threading.Event()

    class Counting(FakeHandler):
        def embed(self, texts, opts):
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
                if now[0] == 2:
                    both_in.set()
            # Stay until the other call is in too, or long enough that it would have been.
            both_in.wait(timeout=2)
            with lock:
                now[0] -= 1
            return super().embed(texts, opts)

    with serving(tmp_path, Counting(), workers=2, device=device) as address, calls(address) as client:
        sent = [client.send("embed", runner_pb2.EmbedRequest(texts=["x"])) for _ in range(2)]
        assert all(c.result(timeout=10).dimensions == 3 for c in sent)
    assert most[0] == most_at_once


def test_health_is_answered_while_every_worker_is_busy(tmp_path):
    """A long forward pass must not look like a hung runner to the gateway's health probe."""
    release = threading.Event()

    class Slow(FakeHandler):
        def embed(self, texts, opts):
            release.wait(timeout=30)
            return super().embed(texts, opts)

    try:
        with serving(tmp_path, Slow(), workers=1) as address, channel(address) as ch, calls(address) as client:
            busy = client.send("embed", runner_pb2.EmbedRequest(texts=["x"]))
            time.sleep(0.2)
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            assert not busy.done()
            release.set()
            assert busy.result(timeout=10).dimensions == 3
    finally:
        release.set()


def test_failed_inputs_get_placeholder_rows_and_the_call_succeeds(tmp_path, capsys):
    reply = call(tmp_path, capsys, lambda client: embed(client, "ab", TOO_LONG, "c"))
    assert list(reply.errors) == [runner_pb2.InputError(index=1, message=refused(1).message, code="input_too_long")]
    vectors = np.frombuffer(reply.vectors, dtype="<f4").reshape(3, 3)
    assert vectors.tolist() == [[2, 0, -1.5], [0, 0, 0], [1, 2, -1.5]]
    assert list(reply.token_counts) == [4, 0, 3]
    assert batch_done_line(capsys)["failed"] == 1


@pytest.mark.parametrize("kind, message, rows", [
    ("embed", runner_pb2.EmbedRequest(texts=["a", "b", TOO_LONG], kind=runner_pb2.SPARSE),
     lambda r: [len(v.indices) for v in r.sparse]),
    ("embed", runner_pb2.EmbedRequest(texts=["a", "b", TOO_LONG], kind=runner_pb2.MULTI_VECTOR),
     lambda r: list(r.vector_counts)),
    ("rerank", runner_pb2.RerankRequest(query="q", documents=["a", "b", TOO_LONG]),
     lambda r: [bool(s) for s in r.scores]),
    ("tokenize", runner_pb2.TokenizeRequest(texts=["a", "b", TOO_LONG]),
     lambda r: [len(t.tokens) for t in r.texts]),
    ("detokenize", runner_pb2.DetokenizeRequest(sequences=[runner_pb2.TokenIds(ids=s) for s in ([1], [2, 3], [99])]),
     lambda r: list(r.texts)),
], ids=["sparse", "multi-vector", "rerank", "tokenize", "detokenize"])
def test_every_call_lists_its_failed_inputs(tmp_path, capsys, kind, message, rows):
    handler_says = {"detokenize": ("has token id 99, outside this model's vocabulary of 10", "invalid_token_ids")}
    reply = call(tmp_path, capsys, lambda client: client.call(kind, message))
    want = handler_says.get(kind, (refused(2).message, "input_too_long"))
    assert [(e.index, e.message, e.code) for e in reply.errors] == [(2, *want)]
    assert len(rows(reply)) == 3 and not rows(reply)[2] and all(rows(reply)[:2])


def test_multi_vector_with_every_input_failed_keeps_its_width(tmp_path, capsys):
    reply = call(tmp_path, capsys, lambda client: client.call(
        "embed", runner_pb2.EmbedRequest(texts=[TOO_LONG, TOO_LONG], kind=runner_pb2.MULTI_VECTOR)))
    assert (reply.vectors, reply.dimensions, list(reply.vector_counts)) == (b"", 3, [0, 0])
    assert [e.index for e in reply.errors] == [0, 1]


@pytest.mark.parametrize("token", ["", "wrong", SECRET[:-1], SECRET + "0"])
def test_calls_without_the_secret_are_refused(tmp_path, token):
    with serving(tmp_path) as address:
        with grpc.insecure_channel(address) as plain:
            ch = grpc.intercept_channel(plain, Bearer(token)) if token else plain
            for rpc in (lambda: runner_pb2_grpc.RunnerStub(ch).Info(runner_pb2.InfoRequest()),
                        lambda: health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())):
                with pytest.raises(grpc.RpcError) as info:
                    rpc()
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert SECRET not in info.value.details()
        client = CallsClient(grpc.insecure_channel(address), (("authorization", f"Bearer {token}"),))
        with pytest.raises(CallFailed) as refused_call:
            embed(client, "a")
        assert refused_call.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_secret_without_bearer_is_refused(tmp_path):
    with serving(tmp_path) as address, grpc.insecure_channel(address) as plain:
        with pytest.raises(grpc.RpcError) as info:
            runner_pb2_grpc.RunnerStub(plain).Info(runner_pb2.InfoRequest(), metadata=[("authorization", SECRET)])
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_checks_with_the_secret_are_answered(tmp_path):
    with serving(tmp_path) as address, channel(address) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_the_socket_file_is_private_to_its_user(tmp_path):
    with serving(tmp_path) as address:
        mode = stat.S_IMODE(os.stat(socket_path(address)).st_mode)
    assert mode == 0o600


def test_the_socket_file_is_private_from_the_moment_it_exists(tmp_path, monkeypatch):
    """The umask alone already makes it private; the chmod after binding only restates that."""
    monkeypatch.setattr(server_module.Path, "chmod", lambda *_: None)
    with serving(tmp_path) as address:
        assert stat.S_IMODE(os.stat(socket_path(address)).st_mode) & 0o077 == 0


def test_a_failure_after_binding_removes_the_socket_file(tmp_path, monkeypatch):
    socket = tmp_path / "r0.sock"
    servers = []

    class Unstartable:
        def start(self):
            assert socket.exists()  # bound: the file is there
            raise RuntimeError("cannot start")

    def build_unstartable(*args):
        server, health_servicer = build_server(*args)
        servers.append(server)
        return Unstartable(), health_servicer

    monkeypatch.setattr(server_module, "build_server", build_unstartable)
    monkeypatch.setattr(server_module.signal, "signal", lambda *_: None)  # keep pytest's own handlers
    opts = ServeOptions(socket=f"unix://{socket}", workers=1, warmup=False, warmup_batch_size=1, warmup_steps=0)
    try:
        with pytest.raises(RuntimeError, match="cannot start"):
            serve("fake", "cpu", FakeHandler(), opts, SECRET, JsonLogger("warn"), profile_of("cpu"))
        assert not socket.exists()
    finally:
        for server in servers:
            server.stop(None)


@pytest.mark.parametrize("address, path", [
    ("unix:///run/x/r0.sock", "/run/x/r0.sock"),
    ("unix:relative/r0.sock", "relative/r0.sock"),
    ("unix:/abs/r0.sock", "/abs/r0.sock"),
    ("localhost:50051", None),
])
def test_socket_path_reads_both_unix_address_forms(address, path):
    got = socket_path(address)
    assert (str(got) if got else None) == path


@pytest.mark.parametrize("error", [
    torch.AcceleratorError("CUDA error: an illegal memory access was encountered"),
    RuntimeError("CUDA error: device-side assert triggered"),
    RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx"),
])
def test_a_broken_device_fails_the_call_as_unavailable_and_stops_the_runner(tmp_path, capsys, error):
    broken = threading.Event()

    class Breaking(FakeHandler):
        def embed(self, texts, opts):
            if texts == ["sticky"]:
                raise error
            return super().embed(texts, opts)

    with serving(tmp_path, Breaking(), on_device_broken=broken.set) as address, calls(address) as client:
        assert embed(client, "ok").dimensions == 3
        assert not broken.is_set()
        with pytest.raises(CallFailed) as info:
            embed(client, "sticky")
    # UNAVAILABLE is what the gateway answers with 503 and a retry, as for a crashed runner.
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert "CUDA" not in info.value.message
    assert broken.is_set()
    assert '"msg": "device_broken"' in capsys.readouterr().out


@pytest.mark.parametrize("error, code", [
    # Running out of memory outside the passes (which split themselves): out of capacity, for now.
    (torch.OutOfMemoryError("CUDA out of memory"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RuntimeError("CUDA error: out of memory"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RuntimeError("shape mismatch"), grpc.StatusCode.INTERNAL),
])
def test_other_errors_leave_the_runner_serving(tmp_path, error, code):
    broken = threading.Event()

    class Failing(FakeHandler):
        def embed(self, texts, opts):
            raise error

    with serving(tmp_path, Failing(), on_device_broken=broken.set) as address, calls(address) as client:
        with pytest.raises(CallFailed) as info:
            embed(client, "x")
    assert info.value.code == code
    assert not broken.is_set()


def wait_for_socket(address: str) -> None:
    """Until serve(), started on another thread, has bound address (10 s at most)."""
    deadline = time.monotonic() + 10
    while not socket_path(address).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_runner_whose_device_broke_stops_with_its_own_exit_status(tmp_path, monkeypatch):
    """serve() itself: the broken call stops the server, which removes its socket and says why."""
    address = f"unix://{tmp_path}/r.sock"
    opts = ServeOptions(socket=address, workers=1, warmup=False, warmup_batch_size=1, warmup_steps=0)
    status = []
    thread = threading.Thread(target=lambda: status.append(
        serve("fake", "cuda:0", FakeHandler(), opts, SECRET, JsonLogger("warn"), profile_of("cuda:0"))))
    monkeypatch.setattr(server_module.signal, "signal", lambda *_: None)  # not the main thread
    thread.start()
    wait_for_socket(address)
    with calls(address) as client, pytest.raises(CallFailed):
        embed(client, "sticky")
    thread.join(timeout=10)
    assert status == [server_module.EXIT_DEVICE_BROKEN]
    assert not socket_path(address).exists()


@pytest.mark.parametrize("device, released", [("cpu", True), ("cuda:0", False)])
def test_serving_in_turn_lets_the_compute_threads_go_after_warmup(tmp_path, monkeypatch, device, released):
    """On a CPU, gRPC's threads run every pass from then on; on a GPU, the compute thread still does."""
    after_calls = []

    class Releasing(FakeHandler):
        def release_compute_team(self):
            after_calls.append(self.calls)

    stops = []
    monkeypatch.setattr(server_module.signal, "signal", lambda _, stop: stops.append(stop))  # not the main thread
    opts = ServeOptions(socket=f"unix://{tmp_path}/r.sock", workers=1, warmup=True, warmup_batch_size=1,
                        warmup_steps=1)
    thread = threading.Thread(target=serve, args=("fake", device, Releasing(), opts, SECRET, JsonLogger("warn"),
                                                  profile_of(device)))
    thread.start()
    wait_for_socket(opts.socket)
    stops[0]()
    thread.join(timeout=10)
    assert after_calls == ([1 + 3] if released else [])  # after warmup's call on each pool thread
