"""Runner processes for bench/gpu_check.py, started as the gateway's supervisor starts them, and
the gRPC client that measures them.

The command line, the environment (CUDA_VISIBLE_DEVICES=N with --device cuda:0 for cuda:N, the
secret, PYTHONPATH) and the readiness rule (health says SERVING after the `serving` log line) are
those of gateway/src/runners/supervisor.ts, so a runner that passes here starts under the gateway
too; only the entry comes from the catalog file (--config), where the gateway passes it validated
(--entry). Everything is bounded: start-up by a deadline, every call by a timeout, and each runner is
stopped on exit; as under the gateway, a runner also exits when its stdin closes, so one cannot
outlive a check that was killed outright.
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner._proto import runner_pb2, runner_pb2_grpc  # noqa: E402
from runner.call_client import CallsClient  # noqa: E402

_MAX_MESSAGE = 256 * 1024 * 1024
_LIVE: list["Runner"] = []


def pinned_gpu(n: int, inherited: str | None) -> str:
    """The GPU a cuda:N runner is pinned to, by the gateway's rule (gateway/src/runners/device-policy.ts):
    GPU N, or the N-th entry of an inherited CUDA_VISIBLE_DEVICES."""
    if inherited is None:
        return str(n)
    listed = [x.strip() for x in inherited.split(",") if x.strip()]
    if n >= len(listed):
        raise RuntimeError(f"cuda:{n} needs at least {n + 1} GPU(s), but CUDA_VISIBLE_DEVICES='{inherited}' leaves {len(listed)}")
    return listed[n]


class RunnerFailed(RuntimeError):
    """A runner that exited or did not become ready; the message carries its last words."""


@dataclass
class Settings:
    """The supervisor's flags for a runner, at the gateway's defaults unless the check says."""

    python: str
    catalog: Path
    models_dir: Path
    socket_dir: Path
    workers: int = 1
    threads: int = 0
    max_batch_tokens: int = 16384
    warmup_batch_size: int = 8
    warmup_steps: int = 2


@dataclass
class Runner:
    """One `python -m runner` process for one catalog entry on one device."""

    name: str
    device: str
    settings: Settings
    #: Set from the device as the supervisor does: cuda:N runs as cuda:0 with only GPU N visible.
    pinned_to: str | None = None
    proc: subprocess.Popen | None = None
    events: list[dict] = field(default_factory=list)
    stderr_tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))
    started_at: float = 0.0
    ready_s: float | None = None

    def __post_init__(self) -> None:
        self._secret = secrets.token_hex(32)
        self._socket = self.settings.socket_dir / f"{self.name}.sock"
        self._serving = threading.Event()
        self._channel: grpc.Channel | None = None
        self._stub: runner_pb2_grpc.RunnerStub | None = None
        self._calls: CallsClient | None = None

    @property
    def address(self) -> str:
        return f"unix://{self._socket}"

    @property
    def metadata(self) -> tuple:
        return (("authorization", f"Bearer {self._secret}"),)

    def start(self) -> None:
        s = self.settings
        device, env = self.device, {}
        if device.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = pinned_gpu(int(device.split(":", 1)[1]), os.environ.get("CUDA_VISIBLE_DEVICES"))
            device = "cuda:0"
        elif self.pinned_to is not None:
            # The CPU stand-in keeps the pinning's environment, so the same checks run on it.
            env["CUDA_VISIBLE_DEVICES"] = self.pinned_to
        self.pinned_to = env.get("CUDA_VISIBLE_DEVICES")
        cmd = [s.python, "-m", "runner", "--model", self.name, "--config", str(s.catalog),
               "--models-dir", str(s.models_dir), "--device", device, "--socket", self.address,
               "--workers", str(s.workers), "--threads", str(s.threads),
               "--max-batch-tokens", str(s.max_batch_tokens), "--warmup", "on",
               "--warmup-batch-size", str(s.warmup_batch_size), "--warmup-steps", str(s.warmup_steps),
               "--precision", "fp32", "--log-level", "info", "--exit-with-stdin"]
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        full_env = {**os.environ, **env, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1",
                    "EDGE_EMBED_RUNNER_SECRET": self._secret}
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        _LIVE.append(self)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                self.stderr_tail.append(line.rstrip())
                continue
            if record.get("msg") != "batch_done" and len(self.events) < 200:
                self.events.append(record)
            if record.get("msg") == "serving":
                self._serving.set()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip())

    def wait_ready(self, deadline: float) -> None:
        """Returns once health says SERVING; RunnerFailed if the process ends or time runs out."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RunnerFailed(f"runner {self.name} on {self.device} exited with {self.proc.returncode}: "
                                   + " | ".join(list(self.stderr_tail)[-8:]))
            # Connecting before the socket exists would leave the channel in reconnect backoff.
            if self._serving.wait(0.2) or self._socket.exists():
                if self._check_health():
                    self.ready_s = round(time.monotonic() - self.started_at, 2)
                    return
        raise RunnerFailed(f"runner {self.name} on {self.device} was not ready in time: "
                           + " | ".join(list(self.stderr_tail)[-8:]))

    def _check_health(self) -> bool:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address, options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)])
            self._stub = runner_pb2_grpc.RunnerStub(self._channel)
            # One Calls stream, as the gateway keeps: every stream holds one of the runner's threads.
            self._calls = CallsClient(self._channel, self.metadata)
        try:
            reply = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2, metadata=self.metadata)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def info(self, timeout: float = 10) -> dict:
        reply = self._stub.Info(runner_pb2.InfoRequest(), timeout=timeout, metadata=self.metadata)
        return MessageToDict(reply, preserving_proto_field_name=True)

    def embed(self, texts: list[str], timeout: float = 60) -> np.ndarray:
        reply = self._calls.call("embed", runner_pb2.EmbedRequest(texts=texts), timeout=timeout)
        if reply.errors:
            raise RuntimeError(f"{len(reply.errors)} inputs failed, first: {reply.errors[0].message}")
        return np.frombuffer(reply.vectors, dtype="<f4").reshape(len(texts), reply.dimensions)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, as the supervisor stops a runner; SIGKILL if it has not gone within grace."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def stop_all() -> None:
    """Stops every runner this process started, whatever state the check is in."""
    for runner in list(_LIVE):
        try:
            runner.stop(grace=5)
        except Exception:  # a runner that cannot be stopped politely is killed; keep going
            if runner.proc is not None and runner.proc.poll() is None:
                runner.proc.kill()
    _LIVE.clear()


def start_together(runners: list[Runner], deadline: float) -> None:
    """Starts runners at once and waits for all; their start-ups overlap, the check's time does not."""
    for r in runners:
        r.start()
    for r in runners:
        r.wait_ready(deadline)


def cosines(got: np.ndarray, want: np.ndarray) -> dict:
    """Cosine of each row to its reference row: mean and worst, and the largest component error."""
    # In float64 throughout, so that identical vectors come out at 1 and not float32's 1 - 1e-7.
    a, b = got.astype(np.float64), want.astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"mean_cosine": float(cos.mean()), "worst_cosine": float(cos.min()),
            "max_abs_diff": float(np.abs(got - want).max()), "texts": len(cos)}


def closed_loop(runner: Runner, texts: list[str], clients: int, per_request: int, timeout: float) -> dict:
    """Clients that each send their next request as soon as the last answers, sharing the corpus
    as one work list over one channel, as the gateway's calls share one. Texts per second."""
    chunks = [texts[i:i + per_request] for i in range(0, len(texts), per_request)]
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        while True:
            with lock:
                if not chunks or errors:
                    return
                chunk = chunks.pop()
            started = time.perf_counter()
            try:
                runner.embed(chunk, timeout)
            except Exception as exc:  # reported below, not hidden
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                return
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    latencies.sort()
    return {"texts_per_s": len(texts) / wall, "requests": len(latencies), "wall_s": wall,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def idle_latency(runner: Runner, singles: list[str], pause_s: float, timeout: float) -> dict:
    """One text at a time with a pause before each, so every call meets an idle runner."""
    for text in singles[:3]:
        runner.embed([text], timeout)
    times = []
    for text in singles:
        time.sleep(pause_s)
        started = time.perf_counter()
        runner.embed([text], timeout)
        times.append(time.perf_counter() - started)
    times.sort()
    return {"requests": len(times), "p50_ms": statistics.median(times) * 1000,
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, "min_ms": times[0] * 1000}


def process_environ(pid: int, key: str) -> str | None:
    """One variable of a running process's start-up environment, as the kernel keeps it.

    Only the one variable is read out: the rest holds the runner's secret.
    """
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in raw.split(b"\0"):
        name, _, value = item.partition(b"=")
        if name.decode(errors="replace") == key:
            return value.decode(errors="replace")
    return None


def rss_mib(pid: int) -> int | None:
    """Resident host memory of a process, MiB: the CPU stand-in's measure of a runner's size."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
