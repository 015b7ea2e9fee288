"""embedding-gemma handler against sentence-transformers on the same (stand-in) weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from runner.errors import ConfigError, InvalidInput
from references import assert_distinct
from runner.handlers.base import EmbedOptions

# Longer than the stand-in's sliding window, so bidirectional sliding attention is exercised.
TEXTS = [
    "which planet is known as the red planet",
    "Mars is often called the red planet because of iron oxide on its surface.",
    "short",
    "a considerably longer passage about gardens, rivers and mountains " * 5,
]
PROMPTS = ["query", "document", "Clustering", "Classification", "STS", "Summarization", "Retrieval-query"]


@pytest.fixture(scope="module")
def ours(load):
    return load("embedding-gemma-300m", matryoshka_dims=(32, 16, 8))


@pytest.fixture(scope="module")
def reference(standins):
    return SentenceTransformer(str(standins / "embedding-gemma-300m"), device="cpu", local_files_only=True)


def cos(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_sliding_window_survives_save_and_reload(standins):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(standins / "embedding-gemma-300m")
    assert config.use_bidirectional_attention is True
    assert config.sliding_window < max(len(t.split()) for t in TEXTS)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_prompts_match(ours, reference, prompt):
    got = ours.embed(TEXTS, EmbedOptions(prompt_name=prompt)).vectors
    want = reference.encode(TEXTS, prompt_name=prompt)
    assert got.shape == want.shape
    assert cos(got, want).min() >= 0.9999
    assert_distinct(got)


def test_each_prompt_changes_the_vector(ours):
    """Prompts with different texts give different vectors of the same input."""
    prompts = ["query", "document", "Clustering", "STS"]  # four different prompt texts
    assert_distinct([ours.embed(TEXTS[:1], EmbedOptions(prompt_name=p)).vectors[0] for p in prompts])


def test_no_prompt_matches(ours, reference):
    assert cos(ours.embed(TEXTS, EmbedOptions()).vectors, reference.encode(TEXTS)).min() >= 0.9999


@pytest.mark.parametrize("dims", [64, 32, 16, 8])
def test_every_matryoshka_size_matches(ours, reference, dims):
    got = ours.embed(TEXTS, EmbedOptions(prompt_name="query", dimensions=dims)).vectors
    want = reference.encode(TEXTS, prompt_name="query", truncate_dim=dims, normalize_embeddings=True)
    assert got.shape == (len(TEXTS), dims)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert cos(got, want).min() >= 0.9999


def test_unsupported_size_and_prompt_are_refused(ours):
    with pytest.raises(InvalidInput, match="supported: 64, 32, 16, 8"):
        ours.embed(TEXTS, EmbedOptions(dimensions=12))
    with pytest.raises(InvalidInput, match="unknown prompt_name 'nope'"):
        ours.embed(TEXTS, EmbedOptions(prompt_name="nope"))


def test_bad_inputs_get_zero_rows_of_the_requested_size(ours):
    good = [2, 100, 7]
    opts = EmbedOptions(prompt_name="query", dimensions=16)
    out = ours.embed([[ours.vocab_size], good, []], opts)
    assert [f.code for f in out.errors] == ["invalid_token_ids", "empty_input"]
    assert out.vectors.shape == (3, 16) and not out.vectors[[0, 2]].any()
    assert np.array_equal(out.vectors[1], ours.embed([good], opts).vectors[0])


def test_a_text_that_adds_nothing_to_its_prompt_fails_as_empty(ours):
    out = ours.embed(["", "short"], EmbedOptions(prompt_name="query"))
    assert [(f.index, f.code) for f in out.errors] == [(0, "empty_input")]
    assert np.array_equal(out.vectors[1], ours.embed(["short"], EmbedOptions(prompt_name="query")).vectors[0])


def test_prompt_tokens_count_in_usage(ours):
    plain = ours.embed(["hello"], EmbedOptions()).token_counts[0]
    prompted = ours.embed(["hello"], EmbedOptions(prompt_name="query")).token_counts[0]
    assert prompted > plain


def test_float16_is_refused(load):
    with pytest.raises(ConfigError, match="overflows in float16"):
        load("embedding-gemma-300m", matryoshka_dims=(), dtype="float16")


def test_precision_on_accelerators_avoids_float16(monkeypatch):
    from runner.device_profile import precision_candidates
    from runner.handlers.embedding_gemma import EmbeddingGemmaHandler

    import contextlib

    # A GPU with native bf16, as this CPU-only machine can only pretend.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    assert precision_candidates(torch.device("cuda", 0), EmbeddingGemmaHandler.allows_float16) == ("bf16",)
    assert precision_candidates(torch.device("cuda", 0), True) == ("fp16", "bf16")
    assert precision_candidates(torch.device("mps"), EmbeddingGemmaHandler.allows_float16) == ()
    assert precision_candidates(torch.device("cpu"), EmbeddingGemmaHandler.allows_float16) == ("bf16", "int8")
    # A GPU that only emulates bf16 (a T4, a V100) is not offered it: it would be slower than fp32.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert precision_candidates(torch.device("cuda", 0), True) == ("fp16",)


def test_catalog_matryoshka_sizes_must_fit_the_model(load):
    with pytest.raises(ConfigError, match="exceed the model's 64 dimensions"):
        load("embedding-gemma-300m")  # the real model's 512/256/128 do not fit the stand-in
