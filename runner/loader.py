"""Finds a model's local weights and instantiates the handler the catalog names."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from .catalog import CatalogEntry
from .device import resolve_dtype
from .errors import ConfigError
from .handlers.base import Handler, LoadContext

DOWNLOAD_HINT = "npm run download-models -- {name}   (or: MODELS={name} .venv/bin/python scripts/download_models.py)"
#: Failures while loading that say nothing about the files: not enough memory, a missing
#: package, or a ConfigError that already names its cause.
_NOT_THE_FILES = (ConfigError, MemoryError, torch.cuda.OutOfMemoryError, ImportError)
_REASON_CHARS = 200


def load_handler(
    entry: CatalogEntry, models_dir: Path, device: torch.device, max_batch_tokens: int,
    model_dir: Path | None = None,
) -> Handler:
    """Loads the model from models_dir/<name>, or from model_dir when given; never reaches the network."""
    model_dir = model_dir or models_dir / entry.name
    if not (model_dir / "config.json").is_file() and not (model_dir / "modules.json").is_file():
        raise ConfigError(
            f"weights for '{entry.name}' are not in {model_dir}. Download them with:\n  "
            + DOWNLOAD_HINT.format(name=entry.name)
        )
    module_path, _, class_name = entry.handler.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_path), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"handler '{entry.handler}' of '{entry.name}' cannot be imported: {exc}")
    if not (isinstance(cls, type) and issubclass(cls, Handler)):
        raise ConfigError(f"handler '{entry.handler}' is not a runner Handler class")
    ctx = LoadContext(
        entry=entry,
        model_dir=model_dir,
        device=device,
        dtype=resolve_dtype(entry.dtype),
        max_batch_tokens=max_batch_tokens,
    )
    try:
        return cls(ctx)
    except _NOT_THE_FILES:
        raise
    except Exception as exc:
        # Files that exist but do not load (truncated, garbage, half-written) surface as any of
        # OSError, ValueError, KeyError, RuntimeError or a library's own error; a traceback would
        # bury the one thing to do about them.
        raise ConfigError(
            f"weights for '{entry.name}' in {model_dir} are corrupt or incomplete ({_reason(exc)}); "
            f"download them again with: npm run download-models -- {entry.name} --force") from None


def _reason(exc: Exception) -> str:
    """The exception as one short line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 1] + "…"
