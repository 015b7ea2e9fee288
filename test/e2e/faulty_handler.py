"""A sentence-transformers handler that fails as a GPU would, for the end-to-end fault tests.

The gateway's catalog names it by import path, with this folder on PYTHONPATH. Its forward
passes run out of memory above FITS rows, as on a device whose memory other work has taken, and
a text holding BREAK raises the sticky CUDA error after which a context is unusable. Everything
else is the real handler on the real weights.
"""

from __future__ import annotations

import torch

from runner.handlers.sentence_transformer import SentenceTransformerHandler

#: Rows a forward pass may hold before it "runs out of memory".
FITS = 4
#: A text holding this breaks the device.
BREAK = "__break_the_device__"


class FaultyHandler(SentenceTransformerHandler):
    """SentenceTransformerHandler whose device has room for FITS rows and breaks on BREAK."""

    def embed(self, inputs, opts):
        if any(isinstance(t, str) and BREAK in t for t in inputs):
            raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
        return super().embed(inputs, opts)

    def _forward(self, features, normalized):
        rows = features["input_ids"].shape[0]
        if rows > FITS:
            raise torch.OutOfMemoryError(f"CUDA out of memory: {rows} rows (injected; {FITS} fit)")
        return super()._forward(features, normalized)
