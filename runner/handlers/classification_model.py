"""Loading a sequence-classification model, which rerankers and classifiers both are."""

from __future__ import annotations

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .base import LoadContext


def load_classification_model(ctx: LoadContext):
    """The tokenizer, the model in eval mode on its device, and the most tokens it can read.

    The limit is the smallest of the catalog's max_tokens, the tokenizer's and the model's
    positions. RoBERTa-style position ids start after the padding id, so two positions are never
    usable. Tokenizers without a limit report a huge sentinel, which is ignored.
    """
    tokenizer = AutoTokenizer.from_pretrained(ctx.model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(ctx.model_dir, local_files_only=True, dtype=ctx.dtype)
    model.to(ctx.device).eval()
    config = model.config
    positions = config.max_position_embeddings - (2 if config.model_type in ("xlm-roberta", "roberta") else 0)
    limits = [ctx.entry.max_tokens, tokenizer.model_max_length, positions]
    return tokenizer, model, min(x for x in limits if isinstance(x, int) and 0 < x < 10**6)
