"""The fidelity gate: a non-reference path serves only if it embeds like the reference.

Both paths embed one fixed built-in corpus. The gate compares the vectors (mean and worst
cosine) and what a search over them returns (top-10 overlap of documents per query), since a
path can keep cosines high on average and still reorder neighbours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import ConfigError

#: What a gated output gives for a list of texts: a vector per text, or a matrix of token vectors per text.
Output = np.ndarray | list[np.ndarray]

_WORDS = (
    "the a river city model server vector search query document energy light water music history "
    "language market health garden network engine signal process design theory planet animal village "
    "company record mountain science school people number system world government state memory batch "
    "token latency throughput embedding neural train learn data cloud edge device battery sensor road "
    "weather rain storm summer winter food cook recipe price sale store book library story film actor"
).split()


def corpus(seed: int = 1234) -> tuple[list[str], list[str]]:
    """16 queries and 64 documents of 5 to 200 words: fixed, so every start checks the same thing."""
    rng = random.Random(seed)
    documents = [" ".join(rng.choices(_WORDS, k=rng.randint(5, 200))) + "." for _ in range(64)]
    # Each query reuses words of one document, so that it has real neighbours to find.
    queries = [" ".join(rng.sample(documents[i * 4].split(), k=min(6, len(documents[i * 4].split()))))
               for i in range(16)]
    return queries, documents


@dataclass(frozen=True)
class Thresholds:
    """The least a path must reach; configurable, with the defaults the README gives."""

    mean_cosine: float = 0.999
    worst_cosine: float = 0.995
    top10_overlap: float = 0.95


@dataclass(frozen=True)
class Fidelity:
    """How closely a path agreed with the reference on the corpus."""

    mean_cosine: float
    worst_cosine: float
    top10_overlap: float

    @staticmethod
    def weakest(measured: list["Fidelity"]) -> "Fidelity":
        """The lowest of each figure: a path is as faithful as the worst of the outputs it serves."""
        return Fidelity(min(f.mean_cosine for f in measured), min(f.worst_cosine for f in measured),
                        min(f.top10_overlap for f in measured))

    def failures(self, limits: Thresholds) -> list[str]:
        """What falls short of the limits, as phrases for the refusal message; empty if none."""
        checks = [("mean cosine", self.mean_cosine, limits.mean_cosine),
                  ("worst cosine", self.worst_cosine, limits.worst_cosine),
                  ("top-10 overlap", self.top10_overlap, limits.top10_overlap)]
        return [f"{name} {got:.5f} < {want}" for name, got, want in checks if got < want]


def measure(reference: Callable[[list[str]], Output], candidate: Callable[[list[str]], Output]) -> Fidelity:
    """Embeds the corpus both ways and compares the vectors and the searches over them.

    An output is either one vector per text (rows of an array), or one matrix of token vectors per
    text (ColBERT). Token vectors compare one by one, since a single drifting token moves a MaxSim
    score while a mean over tokens would hide it, and their search scores by MaxSim, as their
    users do.
    """
    queries, documents = corpus()
    texts = queries + documents
    ref, got = reference(texts), candidate(texts)
    n = len(queries)
    if isinstance(ref, np.ndarray):
        ref, got = _unit(ref), _unit(got)
        cos = _cosines(ref, got)
        scores = lambda v: v[:n] @ v[n:].T  # noqa: E731
    else:
        ref, got = [_unit(m) for m in ref], [_unit(m) for m in got]
        cos = _cosines(np.concatenate(ref), np.concatenate(got))
        scores = lambda v: np.array([[(q @ d.T).max(axis=1).sum() for d in v[n:]] for q in v[:n]])  # noqa: E731
    top_ref = np.argsort(-scores(ref), axis=1)[:, :10]
    top_got = np.argsort(-scores(got), axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top_got)])
    return Fidelity(float(cos.mean()), float(cos.min()), float(overlap))


def _cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Row by row, of unit rows; two empty rows (a text with no sparse weight either way) agree completely."""
    empty = ~ref.any(axis=1) & ~got.any(axis=1)
    return np.where(empty, 1.0, (ref * got).sum(axis=1))


def check(name: str, path: str, fidelity: Fidelity, limits: Thresholds) -> None:
    """Refuses to serve a path below the limits, with one line that says by how much."""
    failed = fidelity.failures(limits)
    if failed:
        raise ConfigError(f"{name}: the {path} path is too far from the reference to serve ({'; '.join(failed)}); "
                          "use precision fp32, or lower the FIDELITY_MIN_* settings knowingly")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
