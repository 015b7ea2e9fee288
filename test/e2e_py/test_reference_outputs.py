"""Rerank scores and sparse and ColBERT outputs over HTTP, against their reference libraries.

test/runner holds each handler to FlagEmbedding and sentence-transformers in process. These tests
hold the whole server to them on the same stand-in weights, through each dialect's answer shape:
each score must reach the client next to its own document and index, and each row next to its own
input. The stand-ins' scores and vectors differ from input to input, so a gateway that paired them
wrongly would fail here.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import numpy as np
import pytest
from sentence_transformers import CrossEncoder

from conftest import start_gateway, stop_gateway
from references import assert_distinct, flag_reranker, m3_embedder
from support import ROOT

M3, BGE_RERANKER, MARCO = "bge-m3", "bge-reranker-v2-m3", "ms-marco-minilm-l6-v2"
QUERY = "what is the capital of france"
DOCS = ["Paris is the capital and largest city of France.", "Berlin is the capital of Germany.",
        "the quick brown fox", "France has many cities, and its capital is Paris.", "Madrid lies in Spain."]
TEXTS = ["hello world", "What is BGE M3? A model for dense, sparse and multi-vector retrieval.",
         "repeat repeat repeat tokens", "Ünïcödé and punctuation!?"]


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference-models")
    subprocess.run([sys.executable, str(ROOT / "scripts/make_standins.py"), "--out", str(out), M3, BGE_RERANKER, MARCO],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def server(standins):
    proc, url = start_gateway({"MODELS": f"{M3},{BGE_RERANKER},{MARCO}", "MODELS_DIR": str(standins),
                               "WARMUP_STEPS": "1"})
    yield url
    assert stop_gateway(proc) == 0


@pytest.fixture(scope="module")
def raw_scores(standins) -> dict[str, np.ndarray]:
    """Each reranker's logit for every (QUERY, document) pair, from its reference library."""
    marco = CrossEncoder(str(standins / MARCO), device="cpu", local_files_only=True)
    bge = flag_reranker(standins / BGE_RERANKER)
    scores = {MARCO: np.asarray(marco.predict([(QUERY, d) for d in DOCS]), dtype=np.float64),  # identity activation
              BGE_RERANKER: np.asarray(bge.compute_score([[QUERY, d] for d in DOCS], normalize=False), dtype=np.float64)}
    for values in scores.values():
        assert np.ptp(values) > 0.1  # scores that differ, so that a wrong pairing shows
    return scores


def post(url: str, path: str, body: dict):
    res = httpx.post(url + path, json=body, timeout=60)
    assert res.status_code == 200, res.text
    return res.json()


def check_ranking(results: list[dict], expected: np.ndarray, score: str, text: str | None) -> None:
    """Every document once, best first, each with its own score (and text, where the dialect returns it)."""
    assert sorted(r["index"] for r in results) == list(range(len(DOCS)))
    got = [r[score] for r in results]
    assert got == sorted(got, reverse=True)
    for r in results:
        assert r[score] == pytest.approx(expected[r["index"]], abs=1e-4)
        if text is not None:
            assert (r[text] if text == "text" else r[text]["text"]) == DOCS[r["index"]]


@pytest.mark.parametrize("model", [MARCO, BGE_RERANKER])
def test_every_rerank_dialect_gives_each_document_its_own_reference_score(server, raw_scores, model):
    raw = raw_scores[model]
    # Cohere and Jina: the model's own activation, an identity for ms-marco and a sigmoid for bge.
    calibrated = raw if model == MARCO else sigmoid(raw)
    for path in ("/v1/rerank", "/v2/rerank"):
        body = post(server, path, {"model": model, "query": QUERY, "documents": DOCS, "return_documents": True})
        check_ranking(body["results"], calibrated, "relevance_score", "document")
    # llama.cpp's route, documents given as objects.
    body = post(server, "/reranking", {"model": model, "query": QUERY, "documents": [{"text": d} for d in DOCS]})
    check_ranking(body["results"], calibrated, "relevance_score", None)
    # TEI: a sigmoid for every model unless raw_scores.
    check_ranking(post(server, "/rerank", {"model": model, "query": QUERY, "texts": DOCS, "return_text": True}),
                  sigmoid(raw), "score", "text")
    check_ranking(post(server, "/rerank", {"model": model, "query": QUERY, "texts": DOCS, "raw_scores": True}),
                  raw, "score", None)


@pytest.fixture(scope="module")
def m3_reference(standins):
    return m3_embedder(standins / M3).encode(TEXTS, batch_size=4, max_length=512, return_dense=True,
                                             return_sparse=True, return_colbert_vecs=True)


def test_sparse_weights_over_http_match_flag_embedding(server, m3_reference):
    want = [{int(k): float(v) for k, v in weights.items()} for weights in m3_reference["lexical_weights"]]
    tei = post(server, "/embed_sparse", {"model": M3, "inputs": TEXTS})
    openai = post(server, "/v1/embeddings", {"model": M3, "input": TEXTS, "embedding_type": "sparse",
                                             "encoding_format": "float"})["data"]
    assert len(tei) == len(openai) == len(want) == len(TEXTS)
    assert [d["index"] for d in openai] == list(range(len(TEXTS)))
    for row, item, ref in zip(tei, openai, want):
        got = {e["index"]: e["value"] for e in row}
        assert sorted(got) == sorted(ref)
        assert np.allclose([got[k] for k in sorted(ref)], [ref[k] for k in sorted(ref)], atol=1e-5, rtol=0)
        assert dict(zip(item["embedding"]["indices"], item["embedding"]["values"])) == got
    assert all(want) and len({tuple(sorted(r)) for r in want}) == len(TEXTS)  # each text has its own weights


def test_colbert_and_dense_vectors_over_http_match_flag_embedding(server, m3_reference):
    colbert = post(server, "/v1/embeddings", {"model": M3, "input": TEXTS, "embedding_type": "colbert",
                                              "encoding_format": "float"})["data"]
    dense = post(server, "/v1/embeddings", {"model": M3, "input": TEXTS, "encoding_format": "float"})["data"]
    assert len(colbert) == len(dense) == len(m3_reference["colbert_vecs"]) == len(TEXTS)
    for item, ref in zip(colbert, m3_reference["colbert_vecs"]):
        got = np.asarray(item["embedding"], dtype=np.float64)
        assert got.shape == ref.shape
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() >= 0.9999
    vectors = np.asarray([d["embedding"] for d in dense], dtype=np.float64)
    want = np.asarray(m3_reference["dense_vecs"], dtype=np.float64)
    cos = (vectors * want).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999
    assert_distinct(vectors)
