"""What the machine is and what a process sees on it, for bench/gpu_check.py.

Stdlib only, and nothing here touches CUDA in the calling process: the check itself must hold no
CUDA context, or its own memory would be counted against the runners'. Whatever torch sees is
asked of a short-lived child, started with the environment a runner gets, so that the answer is
what that runner's torch sees too.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys

#: Run in a child: torch's view of the devices, with no allocation beyond CUDA's initialisation.
_TORCH_PROBE = r"""
import json, torch
out = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
       "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0, "devices": []}
try:
    out["cudnn"] = torch.backends.cudnn.version()
except Exception:
    out["cudnn"] = None
for i in range(out["device_count"]):
    p = torch.cuda.get_device_properties(i)
    uuid = getattr(p, "uuid", None)
    out["devices"].append({"index": i, "name": p.name, "total_memory_mib": p.total_memory // 2**20,
                           "capability": f"{p.major}.{p.minor}", "multiprocessors": p.multi_processor_count,
                           "uuid": str(uuid) if uuid is not None else None})
if out["device_count"]:
    # Native bf16 from Ampere (8.x) on; asked of the properties, since is_bf16_supported() may
    # allocate on the device to find out, and this child must hold no memory there.
    out["bf16_supported"] = torch.cuda.get_device_properties(0).major >= 8
from importlib.metadata import PackageNotFoundError, version
for name in ("transformers", "tokenizers", "grpcio", "protobuf", "numpy"):
    try:
        out[name] = version(name)  # read from metadata: importing transformers costs seconds
    except PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def torch_view(python: str, env: dict, timeout: float = 90) -> dict:
    """torch's view of the devices from a child started with env; {"error": ...} if it failed."""
    try:
        done = subprocess.run([python, "-c", _TORCH_PROBE], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the torch probe took over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _smi(args: list[str], timeout: float = 20) -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None
    return done.stdout if done.returncode == 0 else None


def _rows(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [[cell.strip() for cell in line.split(",")] for line in text.strip().splitlines() if line.strip()]


def gpus() -> dict:
    """nvidia-smi's list of GPUs with driver and CUDA versions; empty when there is no nvidia-smi."""
    listing = _smi(["--query-gpu=index,uuid,name,driver_version,memory.total,memory.used",
                    "--format=csv,noheader,nounits"])
    if listing is None:
        return {"nvidia_smi": False, "gpus": []}
    banner = _smi([]) or ""
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner)
    rows = [{"index": int(r[0]), "uuid": r[1], "name": r[2], "driver": r[3], "memory_total_mib": _int(r[4]),
             "memory_used_mib": _int(r[5])} for r in _rows(listing) if len(r) >= 6]
    return {"nvidia_smi": True, "driver": rows[0]["driver"] if rows else None,
            "cuda_driver_version": cuda.group(1) if cuda else None, "gpus": rows}


def memory_used() -> dict[int, int]:
    """MiB in use on each GPU, by index; {} without nvidia-smi."""
    rows = _rows(_smi(["--query-gpu=index,memory.used", "--format=csv,noheader,nounits"]))
    return {int(r[0]): _int(r[1]) for r in rows if len(r) >= 2}


def compute_apps() -> dict[int, dict]:
    """The processes holding a CUDA context, by pid: GPU uuid and MiB. Some sandboxes show none,
    or pids of another namespace; callers then fall back on per-GPU differences."""
    rows = _rows(_smi(["--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"]))
    return {int(r[0]): {"gpu_uuid": r[1], "used_mib": _int(r[2])} for r in rows if len(r) >= 3 and r[0].isdigit()}


def host() -> dict:
    return {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
            "cpu_count": _cpu_count()}


def _cpu_count() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def uuid_key(text: str | None) -> str | None:
    """A GPU's UUID as 32 hex digits, whichever way it was written: nvidia-smi's "GPU-xxxxxxxx-...",
    or torch's device property, whose str() has varied between versions."""
    if not text:
        return None
    digits = "".join(c for c in str(text).lower() if c in "0123456789abcdef")
    return digits[-32:] if len(digits) >= 32 else None


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None
