"""Watching the OpenMP threads that parallel regions leave behind (runner/compute_threads.py)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch


def _tids() -> set[int]:
    return set(map(int, os.listdir("/proc/self/task")))


def _comm(tid: int) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read()
    except FileNotFoundError:  # exited meanwhile
        return ""


def openmp_threads() -> set[int]:
    """The process's threads that an OpenMP runtime started: neither Python's threads nor gRPC's
    (which name themselves)."""
    if torch.get_num_threads() < 2:
        pytest.skip("an OpenMP team needs at least two threads")
    python = {t.native_id for t in threading.enumerate()}
    return {tid for tid in _tids() - python if _comm(tid) == _comm(os.getpid())}


def parallel_region() -> set[int]:
    """Runs one PyTorch op large enough to use all of the calling thread's OpenMP threads; returns
    the process's OpenMP threads just after it."""
    torch.ones(1 << 22).add_(1)
    return openmp_threads()


def gone(threads: set[int], within_s: float = 5.0) -> bool:
    """Whether all of threads have exited, waiting up to within_s for them."""
    deadline = time.monotonic() + within_s
    while threads & _tids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
