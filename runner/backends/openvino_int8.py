"""int8 weights on OpenVINO: the encoder converted once, cached next to its weights, run on CPU.

Weights are stored as int8 (asymmetric, per output channel, by NNCF) and expanded on the fly,
while activations stay in floating point. That keeps fidelity close to fp32 where dynamic int8
of the activations does not (measured on all-MiniLM-L6-v2: worst cosine 0.86 with PyTorch's
dynamic int8, 0.96 with ONNX Runtime's, 0.998 here). The converted model is cached under
<weights>/.edge-embed-int8/<key>, where the key covers the weights, the config and the versions of
every tool involved, so a second start converts nothing and an upgrade converts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

#: Where converted models live, inside each model's weights folder: one sub-folder per cache key.
CACHE_DIR = ".edge-embed-int8"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class OpenVinoEncoder:
    """Stands in for a Transformers model: called with the padded features, it answers with the
    model's first output (an encoder's `last_hidden_state`, a classifier's `logits`) under the name
    the handler reads (`output`). Calls come from the handler's one compute thread, so one request
    suffices."""

    def __init__(self, compiled, config, output: str) -> None:
        self._compiled = compiled
        self._names = [port.get_any_name() for port in compiled.inputs]
        self._request = compiled.create_infer_request()
        self.config = config
        self._output = output

    def __call__(self, **features: torch.Tensor) -> SimpleNamespace:
        inputs = {name: features[name].cpu().numpy() for name in self._names}
        # infer() hands back arrays of its own (share_outputs is off), so no copy is needed.
        first = self._request.infer(inputs)[self._compiled.outputs[0]]
        return SimpleNamespace(**{self._output: torch.from_numpy(first)})


def cache_key(weights_dir: Path) -> str:
    """Digest of what the converted model depends on: the weights, config and tokenizer files, and
    the versions of every tool involved. Weights copied or fetched again simply convert again."""
    import nncf
    import openvino

    return weights_key(weights_dir, openvino.__version__, nncf.__version__, "int8_asym-2")


def weights_key(weights_dir: Path, *versions: str) -> str:
    """Digest of a weights folder's weight, config and tokenizer files (by name, size and
    modification time, so a start never reads gigabytes to check), of Transformers' and PyTorch's
    versions, and of versions; needs no OpenVINO, so a GPU machine can key its choices with it."""
    import transformers

    digest = hashlib.sha256()
    for path in sorted(p for p in weights_dir.iterdir() if p.suffix in _WEIGHT_SUFFIXES or p.suffix == ".json"):
        stat = path.stat()
        digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    for version in (transformers.__version__, torch.__version__, *versions):
        digest.update(version.encode())
    return digest.hexdigest()[:16]


def converted_model(model: torch.nn.Module, tokenizer, target: Path) -> tuple[Path, bool]:
    """The int8 IR of model in target (a cache_key folder), converting it if needed; True when it
    was converted now. Staging folders that a killed conversion left behind are swept first."""
    xml = target / "model.xml"
    if xml.is_file():
        return xml, False
    import nncf
    import openvino as ov

    for stale in target.parent.glob(".staging-*"):
        # An hour old: long dead, not another runner's conversion still in progress.
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    # Texts of different lengths, so that padding is in the traced graph as it is in every batch.
    example = tokenizer(["an example input", "and another, rather longer one, padded against the first"],
                        padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    # Tracing warns about shape checks it bakes in; the fidelity gate is what judges the result,
    # and the warnings would reach the gateway's log as if something had gone wrong.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ov.convert_model(model, example_input={n: example[n] for n in names})
    # NNCF draws progress tables on stdout, which carries the runner's JSON log lines.
    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        compressed = nncf.compress_weights(graph, mode=nncf.CompressWeightsMode.INT8_ASYM)
    # Written aside and renamed into place, so a crash never leaves a half-written cache behind.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        ov.save_model(compressed, staging / "model.xml", compress_to_fp16=False)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide it from a runner of another user
        staging.rename(target)
    except OSError:
        if not xml.is_file():  # another runner may have won the race; its copy is as good
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return xml, True


def activation_precisions() -> list[str]:
    """Floating-point precisions the CPU runs natively: f32 always, bf16 where it has support."""
    import openvino as ov

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return ["f32", "bf16"] if "BF16" in capabilities else ["f32"]


def compile_encoder(xml: Path, precision: str, threads: int, config, output: str) -> OpenVinoEncoder:
    """The cached IR compiled for the CPU with the given activation precision."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(xml), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,
    })
    return OpenVinoEncoder(compiled, config, output)
