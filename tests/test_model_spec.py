"""ModelSpec validation, the context bag, registry aliases and the shared config checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from neurofm import checks
from neurofm.errors import ConfigError
from neurofm.registry import Registry, create
from neurofm.types import Batch, ModelSpec


def test_spec_rejects_unknown_kinds_and_inconsistent_flags():
    with pytest.raises(ValueError, match=r"inputs='codes'.*allowed: channel_codes"):
        ModelSpec(inputs="codes", outputs="logits")
    with pytest.raises(ValueError, match=r"context \['speaker'\]"):
        ModelSpec(inputs="signal", outputs="prediction", context=("speaker",))
    with pytest.raises(ValueError, match="cache=True needs causal=True"):
        ModelSpec(inputs="signal", outputs="prediction", cache=True)
    with pytest.raises(ValueError, match="'autoregressive' needs causal=True"):
        ModelSpec(inputs="signal", outputs="prediction", sampling="autoregressive")
    with pytest.raises(ValueError, match="variance=True needs outputs='prediction'"):
        ModelSpec(inputs="signal", outputs="logits", variance=True)


def test_context_of_takes_listed_fields_and_cuts_per_time_ones():
    spec = ModelSpec(inputs="channel_codes", outputs="logits", context=("subject", "condition"))
    context = {
        "subject": torch.tensor([1]),
        "condition": torch.arange(10)[None],
        "channel_ids": torch.arange(3)[None],
    }
    out = spec.context_of(context, stop=4)
    assert set(out) == {"subject", "condition"}
    assert torch.equal(out["condition"], torch.arange(4)[None])
    assert torch.equal(out["subject"], torch.tensor([1]))


def test_batch_context_rejects_unknown_fields_and_moves_with_the_batch():
    with pytest.raises(ValueError, match=r"unknown fields \['speaker'\]"):
        Batch(x=torch.zeros(1, 2, 3), context={"speaker": torch.zeros(1)})
    batch = Batch(x=torch.zeros(1, 2, 3), context={"subject": torch.tensor([0])})
    moved = batch.to("cpu")
    assert moved.context["subject"] is not None and moved.context is not batch.context


@dataclass
class _Config:
    width: int = 4
    mlp: str = "dense"
    PRESETS: ClassVar[dict] = {"tiny": {"width": 2}}

    def __post_init__(self) -> None:
        checks.positive(self, "width")


def test_aliases_build_the_target_with_their_defaults():
    registry = Registry("model")
    spec = ModelSpec(inputs="signal", outputs="prediction")

    @registry.register("family", config=_Config, spec=spec)
    class Family:
        def __init__(self, config):
            self.config = config

    registry.alias("family_moe", "family", defaults={"mlp": "moe"})
    built = create(registry, {"name": "family_moe", "preset": "tiny"})
    assert isinstance(built, Family) and built.config.mlp == "moe" and built.config.width == 2
    assert create(registry, {"name": "family_moe", "mlp": "dense"}).config.mlp == "dense"
    entry = registry.get("family_moe")
    assert entry.alias_of == "family" and entry.spec_for(built.config) == spec
    with pytest.raises(ValueError, match="is not registered"):
        registry.alias("x", "missing")
    with pytest.raises(ValueError, match="spec=ModelSpec"):
        registry.register("nospec", config=_Config)
    with pytest.raises(ConfigError, match="width must be positive, got 0"):
        create(registry, {"name": "family", "width": 0})


def test_checks_report_every_bad_field_at_once():
    @dataclass
    class Cfg:
        a: int = 0
        b: int = -1
        p: float = 1.0
        top_p: float | None = 1.5
        n_heads: int = 3
        d_model: int = 8

    cfg = Cfg()
    with pytest.raises(ValueError, match=r"a must be positive, got 0; b must be positive, got -1"):
        checks.positive(cfg, "a", "b")
    with pytest.raises(ValueError, match=r"b must be >= 0 \(0 disables it\)"):
        checks.non_negative(cfg, "a", "b")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        checks.fraction(cfg, "p")
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\] or null"):
        checks.probability(cfg, "top_p")
    with pytest.raises(ValueError, match="n_heads=3 must divide d_model=8"):
        checks.divides(cfg, "n_heads", "d_model")
    checks.at_least(cfg, -1, "a", "b")
