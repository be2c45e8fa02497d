"""The next_band objective: teacher forcing by default, training on the model's own rollouts."""

from __future__ import annotations

import math

import pytest
import torch

from neurofm.errors import ConfigError
from neurofm.objectives.next_band import (
    NextBandObjective,
    NextBandObjectiveConfig,
    current_bands,
)
from neurofm.registry import MODELS, OBJECTIVES, create
from neurofm.types import Batch, ModelOutput, ModelSpec

SPEC = ModelSpec(inputs="band_stack", outputs="prediction")


class _Recorder(torch.nn.Module):
    """Stage ``k`` maps its input to ``scale * x + offset[k]``; records every call's input."""

    def __init__(self, n_stages: int) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.offset = torch.nn.Parameter(torch.arange(1.0, n_stages + 1.0))
        self.calls: list[tuple[torch.Tensor, bool]] = []

    def stage_map(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.scale.detach() * x + self.offset.detach()[k]

    def forward(self, x: torch.Tensor) -> ModelOutput:
        self.calls.append((x.detach().clone(), torch.is_grad_enabled()))
        return ModelOutput(prediction=self.scale * x + self.offset.view(1, -1, 1, 1))


def _levels(batch: int = 6, stages: int = 5, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, stages, 3, 16, generator=generator)


def _chained_rollout(model: _Recorder, levels: torch.Tensor) -> torch.Tensor:
    """The inputs generation from the true lowest band feeds, computed stage by stage."""
    fed = current_bands(levels)
    for k in range(2, levels.shape[1]):
        fed[:, k] = model.stage_map(fed[:, k - 1], k - 1)
    return fed


def test_default_is_the_teacher_forced_loss_and_draws_nothing():
    torch.manual_seed(0)
    model = create(MODELS, {"name": "next_band", "preset": "tiny"})  # 3 stages, dropout 0
    levels = torch.randn(4, 3, 4, 64, generator=torch.Generator().manual_seed(1))
    batch = Batch(x=levels)
    default = create(OBJECTIVES, {"name": "next_band"})
    assert default.config.rollout_training == 0.0
    default.train()
    state = torch.get_rng_state()
    out = default(model, batch)
    assert torch.equal(torch.get_rng_state(), state)  # no draw: later randomness unchanged
    # the loss before the option existed: the model on the true current bands, MSE over stages
    expected = ((model(current_bands(levels)).prediction - levels) ** 2).mean()
    assert torch.equal(out.loss, expected)
    assert "rollout_fraction" not in out.metrics
    explicit = NextBandObjective(NextBandObjectiveConfig(rollout_training=0.0)).train()
    assert torch.equal(explicit(model, batch).loss, out.loss)


def test_rollout_training_feeds_the_chained_own_predictions_to_stages_from_two():
    levels = _levels()
    model = _Recorder(levels.shape[1])
    objective = NextBandObjective(NextBandObjectiveConfig(rollout_training=1.0)).train()
    out = objective(model, Batch(x=levels), spec=SPEC)
    # L - 2 = 3 passes without gradient build the chain, then one pass with gradient
    assert [grad for _, grad in model.calls] == [False, False, False, True]
    fed = model.calls[-1][0]
    truth = current_bands(levels)
    torch.testing.assert_close(fed[:, :2], truth[:, :2], rtol=0, atol=0)  # zeros, lowest band
    torch.testing.assert_close(fed, _chained_rollout(model, levels))
    assert not torch.allclose(fed[:, 2:], truth[:, 2:])
    assert out.metrics["rollout_fraction"] == 1.0
    # the targets stay the true levels; "no new band" is the true current band
    expected = (model.scale.detach() * fed + model.offset.detach().view(1, -1, 1, 1) - levels) ** 2
    torch.testing.assert_close(out.metrics["mse"], expected.mean())
    torch.testing.assert_close(out.metrics["mse_no_new_band"], ((truth - levels) ** 2).mean())


def test_rollout_training_replaces_the_inputs_of_a_random_share_of_the_windows():
    levels = _levels(batch=16)
    model = _Recorder(levels.shape[1])
    objective = NextBandObjective(NextBandObjectiveConfig(rollout_training=0.5)).train()
    torch.manual_seed(3)
    out = objective(model, Batch(x=levels), spec=SPEC)
    fed = model.calls[-1][0]
    truth, rollout = current_bands(levels), _chained_rollout(model, levels)
    teacher = [bool(torch.equal(fed[i], truth[i])) for i in range(len(levels))]
    own = [bool(torch.allclose(fed[i], rollout[i])) for i in range(len(levels))]
    assert all(a != b for a, b in zip(teacher, own))  # every window is one or the other
    assert 0 < sum(own) < len(levels)
    assert out.metrics["rollout_fraction"] == sum(own) / len(levels)
    # the chain ran over the chosen windows only
    assert all(len(x) == sum(own) for x, grad in model.calls if not grad)


def test_gradients_flow_and_the_chain_is_detached():
    levels = _levels()
    model = _Recorder(levels.shape[1])
    objective = NextBandObjective(NextBandObjectiveConfig(rollout_training=1.0)).train()
    out = objective(model, Batch(x=levels), spec=SPEC)
    out.loss.backward()
    assert model.scale.grad is not None and model.scale.grad.abs() > 0
    assert model.offset.grad is not None and bool((model.offset.grad != 0).all())

    torch.manual_seed(0)
    real = create(MODELS, {"name": "next_band", "preset": "tiny"})
    # a trained-looking model (the residual output starts at zero: "no new band")
    torch.nn.init.normal_(real.output.weight, std=0.1)
    loss = objective(real, Batch(x=torch.randn(4, 3, 4, 64))).loss
    loss.backward()
    grads = [p.grad for p in real.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert math.isfinite(loss.item())


def test_validation_stays_teacher_forced():
    levels = _levels()
    model = _Recorder(levels.shape[1])
    objective = NextBandObjective(NextBandObjectiveConfig(rollout_training=1.0)).eval()
    out = objective(model, Batch(x=levels), spec=SPEC)
    assert len(model.calls) == 1
    assert torch.equal(model.calls[0][0], current_bands(levels))
    assert "rollout_fraction" not in out.metrics


def test_two_stages_have_nothing_to_roll_out():
    levels = _levels(stages=2)
    model = _Recorder(2)
    objective = NextBandObjective(NextBandObjectiveConfig(rollout_training=1.0)).train()
    objective(model, Batch(x=levels), spec=SPEC)
    assert len(model.calls) == 1 and torch.equal(model.calls[0][0], current_bands(levels))


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "half", None])
def test_bad_rollout_training_is_refused_naming_the_field(value):
    with pytest.raises(ValueError, match="rollout_training"):
        NextBandObjectiveConfig(rollout_training=value)
    with pytest.raises(ConfigError, match="rollout_training"):
        create(OBJECTIVES, {"name": "next_band", "rollout_training": value})
