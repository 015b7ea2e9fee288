"""google/embeddinggemma-300m: a sentence-transformers pipeline with two hard requirements.

The pipeline itself (mean pooling over prompt tokens too, two Dense layers, Normalize, the named
prompts, Matryoshka sizes) is the generic one. What is specific is refusing the two setups that
silently give wrong vectors: float16, whose activations overflow (~8e5 > 65504), and
Transformers older than 4.57, which ran Gemma3 with causal instead of bidirectional attention.
"""

from __future__ import annotations

import torch
import transformers
from packaging.version import Version

from ..errors import ConfigError
from .base import LoadContext
from .sentence_transformer import SentenceTransformerHandler

MIN_TRANSFORMERS = Version("4.57.0")


class EmbeddingGemmaHandler(SentenceTransformerHandler):
    """Gemma3 embedding models; fp32 or bf16 only."""

    allows_float16 = False

    def __init__(self, ctx: LoadContext) -> None:
        if Version(transformers.__version__) < MIN_TRANSFORMERS:
            raise ConfigError(f"{ctx.entry.name} needs transformers >= {MIN_TRANSFORMERS} for bidirectional "
                              f"Gemma3 attention; {transformers.__version__} is installed")
        if ctx.dtype == torch.float16:
            raise ConfigError(f"{ctx.entry.name} overflows in float16; use dtype float32 or bfloat16 "
                              "(or auto, which picks bfloat16 on GPUs)")
        super().__init__(ctx)
