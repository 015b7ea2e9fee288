"""What machine a figure was measured on: every bench prints it, since figures compare only on the same one."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_description() -> tuple[str, str]:
    """The CPU model and its flags, from /proc/cpuinfo: figures only compare on the same machine."""
    model, flags = platform.processor() or "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("unknown", "", "x86_64"):
                model = value.strip()
            if key.strip() in ("flags", "Features") and not flags:
                flags = value.strip()
    except FileNotFoundError:
        pass
    return model, flags
