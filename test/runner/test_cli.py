"""`python -m runner` as the gateway starts it: start-up failures, the socket file, the secret."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support import MODEL, ROOT

SECRET = "0123456789abcdef"


def runner_env(secret: str | None = SECRET) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_EMBED_RUNNER_SECRET"}
    if secret is not None:
        env["EDGE_EMBED_RUNNER_SECRET"] = secret
    return env


def run(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--socket", "unix:///tmp/unused.sock", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=runner_env(secret))


def test_missing_weights_names_the_download_command(tmp_path):
    res = run("--model", MODEL, "--models-dir", str(tmp_path))
    assert res.returncode == 2
    assert f"weights for '{MODEL}' are not in" in res.stderr
    assert f"npm run download-models -- {MODEL}" in res.stderr


def test_unknown_model_lists_the_catalog():
    res = run("--model", "nope")
    assert res.returncode == 2
    assert f"known: {MODEL}" in res.stderr


def test_unavailable_device_is_refused():
    res = run("--model", MODEL, "--device", "cuda:7")
    assert res.returncode == 2
    assert "cuda:7" in res.stderr


def test_refuses_to_start_without_a_secret():
    res = run("--model", MODEL, secret=None)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "runner: EDGE_EMBED_RUNNER_SECRET is not set: a runner serves only the gateway that started it"]


@pytest.fixture
def take_secret():
    """runner.__main__.take_secret, imported without leaking the module's side effects.

    Importing runner.__main__ sets offline defaults (TRANSFORMERS_OFFLINE among them) in
    os.environ, which would take later tests, the download ones, off their local fake Hub.
    """
    with mock.patch.dict(os.environ):
        from runner.__main__ import take_secret
    return take_secret


def test_an_empty_secret_is_no_secret(monkeypatch, take_secret):
    from runner.errors import ConfigError

    monkeypatch.setenv("EDGE_EMBED_RUNNER_SECRET", "")
    with pytest.raises(ConfigError, match="EDGE_EMBED_RUNNER_SECRET is not set"):
        take_secret()


def test_the_secret_is_taken_out_of_the_environment(monkeypatch, take_secret):
    monkeypatch.setenv("EDGE_EMBED_RUNNER_SECRET", SECRET)
    assert take_secret() == SECRET
    assert "EDGE_EMBED_RUNNER_SECRET" not in os.environ  # os.environ.pop unsets it for children too


def rewrite(path: Path, data: bytes) -> None:
    """Replaces a file of a linked copy without touching the original it links to."""
    path.unlink()
    path.write_bytes(data)


def corrupt_truncated_weights(folder: Path) -> None:
    with (folder / "model.safetensors").open("rb") as weights:
        rewrite(folder / "model.safetensors", weights.read(1000))


def corrupt_config(folder: Path) -> None:
    rewrite(folder / "config.json", b'{"model_type": "bert", "hidden_size": ')


@pytest.mark.parametrize("corrupt", [corrupt_truncated_weights, corrupt_config])
def test_corrupt_weights_give_one_line_naming_the_fix(minilm_dir, tmp_path, corrupt):
    folder = tmp_path / MODEL
    shutil.copytree(minilm_dir, folder, copy_function=os.symlink)  # the weights are 88 MB
    corrupt(folder)
    res = run("--model", MODEL, "--models-dir", str(tmp_path))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert f"weights for '{MODEL}' in {folder} are corrupt or incomplete (" in lines[0]
    assert lines[0].endswith(f"download them again with: npm run download-models -- {MODEL} --force")


def launch(socket: Path) -> subprocess.Popen:
    """The runner on the default model, as the gateway spawns it."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "--model", MODEL, "--socket", f"unix://{socket}", "--warmup", "off",
         "--workers", "1", "--precision", "fp32", "--exit-with-stdin"],
        cwd=ROOT, env=runner_env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_until_serving(proc: subprocess.Popen, socket: Path) -> None:
    deadline = time.monotonic() + 60
    # A channel opened before the file exists backs off for seconds after each failed connect.
    while not socket.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the runner did not bind its socket"
        time.sleep(0.1)
    with grpc.insecure_channel(f"unix://{socket}") as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True,
            metadata=[("authorization", f"Bearer {SECRET}")])
    assert status.status == health_pb2.HealthCheckResponse.SERVING


def terminate(proc: subprocess.Popen) -> None:
    """How the gateway stops a runner: serving ends gracefully."""
    proc.send_signal(signal.SIGTERM)


def close_stdin(proc: subprocess.Popen) -> None:
    """What a gateway that died does: the lifeline exits at once."""
    proc.stdin.close()


@pytest.mark.parametrize("stop", [terminate, close_stdin])
def test_the_socket_file_is_private_and_removed_on_exit(tmp_path, stop):
    socket = tmp_path / "r0.sock"
    proc = launch(socket)
    try:
        wait_until_serving(proc, socket)
        assert stat.S_IMODE(os.stat(socket).st_mode) == 0o600
        stop(proc)
        try:
            status = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Seen once under a full test run's load; what the runner said last tells why next time.
            proc.kill()
            pytest.fail(f"the runner did not exit within 30 s of {stop.__name__}; its stderr ended:\n"
                        f"{proc.stderr.read().decode(errors='replace')[-3000:]}")
        assert status == 0
    finally:
        proc.kill()
        proc.stderr.close()
    assert not socket.exists()
