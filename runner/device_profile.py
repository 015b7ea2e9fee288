"""The runner's one owner of device policy: what a forward pass of this model costs on this device
and precision, measured at start, and every choice about the shape of the work that follows.

Constants tuned on one machine are wrong on another. On a 2-core CPU a pass's fixed cost (kernel
launches, Python, framework) is worth tens of tokens of compute, so a call is best cut
into many passes of similar length that pad little; on a GPU it is worth thousands, so a call
should be one or two large passes, and calls should overlap so the device never waits for the
host. Rather than branch on the device's name, the runner times a few passes of its own model
and derives the rest from two numbers: the fixed cost of a pass and the cost of one more padded
token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import compute_threads
from .errors import ConfigError

#: What one more forward pass costs, in padded tokens, where nothing was measured: MiniLM on a
#: 2-core CPU measured 30 to 150 tokens' worth, and every value from 32 to 1024 served within the
#: noise of the others there.
UNMEASURED_OVERHEAD_TOKENS = 128
#: A pass of one short text and one of a large batch are each timed this many times, alternating,
#: and the fastest of each kept (after one untimed pass that builds the kernels for the shape): a
#: runner starting beside others on a busy machine sees spikes, and alternation spreads them.
_REPEATS = 4
#: The large shape grows until a pass takes this long (or reaches the pass token budget): long
#: enough that the per-token cost dominates, short enough to keep start-up quick.
_LARGE_PASS_S = 0.03
#: The width of the large shape's rows, in tokens (or the model's limit, if lower).
_LARGE_WIDTH = 128
#: A call this many times a pass's fixed cost spends about 3% of its time on that cost: larger
#: calls gain little and hold the runner longer, so a newcomer waits longer for its turn.
_CALL_OVERHEADS = 32
#: Bounds of the call size; the lower one is what tuning on a 2-core CPU found best.
_CALL_TOKENS = (4096, 65536)
#: Rounding widths up to a multiple of w adds at most w - 1 padded tokens a row; it is worth it
#: when that stays far below a pass's fixed cost, which new shapes (kernels chosen and loaded on
#: first use) add to on an accelerator. w is the power of two below overhead / this.
_WIDTH_SHARE = 128
_MAX_WIDTH_MULTIPLE = 64


@dataclass(frozen=True)
class DeviceProfile:
    """What the runner measured, and what it derived; Info reports it and the gateway takes its
    batching defaults from it."""

    #: Whether forward passes run on the host's cores. Tokenising beside such a pass takes cores
    #: from it, so calls take turns; an accelerator leaves the cores free, so calls overlap.
    host_compute: bool
    #: Fixed cost of one forward pass, in milliseconds (one short text).
    pass_ms: float
    #: Cost of one more padded token, in microseconds, at the largest shape measured.
    token_us: float
    #: pass_ms in tokens' worth of compute: what the length buckets weigh one more pass at.
    overhead_tokens: int
    #: Padded widths are rounded up to a multiple of this, so that few distinct shapes exist.
    width_multiple: int
    #: Calls the runner computes at once (its workers); the gateway's default MAX_CONCURRENT.
    concurrency: int
    #: The largest call worth making, in tokens; the gateway's default BATCH_WINDOW_MAX_TOKENS.
    call_tokens: int
    #: How long measuring took.
    measured_seconds: float
    #: A pass of at most this many padded tokens that starts after the runner idled IDLE_S runs on
    #: one thread (0: none). Idle threads of a team go to sleep, and waking them costs a lone short
    #: text more than its pass: 13.8 ms against 1.2 ms warm on the 2-core VM (the performance docs
    #: have the measurement).
    single_thread_tokens: int = 0

    def fields(self) -> dict:
        """The profile as plain numbers, for Info and the log line."""
        return dict(self.__dict__)


#: Times one forward pass of `rows` rows of `width` tokens, synchronised, on `threads` CPU threads
#: (0: as many as the runner has): seconds.
TimePass = Callable[..., float]
#: Widths of a lone text at which one thread is weighed against all of them after idling.
_SINGLE_THREAD_WIDTHS = (16, 64, 256)
#: Seconds without a pass after which a pass counts as starting on an idle runner: what the
#: measurement idles for, and about the gap between requests of one client thinking in between.
IDLE_S = 0.05


def measure(time_pass: TimePass, device: torch.device, max_tokens: int, max_pass_tokens: int) -> DeviceProfile:
    """Times a pass of one short text and a pass large enough to be dominated by its tokens, and
    derives the profile from the two.

    The fixed cost is the short pass's time less its tokens' share; the per-token cost is the slope
    between the two shapes. Taking the slope at a large shape rather than fitting every shape keeps
    an accelerator's flat start (where more tokens cost nothing until the device is full) from
    reading as a low per-token cost.
    """
    started = time.perf_counter()
    small_width = min(16, max_tokens)
    time_pass(1, small_width)
    width = min(_LARGE_WIDTH, max_tokens)
    rows = 1
    while (rows * 4) * width <= max_pass_tokens and time_pass(rows, width) < _LARGE_PASS_S:
        rows *= 4
    time_pass(rows, width)
    small, large = float("inf"), float("inf")
    for _ in range(_REPEATS):
        small = min(small, time_pass(1, small_width))
        large = min(large, time_pass(rows, width))
    host = _host_compute(device)
    single = _single_thread_tokens(time_pass, max_tokens) if host and compute_threads.alone() > 1 else 0
    return derive(small, small_width, large, rows * width, host, max_pass_tokens,
                  time.perf_counter() - started, single)


def _single_thread_tokens(time_pass: TimePass, max_tokens: int, idle_s: float = IDLE_S) -> int:
    """The widest lone text whose pass one thread computes no slower than all of them when the
    runner has idled idle_s; 0 if none."""
    best = 0
    for width in sorted({min(w, max_tokens) for w in _SINGLE_THREAD_WIDTHS}):
        one, every = float("inf"), float("inf")
        for _ in range(_REPEATS):
            time.sleep(idle_s)
            one = min(one, time_pass(1, width, threads=1))
            time.sleep(idle_s)
            every = min(every, time_pass(1, width))
        if one > every:
            break
        best = width
    return best


def profile_handler(handler, device: torch.device, max_pass_tokens: int) -> DeviceProfile:
    """The profile measured on handler's model, and applied to it; a handler of one's own without
    passes to time (no time_pass) gets the unmeasured one. A failed measurement is a start-up
    error in one line."""
    time_pass = getattr(handler, "time_pass", None)
    if time_pass is None:
        return unmeasured(device)
    try:
        profile = measure(time_pass, device, handler.max_tokens, max_pass_tokens)
    except Exception as exc:
        raise ConfigError(f"timing a forward pass on {device} failed ({type(exc).__name__}: {str(exc)[:200]})") from None
    handler.apply_profile(profile)
    return profile


def unmeasured(device: torch.device) -> DeviceProfile:
    """The profile of a runner whose handler has no passes of its own to time."""
    host = _host_compute(device)
    return DeviceProfile(host_compute=host, pass_ms=0.0, token_us=0.0, overhead_tokens=UNMEASURED_OVERHEAD_TOKENS,
                         width_multiple=1, concurrency=_concurrency(host), call_tokens=_CALL_TOKENS[0], measured_seconds=0.0)


def _host_compute(device: torch.device) -> bool:
    """Only the CPU computes on the host's own cores; CUDA and MPS take the work off them."""
    return device.type == "cpu"


def _concurrency(host_compute: bool) -> int:
    """On the host, a second call would only take cores from the first; on an accelerator one call
    is tokenised and padded while the other computes."""
    return 1 if host_compute else 2


def derive(small_s: float, small_tokens: int, large_s: float, large_tokens: int, host_compute: bool,
           max_pass_tokens: int, measured_seconds: float = 0.0, single_thread_tokens: int = 0) -> DeviceProfile:
    """The profile that two timed passes imply.

    Where the large pass was no slower per extra token than noise allows (a slope of zero or less),
    every token is taken as nearly free: one pass per call, up to the pass budget.
    """
    extra = large_tokens - small_tokens
    slope = (large_s - small_s) / extra if extra > 0 else 0.0
    if slope > 0:
        fixed = max(small_s - slope * small_tokens, 0.0)
        overhead = int(min(max(round(fixed / slope), 1), max_pass_tokens))
    else:
        fixed, overhead = small_s, max_pass_tokens
        slope = max(small_s, 1e-6) / max_pass_tokens
    multiple = 1
    while multiple * 2 <= min(overhead // _WIDTH_SHARE, _MAX_WIDTH_MULTIPLE):
        multiple *= 2
    call = 1
    while call * 2 <= _CALL_OVERHEADS * overhead:
        call *= 2
    return DeviceProfile(
        host_compute=host_compute,
        pass_ms=round(fixed * 1000, 3),
        token_us=round(slope * 1e6, 4),
        overhead_tokens=overhead,
        width_multiple=multiple,
        concurrency=_concurrency(host_compute),
        call_tokens=min(max(call, _CALL_TOKENS[0]), _CALL_TOKENS[1]),
        measured_seconds=round(measured_seconds, 3),
        single_thread_tokens=single_thread_tokens,
    )


def warm_shapes(time_pass: TimePass, profile: DeviceProfile, max_tokens: int, max_pass_tokens: int,
                budget_s: float = 10.0) -> int:
    """Runs passes at every padded width the profile allows, so the first requests find their
    kernels loaded (CUDA loads each kernel on its first use); returns how many ran. Only where
    widths are rounded: with exact widths there are too many shapes, and a host's kernels need no
    loading. Bounded by budget_s for a model with a long limit."""
    if profile.width_multiple <= 1:
        return 0
    started = time.perf_counter()
    ran = 0
    for width in range(profile.width_multiple, max_tokens + profile.width_multiple, profile.width_multiple):
        width = min(width, max_tokens)
        # A lone text, a mid-sized bucket and a full one: matrix kernels are chosen by row count too.
        for rows in sorted({1, min(8, max(1, max_pass_tokens // width)), max(1, max_pass_tokens // width)}):
            if time.perf_counter() - started > budget_s:
                return ran
            time_pass(rows, width)
            ran += 1
    return ran


def precision_candidates(device: torch.device, allows_float16: bool) -> tuple[str, ...]:
    """What precision auto may weigh against fp32 on device, each behind the fidelity gate.

    A CPU: PyTorch bf16 and OpenVINO int8. CUDA: fp16 where the model's activations fit in it, and
    bf16 where the GPU has it (a model that overflows fp16 still gets half precision). Apple's MPS:
    fp16. Timing on the device, not this list's order, picks among them.
    """
    if device.type == "cpu":
        return ("bf16", "int8")
    if device.type == "cuda":
        with torch.cuda.device(device):
            native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return (*(("fp16",) if allows_float16 else ()), *(("bf16",) if native_bf16 else ()))
    return ("fp16",) if allows_float16 else ()
