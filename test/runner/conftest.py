"""Fixtures for handler tests: the stand-in models and a way to load any handler."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch

from runner.catalog import load_catalog
from runner.loader import load_handler
from support import ROOT


@pytest.fixture(scope="session")
def standins(tmp_path_factory) -> Path:
    """All stand-in models, built once per session by scripts/make_standins.py."""
    spec = importlib.util.spec_from_file_location("make_standins", ROOT / "scripts/make_standins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("standins")
    module.main(["--out", str(out)])
    return out


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(ROOT / "configs/model_config.yaml")


@pytest.fixture(scope="session")
def load(catalog, standins):
    """load(name, **entry_overrides) -> handler for the stand-in, via the real loader and catalog."""

    def _load(name: str, models_dir: Path | None = None, max_batch_tokens: int = 16384, **overrides):
        entry = dataclasses.replace(catalog[name], **overrides)
        return load_handler(entry, models_dir or standins, torch.device("cpu"), max_batch_tokens)

    return _load
