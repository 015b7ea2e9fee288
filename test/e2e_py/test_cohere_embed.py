"""Cohere's embed API (v1 and v2) through the real `cohere` SDK, and the quantised embedding types.

The integer forms are checked three ways: exactly against the documented formula (and, for the
bit-packed ones, against sentence-transformers' quantize_embeddings) on the server's own floats;
for their range and shape; and by recall@10 against float search on a small retrieval set.
"""

from __future__ import annotations

import base64
import json
import math
import shutil

import cohere
import httpx
import numpy as np
import pytest
import torch
import yaml
from openai import OpenAI

try:
    from sentence_transformers.util.quantization import quantize_embeddings
except ImportError:  # older sentence-transformers
    from sentence_transformers.quantization import quantize_embeddings

from conftest import start_gateway, stop_gateway
from retrieval_corpus import documents, queries
from support import MODEL, ROOT

TEXTS = ["The food was delicious and the waiter was friendly.", "Edge servers embed text close to the user.",
         "Quantised vectors take a quarter of the space."]
TYPES = ["float", "int8", "uint8", "binary", "ubinary"]
PROMPTED = "minilm-prompts"
PROMPTS = {"query": "query: ", "document": "passage: ", "Classification": "classify this: "}
LONG = "lorem ipsum dolor sit amet " * 200  # far beyond MiniLM's 256 tokens


def int8_reference(floats: np.ndarray) -> np.ndarray:
    """The documented int8 rule: round(x · 127·√d / 5), ties up, clamped to [-128, 127]."""
    scale = 127 * math.sqrt(floats.shape[-1]) / 5
    return np.clip(np.floor(floats.astype(np.float64) * scale + 0.5), -128, 127).astype(np.int64)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def v1(server_url):
    return cohere.Client(api_key="unused", base_url=server_url)


@pytest.fixture(scope="module")
def v2(server_url):
    return cohere.ClientV2(api_key="unused", base_url=server_url)


@pytest.fixture(scope="module")
def prompted(tmp_path_factory, minilm_dir):
    """MiniLM under another name, with named prompts and Matryoshka sizes, to see which prompt each input_type gets."""
    root = tmp_path_factory.mktemp("prompted")
    model_dir = root / "models" / PROMPTED
    model_dir.mkdir(parents=True)
    for item in minilm_dir.iterdir():
        if item.name != "config_sentence_transformers.json":
            (model_dir / item.name).symlink_to(item)
    (model_dir / "config_sentence_transformers.json").write_text(json.dumps({"prompts": PROMPTS}))
    catalog = yaml.safe_load((ROOT / "configs/model_config.yaml").read_text())
    entry = next(m for m in catalog["models"] if m["name"] == MODEL)
    catalog["models"].append({**entry, "name": PROMPTED, "pip_package": None, "matryoshka_dims": [128, 64],
                              "default_prompts": {"query": "query", "document": "document"}})
    catalog["models"] = [{k: v for k, v in m.items() if v is not None} for m in catalog["models"]]
    (root / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    proc, url = start_gateway({"MODELS": PROMPTED, "MODELS_DIR": str(root / "models"),
                               "MODEL_CONFIG": str(root / "catalog.yaml"), "WARMUP_STEPS": "1"})
    yield url, model_dir
    assert stop_gateway(proc) == 0
    shutil.rmtree(root, ignore_errors=True)


def test_v1_floats_match_sentence_transformers(v1, st_minilm):
    res = v1.embed(texts=TEXTS, model=MODEL, input_type="search_document")
    assert res.response_type == "embeddings_floats"
    assert res.texts == TEXTS and isinstance(res.id, str) and res.id
    assert res.meta.api_version.version == "1"
    assert res.meta.billed_units.input_tokens > len(TEXTS)
    got = np.array(res.embeddings, dtype=np.float32)
    assert got.shape == (3, 384)
    assert cosines(got, st_minilm.encode(TEXTS)).min() >= 0.99999


def test_v1_without_model_uses_the_served_one(v1, st_minilm):
    res = v1.embed(texts=TEXTS[:1])
    assert cosines(np.array(res.embeddings), st_minilm.encode(TEXTS[:1])).min() >= 0.99999


def check_types(embeddings, st_minilm) -> None:
    """Every type's shape, range and exact values, derived from the float vectors of the same answer."""
    floats = np.array(embeddings.float_, dtype=np.float32)
    assert floats.shape == (len(TEXTS), 384)
    assert cosines(floats, st_minilm.encode(TEXTS)).min() >= 0.99999
    int8, uint8 = np.array(embeddings.int8), np.array(embeddings.uint8)
    binary, ubinary = np.array(embeddings.binary), np.array(embeddings.ubinary)
    assert int8.shape == uint8.shape == (len(TEXTS), 384)
    assert binary.shape == ubinary.shape == (len(TEXTS), 48)
    assert -128 <= int8.min() and int8.max() <= 127 and 0 <= uint8.min() and uint8.max() <= 255
    assert -128 <= binary.min() and binary.max() <= 127 and 0 <= ubinary.min() and ubinary.max() <= 255
    # The scale is meant to use the range without clipping MiniLM: values reach past ±40, never the ends.
    assert 40 < np.abs(int8).max() < 127
    assert np.array_equal(int8, int8_reference(floats))
    assert np.array_equal(uint8, int8 + 128)
    assert np.array_equal(binary, quantize_embeddings(floats, precision="binary"))
    assert np.array_equal(ubinary, quantize_embeddings(floats, precision="ubinary"))


def test_v1_every_embedding_type(v1, st_minilm):
    res = v1.embed(texts=TEXTS, model=MODEL, input_type="search_document", embedding_types=TYPES)
    assert res.response_type == "embeddings_by_type"
    assert res.texts == TEXTS
    check_types(res.embeddings, st_minilm)


def test_v2_every_embedding_type(v2, st_minilm):
    res = v2.embed(texts=TEXTS, model=MODEL, input_type="search_query", embedding_types=TYPES)
    assert res.response_type == "embeddings_by_type"
    assert res.meta.api_version.version == "2"
    assert res.meta.billed_units.input_tokens > len(TEXTS)
    check_types(res.embeddings, st_minilm)


def test_v2_answers_floats_by_default_and_base64_as_float32_bytes(v2):
    res = v2.embed(texts=TEXTS, model=MODEL, input_type="search_document")
    assert res.embeddings.float_ is not None and res.embeddings.int8 is None
    both = v2.embed(texts=TEXTS, model=MODEL, input_type="search_document", embedding_types=["base64", "float"])
    decoded = np.array([np.frombuffer(base64.b64decode(b), dtype="<f4") for b in both.embeddings.base64])
    assert np.array_equal(decoded, np.array(both.embeddings.float_, dtype=np.float32))


def test_v2_structured_inputs_join_their_text_parts(v2, st_minilm):
    res = v2.embed(model=MODEL, input_type="search_document", embedding_types=["float"],
                   inputs=[{"content": [{"type": "text", "text": "Edge servers embed text"},
                                        {"type": "text", "text": "close to the user."}]}])
    assert res.texts == ["Edge servers embed text\nclose to the user."]
    want = st_minilm.encode(["Edge servers embed text\nclose to the user."])
    assert cosines(np.array(res.embeddings.float_), want).min() >= 0.99999


def test_truncate_none_refuses_an_over_long_text(v1, v2):
    with pytest.raises(cohere.errors.BadRequestError) as err:
        v1.embed(texts=["short", LONG], model=MODEL, truncate="NONE")
    assert err.value.status_code == 400
    assert err.value.body["error"]["param"] == "texts"
    assert err.value.body["error"]["message"].startswith("texts[1]")
    with pytest.raises(cohere.errors.BadRequestError):
        v2.embed(texts=[LONG], model=MODEL, input_type="search_document", truncate="NONE")


def test_truncate_end_keeps_the_start_and_start_keeps_the_end(v2, st_minilm):
    text = "Pandas eat bamboo in the mountains of China. " + LONG + " The stock market fell sharply today."

    def vector(**truncate) -> np.ndarray:
        return np.array(v2.embed(texts=[text], model=MODEL, input_type="search_document", **truncate).embeddings.float_)

    end, start = vector(truncate="END"), vector(truncate="START")
    # END keeps the start, as sentence-transformers does; it is Cohere's default.
    assert cosines(end, st_minilm.encode([text])).min() >= 0.99999
    assert np.array_equal(vector(), end)
    # START keeps the last 254 tokens, between [CLS] and [SEP]; the model is run on those ids.
    tokenizer = st_minilm.tokenizer
    tail = tokenizer(text, add_special_tokens=False)["input_ids"][-(st_minilm.max_seq_length - 2):]
    assert tokenizer.decode(tail).endswith("the stock market fell sharply today.")
    ids = torch.tensor([[tokenizer.cls_token_id, *tail, tokenizer.sep_token_id]])
    with torch.no_grad():
        want = st_minilm({"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)})
    assert cosines(start, want["sentence_embedding"].numpy()).min() >= 0.99999
    assert cosines(start, end).min() < 0.99


def test_refused_fields_name_cohere_params(server_url):
    cases = [("/v2/embed", {"texts": ["a"], "input_type": "search_document", "output_dimension": 100}, "output_dimension"),
             ("/v2/embed", {"texts": ["a"], "input_type": "search_document", "max_tokens": 8}, "max_tokens"),
             ("/v1/embed", {"texts": ["a"], "input_type": "image"}, "input_type"),
             ("/v1/embed", {"texts": ["a"], "truncate": "MIDDLE"}, "truncate")]
    for path, body, param in cases:
        res = httpx.post(server_url + path, json=body)
        assert res.status_code == 400, (path, body, res.text)
        assert res.json()["error"]["param"] == param
    assert httpx.post(server_url + "/v2/embed", json={"texts": ["a"], "max_tokens": 256}).status_code == 200


def test_input_type_picks_the_model_prompt(prompted, st_minilm):
    url, _ = prompted
    client = cohere.ClientV2(api_key="unused", base_url=url)
    text = ["A bicycle has two wheels."]

    def vector(input_type: str) -> np.ndarray:
        return np.array(client.embed(texts=text, model=PROMPTED, input_type=input_type, embedding_types=["float"]).embeddings.float_)

    def want(prompt: str) -> np.ndarray:
        return st_minilm.encode([prompt + text[0]])

    # search_query and search_document: the catalog's default prompts; classification: the
    # model's own prompt of that name (Classification); clustering: no such prompt, so a document.
    for input_type, prompt in [("search_query", "query: "), ("search_document", "passage: "),
                               ("classification", "classify this: "), ("clustering", "passage: ")]:
        assert cosines(vector(input_type), want(prompt)).min() >= 0.99999, input_type


def test_output_dimension_cuts_to_a_matryoshka_size(prompted, st_minilm):
    url, _ = prompted
    client = cohere.ClientV2(api_key="unused", base_url=url)
    res = client.embed(texts=TEXTS, model=PROMPTED, input_type="search_document", embedding_types=["float", "int8", "ubinary"],
                       output_dimension=64)
    floats = np.array(res.embeddings.float_)
    want = st_minilm.encode(["passage: " + t for t in TEXTS])[:, :64]
    assert floats.shape == (3, 64) and np.allclose(np.linalg.norm(floats, axis=1), 1, atol=1e-5)
    assert cosines(floats, want).min() >= 0.99999
    assert np.array_equal(np.array(res.embeddings.int8), int8_reference(floats.astype(np.float32)))
    assert np.array(res.embeddings.ubinary).shape == (3, 8)


def test_openai_route_returns_integer_formats(server_url):
    client = OpenAI(base_url=f"{server_url}/v1", api_key="unused")
    floats = np.array([d.embedding for d in client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float").data],
                      dtype=np.float32)
    for fmt in ["int8", "uint8", "binary", "ubinary"]:
        raw = client.embeddings.with_raw_response.create(model=MODEL, input=TEXTS, encoding_format=fmt)  # type: ignore[arg-type]
        got = np.array([d["embedding"] for d in json.loads(raw.text)["data"]])
        assert got.dtype.kind == "i", fmt
        want = {"int8": int8_reference(floats), "uint8": int8_reference(floats) + 128,
                "binary": quantize_embeddings(floats, precision="binary"),
                "ubinary": quantize_embeddings(floats, precision="ubinary")}[fmt]
        assert np.array_equal(got, want), fmt
    res = httpx.post(f"{server_url}/v1/embeddings", json={"model": MODEL, "input": "x", "encoding_format": "int8", "normalize": False})
    assert res.status_code == 400 and res.json()["error"]["param"] == "encoding_format"


def recall_at_10(query_scores: np.ndarray, reference: np.ndarray) -> float:
    """Mean share of the reference top 10 that the scores' top 10 also holds (stable order breaks ties)."""
    top = np.argsort(-query_scores, axis=1, kind="stable")[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, reference)]))


def test_quantised_search_recalls_float_search(v2):
    def embed(texts: list[str], input_type: str):
        return v2.embed(texts=texts, model=MODEL, input_type=input_type, embedding_types=TYPES).embeddings

    docs, qs = embed(documents(), "search_document"), embed(queries(), "search_query")
    reference = np.argsort(-(np.array(qs.float_) @ np.array(docs.float_).T), axis=1, kind="stable")[:, :10]

    def hamming(a, b) -> np.ndarray:
        a, b = np.array(a, dtype=np.uint8), np.array(b, dtype=np.uint8)
        return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=-1).sum(-1)

    def l2(a, b) -> np.ndarray:
        a, b = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
        return (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]

    int8_q, int8_d = np.array(qs.int8, dtype=np.int64), np.array(docs.int8, dtype=np.int64)
    recalls = {
        "int8 dot": recall_at_10(int8_q @ int8_d.T, reference),
        "float query · int8 docs": recall_at_10(np.array(qs.float_) @ int8_d.T, reference),
        "uint8 L2": recall_at_10(-l2(qs.uint8, docs.uint8), reference),
        # uint8 read as is, without subtracting 128: the wrong way, shown for contrast.
        "uint8 dot, unshifted": recall_at_10(np.array(qs.uint8, dtype=np.int64) @ np.array(docs.uint8, dtype=np.int64).T, reference),
        "ubinary hamming": recall_at_10(-hamming(qs.ubinary, docs.ubinary), reference),
        # binary is the same bits: ubinary - 128 as a byte is ubinary XOR 0x80 on both sides.
        "binary hamming": recall_at_10(-hamming(np.array(qs.binary) & 0xFF, np.array(docs.binary) & 0xFF), reference),
    }
    print("\nrecall@10 against float search, %d documents, %d queries:" % (len(documents()), len(queries())))
    for name, value in recalls.items():
        print(f"  {name:26s} {value:.3f}")
    assert recalls["int8 dot"] >= 0.95
    assert recalls["float query · int8 docs"] >= 0.95
    assert recalls["uint8 L2"] >= 0.95
    # The advice of docs/api.md: uint8 ranks by L2, or by dot products only once 128 is subtracted.
    assert recalls["uint8 dot, unshifted"] < recalls["uint8 L2"]
    assert recalls["ubinary hamming"] == recalls["binary hamming"]
    assert recalls["ubinary hamming"] >= 0.6
