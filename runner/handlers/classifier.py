"""Sequence classifiers: sentiment, emotion (multi-label) and NLI models.

Each text, or (premise, hypothesis) pair, is one sequence through a sequence-classification
head with one logit per label of the config's id2label. Scores follow transformers'
text-classification pipeline, which Infinity runs as it is and whose softmax TEI matches for
single-label models, so a client moving from any of them sees the same numbers: no activation
for regression heads, a sigmoid per label for multi-label heads and one-label heads, a softmax
across labels otherwise. A pair is truncated the way the pipeline's tokenizer call does it
(longest first), so over-long pairs match it too.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .. import tracing
from ..errors import ConfigError, InputFailure, InvalidInput, too_long
from .base import ClassifyInput, ClassifyOutput, LoadContext
from .classification_model import load_classification_model
from .encoder import EncoderHandler, Tokenized

#: What turns logits into scores, by the name activation() gives it.
_ACTIVATIONS = {
    "softmax": lambda logits: torch.softmax(logits, dim=-1),
    "sigmoid": torch.sigmoid,
    "identity": lambda logits: logits,
}


class SequenceClassifierHandler(EncoderHandler):
    """Scores every label of the model for each text or text pair."""

    capabilities = ("classify",)
    encoder_output = "logits"

    def __init__(self, ctx: LoadContext) -> None:
        tokenizer, self._model, max_tokens = load_classification_model(ctx)
        self.encoder_dir = ctx.model_dir
        config = self._model.config
        self._labels = labels(config, ctx.entry.name)
        self._activation = activation(config)
        super().__init__(ctx, tokenizer, max_tokens)

    @property
    def dimensions(self) -> int:
        return 0

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's labels in id order: the columns of every score row."""
        return self._labels

    @property
    def activation(self) -> str:
        """softmax, sigmoid or identity: what classify applies unless asked for raw logits."""
        return self._activation

    def classify(self, inputs: list[ClassifyInput], truncate: bool, raw: bool,
                 truncate_side: str = "right") -> ClassifyOutput:
        if not inputs:
            raise InvalidInput("inputs must not be empty")
        batch = self._encode(inputs, truncate, truncate_side)
        activate = _ACTIVATIONS["identity" if raw else self._activation]

        def forward(features):
            # Per bucket, after the pass: a failed input's zero row is never activated.
            return activate(self._model(**features).logits.float())

        rows = self._run(batch, forward, np.zeros(len(self._labels), np.float32))
        return ClassifyOutput(self._labels, np.stack(rows).astype(np.float32, copy=False), batch.lengths,
                              batch.failures)

    def _encode(self, inputs: list[ClassifyInput], truncate: bool, side: str) -> Tokenized:
        """Token ids of lone texts and of pairs, tokenised apart (a fast tokenizer takes one
        kind per call) and put back in input order."""
        singles = [i for i, x in enumerate(inputs) if isinstance(x, str)]
        pairs = [i for i, x in enumerate(inputs) if not isinstance(x, str)]
        parts: list[tuple[list[int], Tokenized]] = []
        if singles:
            parts.append((singles, self.encode_texts([inputs[i] for i in singles], truncate, side)))
        if pairs:
            parts.append((pairs, self._encode_pairs([inputs[i] for i in pairs], truncate, side)))
        return _merge(len(inputs), parts)

    def _encode_pairs(self, pairs: list[tuple[str, str]], truncate: bool, side: str) -> Tokenized:
        """Pairs cut longest first to max_tokens; without truncate, longer pairs fail instead."""
        tok = self.tokenizer()
        tok.truncation_side = side  # this thread's own copy
        firsts, seconds = [a for a, _ in pairs], [b for _, b in pairs]
        with tracing.span("tokenize", **{"edge_embed.inputs": len(pairs)}):
            enc = tok(firsts, seconds, truncation=True, max_length=self.max_tokens, padding=False,
                      return_attention_mask=False)
        batch = Tokenized(enc["input_ids"], enc.get("token_type_ids"))
        if truncate:
            return batch
        failures = []
        for i, n in enumerate(batch.lengths):
            # Only a pair that reached the limit can have been cut.
            if n == self.max_tokens and (full := len(tok(*pairs[i])["input_ids"])) > self.max_tokens:
                failures.append(too_long(i, full, self.max_tokens))
        return batch.with_failures(failures)


def _merge(count: int, parts: list[tuple[list[int], Tokenized]]) -> Tokenized:
    """One batch from parts that each cover some of the inputs; failures renumbered to match."""
    ids: list[list[int]] = [[] for _ in range(count)]
    uses_types = any(part.type_ids is not None for _, part in parts)
    types: list[list[int]] | None = [[] for _ in range(count)] if uses_types else None
    failures: list[InputFailure] = []
    for rows, part in parts:
        for k, i in enumerate(rows):
            ids[i] = part.ids[k]
            if types is not None:
                types[i] = part.type_ids[k] if part.type_ids is not None else [0] * len(part.ids[k])
        failures.extend(dataclasses.replace(f, index=rows[f.index]) for f in part.failures)
    return Tokenized(ids, types, tuple(sorted(failures, key=lambda f: f.index)))


def labels(config, name: str) -> tuple[str, ...]:
    """The label of each logit, from the config's id2label."""
    names = config.id2label or {}
    missing = [i for i in range(config.num_labels) if i not in names]
    if missing:
        raise ConfigError(f"{name}: config.json's id2label has no label for output {missing[0]}")
    return tuple(str(names[i]) for i in range(config.num_labels))


def activation(config) -> str:
    """transformers' text-classification pipeline's default function_to_apply for this config."""
    if config.problem_type == "regression":
        return "identity"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"
