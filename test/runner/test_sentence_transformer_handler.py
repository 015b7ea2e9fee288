"""The generic sentence-transformers handler against sentence-transformers itself."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from runner import compute_threads
from runner.catalog import CatalogEntry
from runner.handlers.base import EmbedOptions, LoadContext
from runner.handlers.sentence_transformer import SentenceTransformerHandler

TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "MiXeD CaSe and punctuation!!! should match the reference tokenizer.",
    "Ünïcödé, emoji 🚀 and CJK 漢字.",
    "A long passage about embeddings. " * 120,  # past max_seq_length: truncated
    "x",
]


def make_handler(model_dir: Path, max_batch_tokens: int = 16384, max_tokens=None) -> SentenceTransformerHandler:
    entry = CatalogEntry(name="all-minilm-l6-v2", hf_repo_id="x/y", handler="a.B", max_tokens=max_tokens)
    ctx = LoadContext(entry=entry, model_dir=model_dir, device=torch.device("cpu"),
                      dtype=torch.float32, max_batch_tokens=max_batch_tokens)
    return SentenceTransformerHandler(ctx)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def handler(minilm_dir):
    return make_handler(minilm_dir)


def test_matches_sentence_transformers(handler, st_minilm):
    ours = handler.embed(TEXTS, EmbedOptions())
    ref = st_minilm.encode(TEXTS, batch_size=32, convert_to_numpy=True)
    assert ours.vectors.dtype == np.float32
    assert ours.vectors.shape == (len(TEXTS), 384)
    assert cosines(ours.vectors, ref).min() >= 0.99999
    assert np.abs(ours.vectors - ref).max() < 1e-5


def test_facts_come_from_the_saved_modules(handler):
    assert handler.dimensions == 384
    assert handler.max_tokens == 256
    assert handler.capabilities == ("text-embedding",)


def test_token_counts_match_the_reference_tokenizer(handler, st_minilm):
    counts = handler.embed(TEXTS, EmbedOptions()).token_counts
    expected = [len(st_minilm.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in TEXTS]
    assert counts == expected
    assert counts[4] == 256


def test_tiny_token_budget_gives_the_same_vectors(minilm_dir, handler):
    """Length buckets change only how rows are grouped, never the numbers."""
    small = make_handler(minilm_dir, max_batch_tokens=64)
    a, b = handler.embed(TEXTS, EmbedOptions()).vectors, small.embed(TEXTS, EmbedOptions()).vectors
    assert cosines(a, b).min() >= 0.99999


def test_catalog_max_tokens_caps_the_model_limit(minilm_dir):
    capped = make_handler(minilm_dir, max_tokens=16)
    assert capped.max_tokens == 16
    assert capped.embed(TEXTS, EmbedOptions()).token_counts[4] == 16


def test_forward_passes_use_the_threads_the_call_asked_for(handler):
    def compute_thread_count() -> int:
        return handler._compute.submit(torch.get_num_threads).result()

    alone = compute_threads.alone()
    try:
        with compute_threads.requested_for_call(1):
            handler.embed(["one thread"], EmbedOptions())
        assert compute_thread_count() == 1
        handler.embed(["no request: the runner's own count"], EmbedOptions())
        assert compute_thread_count() == alone
        with compute_threads.requested_for_call(1):
            handler.embed(["one thread"], EmbedOptions())
        with compute_threads.requested_for_call(alone):
            handler.embed(["all of them again"], EmbedOptions())
        assert compute_thread_count() == alone
    finally:
        handler._compute.submit(torch.set_num_threads, alone).result()


def test_safe_from_several_threads(handler):
    expected = handler.embed(TEXTS, EmbedOptions()).vectors
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: handler.embed(TEXTS, EmbedOptions()).vectors, range(8)))
    for got in results:
        assert cosines(got, expected).min() >= 0.99999


def test_bfloat16_on_the_cpu_stays_close_to_float32(minilm_dir, handler):
    """dtype: bfloat16 is the opt-in fast path on CPUs with native bf16 (documented trade-off)."""
    entry = CatalogEntry(name="all-minilm-l6-v2", hf_repo_id="x/y", handler="a.B", dtype="bfloat16")
    ctx = LoadContext(entry=entry, model_dir=minilm_dir, device=torch.device("cpu"),
                      dtype=torch.bfloat16, max_batch_tokens=16384)
    fast = SentenceTransformerHandler(ctx)
    got = fast.embed(TEXTS, EmbedOptions()).vectors
    assert got.dtype == np.float32
    assert cosines(got, handler.embed(TEXTS, EmbedOptions()).vectors).min() >= 0.99


def test_a_call_past_its_deadline_abandons_its_remaining_passes(minilm_dir, monkeypatch):
    """The gateway has answered 503 by then; passes nobody reads would only delay the next call."""
    from runner import call_deadline
    from runner.errors import CallExpired

    handler = make_handler(minilm_dir, max_batch_tokens=64)  # many passes for these texts
    passes = []
    model = handler._model
    monkeypatch.setattr(handler, "_model", lambda **features: passes.append(1) or model(**features))
    clock = iter([99.0, 101.0, 101.0])  # in time for the first pass, late for the second
    monkeypatch.setattr(call_deadline.time, "time", lambda: next(clock))
    with call_deadline.until(100_000), pytest.raises(CallExpired, match="deadline passed during its forward passes"):
        handler.embed(TEXTS, EmbedOptions())
    assert len(passes) == 1
    monkeypatch.undo()
    with call_deadline.until(0):  # no deadline: every pass runs
        assert handler.embed(TEXTS, EmbedOptions()).vectors.shape == (len(TEXTS), 384)
