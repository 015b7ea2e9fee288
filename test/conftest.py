"""Shared pytest fixtures: the repository root and the embedded default model's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import MODEL, ROOT

# The reference libraries must read local files only, exactly like the runner.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    path = ROOT / "models" / MODEL
    if not (path / "modules.json").is_file():
        pytest.fail(f"{path} is missing: run scripts/download_models.py {MODEL} (scripts/test.sh does)")
    return path


@pytest.fixture(scope="session")
def st_minilm(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu", local_files_only=True)
