"""Classifier handler against transformers' text-classification pipeline on the same weights.

The pipeline is what Infinity serves and what TEI's softmax reproduces, so matching it is what
makes /predict and /classify answer like their peers.
"""

from __future__ import annotations

import numpy as np
import pytest
from transformers import pipeline

from runner.errors import InvalidInput

TEXTS = [
    "I love this movie, it is wonderful",
    "terrible awful bad",
    "the weather report said it might rain on tuesday",
]
PAIRS = [
    ("A man is eating pasta.", "Someone is eating."),
    ("A man is eating pasta.", "Nobody is eating anything."),
    ("The cat sleeps on the sofa.", "A dog runs in the park."),
]
LONG = "a very long review about many different things " * 80  # far past 512 tokens
#: Probabilities agree to float32 rounding; logits (up to ~10 here) to a little more.
PROB_ATOL = 1e-5
LOGIT_ATOL = 1e-4


@pytest.fixture(scope="module")
def sst2(load):
    return load("distilbert-sst-2")


@pytest.fixture(scope="module")
def emotions(load):
    return load("roberta-base-go-emotions")


@pytest.fixture(scope="module")
def nli(load):
    return load("nli-distilroberta-base")


@pytest.fixture(scope="module")
def reference(standins):
    """pipeline(name) -> transformers' text-classification pipeline on the stand-in, all labels."""
    cache = {}

    def _reference(name: str):
        if name not in cache:
            cache[name] = pipeline("text-classification", model=str(standins / name), top_k=None, device="cpu")
        return cache[name]

    return _reference


def table(results, labels) -> np.ndarray:
    """The pipeline's best-first [{label, score}] lists as rows in the handler's label order."""
    return np.array([[{r["label"]: r["score"] for r in row}[label] for label in labels] for row in results])


def as_pipeline_input(x):
    return x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]}


def test_single_label_softmax_matches_pipeline(sst2, reference):
    out = sst2.classify(TEXTS, truncate=True, raw=False)
    want = table(reference("distilbert-sst-2")(TEXTS), out.labels)
    assert out.labels == ("NEGATIVE", "POSITIVE")
    assert sst2.activation == "softmax"
    assert np.allclose(out.scores, want, atol=PROB_ATOL, rtol=0)
    assert np.allclose(out.scores.sum(axis=1), 1, atol=1e-6)
    # The stand-in tells inputs apart, so agreement above is not agreement on a constant.
    assert np.ptp(out.scores[:, 1]) > 0.05
    assert out.token_counts == [len(sst2.tokenizer()(t)["input_ids"]) for t in TEXTS]
    assert not out.errors


def test_multi_label_sigmoid_matches_pipeline(emotions, reference):
    out = emotions.classify(TEXTS, truncate=True, raw=False)
    pipe = reference("roberta-base-go-emotions")
    want = table(pipe(TEXTS), out.labels)
    assert len(out.labels) == 28 and out.labels[0] == "admiration" and out.labels[-1] == "neutral"
    assert emotions.activation == "sigmoid"
    assert np.allclose(out.scores, want, atol=PROB_ATOL, rtol=0)
    # The pipeline's default here is its sigmoid, not a softmax: rows are independent per label.
    assert np.allclose(want, table(pipe(TEXTS, function_to_apply="sigmoid"), out.labels))
    assert not np.allclose(out.scores.sum(axis=1), 1, atol=0.1)
    assert np.ptp(out.scores, axis=0).max() > 0.05


@pytest.mark.parametrize("name", ["distilbert-sst-2", "roberta-base-go-emotions"])
def test_raw_scores_are_the_pipelines_logits(load, reference, name):
    handler = load(name)
    out = handler.classify(TEXTS, truncate=True, raw=True)
    want = table(reference(name)(TEXTS, function_to_apply="none"), out.labels)
    assert np.allclose(out.scores, want, atol=LOGIT_ATOL, rtol=0)
    assert np.abs(out.scores).max() > 1  # logits, not probabilities


def test_pairs_match_pipeline_and_mix_with_lone_texts(nli, reference):
    pipe = reference("nli-distilroberta-base")
    out = nli.classify(PAIRS, truncate=True, raw=False)
    assert out.labels == ("contradiction", "entailment", "neutral")
    assert np.allclose(out.scores, table(pipe([as_pipeline_input(p) for p in PAIRS]), out.labels),
                       atol=PROB_ATOL, rtol=0)
    # A pair is read as one sequence, not as its first text.
    alone = nli.classify([PAIRS[0][0]], truncate=True, raw=False)
    assert not np.allclose(alone.scores[0], out.scores[0], atol=1e-3)
    mixed = [PAIRS[0], TEXTS[0], PAIRS[1], TEXTS[1]]
    got = nli.classify(mixed, truncate=True, raw=False)
    want = table(pipe([as_pipeline_input(x) for x in mixed]), got.labels)
    assert np.allclose(got.scores, want, atol=PROB_ATOL, rtol=0)
    assert got.token_counts[0] == out.token_counts[0]


@pytest.mark.parametrize("side", ["right", "left"])
def test_long_inputs_are_cut_as_the_pipeline_cuts_them(nli, reference, side):
    pipe = reference("nli-distilroberta-base")
    inputs = [LONG, (LONG, "short hypothesis"), ("short premise", LONG)]
    out = nli.classify(inputs, truncate=True, raw=False, truncate_side=side)
    pipe.tokenizer.truncation_side = side
    try:
        want = table(pipe([as_pipeline_input(x) for x in inputs], truncation=True), out.labels)
    finally:
        pipe.tokenizer.truncation_side = "right"
    assert np.allclose(out.scores, want, atol=PROB_ATOL, rtol=0)
    assert out.token_counts == [nli.max_tokens] * 3


def test_a_failing_input_fails_only_itself(nli):
    """Over-long inputs without truncation fail alone; the rest is computed as if they were absent."""
    good = [TEXTS[0], PAIRS[0], TEXTS[1]]
    mixed = [TEXTS[0], LONG, PAIRS[0], ("premise", LONG), TEXTS[1]]
    alone = nli.classify(good, truncate=False, raw=False)
    out = nli.classify(mixed, truncate=False, raw=False)
    assert [(f.index, f.code) for f in out.errors] == [(1, "input_too_long"), (3, "input_too_long")]
    assert all(f.message.startswith("has ") and "more than this model's 512" in f.message for f in out.errors)
    for row in (1, 3):
        assert not out.scores[row].any() and out.token_counts[row] == 0
    assert np.array_equal(out.scores[[0, 2, 4]], alone.scores)
    assert [out.token_counts[i] for i in (0, 2, 4)] == alone.token_counts


def test_only_classifiers_classify(load, sst2):
    with pytest.raises(InvalidInput, match="does not classify"):
        load("ms-marco-minilm-l6-v2").classify(["x"], truncate=True, raw=False)
    with pytest.raises(InvalidInput, match="does not rerank"):
        sst2.score("q", ["d"], truncate=True, raw=False)
    with pytest.raises(InvalidInput, match="must not be empty"):
        sst2.classify([], truncate=True, raw=False)
    assert sst2.capabilities == ("classify",) and sst2.dimensions == 0
