"""Chooses the handler to serve at the precision its catalog entry or the PRECISION setting asks for.

fp32 is PyTorch as loaded: the reference, served as it is. Each other precision is a handler built
on another backend's encoder from runner/backends/ (for a reranker or classifier, its whole
model). It is served only after the fidelity gate: both handlers embed, rerank or classify the
built-in corpus, and the other must stay within the thresholds. No handler changes its encoder
once built. Which paths a device offers is the device profile's to say (runner/device_profile.py):
on a CPU, a PyTorch bf16 copy and the OpenVINO int8 conversion (with bf16 activations too where the
CPU runs bf16 natively); on a GPU, fp16 and bf16 copies. auto weighs them all: each is timed on the
same corpus (best of three alternating rounds), and the fastest that passes the gate is kept. The
measurement, not the device's name, decides.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import compute_threads
from .catalog import PRECISIONS
from .device import device_key
from .device_profile import precision_candidates
from .errors import ConfigError
from .fidelity import Fidelity, Output, Thresholds, check, compare_scores, compare_vectors, corpus, rerank_sets
from .handlers.base import EmbedOptions, Handler
from .handlers.encoder import EncoderHandler
from .precision_report import PrecisionReport

#: The label of each dtype a handler may be loaded in, when it serves as loaded.
_LABELS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
#: The dtype of each half-precision path.
_HALVES = {"fp16": torch.float16, "bf16": torch.bfloat16}
#: Where a device without int8 keeps its auto choice, inside the weights folder.
CHOICE_DIR = ".edge-embed-precision"


def apply_precision(handler: EncoderHandler, name: str, precision: str, limits: Thresholds, threads: int,
                    progress: Callable[[str], None] = lambda _: None) -> EncoderHandler:
    """The handler to serve, its PrecisionReport as `precision`: the one given for fp32; for another
    precision, one built on that backend's encoder (int8: converted once), gated against the one
    given and timed. The handler given is then spent: once the caller drops it, the fp32 weights go.

    auto times fp32 against every candidate of the device that passes the gate and keeps the
    fastest. The choice is cached per device (a CPU's model, flags and cores; a GPU's name and
    capability) and thread count, next to the converted weights (or, where those are read-only,
    in the user's cache folder), so later starts on the same machine measure only the fidelity
    of what they serve.
    `progress` hears of the slow steps (conversion, the gate) before they start.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"{name}: precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    device = handler.device
    loaded = _LABELS.get(handler.dtype, "fp32")
    fp32 = PrecisionReport(loaded, f"pytorch {str(handler.dtype).removeprefix('torch.')}")
    offered = precision_candidates(device, handler.allows_float16)
    # The other paths answer in float32, which the heads of a model loaded in another dtype cannot take.
    unfit = "dtype float32" if handler.dtype != torch.float32 else \
        "a handler that names its weights folder" if getattr(handler, "encoder_dir", None) is None else \
        f"a device that offers it ({device.type} offers {', '.join(offered) or 'none'})" if precision not in ("fp32", "auto", *offered) else \
        f"a device that offers another ({device.type} offers none)" if not offered else None
    if precision == "fp32" or (precision == "auto" and unfit):
        handler.precision = fp32 if precision == "fp32" else PrecisionReport(loaded, f"{fp32.detail}; auto: other precisions need {unfit}")
        return handler
    if unfit:
        raise ConfigError(f"{name}: precision {precision} needs {unfit}; use fp32 or auto")
    reference, weights_dir = handler.encoder()
    folder, choice_files = None, ()
    if precision in ("auto", "int8"):  # a half-precision copy converts nothing and remembers nothing
        from .backends.openvino_int8 import CACHE_DIR, cache_key, weights_key

        # Beside the int8 conversion where the device offers one; elsewhere (a GPU, where OpenVINO
        # need not be installed) in a folder of its own.
        key = cache_key(weights_dir) if "int8" in offered else weights_key(weights_dir)
        folder = weights_dir / (CACHE_DIR if "int8" in offered else CHOICE_DIR) / key
        choice = f"choice-{device_key(device)}-{threads}-{'-'.join(('fp32', *offered))}.json"
        choice_files = (folder / choice, _user_cache() / f"{weights_dir.name}-{key}" / choice)
    cached = _remembered(choice_files) if precision == "auto" else None
    if cached and cached["choice"] == "fp32":
        handler.precision = PrecisionReport("fp32", f"{fp32.detail}; auto: {cached['why']} (cached for this device)")
        return handler

    # The candidates: what was asked for, or for auto every one the device offers (the remembered
    # one alone, if any).
    wants = (lambda key: cached["choice"].split("/")[0] == key) if cached else \
        (lambda key: key in offered and precision in (key, "auto"))
    # Each candidate is a handler of its own, built on its backend's encoder.
    handlers = {"fp32": handler}
    converted = False
    for half, dtype in _HALVES.items():
        if wants(half):
            from .backends.torch_half import HalfEncoder

            handlers[half] = handler.with_encoder(HalfEncoder(reference, handler.encoder_output, dtype))
    if wants("int8"):
        try:
            encoders_int8, converted = _int8_encoders(reference, handler, folder, threads, cached, progress)
            handlers |= {key: handler.with_encoder(encoder) for key, encoder in encoders_int8.items()}
        except Exception as exc:  # a tool's own failure: say so in one line, or weigh the others
            if precision == "int8":
                raise ConfigError(f"{name}: int8 conversion failed ({type(exc).__name__}: {str(exc)[:200]})") from None
            if len(handlers) == 1:
                handler.precision = PrecisionReport("fp32", f"{fp32.detail}; auto: int8 conversion failed ({type(exc).__name__})")
                return handler
    # Building the candidates ran on this thread; the passes timed below run on the compute thread,
    # as fast as they will serve only with this thread's CPU threads gone (see compute_threads).
    compute_threads.release_team()
    progress(f"checking {', '.join(list(handlers)[1:])} against fp32 on the fidelity corpus")
    gates = _gates(handler, name)
    wanted = [compute(handler) for compute, _ in gates]
    fidelities: dict[str, Fidelity] = {}
    for key, candidate in list(handlers.items())[1:]:
        # Measuring also compiles kernels for these shapes before anything is timed.
        fidelities[key] = Fidelity.weakest([compare(w, compute(candidate)) for w, (compute, compare) in zip(wanted, gates)])
    # Only a choice needs timing: auto weighs fp32 too, bf16 or int8 only their own candidates.
    # A remembered choice needs none.
    timed = [] if cached else list(handlers) if precision == "auto" else list(fidelities) if len(fidelities) > 1 else []
    seconds = _best_times({k: handlers[k] for k in timed}, gates[0][0])
    fp32_seconds = seconds.get("fp32", 0.0)
    results = {k: (seconds.get(k, 0.0), fidelities[k], handlers[k]) for k in fidelities}
    # Untimed candidates (nothing to choose between) carry no seconds, rather than a made-up 0.
    candidates = {k: {"seconds": round(t, 4)} for k, t in seconds.items()}
    for k, f in fidelities.items():
        candidates.setdefault(k, {}).update(mean_cosine=round(f.mean_cosine, 6), worst_cosine=round(f.worst_cosine, 6),
                                            top10_overlap=round(f.top10_overlap, 4), passes=not f.failures(limits))
    passing = {k: r for k, r in results.items() if not r[1].failures(limits)}
    if not passing and precision != "auto":
        check(name, precision, max(results.values(), key=lambda r: r[1].mean_cosine)[1], limits)
    chosen = min(passing, key=lambda k: passing[k][0], default=None)
    if precision == "auto" and (chosen is None or (not cached and fp32_seconds <= passing[chosen][0])):
        if chosen is None:
            why = "no candidate passed the fidelity gate"
            _forget(choice_files)  # the next start weighs every candidate again
        else:
            why = f"fp32 took {fp32_seconds:.3f} s on the gate's corpus, the fastest other ({chosen}) {passing[chosen][0]:.3f} s"
            _remember(choice_files, "fp32", why)
        handler.precision = PrecisionReport("fp32", f"{fp32.detail}; auto: {why}", None, converted, candidates)
        return handler
    chosen_seconds, fidelity, served = passing[chosen]
    detail = f"pytorch {str(_HALVES[chosen]).removeprefix('torch.')} weights and activations" if chosen in _HALVES else \
        f"openvino int8 weights, {chosen.removeprefix('int8/')} activations"
    if precision == "auto":
        why = f"{chosen} took {chosen_seconds:.3f} s on the gate's corpus, fp32 {fp32_seconds:.3f} s"
        if not cached:
            _remember(choice_files, chosen, why)
        detail += f"; auto: {cached['why'] + ' (cached for this device)' if cached else why}"
    served.precision = PrecisionReport(chosen.split("/")[0], detail, fidelity, converted, candidates)
    return served


def _int8_encoders(reference, handler: EncoderHandler, folder: Path, threads: int, cached: dict | None,
                   progress: Callable[[str], None]) -> tuple[dict, bool]:
    """The int8 candidates, one per activation precision the CPU runs natively (or the remembered
    one), converting the weights first unless a conversion is cached; and whether it converted."""
    from .backends.openvino_int8 import activation_precisions, compile_encoder, converted_model

    if not (folder / "model.xml").is_file():
        progress("converting to int8, once: this takes a while for a large model")
    xml, converted = converted_model(reference, handler.tokenizer(), folder)
    activations = [cached["choice"].removeprefix("int8/")] if cached else activation_precisions()
    return {f"int8/{a}": compile_encoder(xml, a, threads, reference.config, handler.encoder_output)
            for a in activations}, converted


def _gates(handler: EncoderHandler, name: str) -> list[tuple[Callable[[Handler], Output], Callable[[Output, Output], Fidelity]]]:
    """Every output the handler serves, as the gate checks it: how a handler computes it on the
    corpus, and how to compare two handlers' answers. bge-m3's sparse weights are among them, since their relu
    threshold makes them the most sensitive to small changes, and so are its ColBERT vectors.
    The first one is also what candidates are timed on."""
    queries, documents = corpus()
    texts = queries + documents
    capabilities = handler.capabilities
    gates: list = []
    if "text-embedding" in capabilities:
        gates.append((lambda h: h.embed(texts, EmbedOptions()).vectors, compare_vectors))
        # Token embeddings (TEI's /embed_all) are served for every embedding model that has them,
        # and a drifting token hides in the pooled vector.
        if type(handler).token_embeddings is not Handler.token_embeddings:
            gates.append((lambda h: h.token_embeddings(texts, EmbedOptions()).vectors, compare_vectors))
    if "sparse-embedding" in capabilities:
        gates.append((lambda h: _sparse_rows(h, texts), compare_vectors))
    if "multi-vector" in capabilities:
        gates.append((lambda h: h.multi_vector(texts, EmbedOptions()).vectors, compare_vectors))
    if "rerank" in capabilities:
        # Raw logits: a sigmoid would squash the differences at both ends that the gate must see.
        # Documents are cut to 64 tokens, so that the gate's 256 pairs cost about what embedding
        # its 80 texts does: a large reranker would otherwise spend minutes on it at every start.
        gates.append((lambda h: np.stack([h.score(q, docs, truncate=True, raw=True, max_doc_tokens=64).scores
                                        for q, docs in rerank_sets()], axis=1), compare_scores))
    if "classify" in capabilities:
        gates.append((lambda h: h.classify(texts, truncate=True, raw=True).scores, compare_scores))
    if not gates:
        raise ConfigError(f"{name}: the fidelity gate has no check for a handler serving {', '.join(capabilities)}; use fp32")
    return gates


def _sparse_rows(handler: Handler, texts: list[str]):
    """Sparse weights as rows over the whole vocabulary, so that compare_vectors can compare them."""
    out = handler.sparse(texts, EmbedOptions())
    rows = np.zeros((len(texts), handler.vocab_size), np.float32)
    for row, (indices, values) in enumerate(zip(out.indices, out.values)):
        rows[row, indices] = values
    return rows


def _best_times(handlers: dict[str, Handler], work: Callable[[Handler], Output]) -> dict[str, float]:
    """Each handler's best time for work, over three rounds that alternate between them: one pass
    right after compiling or converting is too noisy to choose by."""
    seconds = dict.fromkeys(handlers, float("inf"))
    for _ in range(3):
        for key, handler in handlers.items():
            started = time.perf_counter()
            work(handler)
            seconds[key] = min(seconds[key], time.perf_counter() - started)
    return seconds


def _user_cache() -> Path:
    """Where choices go when the weights folder is read-only, as in the container images."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-embed" / "precision"


def _remembered(paths: tuple[Path, ...]) -> dict | None:
    """The choice remembered for this device in the first of paths that has one, or None."""
    for path in paths:
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(cached, dict) and {"choice", "why"} <= set(cached):
            return cached
    return None


def _remember(paths: tuple[Path, ...], choice: str, why: str) -> None:
    """Keeps the choice for the next start in the first of paths that can be written; where none
    can, the next start simply times again."""
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{os.getpid()}.tmp")
            staging.write_text(json.dumps({"choice": choice, "why": why}))
            staging.replace(path)
            return
        except OSError:
            continue


def _forget(paths: tuple[Path, ...]) -> None:
    """Drops a remembered choice wherever it was kept."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
