"""Reads and validates configs/model_config.yaml for a runner started by hand (bench scripts, tests);
under the gateway, the runner takes the entry the gateway validated (entry_from_gateway)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError

_DTYPES = ("auto", "float32", "bfloat16", "float16")
#: fp32: PyTorch as loaded, the reference. fp16 / bf16: the encoder in PyTorch half precision; int8:
#: int8 weights on OpenVINO; each behind the fidelity gate, where the device offers it. auto (the
#: default): whichever of these is fastest on this device, timed at first start and remembered.
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "auto")
#: What a request embeds, which picks the model's default prompt: a search query or a document.
REQUEST_KINDS = ("query", "document")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_HANDLER = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
_KEEP_ALIVE = re.compile(r"^\s*(-1|\d+\s*[smh]?)\s*$")


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the catalog; field meanings are documented in the YAML file itself."""

    name: str
    hf_repo_id: str
    handler: str
    revision: str = "main"
    pip_package: str | None = None
    dtype: str = "auto"
    precision: str = "auto"
    max_tokens: int | None = None
    requires_token: bool = False
    matryoshka_dims: tuple[int, ...] = ()
    default_prompts: dict[str, str] = field(default_factory=dict)
    #: Only the gateway acts on it (how long the model stays loaded when idle); checked here too,
    #: so that both readers of the catalog accept and refuse the same files.
    keep_alive: int | str | None = None


def load_catalog(path: Path) -> dict[str, CatalogEntry]:
    """Parses the catalog; raises ConfigError naming the entry and field at the first problem."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read model catalog {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise ConfigError(f"{path}: expected a top-level 'models' list")
    entries: dict[str, CatalogEntry] = {}
    for i, raw in enumerate(doc["models"]):
        entry = _parse_entry(raw, f"{path}: models[{i}]")
        if entry.name in entries:
            raise ConfigError(f"{path}: models[{i}]: duplicate name '{entry.name}'")
        entries[entry.name] = entry
    return entries


def entry_from_gateway(text: str) -> CatalogEntry:
    """The entry the gateway validated and resolved (gateway/src/config/catalog.ts), taken as it
    is: under the gateway, the runner reads no catalog of its own. Only the contract is checked,
    so that a field this runner does not know fails at start instead of being dropped."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--entry is not JSON: {exc}") from None
    unknown = sorted(set(raw) - set(CatalogEntry.__dataclass_fields__)) if isinstance(raw, dict) else ["(not an object)"]
    if unknown:
        raise ConfigError(f"--entry has field(s) this runner does not know: {', '.join(unknown)}")
    return CatalogEntry(**{**raw, "matryoshka_dims": tuple(raw.get("matryoshka_dims", ())),
                           "default_prompts": dict(raw.get("default_prompts", {}))})


def _parse_entry(raw: object, where: str) -> CatalogEntry:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    known = set(CatalogEntry.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for required in ("name", "hf_repo_id", "handler"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise ConfigError(f"{where}: '{required}' is required and must be a non-empty string")
    where = f"{where} ({raw['name']})"
    if not _NAME.match(raw["name"]):
        raise ConfigError(f"{where}: 'name' must be lowercase letters, digits, '.', '_' or '-'")
    if not _HANDLER.match(raw["handler"]):
        raise ConfigError(f"{where}: 'handler' must be a dotted import path")
    if raw.get("dtype", "auto") not in _DTYPES:
        raise ConfigError(f"{where}: 'dtype' must be one of {', '.join(_DTYPES)}")
    if raw.get("precision", "auto") not in PRECISIONS:
        raise ConfigError(f"{where}: 'precision' must be one of {', '.join(PRECISIONS)}")
    max_tokens = raw.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"{where}: 'max_tokens' must be a positive integer")
    dims = raw.get("matryoshka_dims", [])
    if not isinstance(dims, list) or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ConfigError(f"{where}: 'matryoshka_dims' must be a list of positive integers")
    prompts = raw.get("default_prompts", {})
    if not isinstance(prompts, dict) or not set(prompts) <= set(REQUEST_KINDS) or \
            not all(isinstance(v, str) and v for v in prompts.values()):
        raise ConfigError(f"{where}: 'default_prompts' maps {' / '.join(REQUEST_KINDS)} to prompt names")
    keep_alive = raw.get("keep_alive")
    if keep_alive is not None and not _KEEP_ALIVE.match(str(keep_alive)):
        raise ConfigError(f"{where}: 'keep_alive' must be -1, 0, seconds or a duration such as 30s, 5m or 1h")
    if not isinstance(raw.get("requires_token", False), bool):
        raise ConfigError(f"{where}: 'requires_token' must be true or false")
    return CatalogEntry(**{**raw, "matryoshka_dims": tuple(dims), "default_prompts": dict(prompts)})
