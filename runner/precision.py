"""Puts a loaded handler on the precision its catalog entry or the PRECISION setting asks for.

fp32 is PyTorch as loaded: the reference, served as it is. int8 swaps the handler's encoder for
the OpenVINO int8 one, but only after the fidelity gate: both embed the built-in corpus, and
the int8 path must stay within the thresholds. Where the CPU runs bf16 natively, int8 weights
with bf16 activations are a candidate too; each candidate is timed on the same corpus, and the
fastest that passes the gate is kept. The measurement, not the CPU's name, decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
    #: Seconds each candidate took to embed the corpus, fidelity included, for the log line.
    candidates: dict[str, dict] = field(default_factory=dict)


def apply_precision(handler: Handler, name: str, precision: str, limits: Thresholds, threads: int) -> PrecisionReport:
    """Leaves fp32 as it is; for int8, converts (once), gates, times and swaps in the encoder."""
    if precision == "fp32":
        handler.precision = PrecisionReport("fp32", f"pytorch {str(handler.dtype).removeprefix('torch.')}")
        return handler.precision
    if precision not in PRECISIONS:
        raise ConfigError(f"{name}: precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    from .backends.openvino_int8 import activation_precisions, compile_encoder, converted_model

    reference, weights_dir = handler.encoder()
    if handler.device.type != "cpu":
        raise ConfigError(f"{name}: precision int8 runs on CPU only; use fp32 on {handler.device}")
    xml, converted = converted_model(reference, handler.tokenizer(), weights_dir)
    queries, documents = corpus()
    texts = queries + documents

    def embed(texts: list[str]):
        return handler.embed(texts, EmbedOptions()).vectors

    wanted = embed(texts)
    results: dict[str, tuple[float, Fidelity, object]] = {}
    for activations in activation_precisions():
        encoder = compile_encoder(xml, activations, threads, reference.config)
        handler.use_encoder(encoder)
        embed(texts[:8])  # the first call compiles kernels for the shapes it meets
        started = time.perf_counter()
        fidelity = measure(lambda _: wanted, embed)
        results[activations] = (time.perf_counter() - started, fidelity, encoder)
    handler.use_encoder(reference)
    candidates = {a: {"seconds": round(s, 4), "mean_cosine": round(f.mean_cosine, 6), "worst_cosine": round(f.worst_cosine, 6),
                      "top10_overlap": round(f.top10_overlap, 4), "passes": not f.failures(limits)}
                  for a, (s, f, _) in results.items()}
    passing = {a: r for a, r in results.items() if not r[1].failures(limits)}
    if not passing:
        best = max(results.values(), key=lambda r: r[1].mean_cosine)
        check(name, "int8", best[1], limits)
    chosen = min(passing, key=lambda a: passing[a][0])
    _, fidelity, encoder = passing[chosen]
    handler.use_encoder(encoder)
    del reference  # the fp32 encoder's memory goes back once nothing holds it
    handler.precision = PrecisionReport("int8", f"openvino int8 weights, {chosen} activations", fidelity, converted, candidates)
    return handler.precision


def default_threads() -> int:
    """The threads PyTorch was given for this runner, which the int8 backend then uses too."""
    return torch.get_num_threads()
