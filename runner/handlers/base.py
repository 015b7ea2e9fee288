"""The handler interface every catalog model implements, and what it returns.

Every output is row-aligned with the call's inputs. An input the handler cannot process is
listed in the output's `errors` and holds a placeholder row (zeros, empty, score 0, 0 tokens);
the other rows are computed as if it were not there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..catalog import CatalogEntry
from ..errors import InputFailure, InvalidInput
from ..precision_report import PrecisionReport



@dataclass(frozen=True)
class LoadContext:
    """Everything a handler needs to load: where, on what, and how big a forward may be."""

    entry: CatalogEntry
    model_dir: Path
    device: torch.device
    dtype: torch.dtype
    # Padded tokens allowed in one forward pass; bounds activation memory per sub-batch.
    max_batch_tokens: int


#: A batch of inputs: texts, or token ids of the model's own vocabulary.
Inputs = list[str] | list[list[int]]


@dataclass(frozen=True)
class EmbedOptions:
    """Per-request choices that change what a handler computes."""

    # A prompt of the model's own (e.g. "query"); None means the model's default for the request.
    prompt_name: str | None = None
    # Matryoshka size to cut dense vectors to; None means the model's full size.
    dimensions: int | None = None
    # False refuses inputs longer than the model's limit instead of cutting them.
    truncate: bool = True
    # "left" drops tokens from the start when cutting, "right" from the end.
    truncate_side: str = "right"
    # False returns dense vectors before the model's final L2 normalisation.
    normalize: bool = True


@dataclass(frozen=True)
class Token:
    """One token of a tokenised text, with its span in the text as UTF-8 byte offsets.

    Bytes rather than characters because TEI's clients index the UTF-8 text with them, and
    characters would mean different things to Python (code points) and JavaScript (UTF-16).
    Special tokens have no span: 0, 0.
    """

    id: int
    text: str
    special: bool
    start: int
    stop: int


@dataclass(frozen=True)
class EmbedOutput:
    """Dense vectors, row-aligned with the inputs; a failed input's row is zeros."""

    vectors: np.ndarray  # float32, shape (len(inputs), dimensions)
    token_counts: list[int]
    errors: tuple[InputFailure, ...] = ()


@dataclass(frozen=True)
class SparseOutput:
    """Lexical weights per input: token ids and their weights, ids ascending; empty if failed."""

    indices: list[np.ndarray]  # uint32 per input
    values: list[np.ndarray]  # float32 per input
    token_counts: list[int]
    errors: tuple[InputFailure, ...] = ()


@dataclass(frozen=True)
class MultiVectorOutput:
    """One matrix of token vectors per input (ColBERT style); no rows for a failed input."""

    vectors: list[np.ndarray]  # float32, shape (tokens_i, dimensions) per input
    token_counts: list[int]
    errors: tuple[InputFailure, ...] = ()


@dataclass(frozen=True)
class ScoreOutput:
    """One relevance score per document, in the documents' order; 0 for a failed document."""

    scores: np.ndarray  # float32, shape (len(documents),)
    token_counts: list[int]  # tokens of each (query, document) pair
    errors: tuple[InputFailure, ...] = ()


#: One input of a classifier: a text, or a pair of texts read together (premise, hypothesis).
ClassifyInput = str | tuple[str, str]


@dataclass(frozen=True)
class ClassifyOutput:
    """Scores of every label per input, row-aligned; a failed input's row is zeros."""

    labels: tuple[str, ...]  # in id order; the columns of `scores`
    scores: np.ndarray  # float32, shape (len(inputs), len(labels))
    token_counts: list[int]
    errors: tuple[InputFailure, ...] = ()


@dataclass(frozen=True)
class TokenizeOutput:
    """The tokens of each text; no tokens for a failed text."""

    texts: list[list[Token]]
    errors: tuple[InputFailure, ...] = ()


@dataclass(frozen=True)
class DetokenizeOutput:
    """The text of each sequence of token ids; "" for a failed sequence."""

    texts: list[str]
    errors: tuple[InputFailure, ...] = ()


class Handler(ABC):
    """A loaded model. Handlers must be safe to call from several worker threads at once.

    Each capability is one method; a handler overrides those it has and lists them in
    `capabilities`, which the gateway reads from Info to route requests.
    """

    #: What the model can do: text-embedding, sparse-embedding, multi-vector, rerank, classify.
    capabilities: ClassVar[tuple[str, ...]]
    #: False for models whose activations overflow float16: on a GPU, precision weighs bf16 alone.
    allows_float16: ClassVar[bool] = True
    #: What the model runs in and how close it is to the reference; set by runner/precision.py
    #: once loaded (a PrecisionReport), and None for a handler used on its own, as in tests.
    precision: PrecisionReport | None = None

    def release_compute_team(self) -> None:
        """Lets go of the CPU threads a handler's own compute thread keeps for forward passes,
        once the callers' threads run them instead (compute_threads.on_this_thread)."""

    @property
    @abstractmethod
    def dimensions(self) -> int:
        """Length of one dense output vector (0 for models without one)."""

    @property
    @abstractmethod
    def max_tokens(self) -> int:
        """Inputs are truncated to this many tokens, special tokens included."""

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype:
        """The dtype the weights run in."""

    @property
    def prompt_names(self) -> tuple[str, ...]:
        """Names of the model's own prompts."""
        return ()

    @property
    def matryoshka_dims(self) -> tuple[int, ...]:
        """Sizes dense vectors may be cut to; empty when only the full size is meaningful."""
        return ()

    @property
    def labels(self) -> tuple[str, ...]:
        """A classifier's labels in id order; empty for other models."""
        return ()

    @property
    def pooling(self) -> str:
        """How dense vectors are pooled from token states ("mean", "cls", ...); "" without dense output."""
        return ""

    @property
    def score_activation(self) -> str:
        """What turns a raw score into the model's calibrated one: sigmoid or identity."""
        return "identity"

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids in the model's vocabulary; token-id inputs must be below it."""

    @abstractmethod
    def tokenize(self, texts: list[str], add_special_tokens: bool) -> TokenizeOutput:
        """The model's tokenisation of each text, with spans."""

    @abstractmethod
    def detokenize(self, sequences: list[list[int]], skip_special_tokens: bool) -> DetokenizeOutput:
        """Text for each sequence of token ids; ids outside the vocabulary fail that sequence."""

    def embed(self, inputs: Inputs, opts: EmbedOptions) -> EmbedOutput:
        """Dense vectors; called off the event loop, in a worker thread."""
        raise InvalidInput("this model does not produce dense embeddings")

    def sparse(self, inputs: Inputs, opts: EmbedOptions) -> SparseOutput:
        """Sparse lexical weights."""
        raise InvalidInput("this model does not produce sparse embeddings")

    def multi_vector(self, inputs: Inputs, opts: EmbedOptions) -> MultiVectorOutput:
        """Per-token vectors."""
        raise InvalidInput("this model does not produce multi-vector embeddings")

    def token_embeddings(self, inputs: Inputs, opts: EmbedOptions) -> MultiVectorOutput:
        """The encoder's last hidden state for every token, special tokens included, before pooling."""
        raise InvalidInput("this model does not produce token embeddings")

    def score(self, query: str, documents: list[str], truncate: bool, raw: bool,
              max_doc_tokens: int | None = None, truncate_side: str = "right", sigmoid: bool = False) -> ScoreOutput:
        """Relevance of each document to the query; raw skips the model's activation, sigmoid puts
        a sigmoid in its place."""
        raise InvalidInput("this model does not rerank")

    def classify(self, inputs: list[ClassifyInput], truncate: bool, raw: bool,
                 truncate_side: str = "right") -> ClassifyOutput:
        """Scores of every label for each text or pair; raw skips the model's activation."""
        raise InvalidInput("this model does not classify")
