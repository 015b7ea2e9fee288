"""Deterministic request texts and the in-process sentence-transformers references they are checked against."""

from __future__ import annotations

import base64
import os
import random
import time
from typing import Any, Iterable

import numpy as np

from .config import MAX_REL_NORM_DIFF, MIN_COSINE, MODEL, ROOT


# --------------------------------------------------------------------------------------------
# Texts


# The same vocabulary as bench_embeddings.py, so both benches embed alike texts.
from bench_embeddings import WORDS  # noqa: E402  (bench/ is on sys.path, see chaos.py)
UNICODE_BITS = ["café", "naïve", "東京", "😀", "Ærøskøbing", "déjà vu", "Σωκράτης", "ĳssel", "こんにちは", "𝔘𝔫𝔦"]


class Corpus:
    """Deterministic texts: short queries, passages, ~256-token passages, unicode mixes.

    Every text carries a caller-chosen tag at its start, so texts meant to be distinct are.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def words(self, n: int) -> str:
        """n random words from a plain English list (about one token each)."""
        return " ".join(self.rng.choices(WORDS, k=n))

    def query(self, tag: str) -> str:
        """A 4–12-word question."""
        return f"{tag} {self.words(self.rng.randint(4, 12))}?"

    def passage(self, tag: str, lo: int = 80, hi: int = 220) -> str:
        """A passage of lo..hi words (about as many tokens)."""
        return f"{tag} {self.words(self.rng.randint(lo, hi))}."

    def full(self, tag: str) -> str:
        """A passage of about the model's 256-token limit (a little over, so some are cut)."""
        return self.passage(tag, 245, 270)

    def too_long(self, tag: str) -> str:
        """Well over 256 tokens but far under MAX_TEXT_CHARS: refused when truncate is false."""
        return self.passage(tag, 420, 480)

    def unicode(self, tag: str) -> str:
        """Words mixed with accents, CJK, emoji (valid surrogate pairs) and math letters."""
        parts = [self.rng.choice(UNICODE_BITS) if self.rng.random() < 0.4 else self.rng.choice(WORDS)
                 for _ in range(self.rng.randint(3, 30))]
        return f"{tag} " + " ".join(parts)

    def mixed_pool(self, n: int, prefix: str) -> list[str]:
        """n distinct texts: half queries, a third passages, the rest unicode or ~256 tokens."""
        out = []
        for i in range(n):
            tag = f"{prefix}{i}"
            r = self.rng.random()
            out.append(self.query(tag) if r < 0.5 else self.passage(tag) if r < 0.8
                       else self.unicode(tag) if r < 0.93 else self.full(tag))
        return out


# --------------------------------------------------------------------------------------------
# References


class Reference:
    """sentence-transformers on the same weights, in this process: the truth vectors are held to.

    Vectors are computed before the model's final Normalize module and normalised here, which
    gives both the normalize=true and the normalize=false references from one forward pass
    (Normalize is a plain L2 division, so the two are identical to a full encode).
    """

    def __init__(self) -> None:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        full = SentenceTransformer(str(ROOT / "models" / MODEL), device="cpu", local_files_only=True)
        names = [type(m).__name__ for m in full]
        if names[-1] != "Normalize":
            raise RuntimeError(f"expected the model to end with Normalize, got {names}")
        self.model = SentenceTransformer(modules=list(full)[:-1], device="cpu")
        self.model.max_seq_length = full.max_seq_length
        self._raw: dict[str, np.ndarray] = {}

    def prepare(self, texts: Iterable[str]) -> float:
        """Computes the references for texts not seen yet; returns the seconds it took.

        Call it before a server starts, so the two never compete for the CPU.
        """
        todo = sorted({t for t in texts if t not in self._raw})
        started = time.perf_counter()
        if todo:
            vecs = self.model.encode(todo, batch_size=32, show_progress_bar=False, convert_to_numpy=True)
            for text, vec in zip(todo, vecs):
                self._raw[text] = vec.astype(np.float64)
        return time.perf_counter() - started

    def vector(self, text: str, normalize: bool = True) -> np.ndarray:
        """The reference vector for text (computed on the spot if prepare() missed it)."""
        if text not in self._raw:
            self.prepare([text])
        raw = self._raw[text]
        return raw / np.linalg.norm(raw) if normalize else raw

    def mismatch(self, text: str, got: np.ndarray, normalize: bool = True) -> str | None:
        """None when got matches the reference for text, else a one-line description."""
        want = self.vector(text, normalize)
        if got.shape != want.shape:
            return f"shape {got.shape} != {want.shape} for {text[:40]!r}"
        if not np.all(np.isfinite(got)):
            return f"non-finite values for {text[:40]!r}"
        ng, nw = float(np.linalg.norm(got)), float(np.linalg.norm(want))
        cos = float(got @ want) / (ng * nw) if ng and nw else 0.0
        rel = abs(ng - nw) / nw
        if cos < MIN_COSINE or rel > MAX_REL_NORM_DIFF:
            return f"cosine {cos:.6f}, norm {ng:.4f} vs {nw:.4f} (normalize={normalize}) for {text[:40]!r}"
        return None


def decode_vector(embedding: Any) -> np.ndarray:
    """One OpenAI `embedding` field, float list or base64 little-endian float32, as float64."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float64)
    return np.asarray(embedding, dtype=np.float64)


def check_embeddings(ref: Reference, texts: list[str], body: Any, normalize: bool = True) -> list[str]:
    """Checks an OpenAI embeddings answer against references; returns the problems (empty if none)."""
    try:
        data = body["data"]
    except (TypeError, KeyError):
        return [f"no data in answer: {str(body)[:200]}"]
    if len(data) != len(texts):
        return [f"{len(data)} embeddings for {len(texts)} inputs"]
    problems = []
    for i, (item, text) in enumerate(zip(data, texts)):
        if item.get("index") != i:
            problems.append(f"data[{i}].index is {item.get('index')}")
            continue
        bad = ref.mismatch(text, decode_vector(item["embedding"]), normalize)
        if bad:
            problems.append(f"data[{i}]: {bad}")
    return problems
