"""The CPU threads a call's forward passes may use, as the gateway asks for each call.

Several runners on one small CPU each start with a thread per core. When two compute at once,
that oversubscribes the cores ("Several models on few cores" in docs/models.md has the measurement).
The gateway therefore sends `x-compute-threads` with every call, lowered while other runners are
busy and raised when this one is alone again.

PyTorch keeps its thread count per calling thread once that thread has run a parallel region,
so the count is applied on the thread that runs the forward passes, just before them.

Which thread that is depends on how the runner serves calls. Handlers keep one compute thread, so
that passes never arrive from alternating threads (each calling thread gets its own OpenMP team,
and alternating between teams costs ~30% on a small CPU). Where calls take turns anyway, the
thread that serves them is already always the same one, and it runs the passes itself
(`on_this_thread`): handing every call to the compute thread and back costs two thread wake-ups.
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, TypeVar

import torch

_requested: ContextVar[int] = ContextVar("compute_threads", default=0)
_here: ContextVar[bool] = ContextVar("passes_here", default=False)
_T = TypeVar("_T")


@contextmanager
def requested_for_call(threads: int) -> Iterator[None]:
    """Makes threads (0: the runner's own count) what forward passes started within this call use."""
    token = _requested.set(threads)
    try:
        yield
    finally:
        _requested.reset(token)


def requested() -> int:
    """The current call's request, read on the thread that received the call; 0 if none."""
    return _requested.get()


def alone() -> int:
    """This process's threads as set at start (a thread per core, or --threads): what a runner
    computing alone uses, and what the int8 backend is compiled for."""
    return torch.get_num_threads()


def apply(threads: int) -> None:
    """Sets this thread's PyTorch thread count to threads, when asked for and different."""
    if threads > 0 and threads != torch.get_num_threads():
        torch.set_num_threads(threads)


@contextmanager
def on_this_thread() -> Iterator[None]:
    """Forward passes started within this block run on the calling thread rather than on the
    handler's compute thread. Only for a thread that serves every call of the runner in turn."""
    token = _here.set(True)
    try:
        yield
    finally:
        _here.reset(token)


def run_passes(compute_thread: Executor, passes: Callable[[], _T]) -> _T:
    """passes' result, computed here within on_this_thread, else on compute_thread."""
    return passes() if _here.get() else compute_thread.submit(passes).result()
