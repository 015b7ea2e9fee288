#!/usr/bin/env python3
"""The runner on CUDA, checked through its real gRPC interface: parity, pinning, throughput.

Made for a lent GPU machine that has Python, PyTorch and Transformers but no Node and no network.
Runner processes are started exactly as the gateway's supervisor starts them (same flags, the
secret, CUDA_VISIBLE_DEVICES=N with --device cuda:0), and measured over their unix sockets:

  - parity: each precision's vectors against a CPU runner's fp32 vectors on the bench's fixed
    corpus (cosine mean and worst). Each runner serves its catalog entry's dtype as loaded
    (--precision fp32, so no gate stands between), so fp32 is dtype float32, fp16 dtype float16
    and bf16 dtype bfloat16 where the GPU has it;
  - pinning: the fp32 and fp16 runners run pinned to GPU 0 and GPU 1 (both to GPU 0 on a one-GPU
    machine); each must describe itself as cuda:0, see exactly one device through torch (a child
    with the runner's environment asks), land on the GPU it was pinned to (nvidia-smi's process
    list or per-GPU memory), and its GPU memory is recorded;
  - throughput at the bench's shapes (32 clients x 1 text, 4 x 32, 1 x 512) over gRPC, and idle
    one-text latency, for each precision.

The model is the real all-MiniLM-L6-v2 when its weights are on the machine, else a stand-in of
its exact shape with random weights (bench/gpu_check_model.py); the JSON says which.

Runner imports that such a machine lacks (grpcio-health-checking, a protobuf new enough for the
generated stubs, ...) come from the wheelhouse scripts/gpu_wheelhouse.sh packs: this script then
makes a venv with --system-site-packages (bridged to the current interpreter's packages, which
may be a venv itself), installs the wheels with pip --no-index, and runs itself again in it.

To run it where a GPU is lent: pack the wheelhouse here, copy the working tree and .gpu-wheels
there, and run the script with that machine's Python:

    here:   bash scripts/gpu_wheelhouse.sh
    there:  python3 bench/gpu_check.py --out gpu.json

.gpu-wheels (12 MiB) holds the wheels, a copy of the git-ignored runner/_proto, and MiniLM's
tokenizer and config. `WITH_WEIGHTS=1 bash scripts/gpu_wheelhouse.sh` adds MiniLM's real weights
stored as float16 (55 MiB in all, which leaves little of the 64 MiB for the working tree), so
that the parity is measured on real activations rather than a random stand-in's.

It ends within --budget-s (default 270 s) whatever happens, stops every runner it started, writes
one JSON file (--out; default $OUT/gpu_check.json when OUT is set, else bench/results/) and prints
a short summary. Exit status: 0 all checks passed, 1 a check failed, 2 the check could not run.

Rehearsal on a CPU, the same code paths with the CPU standing in for the GPU and a tiny stand-in:

    .venv/bin/python bench/gpu_check.py --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import gpu_check_env as machine  # noqa: E402  (stdlib only, safe before the bootstrap)

#: Set in the re-run inside the venv: the venv's path, what the bootstrap did (JSON), and when
#: the first run started, so that the budget covers both runs.
VENV_MARK = "EDGE_EMBED_GPU_CHECK_VENV"
BOOT_INFO = "EDGE_EMBED_GPU_CHECK_BOOTSTRAP"
STARTED_AT = "EDGE_EMBED_GPU_CHECK_STARTED_AT"
#: What the runner and this check import, with what brings each (named in the report when missing).
IMPORTS = {"grpc": "grpcio", "grpc_health.v1.health": "grpcio-health-checking", "google.protobuf": "protobuf",
           "yaml": "pyyaml", "numpy": "numpy", "safetensors": "safetensors", "packaging": "packaging",
           "runner._proto.runner_pb2_grpc": "generated stubs"}
#: Too large to carry: the machine must have them.
HEAVY = ("torch", "transformers", "tokenizers")

#: Catalog entries under test: name -> (dtype on CUDA, dtype on the CPU stand-in, dtype Info must report).
VARIANTS = {"fp32": ("float32", "float32", "float32"),
            "fp16": ("float16", "float16", "float16"),
            "bf16": ("bfloat16", "bfloat16", "bfloat16")}
REFERENCE = "gpu-check-cpu-ref"
#: fp32 on another device only reorders float sums; anything below this is a real difference.
FP32_LIMITS = (0.9999, 0.9995)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cuda: the real check; cpu: the same paths with the CPU as the device")
    p.add_argument("--model", choices=("auto", "real", "standin", "tiny"), default=None,
                   help="auto: real weights if here, else the MiniLM-shaped stand-in (default on cuda); "
                        "tiny: a small random encoder (default on cpu)")
    p.add_argument("--model-dir", type=Path, help="serve this sentence-transformers folder instead")
    p.add_argument("--tokenizer", choices=("auto", "synth"), default="auto",
                   help="stand-in tokenizer: MiniLM's own files if here (auto), or a synthesised one")
    p.add_argument("--corpus", type=int, help="texts in the parity and throughput corpus (default 512 on cuda, 32 on cpu)")
    p.add_argument("--rounds", type=int, help="timed rounds per shape; the median is reported (default 3 on cuda, 1 on cpu)")
    p.add_argument("--idle-requests", type=int, help="one-text calls for the idle latency (default 50 on cuda, 10 on cpu)")
    p.add_argument("--workers", type=int,
                   help="the runner's --workers (MAX_CONCURRENT); default 2 on cuda, as docs/settings.md advises there, 1 on cpu")
    p.add_argument("--runner-threads", type=int,
                   help="the runner's --threads (RUNNER_THREADS); default 0 (one per core) on cuda, and 1 on cpu, "
                        "where the runners share a few cores with the clients that load them")
    p.add_argument("--skip-bf16", action="store_true", help="leave out the bf16 runner")
    p.add_argument("--wheels", type=Path, default=ROOT / ".gpu-wheels", help="the wheelhouse (scripts/gpu_wheelhouse.sh)")
    p.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "edge-embed-gpu-check-venv",
                   help="where the venv goes when imports are missing")
    p.add_argument("--no-bootstrap", action="store_true", help="fail instead of installing missing imports")
    p.add_argument("--python", help="interpreter for the runners (default: this one)")
    p.add_argument("--budget-s", type=float, default=270, help="the whole check ends within this many seconds")
    p.add_argument("--out", type=Path, help="the JSON report (default $OUT/gpu_check.json, else bench/results/)")
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    args.model = args.model or ("auto" if gpu else "tiny")
    args.corpus = args.corpus or (512 if gpu else 32)
    args.rounds = args.rounds or (3 if gpu else 1)
    args.idle_requests = args.idle_requests or (50 if gpu else 10)
    args.workers = args.workers or (2 if gpu else 1)
    args.runner_threads = args.runner_threads if args.runner_threads is not None else (0 if gpu else 1)
    args.python = args.python or sys.executable
    if args.out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else \
            ROOT / "bench" / "results" / f"gpu_check-{args.device}-{stamp}.json"
    return args


# ---------------------------------------------------------------------------------------------
# Bootstrap: stdlib only, since it runs before the imports it makes possible.

_IMPORT_PROBE = r"""
import importlib, importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
out = {}
for name in sys.argv[2].split(","):
    try:
        if name in sys.argv[3].split(","):
            ok = importlib.util.find_spec(name) is not None  # importing torch here would cost seconds
            out[name] = None if ok else "not installed"
        else:
            importlib.import_module(name)
            out[name] = None
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(out))
"""


def missing_imports(python: str) -> dict[str, str]:
    """Each import the runner needs that fails under python, with why."""
    names = [*IMPORTS, *HEAVY]
    done = subprocess.run([python, "-c", _IMPORT_PROBE, str(ROOT), ",".join(names), ",".join(HEAVY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return {"(interpreter)": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return {k: v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items() if v}


def ensure_stubs(wheels: Path) -> str:
    """runner/_proto is git-ignored, so it does not travel; the wheelhouse carries a copy."""
    target = ROOT / "runner" / "_proto"
    if (target / "runner_pb2.py").is_file():
        return "present"
    copies = wheels / "proto-stubs"
    if (copies / "runner_pb2.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for f in copies.glob("*.py"):
            shutil.copy2(f, target / f.name)
        return "copied from the wheelhouse"
    return "missing"


def generate_stubs(python: str) -> bool:
    """Stubs made again, for a protobuf that cannot load the ones carried: the Python half of
    scripts/gen_proto.sh, run with that interpreter (this machine has no Node)."""
    done = subprocess.run(["bash", "scripts/gen_proto.sh", "--python-only"], cwd=ROOT, env={**os.environ, "PYTHON": python},
                          capture_output=True, text=True, timeout=60)
    return done.returncode == 0


def _run(cmd: list, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def make_venv(venv: Path, wheels: Path) -> tuple[str, list[str], str]:
    """A venv that sees this interpreter's packages and has the wheelhouse's pins installed;
    returns its python, the pins, and how they were installed."""
    requirements = wheels / "requirements.txt"
    if not requirements.is_file():
        raise BootstrapError(f"imports are missing and there is no wheelhouse at {wheels}: run "
                             f"`bash scripts/gpu_wheelhouse.sh` where pip works and carry .gpu-wheels")
    pins = [line.strip() for line in requirements.read_text().splitlines() if line.strip()]
    shutil.rmtree(venv, ignore_errors=True)
    with_pip = _run([sys.executable, "-m", "venv", "--system-site-packages", venv]).returncode == 0
    if not with_pip:  # an interpreter without ensurepip: this one's pip installs into the venv instead
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
        if made.returncode != 0:
            raise BootstrapError(f"cannot make a venv: {made.stderr.strip()[-300:]}")
    python = str(venv / "bin" / "python")
    site_dir = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # --system-site-packages reaches the base interpreter's packages only; when this interpreter
    # is itself a venv (the GPU image's python3 is one), torch lives in its site-packages, which
    # a .pth file adds after the venv's own, so the wheels installed here still come first.
    # addsitedir rather than a bare path, so that .pth files over there are honoured too.
    outer = [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    (site_dir / "_edge_embed_outer.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in outer))
    if with_pip:
        cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
               "--find-links", wheels, *pins]
        how = "pip --no-index into a --system-site-packages venv"
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
               "--no-deps", "--find-links", wheels, "--target", site_dir, *pins]
        how = "pip --no-index --target into a --system-site-packages venv made without pip"
    done = _run(cmd)
    if done.returncode != 0:
        raise BootstrapError(f"installing the wheelhouse failed: {done.stderr.strip()[-500:]}")
    return python, pins, how


class BootstrapError(RuntimeError):
    """The runner's imports cannot be made to work here; the message says what to do."""


def bootstrap(args: argparse.Namespace) -> dict:
    """Makes the runner's imports work, running this script again in a venv if it must.

    Returns what was done, for the report; raises BootstrapError when nothing can help.
    """
    info = json.loads(os.environ.get(BOOT_INFO) or "{}") or {"venv": None, "installed": [], "stubs": None}
    info["stubs"] = info.get("stubs") or ensure_stubs(args.wheels)
    missing = missing_imports(args.python)
    info.setdefault("missing_at_start", {k: f"{why} (brought by {IMPORTS.get(k, 'nothing we carry')})"
                                         for k, why in missing.items()})
    if not missing:
        return info
    heavy = [m for m in missing if m in HEAVY]
    if heavy:
        raise BootstrapError(f"{', '.join(heavy)} missing under {args.python}; no wheelhouse brings those: {missing}")
    if os.environ.get(VENV_MARK) or args.no_bootstrap or args.python != sys.executable:
        raise BootstrapError(f"imports missing under {args.python}: {missing}")
    python, pins, how = make_venv(args.venv, args.wheels)
    info.update(venv=str(args.venv), installed=pins, how=how)
    still = missing_imports(python)
    if "runner._proto.runner_pb2_grpc" in still and len(still) == 1:
        # Stubs from another protobuf generation: make them again with the wheelhouse's grpcio-tools.
        info["stubs"] = "regenerated with grpcio-tools" if generate_stubs(python) else "regeneration failed"
        still = missing_imports(python)
    if still:
        raise BootstrapError(f"imports still missing in the venv {args.venv}: {still}")
    env = {**os.environ, VENV_MARK: str(args.venv), BOOT_INFO: json.dumps(info)}
    sys.stdout.flush()
    os.execve(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]], env)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# The check proper: runs with the runner's imports available.

class Budget:
    """The check's deadline, so that each phase knows what it may still spend; counted from the
    first run's start, so a bootstrap's re-run does not get a fresh allowance."""

    def __init__(self, seconds: float) -> None:
        spent = max(0.0, time.time() - float(os.environ.setdefault(STARTED_AT, repr(time.time()))))
        self.start = time.monotonic() - spent
        self.end = self.start + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def deadline(self, most: float) -> float:
        return time.monotonic() + max(0.0, min(most, self.left()))

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def run_check(args: argparse.Namespace, report: dict, budget: Budget) -> None:
    """Fills report phase by phase. Without its runners nothing can be measured, so a failed start
    ends the check; a measurement that fails is recorded and the next one still runs."""
    import gpu_check_corpus as corpus
    import gpu_check_model as models
    import gpu_check_runners as runners
    from runner.fidelity import Thresholds

    gpu = args.device == "cuda"
    work = Path(tempfile.mkdtemp(prefix="eegc-"))
    report["work_dir"] = str(work)
    timings = report["timings_s"]
    mark = [time.monotonic()]

    def lap(name: str) -> None:
        now = time.monotonic()
        timings[name] = now - mark[0]
        mark[0] = now

    def attempt(what: str, step) -> bool:
        try:
            step()
            return True
        except (TimeoutError, KeyboardInterrupt):
            raise
        except Exception as exc:
            report["errors"].append(f"{what}: {type(exc).__name__}: {str(exc)[:500]}")
            return False

    # torch's view of the machine, and of a process pinned to GPU 0 and to GPU 1, asked of
    # children while the model is built; all are done before any GPU memory is read.
    pins = ["0", "1"] if len(report["gpu"].get("gpus", [])) >= 2 else ["0"]
    views: dict[str, dict] = {}
    probes = [threading.Thread(target=lambda key=key, env=env: views.__setitem__(key, machine.torch_view(args.python, env)))
              for key, env in [("host", dict(os.environ))] +
              [(pin, {**os.environ, "CUDA_VISIBLE_DEVICES": pin}) for pin in pins]]
    for t in probes:
        t.start()
    try:
        prepared = models.prepare(args.model, work, args.wheels, args.model_dir, args.tokenizer)
        report["model"] = prepared.describe()
        lap("model")
        for t in probes:
            t.join(120)
        report["torch"] = host_view = views.get("host", {})
        count = host_view.get("device_count", 0)
        if gpu and not count:
            raise RuntimeError(f"torch sees no CUDA device: {host_view}")
        if count >= 2 and "1" not in views:  # nvidia-smi did not list them all
            views["1"] = machine.torch_view(args.python, {**os.environ, "CUDA_VISIBLE_DEVICES": "1"})
        lap("torch_views")
        bf16 = not args.skip_bf16 and (host_view.get("bf16_supported", False) if gpu else True)
        names = {v: f"gpu-check-{v}" for v in VARIANTS}
        dtypes = {REFERENCE: "float32", **{names[v]: VARIANTS[v][0 if gpu else 1] for v in VARIANTS}}
        catalog, models_dir = models.write_catalog(work, prepared.path, dtypes)
        settings = runners.Settings(python=args.python, catalog=catalog, models_dir=models_dir,
                                    socket_dir=work, workers=args.workers, threads=args.runner_threads)
        report["settings"] = {"workers": args.workers, "threads": args.runner_threads,
                              "max_batch_tokens": settings.max_batch_tokens,
                              "warmup_batch_size": settings.warmup_batch_size, "warmup_steps": settings.warmup_steps,
                              "corpus_texts": args.corpus, "rounds": args.rounds, "idle_requests": args.idle_requests,
                              "catalog_dtypes": dtypes, "runner_python": args.python}
        texts = corpus.texts(args.corpus)
        singles = corpus.singles(args.idle_requests)

        # Pinning: fp32 on GPU 0, fp16 on GPU 1, or on GPU 0 too when it is the only one.
        second = "1" if count >= 2 else "0"
        device_of = (lambda pin: f"cuda:{pin}") if gpu else (lambda pin: "cpu")
        ref = runners.Runner(REFERENCE, "cpu", settings)
        under_test = {"fp32": runners.Runner(names["fp32"], device_of("0"), settings, pinned_to="0"),
                      "fp16": runners.Runner(names["fp16"], device_of(second), settings, pinned_to=second)}
        # On a GPU the second pinned runner starts alone, so that the memory it adds is its own
        # even where nvidia-smi lists no processes; the CPU has no such memory to tell apart.
        groups = [("fp32", [ref, under_test["fp32"]]), ("fp16", [under_test["fp16"]])] if gpu else \
            [("fp32", [ref, *under_test.values()])]
        memory: dict[str, tuple[dict, dict]] = {}
        for variant, group in groups:
            before = machine.memory_used()
            runners.start_together(group, budget.deadline(150))
            memory[variant] = (before, machine.memory_used())
            lap(f"start_{'_'.join(r.name.removeprefix('gpu-check-') for r in group)}")
        report["runners"] = {v: _runner_facts(r) for v, r in [("cpu_ref", ref), *under_test.items()]}
        pinned_views = {"fp32": views.get("0", {}), "fp16": views.get(second, {})}
        attempt("pinning", lambda: report.__setitem__(
            "pinning", _pinning(gpu, under_test, pinned_views, memory, report["gpu"], runners)))

        started = time.perf_counter()
        want = ref.embed(texts, timeout=min(120, budget.left()))
        report["reference"] = {"runner": "cpu fp32", "texts": len(texts), "dimensions": int(want.shape[1]),
                               "seconds": time.perf_counter() - started}
        ref.stop()
        lap("reference")

        for variant, runner in under_test.items():
            attempt(f"measuring {variant}", lambda: _measure(variant, runner, texts, singles, want, args, report,
                                                             budget, runners, corpus))
            runner.stop()
            lap(f"measure_{variant}")
        if not bf16:
            report["skipped"].append("bf16: " + ("--skip-bf16" if args.skip_bf16 else "torch says this GPU has no bf16"))
        elif budget.left() < 40:
            report["skipped"].append(f"bf16: {budget.left():.0f} s of the budget left")
        else:
            runner = runners.Runner(names["bf16"], device_of("0"), settings, pinned_to="0")

            def bf16_phase() -> None:
                runners.start_together([runner], budget.deadline(150))
                report["runners"]["bf16"] = _runner_facts(runner)
                lap("start_bf16")
                _measure("bf16", runner, texts, singles, want, args, report, budget, runners, corpus)

            attempt("bf16", bf16_phase)
            runner.stop()
            lap("measure_bf16")
    finally:
        report["checks"] = _checks(report, Thresholds())
        runners.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def _runner_facts(runner) -> dict:
    precision = next((e for e in runner.events if e.get("msg") == "precision"), {})
    info = runner.info()
    return {"model": runner.name, "device_flag": runner.device, "pid": runner.proc.pid,
            "CUDA_VISIBLE_DEVICES": runner.pinned_to, "ready_s": runner.ready_s,
            "host_rss_mib": sys.modules["gpu_check_runners"].rss_mib(runner.proc.pid),
            "info": {k: info.get(k) for k in ("device", "dtype", "dimensions", "max_tokens", "precision",
                                              "precision_detail", "compute_threads", "pooling")},
            "precision_log": {k: precision.get(k) for k in ("precision", "detail")}}


def _pinning(gpu: bool, under_test: dict, views: dict, memory: dict, smi: dict, runners) -> dict:
    """Which device each pinned runner uses and sees, from every angle this machine offers."""
    by_index = {g["index"]: g for g in smi.get("gpus", [])}
    apps = machine.compute_apps()
    out = {"gpus_visible_to_check": len(by_index) if gpu else 0, "runners": {}}
    for variant, runner in under_test.items():
        pin = runner.pinned_to
        view = views.get(variant, {})
        expected = by_index.get(int(pin)) if pin is not None and pin.isdigit() else None
        before, after = memory.get(variant, ({}, {}))
        delta = {i: after.get(i, 0) - before.get(i, 0) for i in after}
        app = apps.get(runner.proc.pid)
        rss = runners.rss_mib(runner.proc.pid)
        seen_uuid = (view.get("devices") or [{}])[0].get("uuid")
        facts = {
            "pinned_to": pin,
            "environ_CUDA_VISIBLE_DEVICES": runners.process_environ(runner.proc.pid, "CUDA_VISIBLE_DEVICES"),
            "info_device": runner.info().get("device"),
            "torch_in_runner_env": {k: view.get(k) for k in ("device_count", "devices", "error")},
            "nvidia_smi_process": app,
            "memory_added_mib_by_gpu": delta or None,
            # GPU memory where there is a GPU; the CPU stand-in's runner holds its model in host memory.
            "memory_mib": app["used_mib"] if app else delta.get(int(pin)) if delta else None if gpu else rss,
            "memory_source": "nvidia-smi process list" if app else "per-GPU difference at start" if delta else
            None if gpu else "process RSS (CPU stand-in)",
        }
        verdicts = {"environ_matches": facts["environ_CUDA_VISIBLE_DEVICES"] == pin,
                    "info_device": facts["info_device"] == ("cuda:0" if gpu else "cpu")}
        if gpu:
            verdicts["sees_exactly_one_device"] = view.get("device_count") == 1
            if expected and machine.uuid_key(seen_uuid):
                verdicts["sees_the_pinned_gpu"] = machine.uuid_key(seen_uuid) == machine.uuid_key(expected["uuid"])
            if expected and app:
                verdicts["runs_on_the_pinned_gpu"] = machine.uuid_key(app["gpu_uuid"]) == machine.uuid_key(expected["uuid"])
            elif expected and len(delta) > 1:
                others = [d for i, d in delta.items() if i != int(pin)]
                verdicts["memory_only_on_the_pinned_gpu"] = delta.get(int(pin), 0) > 0 and max(others) < 64
        else:
            # The CPU stand-in has no device to pin; what can be checked is that nothing sees one.
            verdicts["sees_no_cuda_device"] = not view.get("device_count")
        facts["verdicts"] = verdicts
        out["runners"][variant] = facts
    out["ok"] = all(all(f["verdicts"].values()) for f in out["runners"].values())
    return out


def _measure(variant: str, runner, texts, singles, want, args, report: dict, budget: Budget, runners, corpus) -> None:
    """Parity, throughput at each bench shape, and idle latency of one runner, alone on its device."""
    got = runner.embed(texts, timeout=min(120, budget.left()))
    report["parity"][variant] = {**runners.cosines(got, want), "dtype": runner.info().get("dtype")}
    shapes = {}
    for key, (clients, per_request, _label) in corpus.SHAPES.items():
        if budget.left() < 20:
            report["skipped"].append(f"{variant} {key}: {budget.left():.0f} s of the budget left")
            continue
        per = min(per_request, len(texts))
        rounds = [runners.closed_loop(runner, texts, clients, per, timeout=min(60, budget.left()))
                  for _ in range(args.rounds)]
        rates = sorted(r["texts_per_s"] for r in rounds)
        median = rounds[[r["texts_per_s"] for r in rounds].index(rates[len(rates) // 2])]
        shapes[key] = {"clients": clients, "texts_per_request": per, "texts_per_s": median["texts_per_s"],
                       "rounds_texts_per_s": rates, "p50_ms": median["p50_ms"], "p99_ms": median["p99_ms"]}
    report["throughput"][variant] = shapes
    if budget.left() > 10:
        report["idle_latency"][variant] = runners.idle_latency(runner, singles, pause_s=0.02,
                                                               timeout=min(30, budget.left()))


def _checks(report: dict, limits) -> dict:
    """Each verdict the report supports; empty when the runners never got as far as measuring."""
    if not report["runners"]:
        return {}
    checks = {}
    for variant, parity in report["parity"].items():
        mean, worst = (FP32_LIMITS if variant == "fp32" else (limits.mean_cosine, limits.worst_cosine))
        checks[f"parity_{variant}"] = parity["mean_cosine"] >= mean and parity["worst_cosine"] >= worst
        checks[f"dtype_{variant}"] = parity["dtype"] == VARIANTS[variant][2]
    checks["pinning"] = report.get("pinning", {}).get("ok", False)
    for variant in ("fp32", "fp16"):
        measured = report["throughput"].get(variant, {})
        checks[f"throughput_{variant}"] = len(measured) == 3 and all(s["texts_per_s"] > 0 for s in measured.values())
    return checks


# ---------------------------------------------------------------------------------------------

def _rounded(value):
    """Floats to 9 significant digits: enough to tell a cosine of 0.99999999 from 1."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def summary(report: dict) -> str:
    """A few lines for a person; the JSON has everything."""
    gpu = report.get("gpu", {})
    names = ", ".join(f"{g['index']}: {g['name']}" for g in gpu.get("gpus", [])) or "none (nvidia-smi absent)"
    torch = report.get("torch", {})
    model = report.get("model", {})
    lines = [f"gpu_check [{report['mode']}] status {report['status']} in {report['elapsed_s']:.0f} s -> {report['out']}",
             f"  GPUs {names}; driver {gpu.get('driver')}, CUDA {gpu.get('cuda_driver_version')}; "
             f"torch {torch.get('torch')} (CUDA {torch.get('torch_cuda')}), transformers {torch.get('transformers')}",
             f"  model {model.get('kind')} ({'real weights' if model.get('real_weights') else 'random weights'}), "
             f"shape {model.get('shape')}"]
    for variant, p in report.get("parity", {}).items():
        shapes = report["throughput"].get(variant, {})
        rates = "  ".join(f"{s['clients']}x{s['texts_per_request']} {s['texts_per_s']:.0f}/s" for s in shapes.values())
        idle = report["idle_latency"].get(variant, {}).get("p50_ms")
        lines.append(f"  {variant:4s} {p['dtype']:8s} cos mean {p['mean_cosine']:.6f} worst {p['worst_cosine']:.6f} | "
                     f"{rates} | idle p50 {idle if idle is None else f'{idle:.2f} ms'}")
    pin = report.get("pinning", {})
    for variant, facts in pin.get("runners", {}).items():
        lines.append(f"  pinned {variant}: CUDA_VISIBLE_DEVICES={facts['pinned_to']} -> {facts['info_device']}, "
                     f"memory {facts['memory_mib']} MiB ({facts['memory_source']}), "
                     f"{'ok' if all(facts['verdicts'].values()) else 'FAILED ' + str(facts['verdicts'])}")
    checks = report.get("checks", {})
    failed = [k for k, v in checks.items() if not v]
    verdict = "failed: " + ", ".join(failed) if failed else "all passed" if checks else "none ran"
    lines.append(f"  checks: {verdict}")
    for item in report.get("errors", []) + [f"skipped {s}" for s in report.get("skipped", [])]:
        lines.append(f"  ! {item}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # As the runner sets them: local files only, and no progress bars in the summary.
    for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                       ("TRANSFORMERS_VERBOSITY", "error"), ("TOKENIZERS_PARALLELISM", "false"),
                       # Tracing is not under test, and its exporter would have nowhere to send.
                       ("OTEL_SDK_DISABLED", "true")):
        os.environ.setdefault(key, value)
    budget = Budget(args.budget_s)
    report = {"schema": 1, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "mode": "gpu" if args.device == "cuda" else "cpu-standin", "device_under_test": args.device,
              "status": "running", "out": str(args.out), "host": machine.host(), "gpu": machine.gpus(),
              "bootstrap": None, "model": None, "runners": {}, "pinning": {}, "reference": None, "parity": {},
              "throughput": {}, "idle_latency": {}, "checks": {}, "timings_s": {}, "skipped": [], "errors": []}

    def give_up(signum, _frame):
        raise TimeoutError(f"the check's budget of {args.budget_s:.0f} s ran out" if signum == signal.SIGALRM
                           else f"stopped by signal {signum}")

    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, give_up)
    # Phases keep inside the budget on their own; the alarm is for a call that hangs regardless.
    signal.alarm(max(1, int(budget.left()) + 20))
    try:
        report["bootstrap"] = bootstrap(args)
        run_check(args, report, budget)
    except BootstrapError as exc:
        report["errors"].append(f"bootstrap: {exc}")
    except BaseException as exc:  # the report is written whatever happened, with what happened
        report["errors"].append(f"{type(exc).__name__}: {str(exc)[:1000]}")
    finally:
        signal.alarm(0)
        if "gpu_check_runners" in sys.modules:
            sys.modules["gpu_check_runners"].stop_all()
    failed = [k for k, v in report["checks"].items() if not v]
    report["status"] = "error" if report["errors"] or not report["checks"] else "failed" if failed else "ok"
    report["elapsed_s"] = budget.elapsed()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_rounded(report), indent=2, default=str) + "\n")
    print(summary(report), flush=True)
    return {"ok": 0, "failed": 1}.get(report["status"], 2)


if __name__ == "__main__":
    sys.exit(main())
