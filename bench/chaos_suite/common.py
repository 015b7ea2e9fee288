"""Shared helpers for the chaos suite: servers, HTTP, logs, metrics, /proc, references, figures.

Every scenario group starts its own gateway with the settings it needs, drives it over HTTP on
127.0.0.1 only, and reads back what the gateway wrote (JSON log lines, /metrics, /health) and
what the OS says about its processes. Keeping all of that here lets each scenario module stay a
short script of what it does and what it expects.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = "all-minilm-l6-v2"
DIM = 384
HOST = "127.0.0.1"
NODE = ROOT / "node_modules" / ".bin" / "node"

# Similarity a served vector must reach against the in-process reference.
MIN_COSINE = 0.9999
MAX_REL_NORM_DIFF = 1e-3


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    """One line of the final table. ok=None marks a figure reported for information only."""

    scenario: str
    measure: str
    figure: str
    target: str
    ok: bool | None

    @property
    def verdict(self) -> str:
        """pass / FAIL / info, as printed in the table."""
        return "info" if self.ok is None else ("pass" if self.ok else "FAIL")


def check(scenario: str, measure: str, figure: Any, target: str, ok: bool | None) -> Row:
    """A row whose figure is formatted here, so that scenarios only pass raw values."""
    if isinstance(figure, float):
        figure = f"{figure:.3g}" if abs(figure) < 1000 else f"{figure:.0f}"
    return Row(scenario, measure, str(figure), target, ok)


def info(scenario: str, measure: str, figure: Any) -> Row:
    """A row that reports a figure without judging it."""
    return check(scenario, measure, figure, "-", None)


@dataclass
class Context:
    """Run-wide options every scenario reads: how long to run, where to write, the references."""

    quick: bool
    soak_seconds: float
    workdir: Path
    seed: int = 1234
    notes: list[str] = field(default_factory=list)
    _reference: "Reference | None" = None

    def pick(self, default: Any, quick: Any) -> Any:
        """The quick value under --quick, otherwise the default one."""
        return quick if self.quick else default

    @property
    def reference(self) -> "Reference":
        """The in-process sentence-transformers model, loaded on first use."""
        if self._reference is None:
            self._reference = Reference()
        return self._reference

    def say(self, message: str) -> None:
        """Progress output, flushed so that a long run shows where it is."""
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# Texts


# The same vocabulary as bench_embeddings.py, so both benches embed alike texts.
from bench_embeddings import WORDS  # noqa: E402  (bench/ is on sys.path, see chaos.py)
UNICODE_BITS = ["café", "naïve", "東京", "😀", "Ærøskøbing", "déjà vu", "Σωκράτης", "ĳssel", "こんにちは", "𝔘𝔫𝔦"]


class Corpus:
    """Deterministic texts: short queries, passages, ~256-token passages, unicode mixes.

    Every text carries a caller-chosen tag at its start, so texts meant to be distinct are.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def words(self, n: int) -> str:
        """n random words from a plain English list (about one token each)."""
        return " ".join(self.rng.choices(WORDS, k=n))

    def query(self, tag: str) -> str:
        """A 4–12-word question."""
        return f"{tag} {self.words(self.rng.randint(4, 12))}?"

    def passage(self, tag: str, lo: int = 80, hi: int = 220) -> str:
        """A passage of lo..hi words (about as many tokens)."""
        return f"{tag} {self.words(self.rng.randint(lo, hi))}."

    def full(self, tag: str) -> str:
        """A passage of about the model's 256-token limit (a little over, so some are cut)."""
        return self.passage(tag, 245, 270)

    def too_long(self, tag: str) -> str:
        """Well over 256 tokens but far under MAX_TEXT_CHARS: refused when truncate is false."""
        return self.passage(tag, 420, 480)

    def unicode(self, tag: str) -> str:
        """Words mixed with accents, CJK, emoji (valid surrogate pairs) and math letters."""
        parts = [self.rng.choice(UNICODE_BITS) if self.rng.random() < 0.4 else self.rng.choice(WORDS)
                 for _ in range(self.rng.randint(3, 30))]
        return f"{tag} " + " ".join(parts)

    def mixed_pool(self, n: int, prefix: str) -> list[str]:
        """n distinct texts: half queries, a third passages, the rest unicode or ~256 tokens."""
        out = []
        for i in range(n):
            tag = f"{prefix}{i}"
            r = self.rng.random()
            out.append(self.query(tag) if r < 0.5 else self.passage(tag) if r < 0.8
                       else self.unicode(tag) if r < 0.93 else self.full(tag))
        return out


# --------------------------------------------------------------------------------------------
# References


class Reference:
    """sentence-transformers on the same weights, in this process: the truth vectors are held to.

    Vectors are computed before the model's final Normalize module and normalised here, which
    gives both the normalize=true and the normalize=false references from one forward pass
    (Normalize is a plain L2 division, so the two are identical to a full encode).
    """

    def __init__(self) -> None:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        full = SentenceTransformer(str(ROOT / "models" / MODEL), device="cpu", local_files_only=True)
        names = [type(m).__name__ for m in full]
        if names[-1] != "Normalize":
            raise RuntimeError(f"expected the model to end with Normalize, got {names}")
        self.model = SentenceTransformer(modules=list(full)[:-1], device="cpu")
        self.model.max_seq_length = full.max_seq_length
        self._raw: dict[str, np.ndarray] = {}

    def prepare(self, texts: Iterable[str]) -> float:
        """Computes the references for texts not seen yet; returns the seconds it took.

        Call it before a server starts, so the two never compete for the CPU.
        """
        todo = sorted({t for t in texts if t not in self._raw})
        started = time.perf_counter()
        if todo:
            vecs = self.model.encode(todo, batch_size=32, show_progress_bar=False, convert_to_numpy=True)
            for text, vec in zip(todo, vecs):
                self._raw[text] = vec.astype(np.float64)
        return time.perf_counter() - started

    def vector(self, text: str, normalize: bool = True) -> np.ndarray:
        """The reference vector for text (computed on the spot if prepare() missed it)."""
        if text not in self._raw:
            self.prepare([text])
        raw = self._raw[text]
        return raw / np.linalg.norm(raw) if normalize else raw

    def mismatch(self, text: str, got: np.ndarray, normalize: bool = True) -> str | None:
        """None when got matches the reference for text, else a one-line description."""
        want = self.vector(text, normalize)
        if got.shape != want.shape:
            return f"shape {got.shape} != {want.shape} for {text[:40]!r}"
        if not np.all(np.isfinite(got)):
            return f"non-finite values for {text[:40]!r}"
        ng, nw = float(np.linalg.norm(got)), float(np.linalg.norm(want))
        cos = float(got @ want) / (ng * nw) if ng and nw else 0.0
        rel = abs(ng - nw) / nw
        if cos < MIN_COSINE or rel > MAX_REL_NORM_DIFF:
            return f"cosine {cos:.6f}, norm {ng:.4f} vs {nw:.4f} (normalize={normalize}) for {text[:40]!r}"
        return None


def decode_vector(embedding: Any) -> np.ndarray:
    """One OpenAI `embedding` field, float list or base64 little-endian float32, as float64."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float64)
    return np.asarray(embedding, dtype=np.float64)


def check_embeddings(ref: Reference, texts: list[str], body: Any, normalize: bool = True) -> list[str]:
    """Checks an OpenAI embeddings answer against references; returns the problems (empty if none)."""
    try:
        data = body["data"]
    except (TypeError, KeyError):
        return [f"no data in answer: {str(body)[:200]}"]
    if len(data) != len(texts):
        return [f"{len(data)} embeddings for {len(texts)} inputs"]
    problems = []
    for i, (item, text) in enumerate(zip(data, texts)):
        if item.get("index") != i:
            problems.append(f"data[{i}].index is {item.get('index')}")
            continue
        bad = ref.mismatch(text, decode_vector(item["embedding"]), normalize)
        if bad:
            problems.append(f"data[{i}]: {bad}")
    return problems


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
        env = {**os.environ, "MODELS": MODEL, "HOST": HOST, "PORT": str(self.port), "LOG_LEVEL": "info",
               **self.env_extra}
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


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    """Seconds as a short millisecond figure."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"
