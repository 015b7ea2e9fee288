"""The fidelity gate: a non-reference path serves only if it answers like the reference.

Both paths embed, rerank or classify one fixed built-in corpus. The gate compares the vectors
(mean and worst cosine) and what a search over them returns (top-10 overlap of documents per
query), since a path can keep cosines high on average and still reorder neighbours. Scores are
compared the same way, by correlation and top-10 overlap (see compare_scores).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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
    """The least a path must reach; configurable, with the defaults docs/reliability.md gives."""

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
        """The lowest of each figure: a path is as faithful as the worst of the outputs it serves.
        A NaN anywhere stays NaN, which then fails the gate."""
        return Fidelity(*(float(np.min([getattr(f, name) for f in measured]))
                          for name in ("mean_cosine", "worst_cosine", "top10_overlap")))

    def failures(self, limits: Thresholds) -> list[str]:
        """What falls short of the limits, as phrases for the refusal message; empty if none."""
        checks = [("mean cosine", self.mean_cosine, limits.mean_cosine),
                  ("worst cosine", self.worst_cosine, limits.worst_cosine),
                  ("top-10 overlap", self.top10_overlap, limits.top10_overlap)]
        # Not `got < want`: a NaN (a path that answers NaN for some input) must fail, not pass.
        return [f"{name} {got:.5f} < {want}" for name, got, want in checks if not got >= want]


def compare_vectors(ref: Output, got: Output) -> Fidelity:
    """Compares two paths' vectors of the corpus's texts (queries first) and the searches over them.

    An output is either one vector per text (rows of an array), or one matrix of token vectors per
    text (ColBERT). Token vectors compare one by one, since a single drifting token moves a MaxSim
    score while a mean over tokens would hide it, and their search scores by MaxSim, as their
    users do.
    """
    n = len(corpus()[0])
    if isinstance(ref, np.ndarray):
        ref, got = _unit(ref), _unit(got)
        cos = _cosines(ref, got)
        scores = lambda v: v[:n] @ v[n:].T  # noqa: E731
    else:
        ref, got = [_unit(m) for m in ref], [_unit(m) for m in got]
        cos = _cosines(np.concatenate(ref), np.concatenate(got))
        scores = lambda v: np.array([[(q @ d.T).max(axis=1).sum() for d in v[n:]] for q in v[:n]])  # noqa: E731
    return Fidelity(float(cos.mean()), float(cos.min()), _top10_overlap(scores(ref), scores(got)))


def compare_scores(ref: np.ndarray, got: np.ndarray) -> Fidelity:
    """Compares two paths' scores, one ranking per column: a reranker's scores of one query's
    documents, or a classifier's logits of one label over every text.

    Scores have no direction to take a cosine of, so each column is centred first: the "cosine" is
    then the Pearson correlation of the two paths' scores, which stays 1 under the shift and scale
    that do not change what ranks first. The top-10 overlap is per column too.
    """
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    ref, got = (ref - ref.mean(axis=0)).T, (got - got.mean(axis=0)).T
    cos = _cosines(_unit(ref), _unit(got))
    return Fidelity(float(cos.mean()), float(cos.min()), _top10_overlap(ref, got))


def rerank_sets() -> list[tuple[str, list[str]]]:
    """What the gate reranks: each query of the corpus against 16 documents, its own source among them."""
    queries, documents = corpus()
    return [(q, [documents[(i * 4 + k) % len(documents)] for k in range(16)]) for i, q in enumerate(queries)]


def _top10_overlap(ref: np.ndarray, got: np.ndarray) -> float:
    """Mean share of each row's ten highest columns that both score matrices agree on."""
    top_ref = np.argsort(-ref, axis=1)[:, :10]
    top_got = np.argsort(-got, axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top_got)]))


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
