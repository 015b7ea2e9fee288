"""Real client libraries, on their default settings, against the real server.

LangChain's OpenAIEmbeddings sends tiktoken token ids by default; the Cohere SDK parses rerank
answers strictly; schemathesis throws generated requests at every route of /openapi.json.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cohere
import numpy as np
import pytest

from conftest import RERANKER, start_gateway, stop_gateway
from support import MODEL

TEXTS = ["The food was delicious and the waiter was friendly.", "Edge servers embed text close to the user.",
         "token ids, not text, is what LangChain sends"]
DOCUMENTS = ["The giant panda is a bear species endemic to China.", "hi", "Pandas eat bamboo."]


@pytest.fixture(scope="module")
def server(models_dir):
    # Small input limits keep schemathesis's generated payloads quick to answer.
    proc, url = start_gateway({"MODELS": f"{MODEL},{RERANKER}", "MODELS_DIR": str(models_dir),
                               "MAX_BATCH_SIZE": "64", "MAX_TEXT_CHARS": "2000", "WARMUP_STEPS": "1"})
    yield url
    assert stop_gateway(proc) == 0


def test_langchain_openai_embeddings_with_defaults_match_the_raw_text(server, tiktoken_cache, st_minilm, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache))
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model=MODEL, base_url=f"{server}/v1", api_key="unused")
    assert embeddings.check_embedding_ctx_length  # the default: token ids go over the wire
    got = np.array(embeddings.embed_documents(TEXTS), dtype=np.float32)
    want = st_minilm.encode(TEXTS)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.99999
    query = np.array(embeddings.embed_query(TEXTS[0]), dtype=np.float32)
    assert float(query @ want[0]) / np.linalg.norm(query) / np.linalg.norm(want[0]) >= 0.99999


def test_huggingface_inference_client_uses_the_tei_root_route(server, st_minilm, monkeypatch):
    # InferenceClient(model=<url>) posts every task to the URL itself, as to a TEI endpoint.
    # The suite's offline switch guards the Hub; this client only talks to 127.0.0.1.
    from huggingface_hub import InferenceClient, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    client = InferenceClient(model=server)
    got = np.asarray(client.feature_extraction(TEXTS), dtype=np.float32)
    want = st_minilm.encode(TEXTS)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert got.shape == want.shape and cos.min() >= 0.99999
    sims = client.sentence_similarity(TEXTS[0], other_sentences=TEXTS[1:])
    assert np.allclose(sims, [float(want[0] @ w) / np.linalg.norm(want[0]) / np.linalg.norm(w) for w in want[1:]], atol=1e-5)


def test_cohere_v2_client_reranks(server):
    client = cohere.ClientV2(api_key="unused", base_url=server)
    res = client.rerank(model=RERANKER, query="What is a panda?", documents=DOCUMENTS, top_n=2)
    assert len(res.results) == 2
    assert res.results[0].relevance_score >= res.results[1].relevance_score
    assert {r.index for r in res.results} <= {0, 1, 2}


def test_cohere_v1_client_reranks_with_documents(server):
    client = cohere.Client(api_key="unused", base_url=server)
    res = client.rerank(model=RERANKER, query="What is a panda?", documents=DOCUMENTS, return_documents=True)
    assert len(res.results) == 3
    assert res.results[0].document.text in DOCUMENTS


def test_schemathesis_finds_no_server_error(server, tmp_path):
    res = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run", f"{server}/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", "25", "--seed", "1", "--request-timeout", "30",
         "--phases", "examples,coverage,fuzzing",
         # A server-sent event stream never ends, so each call would only wait out the timeout.
         "--exclude-path", "/stats/stream"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)  # its cache lands in cwd
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_openapi_document_is_valid_openapi_3_1(server):
    import json
    import urllib.request

    from openapi_spec_validator import validate

    with urllib.request.urlopen(f"{server}/openapi.json") as res:
        document = json.load(res)
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    assert {"/v1/embeddings", "/v1/rerank", "/embed", "/tokenize"} <= set(document["paths"])


def test_huggingface_inference_client_against_embed(server, st_minilm, monkeypatch):
    from huggingface_hub import InferenceClient, constants

    # The suite runs with HF_HUB_OFFLINE=1 so that nothing reaches the Hub; this call goes to
    # 127.0.0.1 only.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    client = InferenceClient(model=f"{server}/embed")  # a URL: posted to as it is, TEI-style
    got = np.asarray(client.feature_extraction(TEXTS), dtype=np.float32)
    want = st_minilm.encode(TEXTS)
    assert got.shape == want.shape
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.99999
