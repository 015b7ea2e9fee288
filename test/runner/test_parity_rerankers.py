"""Cross-encoder handler against FlagReranker (bge-reranker) and CrossEncoder (ms-marco)."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import CrossEncoder

from references import flag_reranker
from runner.errors import InvalidInput

QUERY = "what is the capital of france"
DOCS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "the quick brown fox",
    "France " + "a very long document about many things " * 80,  # past 512 tokens: doc side cut
]


@pytest.fixture(scope="module")
def bge(load):
    return load("bge-reranker-v2-m3")


@pytest.fixture(scope="module")
def marco(load):
    return load("ms-marco-minilm-l6-v2")


def test_bge_reranker_raw_and_sigmoid_match_flag_reranker(bge, standins):
    reference = flag_reranker(standins / "bge-reranker-v2-m3")
    pairs = [[QUERY, d] for d in DOCS]
    raw = np.array(reference.compute_score(pairs, max_length=512, normalize=False))
    sig = np.array(reference.compute_score(pairs, max_length=512, normalize=True))
    ours = bge.score(QUERY, DOCS, truncate=True, raw=True).scores
    assert ours.shape == raw.shape == (len(DOCS),)
    assert np.allclose(ours, raw, atol=1e-4)
    assert np.ptp(ours) > 0.1  # the documents' scores differ, so a swapped pair would show
    assert np.allclose(bge.score(QUERY, DOCS, truncate=True, raw=False).scores, sig, atol=1e-5)
    assert bge.score_activation == "sigmoid"


def test_ms_marco_matches_cross_encoder_with_identity(marco, standins):
    reference = CrossEncoder(str(standins / "ms-marco-minilm-l6-v2"), device="cpu", local_files_only=True)
    short = DOCS[:3]
    want = reference.predict([(QUERY, d) for d in short])
    assert marco.score_activation == "identity"
    got = marco.score(QUERY, short, truncate=True, raw=False).scores
    assert got.shape == want.shape == (len(short),)
    assert np.allclose(got, want, atol=1e-4)
    assert np.ptp(got) > 0.1
    assert np.allclose(marco.score(QUERY, short, truncate=True, raw=True).scores, got)


def test_sigmoid_replaces_the_models_own_activation_unless_raw(marco):
    """TEI's rule (a sigmoid for every model) and Cohere's activation "sigmoid", computed here only."""
    raw = marco.score(QUERY, DOCS[:3], truncate=True, raw=True).scores
    assert marco.score_activation == "identity"
    got = marco.score(QUERY, DOCS[:3], truncate=True, raw=False, sigmoid=True).scores
    assert np.allclose(got, 1 / (1 + np.exp(-raw.astype(np.float64))), atol=1e-6)
    assert np.array_equal(marco.score(QUERY, DOCS[:3], truncate=True, raw=True, sigmoid=True).scores, raw)


def test_only_the_document_side_is_truncated(marco):
    out = marco.score(QUERY, DOCS, truncate=True, raw=True)
    assert out.token_counts[3] == marco.max_tokens
    # The query survives whole: scoring the long document with more text after the cut
    # point changes nothing.
    longer = marco.score(QUERY, [DOCS[3] + " extra words at the end"], truncate=True, raw=True)
    assert np.isclose(longer.scores[0], out.scores[3])


def test_left_truncation_cuts_the_start_of_the_document(marco):
    """TEI's truncation_direction Left: text before the cut point no longer matters, text after does."""
    long = DOCS[3]
    left = marco.score(QUERY, [long, "opening words " + long], truncate=True, raw=True, truncate_side="left")
    assert left.token_counts == [marco.max_tokens] * 2
    assert left.scores[0] == pytest.approx(left.scores[1], abs=1e-6)
    ends = marco.score(QUERY, [long, long + " closing words"], truncate=True, raw=True, truncate_side="left")
    assert abs(ends.scores[0] - ends.scores[1]) > 1e-6


@pytest.mark.parametrize("raw", [True, False])
def test_a_document_too_long_fails_alone(bge, raw):
    """Score 0 even where the activation would turn a 0 logit into 0.5."""
    mixed = bge.score(QUERY, DOCS, truncate=False, raw=raw)
    alone = bge.score(QUERY, DOCS[:3], truncate=False, raw=raw)
    assert [(f.index, f.code, f.message) for f in mixed.errors] == [
        (3, "input_too_long", "does not fit with the query in 512 tokens; shorten it or allow truncation")]
    assert mixed.scores[3] == 0 and mixed.token_counts[3] == 0
    assert np.array_equal(mixed.scores[:3], alone.scores)
    assert mixed.token_counts[:3] == alone.token_counts


def test_a_document_of_nothing_the_model_reads_fails_alone_and_such_a_query_fails_the_call(marco):
    out = marco.score(QUERY, ["\u0000 \ufffd", DOCS[0]], truncate=True, raw=True)
    assert [(f.index, f.code) for f in out.errors] == [(0, "empty_input")]
    assert out.scores[1] == pytest.approx(marco.score(QUERY, DOCS[:1], truncate=True, raw=True).scores[0], abs=1e-6)
    with pytest.raises(InvalidInput, match="the query has nothing this model reads"):
        marco.score(" \u0000", DOCS[:1], truncate=True, raw=True)


def test_a_query_too_long_fails_the_whole_call(marco):
    with pytest.raises(InvalidInput, match="the query has"):
        marco.score(QUERY * 100, DOCS[:2], truncate=False, raw=True)


def test_rerankers_do_not_embed(marco):
    from runner.handlers.base import EmbedOptions

    with pytest.raises(InvalidInput, match="does not produce dense embeddings"):
        marco.embed(["x"], EmbedOptions())
