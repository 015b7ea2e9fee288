"""bench/gpu_check.py rehearsed where there is no GPU, so that it works the first time it meets one.

The rehearsal runs the script as a GPU machine would, with --device cpu: the CPU stands in for the
GPU, a tiny random MiniLM-shaped model for the real one (its tokenizer synthesised, as on a
machine without MiniLM's files), and the same runner processes, pinning environment, gRPC calls
and report. CPU against CPU must agree to float rounding, so the parity figures are checked
against tight limits. The parts only a GPU machine exercises are checked on their own: reading
nvidia-smi (a stand-in executable answers as one with two H200s would) and the bootstrap's refusal
when imports are missing and no wheelhouse came along.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys

import pytest

from support import ROOT

PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable
SHAPES = {"clients32_x1": 32, "clients4_x32": 4, "clients1_x512": 1}


def _module(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The rehearsal's own --budget-s, with room for a machine shared with vitest: it must end within it.
BUDGET_S = 240


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu.json"
    done = subprocess.run([PYTHON, "bench/gpu_check.py", "--device", "cpu", "--tokenizer", "synth",
                           "--budget-s", str(BUDGET_S), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return done, json.loads(out.read_text()) if out.exists() else None


def test_rehearsal_passes_and_summarises(rehearsal):
    done, report = rehearsal
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert report["status"] == "ok", report["errors"]
    assert report["errors"] == [] and report["skipped"] == []
    assert all(report["checks"].values()) and len(report["checks"]) == 9
    assert "status ok" in done.stdout and "checks: all passed" in done.stdout
    assert report["elapsed_s"] <= BUDGET_S


def test_report_describes_machine_model_and_runners(rehearsal):
    _, report = rehearsal
    assert report["schema"] == 1 and report["mode"] == "cpu-standin" and report["device_under_test"] == "cpu"
    assert report["gpu"] == {"nvidia_smi": False, "gpus": []}
    assert report["torch"]["torch"] and report["torch"]["transformers"] and report["torch"]["device_count"] == 0
    assert report["host"]["python"].count(".") == 2
    assert report["bootstrap"]["venv"] is None and report["bootstrap"]["missing_at_start"] == {}
    model = report["model"]
    assert model["kind"] == "standin-tiny" and model["real_weights"] is False
    assert "make_standins" in model["tokenizer_from"] and model["shape"]["vocab_size"] == 30522
    assert set(report["runners"]) == {"cpu_ref", "fp32", "fp16", "bf16"}
    for variant, dtype in (("cpu_ref", "float32"), ("fp32", "float32"), ("fp16", "float16"), ("bf16", "bfloat16")):
        runner = report["runners"][variant]
        assert runner["info"]["device"] == "cpu" and runner["info"]["dtype"] == dtype
        # Served as loaded, and labelled as what it runs in.
        assert runner["info"]["precision"] == {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[dtype]
        assert runner["ready_s"] > 0
    assert report["settings"]["catalog_dtypes"]["gpu-check-fp16"] == "float16"


def test_parity_is_float_rounding_only(rehearsal):
    _, report = rehearsal
    parity = report["parity"]
    assert set(parity) == {"fp32", "fp16", "bf16"}
    assert parity["fp32"]["mean_cosine"] > 0.9999 and parity["fp32"]["worst_cosine"] > 0.9999
    assert parity["fp16"]["mean_cosine"] > 0.999 and parity["fp16"]["worst_cosine"] > 0.995
    assert parity["bf16"]["mean_cosine"] > 0.999 and parity["bf16"]["worst_cosine"] > 0.995
    for figures in parity.values():
        assert figures["texts"] == report["reference"]["texts"] == report["settings"]["corpus_texts"]
        assert figures["worst_cosine"] <= figures["mean_cosine"] <= 1.000001


def test_pinning_and_memory(rehearsal):
    _, report = rehearsal
    pinning = report["pinning"]
    assert pinning["ok"] is True and set(pinning["runners"]) == {"fp32", "fp16"}
    for facts in pinning["runners"].values():
        # Both on "GPU 0": the stand-in machine has fewer than two.
        assert facts["pinned_to"] == "0" and facts["environ_CUDA_VISIBLE_DEVICES"] == "0"
        assert facts["info_device"] == "cpu" and facts["torch_in_runner_env"]["device_count"] == 0
        assert facts["memory_mib"] > 0 and facts["memory_source"] == "process RSS (CPU stand-in)"
        assert all(facts["verdicts"].values())


def test_throughput_at_the_bench_shapes(rehearsal):
    _, report = rehearsal
    for variant in ("fp32", "fp16", "bf16"):
        shapes = report["throughput"][variant]
        assert {k: s["clients"] for k, s in shapes.items()} == SHAPES
        assert all(s["texts_per_s"] > 0 and s["p50_ms"] > 0 for s in shapes.values())
        idle = report["idle_latency"][variant]
        assert idle["requests"] == report["settings"]["idle_requests"] and 0 < idle["min_ms"] <= idle["p50_ms"] <= idle["p99_ms"]


def test_nvidia_smi_is_read(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("""#!/bin/sh
case "$*" in
  *query-gpu=index,uuid*)
    echo '0, GPU-1a2b3c4d-0000-1111-2222-333344445555, NVIDIA H200, 580.159.03, 143771, 1'
    echo '1, GPU-9f8e7d6c-0000-1111-2222-333344445555, NVIDIA H200, 580.159.03, 143771, 600' ;;
  *query-gpu=index,memory.used*) printf '0, 1\\n1, 600\\n' ;;
  *query-compute-apps*) printf '4242, GPU-9f8e7d6c-0000-1111-2222-333344445555, 598\\n' ;;
  *) echo '| NVIDIA-SMI 580.159.03    Driver Version: 580.159.03    CUDA Version: 13.0 |' ;;
esac
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    machine = _module("gpu_check_env")
    listed = machine.gpus()
    assert listed["driver"] == "580.159.03" and listed["cuda_driver_version"] == "13.0"
    assert [(g["index"], g["name"], g["memory_total_mib"]) for g in listed["gpus"]] == \
        [(0, "NVIDIA H200", 143771), (1, "NVIDIA H200", 143771)]
    assert machine.memory_used() == {0: 1, 1: 600}
    assert machine.compute_apps() == {4242: {"gpu_uuid": "GPU-9f8e7d6c-0000-1111-2222-333344445555", "used_mib": 598}}
    # torch writes the same UUID without nvidia-smi's prefix.
    assert machine.uuid_key("9f8e7d6c-0000-1111-2222-333344445555") == \
        machine.uuid_key(listed["gpus"][1]["uuid"]) != machine.uuid_key(listed["gpus"][0]["uuid"])


def test_bootstrap_without_a_wheelhouse_says_what_to_do(tmp_path):
    check = _module("gpu_check")
    with pytest.raises(check.BootstrapError, match="gpu_wheelhouse.sh"):
        check.make_venv(tmp_path / "venv", tmp_path / "no-wheels")
    assert check.ensure_stubs(tmp_path / "no-wheels") == "present"


def test_gpu_pinning_verdicts(monkeypatch):
    """The GPU-only branch of the pinning verdicts, fed what a two-GPU machine would report."""
    check = _module("gpu_check")
    uuids = ["GPU-1a2b3c4d-0000-1111-2222-333344445555", "GPU-9f8e7d6c-0000-1111-2222-333344445555"]
    smi = {"gpus": [{"index": i, "uuid": u} for i, u in enumerate(uuids)]}

    class FakeRunner:
        def __init__(self, pid, pin):
            self.proc = type("Proc", (), {"pid": pid})()
            self.pinned_to = pin

        def info(self):
            return {"device": "cuda:0"}

    fake_runners = type("Runners", (), {"process_environ": staticmethod(lambda pid, key: {11: "0", 12: "1"}[pid]),
                                         "rss_mib": staticmethod(lambda pid: 900)})
    under_test = {"fp32": FakeRunner(11, "0"), "fp16": FakeRunner(12, "1")}
    views = {"fp32": {"device_count": 1, "devices": [{"uuid": uuids[0][4:]}]},
             "fp16": {"device_count": 1, "devices": [{"uuid": uuids[1][4:]}]}}
    memory = {"fp32": ({0: 1, 1: 1}, {0: 700, 1: 1}), "fp16": ({0: 700, 1: 1}, {0: 700, 1: 650})}

    monkeypatch.setattr(check.machine, "compute_apps", lambda: {})
    by_memory = check._pinning(True, under_test, views, memory, smi, fake_runners)
    assert by_memory["ok"] is True
    assert by_memory["runners"]["fp16"]["memory_mib"] == 649
    assert by_memory["runners"]["fp16"]["verdicts"]["memory_only_on_the_pinned_gpu"] is True

    monkeypatch.setattr(check.machine, "compute_apps", lambda: {11: {"gpu_uuid": uuids[0], "used_mib": 698},
                                                                12: {"gpu_uuid": uuids[0], "used_mib": 648}})
    by_process = check._pinning(True, under_test, views, memory, smi, fake_runners)
    # The fp16 runner, pinned to GPU 1, shows up on GPU 0: pinning did not hold.
    assert by_process["runners"]["fp16"]["verdicts"]["runs_on_the_pinned_gpu"] is False
    assert by_process["ok"] is False and by_process["runners"]["fp32"]["memory_mib"] == 698


def test_pinning_follows_the_gateways_rule():
    """Within an inherited CUDA_VISIBLE_DEVICES, as device-policy.ts pins (its vitest has the same cases)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_check_runners import pinned_gpu

    assert pinned_gpu(3, None) == "3"
    assert pinned_gpu(1, "2,3") == "3"
    assert pinned_gpu(0, "GPU-8f6c, GPU-1a2b") == "GPU-8f6c"
    with pytest.raises(RuntimeError, match="leaves 2"):
        pinned_gpu(2, "2,3")
