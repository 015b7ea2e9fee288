"""Turns the MODEL_DEVICE setting into a torch device and the weights' dtype."""

from __future__ import annotations

import hashlib
import os
import platform
import re
from pathlib import Path

import torch

from .errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str) -> torch.device:
    """auto prefers CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    if not _DEVICE.match(spec):
        raise ConfigError(f"unknown device '{spec}': use auto, cpu, mps, cuda or cuda:N")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{spec}' was asked for but CUDA is not available")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device '{spec}' does not exist: {torch.cuda.device_count()} CUDA device(s) visible"
            )
        return torch.device("cuda", index)
    if spec == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was asked for but MPS is not available")
    return torch.device(spec)


def resolve_dtype(name: str) -> torch.dtype:
    """auto = float32 on every device: the reference, which the precision step (runner/precision.py)
    may then replace by a half-precision or int8 copy behind the fidelity gate."""
    return {"auto": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def device_key(device: torch.device) -> str:
    """This device's model (a CPU's flags and cores, a GPU's name and compute capability),
    digested: a precision timed on one holds on it alone."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        text = f"{props.name}|{props.major}.{props.minor}|{torch.version.cuda}"
    else:
        text = platform.processor()
        try:
            info = Path("/proc/cpuinfo").read_text()
            text = "\n".join(line for line in info.splitlines()[:40]
                             if line.startswith(("model name", "flags", "Features")))
        except OSError:
            pass
        text = f"{device.type}|{text}|{os.cpu_count()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work, so that a timing covers it; a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def release_memory(device: torch.device) -> None:
    """Hands the allocator's cached blocks back after running out, so a smaller retry can fit."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def out_of_memory(exc: BaseException) -> bool:
    """Whether exc is the device running out of memory: the call can be split and retried. cuBLAS
    and cuDNN report it in their own words when their workspaces do not fit."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and any(p in str(exc) for p in ("out of memory", "ALLOC_FAILED")))


#: Phrases of errors after which a CUDA context is unusable: every later call on it fails too.
_BROKEN_CONTEXT = ("CUDA error", "CUBLAS_STATUS", "CUDNN_STATUS", "cuDNN error", "device-side assert",
                   "illegal memory access", "unspecified launch failure")


def device_broken(exc: BaseException) -> bool:
    """Whether exc leaves the device unusable for this process (a sticky CUDA error), so that the
    runner must be restarted rather than answer the next call with the same error. Running out
    of memory is not such an error."""
    if out_of_memory(exc):
        return False
    if isinstance(exc, getattr(torch, "AcceleratorError", ())):
        return True
    return isinstance(exc, RuntimeError) and any(p in str(exc) for p in _BROKEN_CONTEXT)
