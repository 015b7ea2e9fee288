from runner.handlers.length_buckets import length_buckets


def test_every_row_once_longest_first():
    lengths = [5, 100, 7, 50, 3]
    buckets = length_buckets(lengths, 10_000)
    assert buckets == [[1, 3, 2, 0, 4]]


def test_budget_bounds_padded_tokens():
    lengths = [100, 90, 10, 10, 10, 10, 10, 10]
    buckets = length_buckets(lengths, 200)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    for b in buckets:
        assert len(b) * max(lengths[i] for i in b) <= 200
    # The two long rows share a bucket; the short ones are not padded to 100.
    assert buckets[0] == [0, 1]


def test_a_row_longer_than_the_budget_runs_alone():
    assert length_buckets([500, 2], 100) == [[0], [1]]
