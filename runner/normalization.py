"""llama.cpp's embd_normalize, the one place it is computed (the gateway passes the mode on)."""

from __future__ import annotations

import numpy as np

#: Mode 0 scales the largest component to this, inside int16's range, as llama.cpp does.
INT16_SCALE = 32760.0


def embd_normalize(vectors: np.ndarray, mode: int) -> np.ndarray:
    """Rows scaled as llama.cpp's embd_normalize says.

    -1 none, 0 max-abs to INT16_SCALE, 1 taxicab, 2 Euclidean, p > 2 the p-norm. A zero row stays
    zero, as in llama.cpp.
    """
    if mode < 0:
        return vectors
    rows = vectors.astype(np.float64)
    if mode == 0:
        scale = np.abs(rows).max(axis=1) / INT16_SCALE
    elif mode == 1:
        scale = np.abs(rows).sum(axis=1)
    elif mode == 2:
        scale = np.sqrt((rows * rows).sum(axis=1))
    else:
        scale = (np.abs(rows) ** mode).sum(axis=1) ** (1.0 / mode)
    inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    return (rows * inverse[:, None]).astype(np.float32)
