"""The CPU threads a call's forward passes may use, as the gateway asks for each call.

Several runners on one small CPU each start with a thread per core. When two compute at once,
that oversubscribes the cores ("Several models on few cores" in docs/models.md has the measurement).
The gateway therefore sends `x-compute-threads` with every call, lowered while other runners are
busy and raised when this one is alone again.

PyTorch keeps its thread count per calling thread once that thread has run a parallel region,
so the count is applied on the thread that runs the forward passes, just before them.

Which thread that is depends on how the runner serves calls. Handlers keep one compute thread, so
that passes never arrive from alternating threads. Where calls take turns anyway, the thread that
serves them is already always the same one, and it runs the passes itself (`on_this_thread`):
handing every call to the compute thread and back costs two thread wake-ups.

Each thread that runs a parallel region gets an OpenMP thread team of its own, which outlives the
region. A thread that will run no more passes lets its team go (`release_team`): while the
process holds more OpenMP threads than it has cores, libgomp stops spinning between regions, and
every region of a pass then waits for its threads to wake (the performance docs have the figures).
"""

from __future__ import annotations

import ctypes
import functools
import re
from concurrent.futures import Executor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
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


@functools.cache
def _pause_team() -> Callable[[int], int] | None:
    """omp_pause_resource_all of the libgomp that PyTorch's passes run on: the one in torch's own
    folder, since other packages (sentencepiece) load copies of their own. Other OpenMP runtimes
    pause every thread of the process rather than the caller's alone, so they are left as they are."""
    site = Path(torch.__file__).parent
    try:
        with open("/proc/self/maps") as maps:
            found = [path for path in re.findall(r"(/\S*/libgomp[^/\s]*\.so[^/\s]*)", maps.read())
                     if Path(path).parent in (site / "lib", site.parent / "torch.libs")]
        return ctypes.CDLL(found[0]).omp_pause_resource_all if found else None
    except (OSError, AttributeError):
        return None


def release_team() -> None:
    """Lets the calling thread's OpenMP team go: its threads exit, and the next parallel region
    this thread runs starts a new team. For a thread done with forward passes, or handing them to
    another thread for good."""
    pause = _pause_team()
    if pause is not None:
        pause(1)  # omp_pause_soft: the team's threads go, the runtime stays ready for the next region
