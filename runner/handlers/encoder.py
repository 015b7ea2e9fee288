"""Shared machinery for transformer encoders: tokenise, bucket by length, pad, compute."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from .. import compute_threads, tracing
from ..errors import EMPTY_INPUT, INVALID_TOKEN_IDS, ConfigError, InputFailure, InvalidInput, too_long
from .base import (DetokenizeOutput, EmbedOptions, Handler, Inputs, LoadContext, MultiVectorOutput, Token,
                   TokenizeOutput)
from .length_buckets import length_buckets


@dataclass(frozen=True)
class Tokenized:
    """Unpadded token ids of a batch, one list per input; a failed input's list is empty."""

    ids: list[list[int]]
    type_ids: list[list[int]] | None
    failures: tuple[InputFailure, ...] = ()

    @property
    def lengths(self) -> list[int]:
        """Tokens per input, 0 for a failed one: what usage reports."""
        return [len(row) for row in self.ids]

    @property
    def computed_rows(self) -> list[int]:
        """Indices of the inputs that go through the model."""
        return rows_left(len(self.ids), self.failures)

    def with_failures(self, failures: list[InputFailure]) -> "Tokenized":
        """This batch with failures added; their ids are dropped, so they count no tokens."""
        failed = {f.index for f in failures}

        def keep(rows: list[list[int]]) -> list[list[int]]:
            return [[] if i in failed else row for i, row in enumerate(rows)]

        return Tokenized(keep(self.ids), None if self.type_ids is None else keep(self.type_ids),
                         self.failures + tuple(failures))


def rows_left(count: int, failures: Iterable[InputFailure]) -> list[int]:
    """Indices of a call's inputs that did not fail, in order: the only ones worth computing."""
    failed = {f.index for f in failures}
    return [i for i in range(count) if i not in failed]


class EncoderHandler(Handler):
    """Base for handlers built on a Hugging Face tokenizer and a transformer encoder.

    Sorting first means one long text pads only its own bucket instead of the whole batch, and
    the token budget keeps a batch of long texts from allocating one huge activation tensor.
    Subclasses turn one padded bucket into per-row results with `_run`.
    """

    def __init__(self, ctx: LoadContext, tokenizer, max_tokens: int) -> None:
        self._ctx = ctx
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        # Fast tokenizers hold a Rust-side borrow while encoding, so concurrent calls on one
        # instance fail; each worker thread gets its own copy instead.
        self._local = threading.local()
        # Every forward pass runs on this one thread. Two at once would only split the same
        # cores (or GPU) between them, and torch's CPU kernels keep one OpenMP thread team per
        # calling thread: passes arriving from alternating threads cost ~30% more on a small
        # CPU. Tokenising and padding stay on the callers' threads, so with two workers the
        # next batch is prepared while the current one computes.
        self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute")

    #: Set by handlers whose forward passes call `self._model(**features)` and read one tensor of
    #: the answer (`encoder_output`): the folder of that model's weights. Another backend's model
    #: that answers the same call can then replace the PyTorch one (see runner/precision.py).
    encoder_dir: Path | None = None
    #: The field of the model's answer that the forward passes read.
    encoder_output: str = "last_hidden_state"

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def device(self) -> torch.device:
        return self._ctx.device

    def encoder(self) -> tuple[Any, Path]:
        """The encoder another backend may replace, and the folder its weights came from."""
        if self.encoder_dir is None:
            raise ConfigError(f"{self._ctx.entry.name}: precision int8 is not available for its handler; use fp32")
        return self._model, self.encoder_dir

    def use_encoder(self, encoder: Any) -> None:
        """Runs every later forward pass on encoder, which answers calls as `encoder()` did."""
        self._model = encoder

    @property
    def dtype(self) -> torch.dtype:
        return self._ctx.dtype

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)

    def tokenizer(self):
        """This thread's tokenizer."""
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            tok = self._local.tokenizer = copy.deepcopy(self._tokenizer)
        return tok

    def tokenize(self, texts: list[str], add_special_tokens: bool) -> TokenizeOutput:
        tok = self.tokenizer()
        enc = tok(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                  return_special_tokens_mask=True)
        result = []
        for text, ids, spans, specials in zip(texts, enc["input_ids"], enc["offset_mapping"],
                                              enc["special_tokens_mask"]):
            pieces = tok.convert_ids_to_tokens(ids)
            at = _utf8_offsets(text)
            result.append([
                Token(i, piece, True, 0, 0) if special else Token(i, text[a:b], False, at[a], at[b])
                for i, piece, (a, b), special in zip(ids, pieces, spans, specials)
            ])
        return TokenizeOutput(result)

    def detokenize(self, sequences: list[list[int]], skip_special_tokens: bool) -> DetokenizeOutput:
        failures = [f for i, seq in enumerate(sequences) if (f := self._vocabulary_failure(i, seq))]
        rows = rows_left(len(sequences), failures)
        decoded = self.tokenizer().batch_decode([sequences[i] for i in rows], skip_special_tokens=skip_special_tokens)
        texts = [""] * len(sequences)
        for i, text in zip(rows, decoded):
            texts[i] = text
        return DetokenizeOutput(texts, tuple(failures))

    def _vocabulary_failure(self, index: int, seq: list[int]) -> InputFailure | None:
        """The refusal of a sequence holding an id the model has no embedding for, if it does."""
        size = self.vocab_size
        bad = next((t for t in seq if t >= size), None)
        if bad is None:
            return None
        return InputFailure(index, f"has token id {bad}, outside this model's vocabulary of {size}",
                            INVALID_TOKEN_IDS)

    def prepare(self, inputs: Inputs, opts: EmbedOptions, prefix: str = "") -> Tokenized:
        """Token ids for a batch of texts (with an optional prompt prefix) or of ready-made ids."""
        if not inputs:
            raise InvalidInput("inputs must not be empty")
        if isinstance(inputs[0], list):
            return self._from_ids(inputs, opts)
        return self.encode_texts([prefix + t for t in inputs], opts.truncate, opts.truncate_side)

    def _from_ids(self, sequences: list[list[int]], opts: EmbedOptions) -> Tokenized:
        """Ids of the model's own vocabulary, used as given apart from truncation."""
        failures = [f for i, seq in enumerate(sequences) if (f := self._ids_failure(i, seq, opts.truncate))]
        limit = self._max_tokens
        cut = [list(seq[-limit:] if opts.truncate_side == "left" else seq[:limit]) for seq in sequences]
        uses_types = "token_type_ids" in self._tokenizer.model_input_names
        return Tokenized(cut, [[0] * len(s) for s in cut] if uses_types else None).with_failures(failures)

    def _ids_failure(self, index: int, seq: list[int], truncate: bool) -> InputFailure | None:
        """Why a sequence of token ids cannot be embedded, if it cannot."""
        if not seq:
            return InputFailure(index, "has no tokens", EMPTY_INPUT)
        if len(seq) > self._max_tokens and not truncate:
            return too_long(index, len(seq), self._max_tokens)
        return self._vocabulary_failure(index, seq)

    def encode_texts(self, texts: list[str], truncate: bool, side: str = "right") -> Tokenized:
        """Token ids cut at max_tokens; without truncate, longer texts fail instead."""
        tok = self.tokenizer()
        tok.truncation_side = side  # this thread's own copy
        with tracing.span("tokenize", **{"edge_embed.inputs": len(texts)}):
            enc = tok(texts, truncation=True, max_length=self._max_tokens, padding=False,
                      return_attention_mask=False)
        batch = Tokenized(enc["input_ids"], enc.get("token_type_ids"))
        return batch if truncate else batch.with_failures(self._overlong_texts(tok, texts, batch.lengths))

    def _overlong_texts(self, tok, texts: list[str], lengths: list[int]) -> list[InputFailure]:
        """Refusals for the texts truncation cut; only those that reached the limit can have been."""
        failures = []
        for i, n in enumerate(lengths):
            if n == self._max_tokens:
                full = len(tok(texts[i])["input_ids"])
                if full > self._max_tokens:
                    failures.append(too_long(i, full, self._max_tokens))
        return failures

    def _run(self, batch: Tokenized, forward: Callable[[dict[str, torch.Tensor]], list[Any]],
             placeholder: Any) -> list[Any]:
        """Runs forward on each length bucket on the compute thread; results in input order.

        Only the inputs that did not fail are computed, so they get exactly the buckets they
        would get alone; each failed input's result is placeholder. With no input left, the
        compute thread is not even asked.
        """
        out: list[Any] = [placeholder] * len(batch.ids)
        rows = batch.computed_rows
        if not rows:
            return out
        buckets = [[rows[k] for k in bucket]
                   for bucket in length_buckets([batch.lengths[i] for i in rows], self._ctx.max_batch_tokens)]
        tok = self.tokenizer()
        padded = [self._pad(bucket, batch, tok.pad_token_id, tok.padding_side) for bucket in buckets]

        threads = compute_threads.requested()

        def compute() -> list[Any]:
            compute_threads.apply(threads)
            with torch.inference_mode():
                for bucket, features in zip(buckets, padded):
                    for row, value in zip(bucket, forward(features)):
                        out[row] = value
            return out

        attributes = {"edge_embed.rows": len(rows), "edge_embed.buckets": len(buckets),
                      "edge_embed.tokens": sum(batch.lengths[i] for i in rows)} if tracing.enabled() else {}
        with tracing.span("forward", **attributes):
            return self._compute.submit(compute).result()

    def _token_states(self, model, batch: Tokenized) -> MultiVectorOutput:
        """Every non-padding token's last hidden state from model, the bare encoder."""
        def forward(features):
            states = model(**features).last_hidden_state.float().cpu().numpy()
            keep = features["attention_mask"].bool().cpu().numpy()
            return [states[r][keep[r]] for r in range(states.shape[0])]

        width = model.config.hidden_size
        return MultiVectorOutput(self._run(batch, forward, np.empty((0, width), np.float32)),
                                 batch.lengths, batch.failures)

    def _pad(self, rows: list[int], batch: Tokenized, pad_id: int, side: str) -> dict[str, torch.Tensor]:
        """Pads one bucket on the tokenizer's own side; position ids depend on that side."""
        width = max(len(batch.ids[i]) for i in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long) if batch.type_ids is not None else None
        for r, i in enumerate(rows):
            n = len(batch.ids[i])
            span = slice(width - n, width) if side == "left" else slice(0, n)
            input_ids[r, span] = torch.tensor(batch.ids[i])
            mask[r, span] = 1
            if types is not None:
                types[r, span] = torch.tensor(batch.type_ids[i])
        device = self._ctx.device
        features = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
        if types is not None:
            features["token_type_ids"] = types.to(device)
        return features


def _utf8_offsets(text: str) -> list[int]:
    """UTF-8 byte offset of each character position of text, and of its end."""
    offsets = [0] * (len(text) + 1)
    for i, ch in enumerate(text):
        offsets[i + 1] = offsets[i] + len(ch.encode("utf-8", "surrogatepass"))
    return offsets


def to_numpy_rows(vectors: torch.Tensor) -> list[np.ndarray]:
    """A (rows, dims) tensor on any device and dtype as float32 numpy rows."""
    return list(vectors.float().cpu().numpy())


def matryoshka(vectors: np.ndarray, dimensions: int | None, full: int, allowed: tuple[int, ...],
               normalize: bool = True) -> np.ndarray:
    """Cuts vectors to a Matryoshka size and (unless asked not to) normalises them again."""
    if dimensions is None or dimensions == full:
        return vectors
    if dimensions not in allowed:
        sizes = ", ".join(str(d) for d in sorted(set(allowed) | {full}, reverse=True))
        raise InvalidInput(f"dimensions={dimensions} is not supported by this model; supported: {sizes}")
    cut = vectors[:, :dimensions]
    if not normalize:
        return cut
    return cut / np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)
