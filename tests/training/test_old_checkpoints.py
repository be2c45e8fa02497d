"""Checkpoints saved by earlier neurofm versions load and give the same outputs.

The fixtures in ``tests/fixtures/checkpoints_v0`` were written before the model-spec
restructure (see the README there); registered names that became aliases must still rebuild the
same model from the saved config, and saved weights must still fit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from neurofm.training.pretrained import from_pretrained, read_model_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints_v0"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "config.json").is_file())


def test_fixtures_are_present():
    assert len(NAMES) >= 9


@pytest.mark.parametrize("name", NAMES)
def test_old_checkpoint_loads_and_gives_the_saved_output(name):
    folder = FIXTURES / name
    assert read_model_config(folder)["name"] == name
    model = from_pretrained(folder).eval()
    io = load_file(str(folder / "io.safetensors"))
    context = {k.removeprefix("context."): v for k, v in io.items() if k.startswith("context.")}
    with torch.no_grad():
        out = model(io["x"], **context)
    got = out.logits if out.prediction is None else out.prediction
    assert got.shape == io["expected"].shape
    torch.testing.assert_close(got, io["expected"], rtol=1e-5, atol=1e-5)
