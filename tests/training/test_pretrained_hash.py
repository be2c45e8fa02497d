"""A saved model's weights carry their hash: a copy cut short or altered is refused by name."""

from __future__ import annotations

import json

import pytest
import torch

from neurofm.errors import CheckpointError
from neurofm.registry import MODELS, create
from neurofm.training.pretrained import CONFIG_FILE, from_pretrained, save_pretrained
from neurofm.training.run_folder import WEIGHTS_FILE


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create(MODELS, {"name": "gpt2meg", "preset": "tiny", "n_chans": 2, "vocab_size": 16})
    return model, save_pretrained(model, tmp_path / "model")


def test_hash_is_recorded_and_checked(saved):
    model, folder = saved
    meta = json.loads((folder / CONFIG_FILE).read_text())
    assert len(meta["sha256"][WEIGHTS_FILE]) == 64
    loaded = from_pretrained(folder)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_altered_or_truncated_weights_are_refused(saved):
    _, folder = saved
    path = folder / WEIGHTS_FILE
    original = path.read_bytes()
    altered = bytearray(original)
    altered[-1] ^= 0xFF  # a flipped bit in the last tensor: still a readable file
    path.write_bytes(bytes(altered))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: sha256 .* differs"):
        from_pretrained(folder)
    path.write_bytes(original[: len(original) // 2])
    with pytest.raises(CheckpointError, match="cut short or changed"):
        from_pretrained(folder)
    path.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        from_pretrained(folder)


def test_folders_saved_without_a_hash_still_load(saved):
    _, folder = saved
    meta = json.loads((folder / CONFIG_FILE).read_text())
    del meta["sha256"]
    (folder / CONFIG_FILE).write_text(json.dumps(meta))
    assert from_pretrained(folder) is not None
