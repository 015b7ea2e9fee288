"""Splits a batch into sub-batches of similar length, so that padding wastes little compute."""

from __future__ import annotations

from ..device_profile import UNMEASURED_OVERHEAD_TOKENS

# Longest bucket the search considers; keeps it O(rows * MAX_ROWS) for huge batches.
MAX_ROWS = 256


def length_buckets(lengths: list[int], max_batch_tokens: int, overhead_tokens: int = UNMEASURED_OVERHEAD_TOKENS,
                   width_multiple: int = 1, limit: int | None = None) -> list[list[int]]:
    """Returns lists of row indices, longest rows first, covering every row exactly once.

    Rows are sorted by length and cut into contiguous runs. A run costs rows * its padded width
    (its longest row, rounded up to width_multiple but not past limit: what the forward pass
    computes) plus overhead_tokens per pass; the cut points minimise the total, found by dynamic
    programming. No run may exceed max_batch_tokens padded tokens, except a single row longer
    than that, which runs alone: the model's own length limit already bounds it.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    widths = [max(lengths[i], 1) for i in order]
    if width_multiple > 1:
        widths = [padded_width(w, width_multiple, limit or w) for w in widths]
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest split of the first j rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, max(-1, j - 1 - MAX_ROWS), -1):
            rows, width = j - i, widths[i]  # sorted descending: the run's first row is its widest
            if rows > 1 and rows * width > max_batch_tokens:
                break
            cost = best[i] + rows * width + overhead_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    buckets: list[list[int]] = []
    j = n
    while j > 0:
        buckets.append(order[cut[j]:j])
        j = cut[j]
    buckets.reverse()
    return buckets


def padded_width(longest: int, multiple: int, limit: int) -> int:
    """longest rounded up to a multiple, but never past limit (the model's position table)."""
    return max(longest, min(-(-longest // multiple) * multiple, limit))
