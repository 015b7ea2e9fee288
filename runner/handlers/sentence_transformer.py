"""Any sentence-transformers embedding model, rebuilt from its saved modules with Transformers.

The model directory's modules.json lists the pipeline (Transformer, Pooling, optional Dense
layers, optional Normalize); each module's saved config says how it behaves. Reading those
files, rather than importing sentence-transformers at run time, keeps the runner on PyTorch and
Transformers alone and lets any such model work from a catalog entry with no new code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from ..errors import ConfigError
from .base import EncoderHandler, LoadContext
from .st_modules import Dense, Pooling, normalize


class SentenceTransformerHandler(EncoderHandler):
    """Transformer -> Pooling -> [Dense...] -> [Normalize], as modules.json describes."""

    def __init__(self, ctx: LoadContext) -> None:
        root = ctx.model_dir
        modules = _read_json(root / "modules.json", "modules.json")
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if not kinds or kinds[0] != "Transformer":
            raise ConfigError(f"{root}: modules.json must start with a Transformer module")
        tf_dir = root / modules[0].get("path", "")
        st_config = _read_json(tf_dir / "sentence_bert_config.json", None) or {}
        tokenizer = AutoTokenizer.from_pretrained(tf_dir, local_files_only=True)
        self._model = AutoModel.from_pretrained(tf_dir, local_files_only=True, dtype=ctx.dtype)
        self._model.to(ctx.device).eval()
        self._lowercase = bool(st_config.get("do_lower_case", False))

        self._pooling: Pooling | None = None
        self._dense: list[Dense] = []
        self._normalize = False
        for kind, module in zip(kinds[1:], modules[1:]):
            path = root / module.get("path", "")
            if kind == "Pooling":
                self._pooling = Pooling.load(path)
            elif kind == "Dense":
                self._dense.append(Dense.load(path, ctx.device, ctx.dtype))
            elif kind == "Normalize":
                self._normalize = True
            else:
                raise ConfigError(f"{root}: module type '{module['type']}' is not supported")
        if self._pooling is None:
            raise ConfigError(f"{root}: modules.json has no Pooling module")

        dims = self._dense[-1].out_features if self._dense else self._model.config.hidden_size
        limits = [
            st_config.get("max_seq_length"),
            ctx.entry.max_tokens,
            getattr(self._model.config, "max_position_embeddings", None),
        ]
        max_tokens = min(x for x in limits if isinstance(x, int) and x > 0)
        super().__init__(ctx, tokenizer, max_tokens, dims)

    def _prepare(self, texts: list[str]) -> list[str]:
        return [t.lower() for t in texts] if self._lowercase else texts

    def _encode(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self._model(**features).last_hidden_state
        vectors = self._pooling.pool(hidden, features["attention_mask"])
        for layer in self._dense:
            vectors = layer(vectors)
        return normalize(vectors) if self._normalize else vectors


def _read_json(path: Path, required_name: str | None):
    if not path.is_file():
        if required_name:
            raise ConfigError(f"{path.parent}: {required_name} is missing")
        return None
    return json.loads(path.read_text(encoding="utf-8"))
