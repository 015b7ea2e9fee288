import random

from runner.device_profile import UNMEASURED_OVERHEAD_TOKENS
from runner.handlers.length_buckets import length_buckets


def padded_cost(lengths, buckets):
    return sum(len(b) * max(lengths[i] for i in b) + UNMEASURED_OVERHEAD_TOKENS for b in buckets)


def test_every_row_once_longest_first():
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(100)]
    buckets = length_buckets(lengths, 16384)
    flat = [i for b in buckets for i in b]
    assert sorted(flat) == list(range(100))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_short_rows_are_not_padded_to_a_long_one():
    lengths = [300] * 4 + [10] * 28
    buckets = length_buckets(lengths, 16384)
    assert buckets == [[0, 1, 2, 3], list(range(4, 32))]


def test_equal_lengths_share_one_forward_pass():
    assert length_buckets([20] * 32, 16384) == [list(range(32))]


def test_cheaper_than_one_padded_batch_on_mixed_lengths():
    rng = random.Random(1)
    lengths = [rng.choice([rng.randint(5, 15), rng.randint(100, 300)]) for _ in range(32)]
    one = [sorted(range(32), key=lambda i: -lengths[i])]
    assert padded_cost(lengths, length_buckets(lengths, 16384)) < 0.75 * padded_cost(lengths, one)


def test_budget_bounds_padded_tokens():
    lengths = [100, 90, 10, 10, 10, 10, 10, 10]
    for b in length_buckets(lengths, 200):
        assert len(b) * max(lengths[i] for i in b) <= 200


def test_a_row_longer_than_the_budget_runs_alone():
    assert length_buckets([500, 2], 100) == [[0], [1]]


def test_empty_and_single():
    assert length_buckets([], 100) == []
    assert length_buckets([7], 100) == [[0]]
