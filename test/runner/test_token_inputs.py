"""Token-id inputs, tokenize/detokenize, truncation direction and normalize=False on the handlers."""

from __future__ import annotations

import numpy as np
import pytest

from runner.errors import InvalidInput
from runner.handlers.base import EmbedOptions


@pytest.fixture(scope="module")
def minilm(load, minilm_dir):
    return load("all-minilm-l6-v2", models_dir=minilm_dir.parent)


def test_model_vocabulary_ids_give_the_text_vectors(minilm):
    texts = ["hello world", "token ids of the model's own vocabulary"]
    ids = [[t.id for t in tokens] for tokens in minilm.tokenize(texts, add_special_tokens=True)]
    from_text = minilm.embed(texts, EmbedOptions())
    from_ids = minilm.embed(ids, EmbedOptions())
    assert np.allclose(from_text.vectors, from_ids.vectors, atol=1e-6)
    assert from_ids.token_counts == [len(i) for i in ids]


def test_ids_outside_the_vocabulary_are_refused(minilm):
    with pytest.raises(InvalidInput, match="token id 999999, outside this model's vocabulary of 30522"):
        minilm.embed([[101, 999999, 102]], EmbedOptions())


def test_tokenize_gives_spans_and_detokenize_inverts_it(minilm):
    text = "Hello, world!"
    tokens = minilm.tokenize([text], add_special_tokens=True)[0]
    assert tokens[0].special and tokens[0].text == "[CLS]"
    assert [t.text for t in tokens[1:-1]] == [text[t.start:t.stop] for t in tokens[1:-1]] == ["Hello", ",", "world", "!"]
    ids = [t.id for t in tokens]
    assert minilm.detokenize([ids], skip_special_tokens=True) == ["hello, world!"]


def test_left_truncation_keeps_the_end(minilm):
    text = " ".join(f"w{i}" for i in range(400))
    right = minilm.embed([text], EmbedOptions()).vectors
    left = minilm.embed([text], EmbedOptions(truncate_side="left")).vectors
    tail = minilm.embed([" ".join(f"w{i}" for i in range(300, 400))], EmbedOptions()).vectors
    assert not np.allclose(left, right, atol=1e-3)
    assert float(left[0] @ tail[0]) > float(right[0] @ tail[0])


def test_normalize_false_returns_the_unnormalised_vector(minilm):
    plain = minilm.embed(["some text"], EmbedOptions(normalize=False)).vectors[0]
    unit = minilm.embed(["some text"], EmbedOptions()).vectors[0]
    assert abs(np.linalg.norm(plain) - 1) > 1e-3
    assert np.allclose(plain / np.linalg.norm(plain), unit, atol=1e-6)
