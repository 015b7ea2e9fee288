"""bench/gpu_server_bench.py rehearsed where there is no GPU, so that the GPU run is one command.

The rehearsal runs the script as a GPU machine would, with --device cpu: sentence-transformers in
process, a runner alone over gRPC, and the whole server (Node gateway, runner, gRPC) over HTTP with
clients in several processes, on a tiny MiniLM-shaped stand-in and short rounds. The pack's
unpacking is checked on its own: Node, the gateway's packages and its generated code restored
from the archives scripts/gpu_pack.sh writes, into a tree that has none of them.
"""

from __future__ import annotations

import importlib.util
import json
import lzma
import shutil
import subprocess
import sys
import tarfile

import pytest

from support import ROOT

PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable
SHAPES = {"32x1", "128x1", "4x32", "16x32", "1x512", "4x512"}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_server_bench") / "bench.json"
    done = subprocess.run([PYTHON, "bench/gpu_server_bench.py", "--device", "cpu", "--corpus", "32", "--seconds", "0.5",
                           "--idle-requests", "5", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=400)
    return done, json.loads(out.read_text()) if out.exists() else None


def test_rehearsal_measures_every_part_in_one_run(rehearsal):
    done, report = rehearsal
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert report["errors"] == []
    assert set(report["in_process"]) == {"fp32_batch32", "fp32_batch128", "fp32_batch512"}
    assert all(v > 0 for v in report["in_process"].values())
    assert {"32x1", "4x32", "1x512"} <= set(report["runner_alone"]) and report["runner_alone"]["idle_p50_ms"] > 0
    server = report["server"]
    assert len(server["rounds"]) == 2
    for shapes in server["rounds"]:
        assert set(shapes) == SHAPES
        assert all(s["texts_per_s"] > 0 and s["requests"] > 0 for s in shapes.values())
    assert server["idle"]["requests"] == 5 and server["idle"]["p50_ms"] > 0
    assert server["big_request"] == {"texts": 64, "ok": True, "seconds": server["big_request"]["seconds"], "errors": []}


def test_report_carries_the_profile_and_the_targets(rehearsal):
    _, report = rehearsal
    [profile] = report["server"]["model"]["device_profiles"]
    assert profile["device"] == "cpu" and profile["host_compute"] and profile["concurrency"] == 1
    # The server ran at its defaults: precision auto weighed the device's paths and said why it chose.
    assert "auto: " in report["server"]["model"]["precision_detail"]
    summary = report["summary"]
    assert summary["S_texts_per_s"] == max(report["in_process"].values())
    assert set(summary["ratios_to_S"]) == SHAPES and set(summary["first_round_to_later"]) == SHAPES
    assert len(summary["targets"]) == 7 and summary["targets"]["big request succeeds"]
    assert report["host"]["cpu_count"] and "gpu" in report


def _module():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("gpu_server_bench", ROOT / "bench" / "gpu_server_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_node_and_the_gateway_come_out_of_the_pack_into_a_bare_tree(tmp_path, monkeypatch):
    bench = _module()
    tree, pack, work = tmp_path / "tree", tmp_path / "pack", tmp_path / "work"
    (tree / "node_modules").mkdir(parents=True)
    (pack / "node").mkdir(parents=True)
    work.mkdir()
    with lzma.open(pack / "node" / "node.xz", "wb") as f:
        f.write((ROOT / "node_modules/node/bin/node").read_bytes()[:4096])  # the start of the real binary is enough
    for name, member in (("node_modules.tar.xz", "node_modules/fastify/package.json"),
                         ("generated.tar.xz", "gateway/src/generated/runner.ts")):
        with tarfile.open(pack / "node" / name, "w:xz") as tar:
            tar.add(ROOT / member, arcname=member)
    monkeypatch.setattr(bench, "ROOT", tree)
    node = bench.node_binary(pack, work)
    assert node == str(work / "node") and (work / "node").stat().st_mode & 0o111
    assert (work / "node").read_bytes() == (ROOT / "node_modules/node/bin/node").read_bytes()[:4096]
    assert (tree / "node_modules/fastify/package.json").is_file()
    assert (tree / "gateway/src/generated/runner.ts").is_file()
    shutil.rmtree(tree)
