"""Puts a loaded handler on the precision its catalog entry or the PRECISION setting asks for.

fp32 is PyTorch as loaded: the reference, served as it is. int8 swaps the handler's encoder for
the OpenVINO int8 one, but only after the fidelity gate: both embed the built-in corpus, and
the int8 path must stay within the thresholds. Where the CPU runs bf16 natively, int8 weights
with bf16 activations are a candidate too; each candidate is timed on the same corpus (best of
three alternating rounds), and the fastest that passes the gate is kept. The measurement, not
the CPU's name, decides.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .catalog import PRECISIONS
from .errors import ConfigError
from .fidelity import Fidelity, Thresholds, check, corpus, measure
from .handlers.base import EmbedOptions, Handler


@dataclass(frozen=True)
class PrecisionReport:
    """What a handler runs in, and why: logged at start and shown in Info."""

    precision: str
    #: The backend and activation precision, e.g. "openvino int8 weights, bf16 activations".
    detail: str
    fidelity: Fidelity | None = None
    converted: bool = False
    #: Each candidate's best time to embed the corpus, and its fidelity, for the log line.
    candidates: dict[str, dict] = field(default_factory=dict)


def apply_precision(handler: Handler, name: str, precision: str, limits: Thresholds, threads: int) -> PrecisionReport:
    """Leaves fp32 as it is; for int8, converts (once), gates, times and swaps in the encoder.

    auto times fp32 against every int8 candidate that passes the gate and keeps the fastest. The
    choice is cached per CPU (model, flags and cores), next to the converted weights, so later
    starts on the same machine measure only the fidelity of what they serve.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"{name}: precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    fp32 = PrecisionReport("fp32", f"pytorch {str(handler.dtype).removeprefix('torch.')}")
    if precision == "fp32" or (precision == "auto" and (handler.device.type != "cpu" or getattr(handler, "encoder_dir", None) is None)):
        handler.precision = fp32 if precision == "fp32" else PrecisionReport("fp32", f"{fp32.detail}; auto: int8 needs a CPU and an encoder model")
        return handler.precision
    from .backends.openvino_int8 import CACHE_DIR, activation_precisions, compile_encoder, converted_model

    reference, weights_dir = handler.encoder()
    if handler.device.type != "cpu":
        raise ConfigError(f"{name}: precision int8 runs on CPU only; use fp32 on {handler.device}")
    choice_file = weights_dir / CACHE_DIR / f"choice-{cpu_key()}.json"
    cached = json.loads(choice_file.read_text()) if precision == "auto" and choice_file.is_file() else None
    if cached and cached["choice"] == "fp32":
        handler.precision = PrecisionReport("fp32", f"{fp32.detail}; auto: {cached['why']} (cached for this CPU)")
        return handler.precision

    xml, converted = converted_model(reference, handler.tokenizer(), weights_dir)
    queries, documents = corpus()
    texts = queries + documents

    def embed(texts: list[str]):
        return handler.embed(texts, EmbedOptions()).vectors

    wanted = embed(texts)
    activations = [cached["choice"].removeprefix("int8/")] if cached else activation_precisions()
    encoders = {"fp32": reference} | {f"int8/{a}": compile_encoder(xml, a, threads, reference.config) for a in activations}
    fidelities: dict[str, Fidelity] = {}
    for key, encoder in list(encoders.items())[1:]:
        handler.use_encoder(encoder)
        fidelities[key] = measure(lambda _: wanted, embed)  # also compiles kernels for these shapes
    # Only a choice needs timing: auto weighs fp32 too, int8 only its own candidates.
    # A remembered choice needs none.
    timed = [] if cached else list(encoders) if precision == "auto" else list(fidelities) if len(fidelities) > 1 else []
    seconds = _best_times(handler, {k: encoders[k] for k in timed}, lambda: embed(texts))
    handler.use_encoder(reference)
    fp32_seconds = seconds.get("fp32", 0.0)
    results = {k: (seconds.get(k, 0.0), fidelities[k], encoders[k]) for k in fidelities}
    # Untimed candidates (nothing to choose between) carry no seconds, rather than a made-up 0.
    candidates = {k: {"seconds": round(t, 4)} for k, t in seconds.items()}
    for k, f in fidelities.items():
        candidates.setdefault(k, {}).update(mean_cosine=round(f.mean_cosine, 6), worst_cosine=round(f.worst_cosine, 6),
                                            top10_overlap=round(f.top10_overlap, 4), passes=not f.failures(limits))
    passing = {k: r for k, r in results.items() if not r[1].failures(limits)}
    if not passing and precision == "int8":
        check(name, "int8", max(results.values(), key=lambda r: r[1].mean_cosine)[1], limits)
    chosen = min(passing, key=lambda k: passing[k][0], default=None)
    if precision == "auto" and (chosen is None or (not cached and fp32_seconds <= passing[chosen][0])):
        if chosen is None:
            why = "no int8 candidate passed the fidelity gate"
            choice_file.unlink(missing_ok=True)  # the next start weighs every candidate again
        else:
            why = f"fp32 took {fp32_seconds:.3f} s on the gate's corpus, the fastest int8 ({chosen}) {passing[chosen][0]:.3f} s"
            _remember(choice_file, "fp32", why)
        handler.precision = PrecisionReport("fp32", f"{fp32.detail}; auto: {why}", None, converted, candidates)
        return handler.precision
    _, fidelity, encoder = passing[chosen]
    handler.use_encoder(encoder)
    del reference  # the fp32 encoder's memory goes back once nothing holds it
    detail = f"openvino int8 weights, {chosen.removeprefix('int8/')} activations"
    if precision == "auto":
        why = f"{chosen} took {passing[chosen][0]:.3f} s on the gate's corpus, fp32 {fp32_seconds:.3f} s"
        if not cached:
            _remember(choice_file, chosen, why)
        detail += f"; auto: {cached['why'] + ' (cached for this CPU)' if cached else why}"
    handler.precision = PrecisionReport("int8", detail, fidelity, converted, candidates)
    return handler.precision


def _best_times(handler: Handler, encoders: dict, work) -> dict[str, float]:
    """Each encoder's best time for work, over three rounds that alternate between them: one pass
    right after compiling or converting is too noisy to choose by."""
    seconds = dict.fromkeys(encoders, float("inf"))
    for _ in range(3):
        for key, encoder in encoders.items():
            handler.use_encoder(encoder)
            started = time.perf_counter()
            work()
            seconds[key] = min(seconds[key], time.perf_counter() - started)
    return seconds


def cpu_key() -> str:
    """This CPU's model, flags and core count, digested: a choice timed on one holds on it alone."""
    text = platform.processor()
    try:
        info = Path("/proc/cpuinfo").read_text()
        text = "\n".join(line for line in info.splitlines()[:40] if line.startswith(("model name", "flags", "Features")))
    except OSError:
        pass
    return hashlib.sha256(f"{text}|{os.cpu_count()}".encode()).hexdigest()[:12]


def _remember(path: Path, choice: str, why: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps({"choice": choice, "why": why}))
    staging.replace(path)


def default_threads() -> int:
    """The threads PyTorch was given for this runner, which the int8 backend then uses too."""
    return torch.get_num_threads()
