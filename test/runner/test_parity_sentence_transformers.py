"""The generic handler against sentence-transformers on models that need only a catalog entry."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from references import assert_distinct
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
    assert_distinct(ours.vectors)


@pytest.mark.parametrize("name", ["bge-small-en-v1.5", "embedding-gemma-300m"])
def test_token_embeddings_match_sentence_transformers(load, standins, name):
    # TEI's /embed_all: every token's state before pooling, prompt tokens included.
    handler = load(name, matryoshka_dims=())  # the real model's sizes do not fit the stand-in
    reference = SentenceTransformer(str(standins / name), device="cpu", local_files_only=True)
    prompt = handler.prompt_names[0] if handler.prompt_names else None
    ours = handler.token_embeddings(TEXTS + ["x"], EmbedOptions(prompt_name=prompt))
    want = reference.encode(TEXTS + ["x"], output_value="token_embeddings", prompt_name=prompt)
    assert len(ours.vectors) == len(want) == len(TEXTS) + 1
    assert [v.shape for v in ours.vectors] == [tuple(w.shape) for w in want]
    assert ours.token_counts == [w.shape[0] for w in want]
    for got, ref in zip(ours.vectors, want):
        assert np.abs(got - ref.numpy()).max() < 1e-4


def test_pooling_is_reported_from_the_saved_pooling_module(load):
    assert load("bge-small-en-v1.5").pooling == "cls"
    assert load("multilingual-e5-small").pooling == "mean"
