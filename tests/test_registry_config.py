"""Registries and dataclass configs: short names, presets, validation errors (R12)."""

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from neurofm.config import apply_overrides, build_config
from neurofm.errors import ConfigError
from neurofm.registry import Registry, create


@dataclass
class ToyConfig:
    n_layers: int = 2  # depth
    d_model: int = 16  # width
    activation: Literal["gelu", "relu2", "swiglu"] = "gelu"  # MLP activation
    dropout: float = 0.0  # dropout probability
    bands: list[float] = field(default_factory=lambda: [1.0, 4.0])  # band edges (Hz)
    PRESETS: ClassVar[dict] = {"tiny": {"n_layers": 1, "d_model": 8}}

    def __post_init__(self):
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def test_preset_and_overrides():
    cfg = build_config(ToyConfig, {"preset": "tiny", "d_model": 32})
    assert (cfg.n_layers, cfg.d_model) == (1, 32)
    assert build_config(ToyConfig, {"dropout": 0}).dropout == 0.0


def test_every_problem_reported_with_key_path_allowed_values_and_close_match():
    with pytest.raises(ConfigError) as info:
        build_config(
            ToyConfig,
            {"n_layer": 3, "activation": "gleu", "d_model": "big", "bands": [1.0, "x"]},
            prefix="model",
        )
    problems = info.value.problems
    assert len(problems) == 4
    text = str(info.value)
    assert "model.n_layer: unknown key" in text and "did you mean 'n_layers'" in text
    assert "model.activation: invalid value 'gleu'" in text and "'gelu'" in text
    assert "model.d_model: expected int" in text
    assert "model.bands[1]" in text


def test_post_init_error_and_unknown_preset():
    with pytest.raises(ConfigError, match="dropout must be in"):
        build_config(ToyConfig, {"dropout": 2.0})
    with pytest.raises(ConfigError, match="unknown preset 'tinny'.*did you mean 'tiny'"):
        build_config(ToyConfig, {"preset": "tinny"})


def test_registry_create_and_unknown_name():
    reg = Registry("toy")

    @reg.register("toy_model", config=ToyConfig)
    class ToyModel:
        """A toy."""

        def __init__(self, config):
            self.config = config

    obj = create(reg, {"name": "toy_model", "preset": "tiny"}, key="model")
    assert obj.config.n_layers == 1 and obj.registry_name == "toy_model"
    with pytest.raises(
        ConfigError, match="model.name: unknown toy 'toy_modle'.*did you mean 'toy_model'"
    ):
        create(reg, {"name": "toy_modle"}, key="model")


def test_dotted_overrides():
    data = apply_overrides(
        {"model": {"n_layers": 2}}, {"model.n_layers": 4, "trainer.max_steps": 3}
    )
    assert data == {"model": {"n_layers": 4}, "trainer": {"max_steps": 3}}
