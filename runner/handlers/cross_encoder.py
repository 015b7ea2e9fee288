"""Cross-encoder rerankers (bge-reranker-v2-m3, ms-marco-MiniLM-L6-v2 and their kin).

Each (query, document) pair is one sequence through a one-label sequence classifier; the
logit is the raw score. The calibrated score applies the activation the model's config names
(sentence-transformers' convention): an identity for ms-marco models, a sigmoid when the config
names none. Only the document side is truncated, as FlagReranker does, so a long document can
never push the query out of the model's view.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import tracing
from ..errors import EMPTY_INPUT, INPUT_TOO_LONG, NOTHING_READ, ConfigError, InputFailure, InvalidInput
from .base import LoadContext, ScoreOutput
from .classification_model import load_classification_model
from .encoder import EncoderHandler, Tokenized
from .pair_template import PairTemplate


class CrossEncoderHandler(EncoderHandler):
    """Scores documents against a query."""

    capabilities = ("rerank",)
    encoder_output = "logits"

    def __init__(self, ctx: LoadContext) -> None:
        tokenizer, self._model, max_tokens = load_classification_model(ctx)
        self.encoder_dir = ctx.model_dir
        config = self._model.config
        if config.num_labels != 1:
            raise ConfigError(f"{ctx.entry.name}: a reranker needs exactly one output label, not {config.num_labels}")
        self._activation = _activation(config)
        self._template = PairTemplate.infer(tokenizer)
        super().__init__(ctx, tokenizer, max_tokens)

    @property
    def dimensions(self) -> int:
        return 0

    @property
    def score_activation(self) -> str:
        return self._activation

    def score(self, query: str, documents: list[str], truncate: bool, raw: bool,
              max_doc_tokens: int | None = None, truncate_side: str = "right", sigmoid: bool = False) -> ScoreOutput:
        if not documents:
            raise InvalidInput("documents must not be empty")
        tok = self.tokenizer()
        with tracing.span("tokenize", **{"edge_embed.inputs": len(documents) + 1}):
            q = tok(query, add_special_tokens=False)["input_ids"]
            docs = tok(documents, add_special_tokens=False)["input_ids"]
        if not q:
            raise InvalidInput(f"the query {NOTHING_READ}")
        room = self.max_tokens - self._template.specials
        if len(q) >= room:
            if not truncate:
                raise InvalidInput(f"the query has {len(q)} tokens; this model takes {self.max_tokens} per pair")
            q = _cut(q, room // 2, truncate_side)  # keep half of the pair for the documents
        budget = room - len(q)
        if max_doc_tokens:
            budget = min(budget, max_doc_tokens)
        failures = [InputFailure(i, NOTHING_READ, EMPTY_INPUT) for i, d in enumerate(docs) if not d]
        if not truncate:
            failures += [
                InputFailure(i, f"does not fit with the query in {self.max_tokens} tokens; shorten it or allow truncation",
                             INPUT_TOO_LONG)
                for i, d in enumerate(docs) if len(d) > budget]
        ids, types = [], []
        for d in docs:
            pair_ids, pair_types = self._template.join(q, _cut(d, budget, truncate_side))
            ids.append(pair_ids)
            types.append(pair_types)
        batch = Tokenized(ids, types if self._template.types is not None else None).with_failures(failures)

        def forward(features):
            return self._activate(self._model(**features).logits[:, 0].float(), raw, sigmoid)

        scores = np.array(self._run(batch, forward, np.float32(0)), dtype=np.float32)
        return ScoreOutput(scores, batch.lengths, batch.failures)

    def _activate(self, logits: torch.Tensor, raw: bool, sigmoid: bool) -> torch.Tensor:
        """Calibrated scores from raw ones; per bucket, so a failed document's 0 stays 0."""
        if raw or not (sigmoid or self._activation == "sigmoid"):
            return logits
        return torch.sigmoid(logits)


def _cut(ids: list[int], keep: int, side: str) -> list[int]:
    """At most keep ids, dropping the start (side "left") or the end of the sequence."""
    return ids[-keep:] if side == "left" and len(ids) > keep else ids[:keep]


def _activation(config) -> str:
    """sentence-transformers' rule: the configured activation, else sigmoid for one label."""
    st = getattr(config, "sentence_transformers", None) or {}
    name = (st.get("activation_fn") if isinstance(st, dict) else None) or getattr(
        config, "sbert_ce_default_activation_function", None)
    if name is None:
        return "sigmoid"
    short = name.rsplit(".", 1)[-1]
    if short == "Identity":
        return "identity"
    if short == "Sigmoid":
        return "sigmoid"
    raise ConfigError(f"reranker activation '{name}' is not supported")
