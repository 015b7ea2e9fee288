"""Where the suite finds things, and what it compares against: one place for the constants."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = "all-minilm-l6-v2"
DIM = 384
HOST = "127.0.0.1"
NODE = ROOT / "node_modules" / ".bin" / "node"

# Similarity a served vector must reach against the in-process reference.
MIN_COSINE = 0.9999
MAX_REL_NORM_DIFF = 1e-3
