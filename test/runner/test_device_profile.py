"""The device profile: what two timed passes imply, and the handlers' passes under it (rounded
widths, memory running out) against the exact-width passes they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runner.device import device_broken, out_of_memory
from runner import device_profile
from runner.device_profile import derive, measure, warm_shapes
from runner.errors import OutOfDeviceMemory
from runner.handlers.base import EmbedOptions

TEXTS = ["short", "a somewhat longer text with more words in it", "mid length text here",
         "the longest text of them all, so that the buckets differ in width and in rows " * 3, "x", "two words"]


def linear(fixed_s: float, token_s: float, passes: list | None = None, one_thread_token_s: float | None = None):
    """A device whose pass costs fixed_s plus token_s per padded token (one_thread_token_s on one
    thread, the same by default), recording each shape."""
    def time_pass(rows: int, width: int, threads: int = 0) -> float:
        if passes is not None:
            passes.append((rows, width))
        per_token = one_thread_token_s if threads == 1 and one_thread_token_s is not None else token_s
        return fixed_s + per_token * rows * width
    return time_pass


@pytest.mark.parametrize("one_thread_token_s, cores, tokens", [
    (15e-6, 2, 64),    # one thread is slower per token, but its lower fixed cost makes up for it up to 64
    (10e-6, 2, 256),   # as fast per token: no slower at any width weighed
    (200e-6, 2, 0),    # slower even for the shortest text
    (10e-6, 1, 0),     # a host with one thread has nothing to weigh
])
def test_lone_short_texts_run_on_one_thread_where_it_is_no_slower(monkeypatch, one_thread_token_s, cores, tokens):
    monkeypatch.setattr(device_profile.compute_threads, "alone", lambda: cores)
    monkeypatch.setattr(device_profile.time, "sleep", lambda _: None)
    # All threads: 1 ms and 10 us a token; one thread's per-token cost as given, its fixed cost
    # 0.5 ms less (no team to wake), so that one thread wins where tokens are few.
    def time_pass(rows: int, width: int, threads: int = 0) -> float:
        if threads == 1:
            return 0.0005 + one_thread_token_s * rows * width
        return 0.001 + 10e-6 * rows * width

    assert measure(time_pass, torch.device("cpu"), 512, 16384).single_thread_tokens == tokens


def test_an_accelerator_weighs_no_host_threads():
    assert measure(linear(0.006, 2e-6, one_thread_token_s=0), torch.device("cuda:0"), 512, 16384).single_thread_tokens == 0


def test_a_cpu_like_device_gets_many_exact_passes_and_takes_turns():
    # 4 ms a pass and 25 us a token, about what MiniLM measures on two cores.
    profile = measure(linear(0.004, 25e-6), torch.device("cpu"), 256, 16384)
    assert profile.overhead_tokens == 160
    assert (profile.width_multiple, profile.concurrency, profile.call_tokens) == (1, 1, 4096)
    assert profile.host_compute
    assert profile.pass_ms == pytest.approx(4.0) and profile.token_us == pytest.approx(25.0)


def test_an_accelerator_like_device_gets_few_rounded_passes_and_overlaps():
    # 6 ms a pass and 2 us a token: a GPU, where thousands of tokens cost what launching a pass does.
    passes = []
    profile = measure(linear(0.006, 2e-6, passes), torch.device("cuda:0"), 512, 16384)
    assert profile.overhead_tokens == 3000
    assert (profile.width_multiple, profile.concurrency, profile.call_tokens) == (16, 2, 65536)
    assert not profile.host_compute
    # The large shape grew to the pass budget and no further.
    assert max(r * w for r, w in passes) <= 16384


def test_the_large_shape_stops_growing_once_a_pass_is_slow_enough():
    passes = []
    measure(linear(0.001, 1e-4, passes), torch.device("cpu"), 512, 1 << 20)
    # 4 x 128 tokens take 52 ms, past the 30 ms at which the slope is read.
    assert max(r for r, _ in passes) == 4


def test_a_flat_or_noisy_curve_means_one_pass_per_call():
    profile = derive(0.010, 16, 0.009, 16384, False, 16384)
    assert profile.overhead_tokens == 16384
    assert profile.call_tokens == 65536
    assert profile.width_multiple == 64


def test_a_short_model_limit_bounds_the_timed_widths():
    passes = []
    measure(linear(0.004, 25e-6, passes), torch.device("cpu"), 8, 16384)
    assert max(w for _, w in passes) == 8


def test_warm_shapes_cover_every_rounded_width_once_per_row_count():
    profile = derive(0.006, 16, 0.038, 16384, False, 16384)
    assert profile.width_multiple == 16
    passes = []
    ran = warm_shapes(linear(0, 0, passes), profile, 40, 16384)
    assert sorted({w for _, w in passes}) == [16, 32, 40]
    assert sorted({r for r, w in passes if w == 16}) == [1, 8, 1024]
    assert ran == len(passes) == 9
    assert warm_shapes(linear(0, 0), derive(0.004, 16, 0.05, 2048, True, 16384), 512, 16384) == 0
    assert warm_shapes(linear(1, 0), profile, 4096, 16384, budget_s=0) == 0


def test_errors_are_told_apart():
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not device_broken(torch.OutOfMemoryError("CUDA out of memory"))
    for workspace in ("CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"):
        assert out_of_memory(RuntimeError(workspace)) and not device_broken(RuntimeError(workspace))
    assert device_broken(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not device_broken(RuntimeError("The size of tensor a (3) must match the size of tensor b (4)"))
    assert not device_broken(ValueError("CUDA error in a message that is not an error of the device"))


def test_a_real_handler_is_measured_and_keeps_its_results(load):
    handler = load("bge-small-en-v1.5")
    profile = measure(handler.time_pass, torch.device("cpu"), handler.max_tokens, 16384)
    # Only its sign is certain on a machine the other suites share: how large is the machine's mood.
    assert profile.pass_ms >= 0 and profile.token_us > 0 and profile.overhead_tokens >= 1
    assert profile.measured_seconds > 0


def rounded(handler, multiple: int):
    """The handler as a device profile rounding widths to multiple would leave it."""
    handler.apply_profile(derive(0.004, 16, 0.05, 2048, True, 16384))
    handler._width_multiple = multiple
    return handler


@pytest.mark.parametrize("name, overrides", [("bge-small-en-v1.5", {}), ("bge-m3", {}),
                                             ("embedding-gemma-300m", {"matryoshka_dims": ()})])
def test_rounded_widths_give_the_vectors_of_exact_ones(load, name, overrides):
    exact = load(name, **overrides).embed(TEXTS, EmbedOptions()).vectors
    got = rounded(load(name, **overrides), 16).embed(TEXTS, EmbedOptions()).vectors
    np.testing.assert_allclose(got, exact, atol=2e-5)
    assert not np.allclose(exact[0], exact[1], atol=1e-3)  # rows differ: a mix-up would show


def test_rounded_widths_give_the_scores_and_token_vectors_of_exact_ones(load):
    exact = load("ms-marco-minilm-l6-v2").score("a query", TEXTS, truncate=True, raw=True).scores
    got = rounded(load("ms-marco-minilm-l6-v2"), 16).score("a query", TEXTS, truncate=True, raw=True).scores
    np.testing.assert_allclose(got, exact, atol=2e-5)
    sparse = rounded(load("bge-m3"), 16).sparse(TEXTS, EmbedOptions())
    want = load("bge-m3").sparse(TEXTS, EmbedOptions())
    for a, b in zip(sparse.indices, want.indices, strict=True):
        np.testing.assert_array_equal(a, b)
    colbert = rounded(load("bge-m3"), 16).multi_vector(TEXTS, EmbedOptions()).vectors
    for a, b in zip(colbert, load("bge-m3").multi_vector(TEXTS, EmbedOptions()).vectors, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)


class OutOfMemoryAbove:
    """Stands in for a model on a device with room for at most `rows` rows a pass."""

    def __init__(self, model, rows: int) -> None:
        self._model = model
        self._rows = rows
        self.config = model.config
        self.passes: list[int] = []

    def __call__(self, **features):
        rows = features["input_ids"].shape[0]
        self.passes.append(rows)
        if rows > self._rows:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self._model(**features)


@pytest.mark.parametrize("name, call", [
    ("bge-small-en-v1.5", lambda h: h.embed(TEXTS * 4, EmbedOptions()).vectors),
    ("ms-marco-minilm-l6-v2", lambda h: h.score("a query", TEXTS * 4, truncate=True, raw=True).scores),
    ("distilbert-sst-2", lambda h: h.classify(TEXTS * 4, truncate=True, raw=True).scores),
])
def test_a_pass_that_runs_out_of_memory_is_split_until_it_fits(load, name, call):
    want = call(load(name))
    handler = load(name)
    handler._model = small = OutOfMemoryAbove(handler._model, 3)
    np.testing.assert_allclose(call(handler), want, atol=2e-5)
    assert max(small.passes) > 3 and min(small.passes) <= 3


def test_one_input_that_does_not_fit_alone_fails_the_call_as_out_of_capacity(load):
    handler = load("bge-small-en-v1.5")
    handler._model = OutOfMemoryAbove(handler._model, 0)
    with pytest.raises(OutOfDeviceMemory, match="does not fit in the free memory of cpu"):
        handler.embed(["one text"], EmbedOptions())


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_puts_each_row_on_its_side_and_rounds_its_width(load, side):
    from runner.handlers.encoder import Tokenized

    handler = rounded(load("bge-small-en-v1.5"), 8)
    batch = Tokenized([[5, 6, 7], [], [8], [9, 10, 11, 12, 13]], [[0, 1, 1], [], [1], [1, 1, 0, 0, 1]])
    features = handler._pad([3, 0, 2], batch, 99, side)
    assert features["input_ids"].shape == (3, 8)  # 5 tokens, rounded up to 8
    for r, i in enumerate([3, 0, 2]):
        n = len(batch.ids[i])
        at = slice(8 - n, 8) if side == "left" else slice(0, n)
        assert features["input_ids"][r, at].tolist() == batch.ids[i]
        assert features["token_type_ids"][r, at].tolist() == batch.type_ids[i]
        assert features["attention_mask"][r].sum() == n and features["attention_mask"][r, at].all()
        assert (features["input_ids"][r] == 99).sum() == 8 - n


def test_a_handler_without_passes_to_time_gets_the_unmeasured_profile():
    from runner.device_profile import UNMEASURED_OVERHEAD_TOKENS, profile_handler

    class OwnHandler:  # a Handler of one's own: no time_pass, no apply_profile
        max_tokens = 128

    profile = profile_handler(OwnHandler(), torch.device("cpu"), 16384)
    assert (profile.overhead_tokens, profile.concurrency, profile.call_tokens) == (UNMEASURED_OVERHEAD_TOKENS, 1, 4096)


def test_a_failed_measurement_is_a_one_line_start_up_error():
    from runner.device_profile import profile_handler
    from runner.errors import ConfigError

    class Failing:
        max_tokens = 128

        def time_pass(self, rows, width):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(ConfigError, match=r"timing a forward pass on cuda:0 failed \(OutOfMemoryError: CUDA out of memory"):
        profile_handler(Failing(), torch.device("cuda:0"), 16384)
