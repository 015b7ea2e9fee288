"""The official openai Python SDK, on its default settings, against the real server."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from support import MODEL

TEXTS = ["hello world", "Edge servers embed text close to the user.", "🚀 unicode too", "short"]


def test_default_sdk_settings_get_the_reference_vectors(server_url, st_minilm):
    client = openai.OpenAI(base_url=f"{server_url}/v1", api_key="unused")
    res = client.embeddings.create(model=MODEL, input=TEXTS)
    got = np.array([d.embedding for d in res.data], dtype=np.float32)
    ref = st_minilm.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.99999
    assert res.usage.prompt_tokens == res.usage.total_tokens > 0
    assert [d.index for d in res.data] == list(range(len(TEXTS)))


def test_float_format_and_single_string(server_url, st_minilm):
    client = openai.OpenAI(base_url=f"{server_url}/v1", api_key="unused")
    res = client.embeddings.create(model=MODEL, input="hello world", encoding_format="float")
    assert len(res.data) == 1
    ref = st_minilm.encode(["hello world"])[0]
    assert np.allclose(res.data[0].embedding, ref, atol=1e-5)


def test_sdk_sees_openai_errors(server_url):
    client = openai.OpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="not-served", input="x")
    assert info.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL, input="")


def test_models_list(server_url):
    client = openai.OpenAI(base_url=f"{server_url}/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == [MODEL]
