"""Starts real gateways (real runners, real models) for the Python end-to-end tests."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support import MODEL, ROOT

RERANKER = "ms-marco-minilm-l6-v2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(env: dict[str, str], log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Runs `node gateway/src/main.ts` and waits until /health is 200; its log lines go to log, if given."""
    port = _free_port()
    # fp32: the suites compare with sentence-transformers' fp32 vectors (auto is tested in precision.test.ts).
    full_env = {**os.environ, "MODELS": MODEL, "PORT": str(port), "LOG_LEVEL": "warn", "PRECISION": "fp32", **env}
    stdout = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([str(ROOT / "node_modules/.bin/node"), "gateway/src/main.ts"], cwd=ROOT, env=full_env,
                            stdout=stdout, stderr=subprocess.PIPE)
    if log:
        stdout.close()  # the child holds its own copy
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 150
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gateway exited with {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as res:
                if res.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            pytest.fail("gateway not healthy in time")
        time.sleep(0.25)


def stop_gateway(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


@pytest.fixture(scope="session")
def server_url():
    """The default model, on default settings."""
    proc, url = start_gateway({})
    yield url
    assert stop_gateway(proc) == 0


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """The real MiniLM plus a stand-in reranker, under their catalog names."""
    out = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, str(ROOT / "scripts/make_standins.py"), "--out", str(out), RERANKER],
                   check=True, capture_output=True)
    (out / MODEL).symlink_to(ROOT / "models" / MODEL)
    return out


@pytest.fixture(scope="session")
def tiktoken_cache(tmp_path_factory) -> Path:
    """OpenAI's cl100k_base ranks where Python's tiktoken looks before downloading them."""
    out = tmp_path_factory.mktemp("tiktoken")
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    ranks = subprocess.run([str(ROOT / "node_modules/.bin/node"), str(ROOT / "test/e2e_py/write_tiktoken_ranks.mjs")],
                           check=True, capture_output=True).stdout
    (out / hashlib.sha1(url.encode()).hexdigest()).write_bytes(ranks)
    return out
