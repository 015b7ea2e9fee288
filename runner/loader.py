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


def load_handler(
    entry: CatalogEntry, models_dir: Path, device: torch.device, max_batch_tokens: int
) -> Handler:
    """Loads the model from models_dir/<name> only; never reaches the network."""
    model_dir = models_dir / entry.name
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
        dtype=resolve_dtype(entry.dtype, device, cls.allows_float16),
        max_batch_tokens=max_batch_tokens,
    )
    return cls(ctx)
