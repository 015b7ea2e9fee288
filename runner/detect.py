"""Picks the handler for a model folder from its own files, for models served without a catalog entry."""

from __future__ import annotations

import json
from pathlib import Path

from .catalog import CatalogEntry
from .errors import ConfigError

_HANDLERS = "runner.handlers."
#: What is looked for, in order; the error for an unrecognised folder lists it.
LOOKED_FOR = (
    "colbert_linear.pt and sparse_linear.pt (a bge-m3-style model)",
    "modules.json with a gemma3_text config.json (embedding-gemma)",
    "modules.json (a sentence-transformers model)",
    "config.json whose architectures end in ForSequenceClassification: one label is a "
    "cross-encoder reranker, several a classifier",
)


def detect_handler(folder: Path) -> str:
    """The import path of the handler that serves folder; ConfigError listing what was looked for."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    config = _config(folder)
    if (folder / "colbert_linear.pt").is_file() and (folder / "sparse_linear.pt").is_file():
        return _HANDLERS + "bge_m3.BgeM3Handler"
    if (folder / "modules.json").is_file():
        if config.get("model_type") == "gemma3_text":
            return _HANDLERS + "embedding_gemma.EmbeddingGemmaHandler"
        return _HANDLERS + "sentence_transformer.SentenceTransformerHandler"
    if any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        labels = config.get("id2label") or {}
        one = config.get("num_labels", len(labels) or 2) == 1 or len(labels) == 1
        return _HANDLERS + ("cross_encoder.CrossEncoderHandler" if one else "classifier.SequenceClassifierHandler")
    raise ConfigError(f"cannot tell what kind of model {folder} holds; looked for: " + "; ".join(LOOKED_FOR))


def local_entry(name: str, folder: Path) -> CatalogEntry:
    """A catalog entry for a model served straight from folder, with the handler its files call for."""
    return CatalogEntry(name=name, hf_repo_id=f"local:{folder}", handler=detect_handler(folder))


def _config(folder: Path) -> dict:
    """config.json as a dict; {} when it is missing, ConfigError when it is not JSON."""
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not readable JSON: {exc}") from None
    return value if isinstance(value, dict) else {}
