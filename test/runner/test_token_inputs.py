"""Token-id inputs, tokenize/detokenize, truncation direction and normalize=False on the handlers."""

from __future__ import annotations

import numpy as np
import pytest

from runner.errors import InvalidInput
from runner.handlers.base import EmbedOptions

INPUT_TOO_LONG = "input_too_long"
LONG = "many words " * 300  # 602 tokens, past MiniLM's 256
LONG_REFUSED = (INPUT_TOO_LONG, "has 602 tokens, more than this model's 256; shorten it or allow truncation")


@pytest.fixture(scope="module")
def minilm(load, minilm_dir):
    return load("all-minilm-l6-v2", models_dir=minilm_dir.parent)


def test_model_vocabulary_ids_give_the_text_vectors(minilm):
    texts = ["hello world", "token ids of the model's own vocabulary"]
    ids = [[t.id for t in tokens] for tokens in minilm.tokenize(texts, add_special_tokens=True).texts]
    from_text = minilm.embed(texts, EmbedOptions())
    from_ids = minilm.embed(ids, EmbedOptions())
    assert np.allclose(from_text.vectors, from_ids.vectors, atol=1e-6)
    assert from_ids.token_counts == [len(i) for i in ids]


def failures(out) -> list[tuple[int, str, str]]:
    return [(f.index, f.code, f.message) for f in out.errors]


def test_bad_token_ids_fail_only_their_own_input(minilm):
    out = minilm.embed([[101, 7592, 102], [101, 999999, 102], [], [101, 2088, 102]], EmbedOptions())
    assert failures(out) == [(1, "invalid_token_ids", "has token id 999999, outside this model's vocabulary of 30522"),
                             (2, "empty_input", "has no tokens")]
    assert out.token_counts == [3, 0, 0, 3]
    assert out.vectors.shape == (4, 384) and not out.vectors[[1, 2]].any()
    alone = minilm.embed([[101, 7592, 102], [101, 2088, 102]], EmbedOptions()).vectors
    assert np.array_equal(out.vectors[[0, 3]], alone)


@pytest.mark.parametrize("nothing", ["\u0000", "\ufffd", " \t\n", "\u0000\u200b "])
def test_a_text_the_tokenizer_reads_nothing_of_fails_alone_as_empty(minilm, nothing):
    """As "" would: its vector would be that of no text at all, whatever the client meant."""
    texts = ["hello world", nothing, "x"]
    out = minilm.embed(texts, EmbedOptions())
    assert failures(out) == [(1, "empty_input", "has nothing this model reads once control characters and "
                                                "whitespace are dropped")]
    assert out.token_counts[1] == 0 and not out.vectors[1].any()
    assert np.array_equal(out.vectors[[0, 2]], minilm.embed(["hello world", "x"], EmbedOptions()).vectors)


def test_a_text_too_long_fails_alone_when_truncation_is_refused(minilm):
    texts = ["short one", LONG, "another short text", "x"]
    out = minilm.embed(texts, EmbedOptions(truncate=False))
    assert failures(out) == [(1, *LONG_REFUSED)]
    assert out.token_counts[1] == 0 and not out.vectors[1].any()
    alone = minilm.embed(texts[:1] + texts[2:], EmbedOptions(truncate=False))
    assert np.array_equal(out.vectors[[0, 2, 3]], alone.vectors)
    assert [n for i, n in enumerate(out.token_counts) if i != 1] == alone.token_counts


def test_ids_too_long_fail_alone_when_truncation_is_refused(minilm):
    out = minilm.embed([[101] + [2088] * 300 + [102], [101, 2088, 102]], EmbedOptions(truncate=False))
    assert failures(out) == [(0, INPUT_TOO_LONG, "has 302 tokens, more than this model's 256; shorten it or "
                                                 "allow truncation")]
    assert minilm.embed([[101] * 300], EmbedOptions()).token_counts == [256]  # truncation allowed: cut


def test_a_call_of_only_bad_inputs_succeeds_without_the_model(minilm, monkeypatch):
    monkeypatch.setattr(minilm, "_model", None)  # any forward pass would now raise
    out = minilm.embed([[], [999999], [5] * 300], EmbedOptions(truncate=False))
    assert [f.code for f in out.errors] == ["empty_input", "invalid_token_ids", INPUT_TOO_LONG]
    assert out.vectors.shape == (3, 384) and not out.vectors.any()
    assert out.token_counts == [0, 0, 0]


def test_what_every_input_shares_still_fails_the_call(minilm):
    with pytest.raises(InvalidInput, match="unknown prompt_name 'nope'"):
        minilm.embed([LONG], EmbedOptions(prompt_name="nope", truncate=False))
    with pytest.raises(InvalidInput, match="dimensions=12 is not supported") as refused:
        minilm.embed([[999999]], EmbedOptions(dimensions=12))
    assert (refused.value.param, refused.value.error_code) == ("dimensions", "unsupported_dimensions")


def test_detokenize_fails_only_sequences_outside_the_vocabulary(minilm):
    out = minilm.detokenize([[7592], [7592, 999999], [], [2088]], skip_special_tokens=True)
    assert out.texts == ["hello", "", "", "world"]
    assert failures(out) == [(1, "invalid_token_ids", "has token id 999999, outside this model's vocabulary of 30522")]
    assert minilm.detokenize([[30522]], skip_special_tokens=True).texts == [""]


def test_tokenize_gives_spans_and_detokenize_inverts_it(minilm):
    text = "Hello, world!"
    tokens = minilm.tokenize([text], add_special_tokens=True).texts[0]
    assert tokens[0].special and tokens[0].text == "[CLS]"
    assert [t.text for t in tokens[1:-1]] == [text[t.start:t.stop] for t in tokens[1:-1]] == ["Hello", ",", "world", "!"]
    ids = [t.id for t in tokens]
    assert minilm.detokenize([ids], skip_special_tokens=True).texts == ["hello, world!"]


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


def test_token_spans_are_utf8_byte_offsets(minilm):
    text = "Café – naïve 😀 ok"
    tokens = minilm.tokenize([text], add_special_tokens=True).texts[0]
    data = text.encode("utf-8")
    words = [t for t in tokens if not t.special]
    assert [data[t.start:t.stop].decode("utf-8") for t in words] == [t.text for t in words]
    assert words[-1].stop == len(data)  # bytes, not characters: the text is 24 bytes, 18 characters
    assert (tokens[0].start, tokens[0].stop) == (0, 0)
