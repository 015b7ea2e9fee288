"""Moves a call's padded batches from host arrays to the device.

On CUDA a copy from ordinary (pageable) memory blocks the calling thread and goes through a
bounce buffer. Each worker thread therefore keeps a page-locked buffer, reused call after call,
and issues its copies without waiting: the device takes them in order before the forward passes
queued after them, while the thread goes on to the next bucket. A call's results come back the
same way, in one copy queued right after its last pass. On the CPU the arrays are used in place.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np
import torch


class HostStaging:
    """One per handler; safe to use from every worker thread at once."""

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._pinned = device.type == "cuda"
        self._local = threading.local()

    def to_device(self, batches: list[dict[str, np.ndarray]]) -> list[dict[str, torch.Tensor]]:
        """Each batch's int64 arrays as tensors on the device, in the same shape."""
        if not self._pinned:
            return [{k: torch.from_numpy(v).to(self._device) for k, v in b.items()} for b in batches]
        total = sum(v.size for b in batches for v in b.values())
        buffer = self._buffer(total)
        out, at = [], 0
        # On the runner's device's stream, whichever device this thread had current.
        with torch.cuda.device(self._device):
            for batch in batches:
                moved = {}
                for key, array in batch.items():
                    view = buffer[at:at + array.size]
                    view.numpy()[:] = array.ravel()
                    moved[key] = view.view(array.shape).to(self._device, non_blocking=True)
                    at += array.size
                out.append(moved)
            # The next call from this thread must not overwrite the buffer before these copies ran.
            self._local.done = torch.cuda.Event()
            self._local.done.record()
        return out

    def from_device(self, tensor: torch.Tensor) -> Callable[[], np.ndarray]:
        """Starts copying tensor back to the host; the function returned waits for the copy and
        gives the array. Called on the compute thread right after the passes that made tensor, so
        that the copy is queued before any later call's passes, and waiting for it waits for this
        call's work alone."""
        if not self._pinned:
            return tensor.cpu().numpy
        with torch.cuda.device(self._device):
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            done = torch.cuda.Event()
            done.record()

        def wait() -> np.ndarray:
            done.synchronize()
            return host.numpy()

        return wait

    def _buffer(self, size: int) -> torch.Tensor:
        """This thread's page-locked buffer of at least size int64s, once its last copies ran."""
        done = getattr(self._local, "done", None)
        if done is not None:
            done.synchronize()
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or buffer.numel() < size:
            # Grown by doubling, so a thread reallocates a few times at most.
            capacity = max(size, 2 * (0 if buffer is None else buffer.numel()), 1 << 16)
            buffer = self._local.buffer = torch.empty(capacity, dtype=torch.long, pin_memory=True)
        return buffer
