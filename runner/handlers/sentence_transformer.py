"""Any sentence-transformers embedding model, rebuilt from its saved modules with Transformers.

The model directory's modules.json lists the pipeline (Transformer, Pooling, optional Dense
layers, optional Normalize); each module's saved config says how it behaves, and
config_sentence_transformers.json holds the named prompts. Reading those files, rather than
importing sentence-transformers at run time, keeps the runner on PyTorch and Transformers alone
and lets any such model work from a catalog entry with no new code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from ..errors import ConfigError
from .base import EmbedOptions, EmbedOutput, Inputs, LoadContext, MultiVectorOutput
from .encoder import EncoderHandler, Tokenized, matryoshka
from .st_modules import Dense, Pooling, normalize


class SentenceTransformerHandler(EncoderHandler):
    """Transformer -> Pooling -> [Dense...] -> [Normalize], as modules.json describes."""

    capabilities = ("text-embedding",)

    def __init__(self, ctx: LoadContext) -> None:
        root = ctx.model_dir
        modules = _read_json(root / "modules.json", required=True)
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if not kinds or kinds[0] != "Transformer":
            raise ConfigError(f"{root}: modules.json must start with a Transformer module")
        tf_dir = root / modules[0].get("path", "")
        st_config = _read_json(tf_dir / "sentence_bert_config.json") or {}
        model_config = _read_json(root / "config_sentence_transformers.json") or {}
        tokenizer = AutoTokenizer.from_pretrained(tf_dir, local_files_only=True)
        self._model = AutoModel.from_pretrained(tf_dir, local_files_only=True, dtype=ctx.dtype)
        self._model.to(ctx.device).eval()
        self.encoder_dir = tf_dir
        self._lowercase = bool(st_config.get("do_lower_case", False))
        self._prompts: dict[str, str] = dict(model_config.get("prompts") or {})
        self._default_prompt: str | None = model_config.get("default_prompt_name")

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

        self._dimensions = self._dense[-1].out_features if self._dense else self._model.config.hidden_size
        bad = [d for d in ctx.entry.matryoshka_dims if d > self._dimensions]
        if bad:
            raise ConfigError(f"{ctx.entry.name}: matryoshka_dims {bad} exceed the model's {self._dimensions} dimensions")
        limits = [
            st_config.get("max_seq_length"),
            ctx.entry.max_tokens,
            getattr(self._model.config, "max_position_embeddings", None),
        ]
        super().__init__(ctx, tokenizer, min(x for x in limits if isinstance(x, int) and x > 0))

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def prompt_names(self) -> tuple[str, ...]:
        return tuple(self._prompts)

    @property
    def matryoshka_dims(self) -> tuple[int, ...]:
        return tuple(self._ctx.entry.matryoshka_dims)

    @property
    def pooling(self) -> str:
        return "+".join(self._pooling.modes)

    def embed(self, inputs: Inputs, opts: EmbedOptions) -> EmbedOutput:
        batch = self._batch(inputs, opts)
        normalize = self._normalize and opts.normalize
        rows = self._run(batch, lambda features: self._forward(features, normalize),
                         np.zeros(self._dimensions, np.float32))
        vectors = matryoshka(np.stack(rows), opts.dimensions, self._dimensions, self.matryoshka_dims, normalize)
        return EmbedOutput(vectors, batch.lengths, batch.failures)

    def token_embeddings(self, inputs: Inputs, opts: EmbedOptions) -> MultiVectorOutput:
        # What sentence-transformers' encode(output_value="token_embeddings") gives: the
        # Transformer module's output, prompt tokens included.
        return self._token_states(self._model, self._batch(inputs, opts))

    def _batch(self, inputs: Inputs, opts: EmbedOptions) -> Tokenized:
        """Token ids as sentence-transformers makes them: lowercased if configured, prompt first."""
        if inputs and isinstance(inputs[0], str):
            inputs = [t.lower() for t in inputs] if self._lowercase else inputs
            return self.prepare(inputs, opts, self._prompt_text(opts.prompt_name))
        return self.prepare(inputs, opts)  # ids: no prompt, by definition

    def _prompt_text(self, name: str | None) -> str:
        """The text prepended to each input, as sentence-transformers' encode(prompt_name=...); an
        unknown name is refused by prepare."""
        return self._prompts.get(name or self._default_prompt or "", "")

    def _forward(self, features: dict[str, torch.Tensor], normalized: bool) -> torch.Tensor:
        hidden = self._model(**features).last_hidden_state
        vectors = self._pooling.pool(hidden, features["attention_mask"])
        for layer in self._dense:
            vectors = layer(vectors)
        return normalize(vectors) if normalized else vectors


def _read_json(path: Path, required: bool = False):
    if not path.is_file():
        if required:
            raise ConfigError(f"{path.parent}: {path.name} is missing")
        return None
    return json.loads(path.read_text(encoding="utf-8"))
