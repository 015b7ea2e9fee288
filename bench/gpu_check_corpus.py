"""The texts bench/gpu_check.py embeds: bench/bench_embeddings.py's fixed corpus and shapes, so
that GPU figures line up with the CPU bench's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_embeddings import SHAPES, WORDS, corpus  # noqa: E402  (stdlib-only module)

__all__ = ["SHAPES", "texts", "singles", "vocabulary"]


def texts(count: int) -> list[str]:
    """The bench's corpus (half queries, half passages of up to ~300 tokens); 512 is the bench's own."""
    if count == 512:
        return corpus()
    return corpus(n_queries=count // 2, n_passages=count - count // 2)


def singles(count: int) -> list[str]:
    """Short query texts for one-at-a-time latency, as the bench's idle measurement sends."""
    queries = [t for t in corpus() if t.endswith("?")]
    return (queries * (count // len(queries) + 1))[:count]


def vocabulary() -> set[str]:
    """Every word these texts can hold, for a tokenizer built without MiniLM's vocabulary."""
    return set(WORDS)
