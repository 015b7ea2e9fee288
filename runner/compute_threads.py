"""The CPU threads a call's forward passes may use, as the gateway asks for each call.

Several runners on one small CPU each start with a thread per core. When two compute at once,
that oversubscribes the cores (the README's "Several models on few cores" has the measurement).
The gateway therefore sends `x-compute-threads` with every call, lowered while other runners are
busy and raised when this one is alone again.

PyTorch keeps its thread count per calling thread once that thread has run a parallel region,
so the count is applied on the thread that runs the forward passes, just before them.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import torch

_requested: ContextVar[int] = ContextVar("compute_threads", default=0)


@contextmanager
def requested_for_call(threads: int) -> Iterator[None]:
    """Makes threads (0: leave as it is) what forward passes started within this call use."""
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
