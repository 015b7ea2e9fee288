"""The generic handler against sentence-transformers on models that need only a catalog entry."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from runner.handlers.base import EmbedOptions

TEXTS = ["query: how do plants make energy", "passage: Photosynthesis turns light into chemical energy.",
         "short", "A longer text, with punctuation; and numbers 1234. " * 12]


@pytest.mark.parametrize("name", ["bge-small-en-v1.5", "multilingual-e5-small"])
def test_matches_sentence_transformers(load, standins, name):
    ours = load(name).embed(TEXTS, EmbedOptions())
    want = SentenceTransformer(str(standins / name), device="cpu", local_files_only=True).encode(TEXTS)
    cos = (ours.vectors * want).sum(1) / np.linalg.norm(ours.vectors, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999
    assert np.abs(ours.vectors - want).max() < 1e-5
