"""The handler interface every catalog model implements, and the batching shared by encoders."""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..catalog import CatalogEntry
from ..errors import InvalidInput
from .length_buckets import length_buckets


@dataclass(frozen=True)
class LoadContext:
    """Everything a handler needs to load: where, on what, and how big a forward may be."""

    entry: CatalogEntry
    model_dir: Path
    device: torch.device
    dtype: torch.dtype
    # Padded tokens allowed in one forward pass; bounds activation memory per sub-batch.
    max_batch_tokens: int


@dataclass(frozen=True)
class EmbedOutput:
    """Row-aligned with the input texts."""

    vectors: np.ndarray  # float32, shape (len(texts), dimensions)
    token_counts: list[int]


class Handler(ABC):
    """A loaded model. Handlers must be safe to call from several worker threads at once."""

    #: What the model can do; the gateway learns it from Info and routes accordingly.
    capabilities: ClassVar[tuple[str, ...]]

    @property
    @abstractmethod
    def dimensions(self) -> int:
        """Length of one output vector."""

    @property
    @abstractmethod
    def max_tokens(self) -> int:
        """Inputs are truncated to this many tokens, special tokens included."""

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype:
        """The dtype the weights run in."""

    @abstractmethod
    def embed(self, texts: list[str]) -> EmbedOutput:
        """Embeds a batch; called off the event loop, in a worker thread."""


class EncoderHandler(Handler):
    """Shared machinery for transformer encoders: tokenise, sort by length, pad per bucket.

    Sorting first means one long text pads only its own bucket instead of the whole batch, and
    the token budget keeps a batch of long texts from allocating one huge activation tensor.
    Subclasses provide `_encode`, the forward pass from padded tensors to one vector per row.
    """

    capabilities = ("text-embedding",)

    def __init__(self, ctx: LoadContext, tokenizer, max_tokens: int, dimensions: int) -> None:
        self._ctx = ctx
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        self._dimensions = dimensions
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
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def dtype(self) -> torch.dtype:
        return self._ctx.dtype

    def tokenizer(self):
        """This thread's tokenizer."""
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            tok = self._local.tokenizer = copy.deepcopy(self._tokenizer)
        return tok

    def _prepare(self, texts: list[str]) -> list[str]:
        """Hook for text-level preprocessing (lowercasing, prompts) before tokenising."""
        return texts

    @abstractmethod
    def _encode(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forward pass for one padded bucket; returns (rows, dimensions) on the device."""

    def embed(self, texts: list[str]) -> EmbedOutput:
        if not texts:
            raise InvalidInput("texts must not be empty")
        tok = self.tokenizer()
        enc = tok(
            self._prepare(texts),
            truncation=True,
            max_length=self._max_tokens,
            padding=False,
            return_attention_mask=False,
        )
        ids: list[list[int]] = enc["input_ids"]
        type_ids: list[list[int]] | None = enc.get("token_type_ids")
        lengths = [len(row) for row in ids]
        buckets = length_buckets(lengths, self._ctx.max_batch_tokens)
        padded = [self._pad(bucket, ids, type_ids, tok) for bucket in buckets]
        out = self._compute.submit(self._forward, buckets, padded, len(texts)).result()
        return EmbedOutput(out, lengths)

    def _forward(self, buckets, padded, rows: int) -> np.ndarray:
        out = np.empty((rows, self._dimensions), dtype=np.float32)
        with torch.inference_mode():
            for bucket, features in zip(buckets, padded):
                out[bucket] = self._encode(features).float().cpu().numpy()
        return out

    def _pad(self, rows, ids, type_ids, tok) -> dict[str, torch.Tensor]:
        """Pads one bucket on the tokenizer's own side; position ids depend on that side."""
        width = max(len(ids[i]) for i in rows)
        input_ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long) if type_ids is not None else None
        left = tok.padding_side == "left"
        for r, i in enumerate(rows):
            n = len(ids[i])
            span = slice(width - n, width) if left else slice(0, n)
            input_ids[r, span] = torch.tensor(ids[i])
            mask[r, span] = 1
            if types is not None:
                types[r, span] = torch.tensor(type_ids[i])
        device = self._ctx.device
        features = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
        if types is not None:
            features["token_type_ids"] = types.to(device)
        return features
