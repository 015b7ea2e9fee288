"""The reference implementations the handlers are held to, loaded for tests.

FlagEmbedding 1.4's package __init__ imports every model it ships, and some of those (decoder
rerankers, fine-tuning code) import names that Transformers 5 removed. The two classes needed
here (M3Embedder, BaseReranker) work with Transformers 5, so their modules are imported
directly, with the package's __init__ files stepped over.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

_PACKAGES = [
    "FlagEmbedding", "FlagEmbedding.inference", "FlagEmbedding.inference.embedder",
    "FlagEmbedding.inference.embedder.encoder_only", "FlagEmbedding.inference.reranker",
    "FlagEmbedding.inference.reranker.encoder_only", "FlagEmbedding.finetune",
    "FlagEmbedding.finetune.embedder", "FlagEmbedding.finetune.embedder.encoder_only",
]


def _flag_module(name: str):
    if "FlagEmbedding" not in sys.modules:
        root = Path(importlib.util.find_spec("FlagEmbedding").submodule_search_locations[0])
        for package in _PACKAGES:
            module = types.ModuleType(package)
            module.__path__ = [str(root.joinpath(*package.split(".")[1:]))]
            sys.modules[package] = module
    return importlib.import_module(name)


def m3_embedder(path: Path):
    """FlagEmbedding's BGEM3FlagModel (M3Embedder), in fp32 on the CPU."""
    cls = _flag_module("FlagEmbedding.inference.embedder.encoder_only.m3").M3Embedder
    return cls(str(path), use_fp16=False, devices="cpu")


def flag_reranker(path: Path):
    """FlagEmbedding's FlagReranker (BaseReranker), in fp32 on the CPU."""
    cls = _flag_module("FlagEmbedding.inference.reranker.encoder_only.base").BaseReranker
    return cls(str(path), use_fp16=False, devices="cpu")


def assert_distinct(rows, most_alike: float = 0.99) -> None:
    """Fails when two rows (vectors of different inputs) point the same way, cosine above most_alike.

    Parity with a reference proves nothing on weights that give every input the same output; this
    keeps the stand-ins honest.
    """
    import numpy as np

    unit = np.asarray(rows, dtype=np.float64)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -1)
    assert sims.max() < most_alike, f"rows {np.unravel_index(sims.argmax(), sims.shape)} have cosine {sims.max():.5f}"
