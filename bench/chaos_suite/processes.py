"""What the OS says about the gateway and its runners: /proc, signals, ports, waiting."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from .config import HOST


# --------------------------------------------------------------------------------------------
# Processes and /proc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_state(pid: int) -> str | None:
    """The State letter from /proc/<pid>/status (R, S, T, Z, ...), None if there is no such pid."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (a zombie has exited; only its entry is left)."""
    state = proc_state(pid)
    return state is not None and state != "Z"


def rss_mb(pid: int) -> float | None:
    """Resident memory of pid in MB (VmRSS), None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time pid has used so far, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def cmdline(pid: int) -> list[str]:
    """The argv of pid, empty if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def is_runner(pid: int) -> bool:
    """True if pid is alive and is an edge-embed runner (python -m runner ...)."""
    argv = cmdline(pid)
    return alive(pid) and "-m" in argv and "runner" in argv


def runner_processes_using(path_fragment: str) -> list[int]:
    """Live runner pids whose command line mentions path_fragment (e.g. a private SOCKET_DIR)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if is_runner(pid) and any(path_fragment in a for a in cmdline(pid)):
                out.append(pid)
    return out


def signal_pid(pid: int, sig: int) -> bool:
    """Sends sig to pid; False if it is already gone."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_until(cond: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Polls cond until it returns something truthy or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
