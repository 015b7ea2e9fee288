"""A model folder served without a catalog entry gets the handler its own files call for."""

from __future__ import annotations

import shutil

import pytest
import torch

from runner.detect import detect_handler, local_entry
from runner.errors import ConfigError
from runner.handlers.base import EmbedOptions
from runner.loader import load_handler


def test_every_standin_is_detected_as_the_catalog_serves_it(standins, catalog):
    for folder in sorted(standins.iterdir()):
        assert detect_handler(folder) == catalog[folder.name].handler, folder.name


def test_a_folder_copied_by_hand_loads_under_any_name(standins, tmp_path):
    mine = tmp_path / "copied by hand"
    shutil.copytree(standins / "bge-small-en-v1.5", mine)
    entry = local_entry("mine", mine)
    handler = load_handler(entry, tmp_path / "unused", torch.device("cpu"), 16384, mine)
    out = handler.embed(["a text of my own"], EmbedOptions())
    assert out.vectors.shape == (1, handler.dimensions)


def test_an_unrecognised_folder_says_what_was_looked_for(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    with pytest.raises(ConfigError) as info:
        detect_handler(tmp_path)
    for wanted in ("colbert_linear.pt", "modules.json", "ForSequenceClassification"):
        assert wanted in str(info.value)
    with pytest.raises(ConfigError, match="is not a folder"):
        detect_handler(tmp_path / "missing")
