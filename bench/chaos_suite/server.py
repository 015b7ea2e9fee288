"""A real gateway started for one scenario group, its metrics, and the shape of its answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import httpx

from .config import HOST, MODEL, NODE, ROOT
from .processes import free_port, is_runner, signal_pid, wait_until
from .results import Context


# --------------------------------------------------------------------------------------------
# Metrics


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format as (name, labels, value) samples."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, {}
        if "{" in head:
            name, rest = head.split("{", 1)
            for part in rest.rstrip("}").split('",'):
                if "=" in part:
                    k, v = part.split("=", 1)
                    labels[k.strip()] = v.strip().strip('"')
        try:
            samples.append((name, labels, float(value)))
        except ValueError:
            pass
    return samples


def metric_sum(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """Sum of every sample of name whose labels include the given ones."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == want for k, want in labels.items()))


# --------------------------------------------------------------------------------------------
# The server


_LIVE: list["Server"] = []


class Server:
    """One gateway (and its runners) started for a scenario group, with stdout logged to a file.

    Use it as a context manager: on the way out it is stopped with SIGTERM (SIGKILL if it does
    not exit), and any runner it started that is still alive is sent SIGCONT then SIGKILL, so
    that a failed scenario never leaves processes behind.
    """

    def __init__(self, ctx: Context, name: str, env: dict[str, str] | None = None) -> None:
        self.ctx = ctx
        self.name = name
        self.env_extra = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self._fresh_files()

    def _fresh_files(self) -> None:
        """A new port, new log files and an empty log cache, for a (re)start."""
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        n, suffix = 1, ""
        while (self.ctx.workdir / f"{self.name}{suffix}.log").exists():
            n += 1
            suffix = f"-{n}"
        self.log_path = self.ctx.workdir / f"{self.name}{suffix}.log"
        self.err_path = self.ctx.workdir / f"{self.name}{suffix}.stderr"
        self._records: list[dict] = []
        self._offset = 0
        self._partial = b""
        self._seen_runners: set[int] = set()

    # ---- lifecycle

    def start(self, timeout: float = 240) -> "Server":
        """Starts the gateway and waits until /health says 200; raises with the log tail if not.

        On a shared machine another user's cleanup may signal our gateway while it starts; a
        gateway that logs shutdown_started for a signal we did not send is started once more,
        and the suite says so (in the progress output and the notes at the end).
        """
        for attempt in (1, 2):
            outcome = self._start_once(timeout)
            if outcome == "ready":
                return self
            signals = [r.get("signal") for r in self.lines("shutdown_started")]
            if attempt == 1 and signals:
                note = f"server '{self.name}' got {signals[0]} from outside the suite while starting; started again"
                self.ctx.say(note)
                self.ctx.notes.append(note)
                self._fresh_files()
                continue
            raise RuntimeError(f"gateway {outcome}:\n{self.tail()}")
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> str:
        """One start: 'ready', or what went wrong (the process is stopped then)."""
        # fp32, the reference its correctness checks compare with, unless a check says otherwise.
        env = {**os.environ, "MODELS": MODEL, "HOST": HOST, "PORT": str(self.port), "LOG_LEVEL": "info",
               "PRECISION": "fp32", **self.env_extra}
        with open(self.log_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([str(NODE), "gateway/src/main.ts"], cwd=ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        if self not in _LIVE:
            _LIVE.append(self)
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                self.reap_runners()
                return f"exited with {self.proc.returncode} during start"
            if self.health()[0] == 200:
                self.ctx.say(f"server '{self.name}' ready on :{self.port} in {time.monotonic() - started:.1f}s "
                             f"(log {self.log_path.name})")
                return "ready"
            time.sleep(0.25)
        self.stop()
        return f"not healthy within {timeout}s"

    @property
    def pid(self) -> int:
        """The gateway's process id."""
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        """True while the gateway process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code and cleans up leftover runners."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self.exit_code = self.proc.returncode
        self.reap_runners()
        if self in _LIVE:
            _LIVE.remove(self)
        return self.exit_code

    def kill(self) -> None:
        """SIGKILL to the gateway alone (its runners are left to notice), then reaps it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.exit_code = self.proc.returncode

    def reap_runners(self, grace: float = 10) -> list[int]:
        """Waits up to grace for this gateway's runners to exit, then ends the rest; returns those."""
        pids = [p for p in self.all_runner_pids() if is_runner(p)]
        wait_until(lambda: not any(is_runner(p) for p in pids), grace, 0.1)
        left = [p for p in pids if is_runner(p)]
        for pid in left:
            signal_pid(pid, signal.SIGCONT)
            signal_pid(pid, signal.SIGKILL)
        return left

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def tail(self, n: int = 30) -> str:
        """The last lines of stderr and stdout, for error messages."""
        out = []
        for path in (self.err_path, self.log_path):
            try:
                out += path.read_text(errors="replace").splitlines()[-n:]
            except FileNotFoundError:
                pass
        return "\n".join(out)

    # ---- logs

    def records(self) -> list[dict]:
        """Every JSON log line the gateway has written so far (read incrementally)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return self._records
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                self._records.append(rec)
                if rec.get("msg") == "runner_ready" and isinstance(rec.get("pid"), int):
                    self._seen_runners.add(rec["pid"])
        return self._records

    def lines(self, msg: str) -> list[dict]:
        """Log records with this msg."""
        return [r for r in self.records() if r.get("msg") == msg]

    def log_bytes(self) -> int:
        """Size of the gateway's stdout so far."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def runner_pids(self) -> list[int]:
        """Pids of every runner_ready line, oldest first (a restart adds one)."""
        return [r["pid"] for r in self.lines("runner_ready") if isinstance(r.get("pid"), int)]

    def all_runner_pids(self) -> list[int]:
        """Every runner pid this gateway has reported, including ones that never got ready."""
        self.records()
        return sorted(self._seen_runners)

    def runner_pid(self) -> int:
        """The most recent runner's pid."""
        pids = self.runner_pids()
        if not pids:
            raise RuntimeError("no runner_ready line in the log")
        return pids[-1]

    def runner_socket(self) -> str | None:
        """Socket path of the latest runner: runner_ready's `socket`, else the runner's `serving` line."""
        for msg in ("runner_ready", "serving"):
            for rec in reversed(self.lines(msg)):
                sock = rec.get("socket")
                if isinstance(sock, str):
                    return sock.removeprefix("unix://")
        return None

    # ---- HTTP

    def client(self, timeout: float = 60) -> httpx.Client:
        """A synchronous client for this server (never uses proxies: traffic stays on 127.0.0.1)."""
        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def async_client(self, connections: int = 128, timeout: float = 120) -> httpx.AsyncClient:
        """An asyncio client with room for `connections` concurrent requests."""
        return httpx.AsyncClient(base_url=self.url, timeout=timeout, trust_env=False,
                                 limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))

    def health(self) -> tuple[int | None, Any]:
        """GET /health as (status, JSON body); (None, error) while nothing answers."""
        try:
            with httpx.Client(timeout=5, trust_env=False) as c:
                res = c.get(f"{self.url}/health")
            try:
                return res.status_code, res.json()
            except ValueError:
                return res.status_code, res.text
        except httpx.HTTPError as exc:
            return None, str(exc)

    def settled_health(self, timeout: float = 15) -> int | None:
        """/health's status once it says 200, or the last status seen within timeout.

        A server that just served a burst may take a moment to answer; what matters after a
        scenario is whether it comes back, not whether the first probe was quick.
        """
        last: list[int | None] = [None]

        def ok() -> bool:
            last[0] = self.health()[0]
            return last[0] == 200

        wait_until(ok, timeout, 0.5)
        return last[0]

    def metrics(self, headers: dict[str, str] | None = None) -> list[tuple[str, dict[str, str], float]]:
        """Parsed GET /metrics (empty if it does not answer 200)."""
        try:
            with httpx.Client(timeout=10, trust_env=False) as c:
                res = c.get(f"{self.url}/metrics", headers=headers or {})
            return parse_metrics(res.text) if res.status_code == 200 else []
        except httpx.HTTPError:
            return []

    def embed(self, texts: list[str] | str, timeout: float = 120, **extra: Any) -> httpx.Response:
        """One synchronous POST /v1/embeddings."""
        with self.client(timeout) as c:
            return c.post("/v1/embeddings", json={"model": MODEL, "input": texts, **extra})


def stop_all() -> None:
    """Stops every server still running (on Ctrl-C or a crash of the suite itself)."""
    for server in list(_LIVE):
        try:
            server.stop(timeout=20)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


# --------------------------------------------------------------------------------------------
# HTTP answers and figures


def envelope_problem(res: httpx.Response) -> str | None:
    """None if res carries OpenAI's error envelope, else what is wrong with it."""
    try:
        body = res.json()
    except ValueError:
        return f"not JSON: {res.text[:120]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return f"no error object: {str(body)[:120]}"
    missing = [k for k in ("message", "type", "param", "code") if k not in err]
    if missing:
        return f"error lacks {missing}: {str(err)[:120]}"
    if not isinstance(err["message"], str) or not isinstance(err["type"], str):
        return f"message/type not strings: {str(err)[:120]}"
    return None


def error_of(res: httpx.Response) -> dict:
    """The `error` object of an answer, or {} if there is none."""
    try:
        body = res.json()
        err = body.get("error") if isinstance(body, dict) else None
        return err if isinstance(err, dict) else {}
    except ValueError:
        return {}
