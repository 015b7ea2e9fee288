"""`python -m runner` start-up failures: non-zero exit and a message a person can act on."""

from __future__ import annotations

import subprocess
import sys

from support import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--socket", "unix:///tmp/unused.sock", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_missing_weights_names_the_download_command(tmp_path):
    res = run("--model", "all-minilm-l6-v2", "--models-dir", str(tmp_path))
    assert res.returncode == 2
    assert "weights for 'all-minilm-l6-v2' are not in" in res.stderr
    assert "npm run download-models -- all-minilm-l6-v2" in res.stderr


def test_unknown_model_lists_the_catalog():
    res = run("--model", "nope")
    assert res.returncode == 2
    assert "known: all-minilm-l6-v2" in res.stderr


def test_unavailable_device_is_refused():
    res = run("--model", "all-minilm-l6-v2", "--device", "cuda:7")
    assert res.returncode == 2
    assert "cuda:7" in res.stderr
