"""bge-m3 handler against FlagEmbedding's BGEM3FlagModel on the same (stand-in) weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from references import assert_distinct, m3_embedder
from runner.errors import ConfigError
from runner.handlers.base import EmbedOptions, SparseOutput

TEXTS = [
    "hello world",
    "What is BGE M3? A model for dense, sparse and multi-vector retrieval.",
    "repeat repeat repeat tokens to check the max over repeats",
    "Ünïcödé and punctuation!?",
    "a long input " * 120,  # longer than the stand-in's 512 positions: truncated by both
]


@pytest.fixture(scope="module")
def ours(load):
    return load("bge-m3")


@pytest.fixture(scope="module")
def reference(standins):
    model = m3_embedder(standins / "bge-m3")
    return model.encode(TEXTS, batch_size=4, max_length=512, return_dense=True, return_sparse=True,
                        return_colbert_vecs=True)


def cos(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_dense_matches(ours, reference):
    out = ours.embed(TEXTS, EmbedOptions())
    assert out.vectors.shape == reference["dense_vecs"].shape
    assert cos(out.vectors, reference["dense_vecs"]).min() >= 0.9999
    assert out.token_counts[-1] == 512
    assert_distinct(out.vectors)


def test_sparse_matches(ours, reference):
    out = ours.sparse(TEXTS, EmbedOptions())
    assert len(out.indices) == len(out.values) == len(reference["lexical_weights"]) == len(TEXTS)
    for indices, values, ref in zip(out.indices, out.values, reference["lexical_weights"]):
        ref_map = {int(k): float(v) for k, v in ref.items()}
        assert indices.tolist() == sorted(ref_map)
        assert np.allclose(values, [ref_map[i] for i in indices.tolist()], atol=1e-5, rtol=0)


def test_colbert_matches(ours, reference):
    out = ours.multi_vector(TEXTS, EmbedOptions())
    assert len(out.vectors) == len(reference["colbert_vecs"]) == len(TEXTS)
    assert_distinct([v.mean(0) for v in out.vectors])
    for got, ref, n in zip(out.vectors, reference["colbert_vecs"], out.token_counts):
        assert got.shape == ref.shape == (n - 1, 64)  # [CLS] dropped, </s> kept
        assert cos(got, ref).min() >= 0.9999


def test_capabilities_and_limits(ours):
    assert set(ours.capabilities) == {"text-embedding", "sparse-embedding", "multi-vector"}
    assert ours.max_tokens == 512  # the stand-in has 514 positions; the real model has 8194


def rows(out) -> list[np.ndarray]:
    """One array per input, whatever the kind of output."""
    if isinstance(out, SparseOutput):
        return [np.concatenate([i.astype(np.float32), v]) for i, v in zip(out.indices, out.values)]
    return list(out.vectors)


@pytest.mark.parametrize("kind", ["embed", "sparse", "multi_vector"])
def test_a_text_too_long_fails_alone_in_every_kind(ours, kind):
    opts = EmbedOptions(truncate=False)
    mixed = getattr(ours, kind)(TEXTS, opts)
    alone = getattr(ours, kind)(TEXTS[:4], opts)
    assert [(f.index, f.code) for f in mixed.errors] == [(4, "input_too_long")]
    assert "more than this model's 512; shorten it or allow truncation" in mixed.errors[0].message
    assert mixed.token_counts == alone.token_counts + [0]
    assert (len(rows(mixed)), len(rows(alone))) == (5, 4)
    for got, want in zip(rows(mixed), rows(alone)):
        assert np.array_equal(got, want)
    placeholder = rows(mixed)[4]
    assert placeholder.shape == {"embed": (ours.dimensions,), "sparse": (0,), "multi_vector": (0, 64)}[kind]
    assert not placeholder.any()


@pytest.mark.parametrize("head", ["colbert_linear.pt", "sparse_linear.pt"])
def test_refuses_to_start_without_a_head(load, standins, tmp_path, head):
    shutil.copytree(standins / "bge-m3", tmp_path / "bge-m3")
    (tmp_path / "bge-m3" / head).unlink()
    with pytest.raises(ConfigError, match=f"{head} is missing"):
        load("bge-m3", models_dir=tmp_path)
