"""Groups a batch into sub-batches of similar length under a padded-token budget."""

from __future__ import annotations


def length_buckets(lengths: list[int], max_batch_tokens: int) -> list[list[int]]:
    """Returns lists of row indices, longest rows first.

    A bucket's cost is rows * longest row, which is what padding makes the forward pass pay.
    A single row longer than the budget still gets a bucket of its own: it has to run somehow,
    and the model's max length already bounds it.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    buckets: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        if current and (len(current) + 1) * width > max_batch_tokens:
            buckets.append(current)
            current = []
        if not current:
            width = max(lengths[i], 1)
        current.append(i)
    if current:
        buckets.append(current)
    return buckets
