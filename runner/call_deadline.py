"""The deadline of the call being answered, for work that outlasts it.

The gateway stops waiting for a call at its deadline and answers its requests 503; the runner
skips a call that has not started by then (call_stream.py). A call that started in time but runs
past it, a long call on a loaded machine, or one stuck behind a runner that was stopped (SIGSTOP)
and resumed, would otherwise keep the runner busy with passes nobody reads, and make the next
call miss its own deadline too. So the passes check it between them and abandon the rest.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from .errors import CallExpired

_deadline: ContextVar[float] = ContextVar("call_deadline", default=0.0)


@contextmanager
def until(deadline_ms: int) -> Iterator[None]:
    """Makes deadline_ms (Unix milliseconds; 0: none) the deadline of the call answered within."""
    token = _deadline.set(deadline_ms / 1000)
    try:
        yield
    finally:
        _deadline.reset(token)


def current() -> float:
    """The current call's deadline in Unix seconds, read on the thread that received it; 0 if none."""
    return _deadline.get()


def check(deadline: float) -> None:
    """Raises CallExpired once deadline (Unix seconds; 0: none) has passed."""
    if deadline and time.time() > deadline:
        raise CallExpired("the call's deadline passed during its forward passes; the rest were skipped")
