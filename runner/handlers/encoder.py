"""Shared machinery for transformer encoders: tokenise, bucket by length, pad, compute."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..errors import InvalidInput
from .base import EmbedOptions, Handler, Inputs, LoadContext, Token
from .length_buckets import length_buckets


@dataclass(frozen=True)
class Tokenized:
    """Unpadded token ids of a batch, one list per input."""

    ids: list[list[int]]
    type_ids: list[list[int]] | None

    @property
    def lengths(self) -> list[int]:
        return [len(row) for row in self.ids]


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

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

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

    def tokenize(self, texts: list[str], add_special_tokens: bool) -> list[list[Token]]:
        tok = self.tokenizer()
        enc = tok(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                  return_special_tokens_mask=True)
        result = []
        for text, ids, spans, specials in zip(texts, enc["input_ids"], enc["offset_mapping"],
                                              enc["special_tokens_mask"]):
            pieces = tok.convert_ids_to_tokens(ids)
            result.append([
                Token(i, piece if special else text[a:b], bool(special), 0 if special else a, 0 if special else b)
                for i, piece, (a, b), special in zip(ids, pieces, spans, specials)
            ])
        return result

    def detokenize(self, sequences: list[list[int]], skip_special_tokens: bool) -> list[str]:
        self._check_ids(sequences)
        return self.tokenizer().batch_decode(sequences, skip_special_tokens=skip_special_tokens)

    def _check_ids(self, sequences: list[list[int]]) -> None:
        size = self.vocab_size
        for i, seq in enumerate(sequences):
            bad = next((t for t in seq if t >= size), None)
            if bad is not None:
                raise InvalidInput(f"input {i} has token id {bad}, outside this model's vocabulary of {size}")

    def prepare(self, inputs: Inputs, opts: EmbedOptions, prefix: str = "") -> Tokenized:
        """Token ids for a batch of texts (with an optional prompt prefix) or of ready-made ids."""
        if not inputs:
            raise InvalidInput("inputs must not be empty")
        if isinstance(inputs[0], list):
            return self._from_ids(inputs, opts)
        return self.encode_texts([prefix + t for t in inputs], opts.truncate, opts.truncate_side)

    def _from_ids(self, sequences: list[list[int]], opts: EmbedOptions) -> Tokenized:
        """Ids of the model's own vocabulary, used as given apart from truncation."""
        self._check_ids(sequences)
        cut = []
        for i, seq in enumerate(sequences):
            if not seq:
                raise InvalidInput(f"input {i} has no tokens")
            if len(seq) > self._max_tokens:
                if not opts.truncate:
                    raise InvalidInput(f"input {i} has {len(seq)} tokens, more than this model's "
                                       f"{self._max_tokens}; shorten it or allow truncation")
                seq = seq[-self._max_tokens:] if opts.truncate_side == "left" else seq[: self._max_tokens]
            cut.append(list(seq))
        uses_types = "token_type_ids" in self._tokenizer.model_input_names
        return Tokenized(cut, [[0] * len(s) for s in cut] if uses_types else None)

    def encode_texts(self, texts: list[str], truncate: bool, side: str = "right") -> Tokenized:
        """Token ids cut at max_tokens, or an InvalidInput naming the first input that is too long."""
        if not texts:
            raise InvalidInput("texts must not be empty")
        tok = self.tokenizer()
        tok.truncation_side = side  # this thread's own copy
        enc = tok(texts, truncation=True, max_length=self._max_tokens, padding=False,
                  return_attention_mask=False)
        result = Tokenized(enc["input_ids"], enc.get("token_type_ids"))
        if not truncate:
            # Only inputs that reached the limit can have been cut; count those in full.
            for i, n in enumerate(result.lengths):
                if n == self._max_tokens:
                    full = len(tok(texts[i])["input_ids"])
                    if full > self._max_tokens:
                        raise InvalidInput(
                            f"input {i} has {full} tokens, more than this model's {self._max_tokens}; "
                            "shorten it or allow truncation")
        return result

    def _run(self, batch: Tokenized, forward: Callable[[dict[str, torch.Tensor]], list[Any]]) -> list[Any]:
        """Runs forward on each length bucket on the compute thread; results in input order."""
        buckets = length_buckets(batch.lengths, self._ctx.max_batch_tokens)
        tok = self.tokenizer()
        padded = [self._pad(bucket, batch, tok.pad_token_id, tok.padding_side) for bucket in buckets]

        def compute() -> list[Any]:
            out: list[Any] = [None] * len(batch.ids)
            with torch.inference_mode():
                for bucket, features in zip(buckets, padded):
                    for row, value in zip(bucket, forward(features)):
                        out[row] = value
            return out

        return self._compute.submit(compute).result()

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
