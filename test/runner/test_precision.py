"""The int8 path and its fidelity gate, on the real all-MiniLM-L6-v2 weights and on stand-ins."""

from __future__ import annotations

import dataclasses
import gc
import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from runner.backends.openvino_int8 import CACHE_DIR, OpenVinoEncoder
from runner.errors import ConfigError
from runner.backends.torch_half import HalfEncoder
from runner.fidelity import Fidelity, Thresholds, compare_scores, compare_vectors, corpus, rerank_sets
from runner.handlers.base import EmbedOptions
from runner.loader import load_handler
from runner.precision import apply_precision
from support import MODEL

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Edge servers embed text close to the user.", "short"]


@pytest.fixture(scope="module")
def minilm_copy(tmp_path_factory, minilm_dir):
    """The real weights, linked into a folder of their own so that the int8 cache starts empty."""
    root = tmp_path_factory.mktemp("models")
    target = root / MODEL
    target.mkdir()
    for path in minilm_dir.iterdir():
        if path.name != CACHE_DIR:
            (target / path.name).symlink_to(path)
    return root


def load_minilm(catalog, root):
    return load_handler(catalog[MODEL], root, torch.device("cpu"), 16384)


def test_int8_passes_the_gate_on_minilm_and_is_cached_for_the_next_start(catalog, minilm_copy, st_minilm):
    handler = load_minilm(catalog, minilm_copy)
    handler = apply_precision(handler, MODEL, "int8", Thresholds(), 2)
    report = handler.precision
    assert report.precision == "int8" and report.converted
    assert report.detail.startswith("openvino int8 weights, ")
    assert report.fidelity.mean_cosine >= 0.999 and report.fidelity.worst_cosine >= 0.995
    assert report.fidelity.top10_overlap >= 0.95
    # Every candidate the CPU offers was timed and measured; the kept one passed and was fastest.
    passing = {k: v for k, v in report.candidates.items() if v.get("passes")}
    fastest = min(passing, key=lambda k: passing[k].get("seconds", 0))
    assert report.detail.endswith(f"{fastest.removeprefix('int8/')} activations")
    assert isinstance(handler.encoder()[0], OpenVinoEncoder)
    got = handler.embed(TEXTS, EmbedOptions()).vectors
    want = st_minilm.encode(TEXTS)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.995
    assert cos.min() < 1 - 1e-7  # really the int8 model, not the fp32 one still in place
    assert len(list((minilm_copy / MODEL / CACHE_DIR).iterdir())) == 1

    again = apply_precision(load_minilm(catalog, minilm_copy), MODEL, "int8", Thresholds(), 2).precision
    assert not again.converted
    assert len(list((minilm_copy / MODEL / CACHE_DIR).iterdir())) == 1


def test_int8_below_the_thresholds_is_refused_with_the_figures(catalog, minilm_copy):
    handler = load_minilm(catalog, minilm_copy)
    with pytest.raises(ConfigError, match=r"int8 path is too far from the reference to serve \(mean cosine 0\.99\d+ < 0\.9999999"):
        apply_precision(handler, MODEL, "int8", Thresholds(mean_cosine=0.9999999), 2)
    # Refused means the reference stays in place, untouched.
    assert not isinstance(handler.encoder()[0], OpenVinoEncoder)


def test_fp32_is_the_reference_as_loaded(catalog, minilm_copy):
    handler = load_minilm(catalog, minilm_copy)
    model = handler.encoder()[0]
    served = apply_precision(handler, MODEL, "fp32", Thresholds(), 2)
    report = served.precision
    assert (report.precision, report.detail, report.fidelity) == ("fp32", "pytorch float32", None)
    assert served is handler and handler.encoder()[0] is model


def test_int8_works_for_bge_m3_and_gates_each_of_its_outputs(load, standins, monkeypatch):
    # bge-m3's heads stay in PyTorch on top of the int8 encoder; the stand-in's fidelity is random,
    # so the gate is opened here: this checks the plumbing, the MiniLM test checks the numbers.
    handler = load("bge-m3")
    open_gate = Thresholds(0, 0, 0)
    gated = {"sparse": [], "multi_vector": []}
    for output in gated:  # each output bge-m3 serves is computed for the gate, by each handler
        def counted(self, *args, _output=output, _call=getattr(type(handler), output)):
            gated[_output].append(self)
            return _call(self, *args)
        monkeypatch.setattr(type(handler), output, counted)
    served = apply_precision(handler, "bge-m3", "int8", open_gate, 2)
    # Once by the fp32 handler, once by each int8 one (one or two, as the CPU runs bf16 natively or not).
    assert served is not handler and isinstance(served.encoder()[0], OpenVinoEncoder)
    for calls in gated.values():
        assert calls[0] is handler and len(calls) >= 2 and handler not in calls[1:]
    assert served.sparse(TEXTS, EmbedOptions()).token_counts[0] > 0
    assert served.multi_vector(TEXTS, EmbedOptions()).vectors[0].shape[0] > 0


@pytest.mark.parametrize("precision", ["int8", "bf16"])
@pytest.mark.parametrize("name", ["ms-marco-minilm-l6-v2", "nli-distilroberta-base"])
def test_rerankers_and_classifiers_run_int8_and_bf16_gated_on_their_scores(load, name, precision, monkeypatch):
    # The stand-ins' weights are random, so the gate is opened: this checks the plumbing (the whole
    # model replaced, logits read from it, scores gated); compare_scores is checked on its own below.
    handler = load(name)
    method = "score" if name.startswith("ms-marco") else "classify"
    compute = getattr(type(handler), method)

    def sample(h):
        if method == "score":
            return compute(h, "what do edge servers do?", [TEXTS[1], TEXTS[0]], True, True)
        return compute(h, TEXTS, True, True)
    before = sample(handler)
    gated = []

    def counted(self, *args, **kwargs):
        gated.append((self, args))
        return compute(self, *args, **kwargs)
    monkeypatch.setattr(type(handler), method, counted)
    # Correlations of random scores may well be negative: the open gate takes those too.
    served = apply_precision(handler, name, precision, Thresholds(-1, -1, 0), 2)
    report = served.precision
    assert report.precision == precision and report.fidelity is not None
    assert isinstance(served.encoder()[0], OpenVinoEncoder if precision == "int8" else HalfEncoder)
    # The gate reranks each of its 16 queries against its documents, or classifies its 80 texts,
    # with the fp32 handler and with the candidate.
    queries, documents = corpus()
    assert {handler, served} <= {h for h, _ in gated}
    if method == "score":
        assert {(args[0], tuple(args[1])) for _, args in gated} == {(q, tuple(docs)) for q, docs in rerank_sets()}
    else:
        assert gated and all(args[0] == queries + documents for _, args in gated)
    after = sample(served)
    assert after.scores.shape == before.scores.shape and after.scores.dtype == np.float32
    assert not np.array_equal(after.scores, before.scores)  # really the other path
    assert np.array_equal(sample(handler).scores, before.scores)  # and the fp32 handler unchanged


def test_the_gate_measures_cosines_and_top10_overlap():
    queries, documents = corpus()
    assert (len(queries), len(documents)) == (16, 64) and corpus() == (queries, documents)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(80, 32))
    same = compare_vectors(base, base)
    assert same == Fidelity(pytest.approx(1.0), pytest.approx(1.0), 1.0)
    noisy = compare_vectors(base, base + rng.normal(scale=0.5, size=base.shape))
    assert noisy.mean_cosine < 0.99 and noisy.worst_cosine < noisy.mean_cosine and noisy.top10_overlap < 1
    assert noisy.failures(Thresholds()) and not same.failures(Thresholds())
    weakest = Fidelity.weakest([Fidelity(0.9995, 0.997, 1.0), Fidelity(0.9999, 0.996, 0.96)])
    assert weakest == Fidelity(0.9995, 0.996, 0.96)
    # ColBERT: a matrix of token vectors per text, compared token by token and searched by MaxSim.
    tokens = [rng.normal(size=(rng.integers(3, 9), 16)) for _ in range(80)]
    assert compare_vectors(tokens, tokens) == Fidelity(pytest.approx(1.0), pytest.approx(1.0), 1.0)
    one_token_off = [m.copy() for m in tokens]
    one_token_off[20][1] = -one_token_off[20][1]
    off = compare_vectors(tokens, one_token_off)
    assert off.worst_cosine == pytest.approx(-1.0) and off.mean_cosine > 0.99 and off.failures(Thresholds())
    shuffled = compare_vectors(tokens, [rng.normal(size=m.shape) for m in tokens])
    assert shuffled.top10_overlap < 0.5
    empty = np.zeros((80, 4))
    assert compare_vectors(empty, empty).worst_cosine == 1.0
    assert dataclasses.asdict(Thresholds()) == {"mean_cosine": 0.999, "worst_cosine": 0.995, "top10_overlap": 0.95}


def test_auto_times_fp32_against_int8_keeps_the_faster_and_remembers_it_for_this_cpu(catalog, minilm_copy):
    from runner.device import device_key

    handler = load_minilm(catalog, minilm_copy)
    report = apply_precision(handler, MODEL, "auto", Thresholds(), 2).precision
    assert "auto: " in report.detail and "fp32" in report.candidates
    timings = {k: v["seconds"] for k, v in report.candidates.items() if k == "fp32" or v["passes"]}
    assert "fp32" in timings and len(report.candidates) >= 2
    fastest = min(timings, key=timings.get)
    assert report.precision == fastest.split("/")[0]
    [choice] = (minilm_copy / MODEL / CACHE_DIR).glob(f"*/choice-{device_key(torch.device('cpu'))}-2-fp32-bf16-int8.json")
    assert json.loads(choice.read_text())["choice"] == ("fp32" if report.precision == "fp32" else fastest)

    again = apply_precision(load_minilm(catalog, minilm_copy), MODEL, "auto", Thresholds(), 2).precision
    assert again.precision == report.precision and "(cached for this device)" in again.detail
    # The remembered choice is served without timing anything again; int8 still passes the gate.
    assert all("seconds" not in c for c in again.candidates.values())
    # A choice file that cannot be read is no choice: everything is weighed again.
    choice.write_text("{not json")
    third = apply_precision(load_minilm(catalog, minilm_copy), MODEL, "auto", Thresholds(), 2).precision
    assert "cached" not in third.detail and "fp32" in third.candidates


def test_int8_frees_the_fp32_encoder_and_needs_float32(catalog, minilm_copy):
    handler = load_minilm(catalog, minilm_copy)
    torch_model = weakref.ref(handler.encoder()[0])
    handler = apply_precision(handler, MODEL, "int8", Thresholds(), 2)
    gc.collect()
    assert torch_model() is None  # the fp32 handler, dropped, took its encoder with it
    bf16 = load_handler(dataclasses.replace(catalog[MODEL], dtype="bfloat16"), minilm_copy, torch.device("cpu"), 16384)
    with pytest.raises(ConfigError, match="precision int8 needs dtype float32"):
        apply_precision(bf16, MODEL, "int8", Thresholds(), 2)
    served = apply_precision(bf16, MODEL, "auto", Thresholds(), 2).precision
    assert served.precision == "bf16"  # what it was loaded in, not the fp32 it is not
    assert served.detail == "pytorch bfloat16; auto: other precisions need dtype float32"


def test_bf16_passes_the_gate_on_minilm_stays_close_to_fp32_and_frees_the_fp32_encoder(catalog, minilm_copy):
    handler = load_minilm(catalog, minilm_copy)
    want = handler.embed(TEXTS, EmbedOptions()).vectors
    torch_model = weakref.ref(handler.encoder()[0])
    handler = apply_precision(handler, MODEL, "bf16", Thresholds(), 2)
    report = handler.precision
    assert (report.precision, report.detail) == ("bf16", "pytorch bfloat16 weights and activations")
    assert report.fidelity.worst_cosine >= 0.995 and not report.converted
    got = handler.embed(TEXTS, EmbedOptions()).vectors
    assert got.dtype == np.float32
    assert (want * got).sum(axis=1).min() > 0.999
    gc.collect()
    assert torch_model() is None  # the fp32 handler, dropped, took its encoder with it
    with pytest.raises(ConfigError, match="the bf16 path is too far from the reference"):
        apply_precision(load_minilm(catalog, minilm_copy), MODEL, "bf16", Thresholds(mean_cosine=0.9999999), 2)


def test_the_gate_compares_scores_by_correlation_and_top10_per_ranking():
    # Columns are rankings: a reranker's 16 queries over their documents, a classifier's labels over texts.
    assert all(len(docs) == 16 and docs[0] == corpus()[1][i * 4] for i, (_, docs) in enumerate(rerank_sets()))
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(16, 5))
    # Shift and scale change no ranking and no correlation: a calibrated path is not penalised.
    assert compare_scores(scores, 3 * scores - 7) == Fidelity(pytest.approx(1.0), pytest.approx(1.0), 1.0)
    noisy = compare_scores(scores, scores + rng.normal(scale=0.3, size=scores.shape))
    assert 0.8 < noisy.mean_cosine < 0.999 and noisy.failures(Thresholds())
    flipped = scores.copy()
    flipped[:, 2] = -flipped[:, 2]
    one_off = compare_scores(scores, flipped)
    assert one_off.worst_cosine == pytest.approx(-1.0) and one_off.top10_overlap < 1
    constant = np.ones((16, 2))
    assert compare_scores(constant, constant) == Fidelity(1.0, 1.0, 1.0)
    # A path that answers NaN fails, however the figures are combined.
    broken = scores.copy()
    broken[3, 1] = np.nan
    nan = compare_scores(scores, broken)
    assert nan.failures(Thresholds(-1, -1, 0))
    assert Fidelity.weakest([Fidelity(1, 1, 1), nan]).failures(Thresholds(-1, -1, 0))
    assert Fidelity.weakest([nan, Fidelity(1, 1, 1)]).failures(Thresholds(-1, -1, 0))


def test_the_rerank_gate_gives_each_query_its_own_column(load):
    from runner.handlers.base import ScoreOutput
    from runner.precision import _gates

    handler = load("ms-marco-minilm-l6-v2")
    queries = [q for q, _ in rerank_sets()]

    def score(query, documents, truncate, raw, max_doc_tokens=None):
        # query index x 100 + document position: where each lands in the gate's matrix shows.
        return ScoreOutput(np.array([queries.index(query) * 100 + k for k in range(len(documents))], np.float32),
                           [1] * len(documents))
    handler.score = score
    [(compute, compare)] = _gates(handler, "ms-marco-minilm-l6-v2")
    matrix = compute(handler)
    assert matrix.shape == (16, 16) and compare is compare_scores
    assert all(matrix[k, j] == j * 100 + k for j in range(16) for k in range(16))


def test_auto_is_fp32_for_a_handler_without_a_model_to_swap(load):
    handler = load("ms-marco-minilm-l6-v2")
    handler.encoder_dir = None  # as a handler of one's own that does not name its weights' folder
    report = apply_precision(handler, "ms-marco-minilm-l6-v2", "auto", Thresholds(), 2).precision
    assert report.precision == "fp32" and report.detail.endswith("auto: other precisions need a handler that names its weights folder")
    with pytest.raises(ConfigError, match="precision int8 needs a handler that names its weights folder"):
        apply_precision(handler, "ms-marco-minilm-l6-v2", "int8", Thresholds(), 2)


def test_a_choice_goes_to_the_user_cache_when_the_weights_folder_cannot_take_it(tmp_path):
    from runner.precision import _forget, _remember, _remembered

    blocked = tmp_path / "weights-file"
    blocked.write_text("a file where a folder would have to be, as unwritable as a read-only mount")
    paths = (blocked / "cache" / "choice.json", tmp_path / "user-cache" / "choice.json")
    assert _remembered(paths) is None
    _remember(paths, "bf16", "bf16 was faster")
    assert _remembered(paths) == {"choice": "bf16", "why": "bf16 was faster"}
    assert paths[1].exists()
    _forget(paths)
    assert _remembered(paths) is None


def test_a_precision_the_device_does_not_offer_is_refused(load):
    handler = load("bge-small-en-v1.5")
    with pytest.raises(ConfigError, match=r"precision fp16 needs a device that offers it \(cpu offers bf16, int8\)"):
        apply_precision(handler, "bge-small-en-v1.5", "fp16", Thresholds(), 2)


@pytest.mark.parametrize("precision", ["fp16", "auto"])
def test_a_gpus_half_precisions_go_through_the_gate_and_the_timing(load, monkeypatch, precision):
    """The GPU's path on the CPU: the device offers fp16 and bf16, as CUDA does, and the same code
    copies, gates, times and swaps them in."""
    import runner.precision as precision_module

    monkeypatch.setattr(precision_module, "precision_candidates", lambda device, allows_float16: ("fp16", "bf16"))
    monkeypatch.setattr(precision_module, "_user_cache", lambda: Path("/nonexistent"))
    handler = load("bge-small-en-v1.5")
    want = handler.embed(TEXTS, EmbedOptions()).vectors
    # The stand-in's vectors are nearly alike, so its top-10 rankings turn on rounding: the gate's
    # cosines hold it to fp32 here, its overlap is left to the real models.
    handler = apply_precision(handler, "bge-small-en-v1.5", precision, Thresholds(top10_overlap=0.5), 2)
    report = handler.precision
    if precision == "fp16":
        assert (report.precision, report.detail) == ("fp16", "pytorch float16 weights and activations")
    else:
        assert set(report.candidates) == {"fp32", "fp16", "bf16"}
        assert report.precision in ("fp32", "fp16", "bf16")
    if report.precision != "fp32":
        assert isinstance(handler.encoder()[0], HalfEncoder)
        assert report.fidelity.mean_cosine >= 0.999
    got = handler.embed(TEXTS, EmbedOptions()).vectors
    assert float((got * want).sum(1).min()) >= 0.999
