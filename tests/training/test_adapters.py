"""Adapters of NeuroFM-X: the Unit-ID adapter and LoRA train only themselves, save alone (small)
and load back onto a base model with the same outputs."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("mambapy")
pytest.importorskip("peft")

from neurofm.errors import CheckpointError  # noqa: E402
from neurofm.models.neurofm_x import NeuroFMX  # noqa: E402
from neurofm.models.neurofm_x.adapters import UnitAdaptedNeuroFMX, count_trainable  # noqa: E402
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective  # noqa: E402
from neurofm.registry import MODELS  # noqa: E402
from neurofm.training.adapters import (  # noqa: E402
    LoraSettings,
    add_lora,
    load_adapter,
    save_adapter,
)
from neurofm.training.pretrained import from_pretrained, save_pretrained  # noqa: E402
from neurofm.types import Batch  # noqa: E402

SPEC = MODELS.get("neurofm_x").spec


def _base() -> NeuroFMX:
    torch.manual_seed(0)
    return NeuroFMX.from_config({"preset": "tiny", "n_behaviour": 2})


def _train(model: torch.nn.Module, n_units: int, steps: int = 5) -> None:
    objective = MultitaskObjective(MultitaskConfig())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    x = torch.poisson(torch.full((4, 16, n_units), 2.0))
    target = torch.randn(4, 16, 2)
    for _ in range(steps):
        loss = objective(model, Batch(x=x, target=target), spec=SPEC).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_unit_adapter_trains_only_itself_and_round_trips(tmp_path):
    base = _base()
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    model = UnitAdaptedNeuroFMX.create(base, n_units=9, behaviour_head=True)
    cfg = base.config
    # embed (9 -> d_model + bias) + unit ids (9 x d_latent) + rates (d_latent -> 9) + behaviour
    expected = (9 + 1) * cfg.d_model + 9 * cfg.d_latent + (cfg.d_latent + 1) * 9
    expected += (cfg.d_latent + 1) * 2
    assert count_trainable(model) == expected
    adapter_before = {k: v.clone() for k, v in model.adapter.state_dict().items()}
    _train(model, 9)
    after = base.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # the base is untouched
    assert any(not torch.equal(v, model.adapter.state_dict()[k]) for k, v in adapter_before.items())

    save_pretrained(base, tmp_path / "base")
    save_adapter(model, tmp_path / "adapter")
    size = (tmp_path / "adapter" / "adapter.safetensors").stat().st_size
    assert size < (tmp_path / "base" / "model.safetensors").stat().st_size / 4
    again = load_adapter(tmp_path / "adapter", from_pretrained(tmp_path / "base"))
    x = torch.poisson(torch.full((2, 16, 9), 2.0))
    with torch.no_grad():
        a, b = model.eval()(x), again.eval()(x)
    assert torch.equal(a.prediction, b.prediction)
    assert torch.equal(a.extras["behaviour"], b.extras["behaviour"])
    with pytest.raises(ValueError, match=r"expected binned counts \(B, T, 9\)"):
        model(x[..., :6])


def test_lora_trains_only_lora_and_round_trips(tmp_path):
    base = _base()
    save_pretrained(base, tmp_path / "base")
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    settings = LoraSettings(r=2, target_modules=("in_proj", "out_proj"))
    model = add_lora(base, settings)
    # r * (in + out) per targeted Linear
    targets = [
        m
        for n, m in model.named_modules()
        if n.split(".")[-1] in settings.target_modules and hasattr(m, "base_layer")
    ]
    expected = sum(2 * (m.base_layer.in_features + m.base_layer.out_features) for m in targets)
    assert targets and count_trainable(model) == expected
    _train(model, 6)
    after = {k.replace("base_layer.", ""): v for k, v in model.state_dict().items()}
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # original weights unchanged
    save_adapter(model, tmp_path / "lora")
    again = load_adapter(tmp_path / "lora", from_pretrained(tmp_path / "base"))
    x = torch.poisson(torch.full((2, 16, 6), 2.0))
    with torch.no_grad():
        assert torch.equal(model.eval()(x).prediction, again.eval()(x).prediction)
        changed = from_pretrained(tmp_path / "base").eval()(x).prediction
    assert not torch.equal(changed, again(x).prediction)  # the trained update is in the adapter


def test_load_adapter_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="adapter_config.json: no saved adapter"):
        load_adapter(tmp_path, _base())
    with pytest.raises(CheckpointError, match="holds no adapter"):
        save_adapter(_base(), tmp_path / "x")
