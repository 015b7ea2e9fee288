"""The sentence-transformers modules after the Transformer, as plain torch code.

Each mirrors the saved config format of sentence-transformers (both the legacy boolean
`pooling_mode_*` keys and the newer single `pooling_mode` key) so that saved models load as-is.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError

_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_weightedmean_tokens": "weightedmean",
}
_SUPPORTED_POOLING = ("cls", "mean", "max", "mean_sqrt_len_tokens", "lasttoken")


def normalize(vectors: torch.Tensor) -> torch.Tensor:
    """L2 normalisation, as the Normalize module does."""
    return F.normalize(vectors, p=2, dim=1)


class Pooling:
    """Reduces token states to one vector; several modes are concatenated in config order."""

    def __init__(self, modes: list[str]) -> None:
        unsupported = [m for m in modes if m not in _SUPPORTED_POOLING]
        if not modes or unsupported:
            raise ConfigError(f"pooling mode(s) {unsupported or modes} are not supported")
        self.modes = modes

    @classmethod
    def load(cls, path: Path) -> "Pooling":
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if config.get("include_prompt", True) is False:
            # Would need the prompt's token count per input to mask it out of the pooling.
            raise ConfigError(f"{path}: pooling with include_prompt=false is not supported")
        mode = config.get("pooling_mode")
        if mode is None:
            modes = [name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key)]
        else:
            modes = [mode] if isinstance(mode, str) else list(mode)
        return cls(modes)

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        parts = [self._one(mode, hidden, mask) for mode in self.modes]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    @staticmethod
    def _one(mode: str, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if mode == "cls":
            return hidden[:, 0]
        if mode == "max":
            return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
        if mode == "lasttoken":
            # Works for either padding side: the last position whose mask is 1.
            positions = torch.arange(mask.shape[1], device=mask.device)
            last = (mask * positions).argmax(dim=1)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        summed = (hidden * m).sum(dim=1)
        counts = m.sum(dim=1).clamp(min=1e-9)
        return summed / (counts.sqrt() if mode == "mean_sqrt_len_tokens" else counts)


class Dense(torch.nn.Module):
    """A linear layer with an activation, loaded from a Dense module folder."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: str) -> None:
        super().__init__()
        self.out_features = out_features
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        name = activation.rsplit(".", 1)[-1]
        activations = {"Identity": torch.nn.Identity(), "Tanh": torch.nn.Tanh(), "ReLU": torch.nn.ReLU()}
        if name not in activations:
            raise ConfigError(f"Dense activation '{activation}' is not supported")
        self.activation = activations[name]

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> "Dense":
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        layer = cls(
            config["in_features"],
            config["out_features"],
            config.get("bias", True),
            config.get("activation_function", "torch.nn.modules.linear.Identity"),
        )
        if (path / "model.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(str(path / "model.safetensors"))
        elif (path / "pytorch_model.bin").is_file():
            state = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise ConfigError(f"{path}: Dense weights (model.safetensors) are missing")
        layer.load_state_dict(state)
        return layer.to(device=device, dtype=dtype).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))
