"""bench/bench_hop_floor.py runs end to end: its stub runner serves through the real gRPC server and
CallStream, and the gateway's real RunnerClient gets every call answered. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

from support import ROOT

PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable


def test_every_case_is_measured(tmp_path):
    out = tmp_path / "floor.json"
    done = subprocess.run([PYTHON, "bench/bench_hop_floor.py", "--calls", "40", "--pause-ms", "5",
                           "--work-ms", "0", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    rows = json.loads(out.read_text())["rows"]
    assert [(r["work_ms"], r["case"]) for r in rows] == [
        (work, case) for work in (0, 1) for case in ("back to back", "back to back, Node polling", "after 5 ms")]
    # 40 calls less the tenth left out as warm-up; after a pause, at least 20 calls are made.
    assert [r["calls"] for r in rows] == [36, 36, 18] * 2
    assert all(r["hop_p10_ms"] <= r["hop_p50_ms"] for r in rows)
