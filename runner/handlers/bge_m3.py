"""BAAI/bge-m3: one XLM-R forward pass, three outputs (dense, sparse lexical weights, ColBERT).

Mirrors FlagEmbedding's BGEM3FlagModel: dense is the first token's hidden state, L2-normalised;
sparse is relu(sparse_linear(h)) per token, keeping the largest weight per token id and dropping
special tokens; ColBERT is colbert_linear(h) for every token after the first, each normalised.
FlagEmbedding silently builds a random head when a head file is missing; this handler refuses.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from ..errors import ConfigError
from .base import EmbedOptions, EmbedOutput, Inputs, LoadContext, MultiVectorOutput, SparseOutput
from .encoder import EncoderHandler, matryoshka

DEFAULT_MAX_TOKENS = 8192


class BgeM3Handler(EncoderHandler):
    """Dense, sparse and multi-vector embeddings from one bge-m3 model."""

    capabilities = ("text-embedding", "sparse-embedding", "multi-vector")

    def __init__(self, ctx: LoadContext) -> None:
        root = ctx.model_dir
        heads = {}
        for name in ("colbert_linear", "sparse_linear"):
            path = root / f"{name}.pt"
            if not path.is_file():
                raise ConfigError(f"{root}: {path.name} is missing; bge-m3 cannot compute without its trained "
                                  "heads (download the model again)")
            state = torch.load(path, map_location="cpu", weights_only=True)
            out_features, in_features = state["weight"].shape
            head = torch.nn.Linear(in_features, out_features)
            head.load_state_dict(state)
            heads[name] = head.to(device=ctx.device, dtype=ctx.dtype).eval()
        self._colbert, self._sparse = heads["colbert_linear"], heads["sparse_linear"]

        tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
        self._model = AutoModel.from_pretrained(root, local_files_only=True, dtype=ctx.dtype)
        self._model.to(ctx.device).eval()
        self.encoder_dir = root
        config = self._model.config
        # XLM-R position ids start after the padding index, so two positions are never usable.
        limits = [ctx.entry.max_tokens or DEFAULT_MAX_TOKENS, config.max_position_embeddings - 2]
        self._dimensions = config.hidden_size
        self._colbert_dim = self._colbert.out_features
        self._special = {i for i in (tokenizer.cls_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id,
                                     tokenizer.unk_token_id) if i is not None}
        super().__init__(ctx, tokenizer, min(limits))

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def matryoshka_dims(self) -> tuple[int, ...]:
        return tuple(self._ctx.entry.matryoshka_dims)

    @property
    def pooling(self) -> str:
        return "cls"

    def token_embeddings(self, inputs: Inputs, opts: EmbedOptions) -> MultiVectorOutput:
        return self._token_states(self._model, self.prepare(inputs, opts))

    def embed(self, inputs: Inputs, opts: EmbedOptions) -> EmbedOutput:
        batch = self.prepare(inputs, opts)

        def forward(features):
            cls = self._model(**features).last_hidden_state[:, 0]
            return F.normalize(cls, dim=-1) if opts.normalize else cls

        rows = self._run(batch, forward, np.zeros(self._dimensions, np.float32))
        vectors = matryoshka(np.stack(rows), opts.dimensions, self._dimensions, self.matryoshka_dims, opts.normalize)
        return EmbedOutput(vectors, batch.lengths, batch.failures)

    def sparse(self, inputs: Inputs, opts: EmbedOptions) -> SparseOutput:
        batch = self.prepare(inputs, opts)

        def forward(features):
            hidden = self._model(**features).last_hidden_state
            weights = torch.relu(self._sparse(hidden)).squeeze(-1).float().cpu().numpy()
            ids = features["input_ids"].cpu().numpy()
            return [self._lexical(ids[r], weights[r]) for r in range(ids.shape[0])]

        rows = self._run(batch, forward, (np.empty(0, np.uint32), np.empty(0, np.float32)))
        return SparseOutput([r[0] for r in rows], [r[1] for r in rows], batch.lengths, batch.failures)

    def _lexical(self, ids: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best: dict[int, float] = {}
        for token, weight in zip(ids.tolist(), weights.tolist()):
            if token not in self._special and weight > 0 and weight > best.get(token, 0.0):
                best[token] = weight
        keys = sorted(best)
        return np.array(keys, dtype=np.uint32), np.array([best[k] for k in keys], dtype=np.float32)

    def multi_vector(self, inputs: Inputs, opts: EmbedOptions) -> MultiVectorOutput:
        batch = self.prepare(inputs, opts)

        def forward(features):
            hidden = self._model(**features).last_hidden_state
            mask = features["attention_mask"]
            vecs = F.normalize(self._colbert(hidden[:, 1:]), dim=-1).float().cpu().numpy()
            # Every token after the first ([CLS]) that is not padding, the final </s> included.
            keep = mask[:, 1:].bool().cpu().numpy()
            return [vecs[r][keep[r]] for r in range(vecs.shape[0])]

        rows = self._run(batch, forward, np.empty((0, self._colbert_dim), np.float32))
        return MultiVectorOutput(rows, batch.lengths, batch.failures)
