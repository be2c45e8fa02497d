"""The forecast objective: targets, MSE, Gaussian NLL, bits per channel-sample, overfitting."""

from __future__ import annotations

import math

import pytest
import torch

from neurofm.config import build_config
from neurofm.errors import ConfigError
from neurofm.objectives.forecast import (
    ForecastConfig,
    ForecastObjective,
    discretised_gaussian_bits,
    gaussian_nll,
)
from neurofm.registry import MODELS, OBJECTIVES, create
from neurofm.types import Batch, ModelOutput, ModelSpec

FIXED_SPEC = ModelSpec(inputs="signal", outputs="prediction", causal=True, variance=True)


class _Fixed(torch.nn.Module):
    """Predicts ``x`` itself (persistence) with a fixed log-variance."""

    def __init__(self, log_variance: float | None = None) -> None:
        super().__init__()
        self.log_variance = log_variance
        self.seen = None

    def forward(self, x):
        self.seen = x
        extras = (
            {}
            if self.log_variance is None
            else {"log_variance": torch.full_like(x, self.log_variance)}
        )
        return ModelOutput(prediction=x, extras=extras)


def test_shifted_target_and_mse():
    x = torch.arange(12.0).reshape(1, 2, 6)
    model = _Fixed()
    out = create(OBJECTIVES, {"name": "forecast"})(model, Batch(x=x), spec=FIXED_SPEC)
    assert torch.equal(model.seen, x[..., :-1])
    assert out.loss.item() == pytest.approx(1.0) and out.metrics["mae"].item() == pytest.approx(1.0)
    assert out.n_items == 10 and "bits_per_channel_sample" not in out.metrics


def test_explicit_target_is_used():
    x, target = torch.zeros(2, 3, 5), torch.full((2, 3, 5), 2.0)
    out = create(OBJECTIVES, {"name": "forecast"})(
        _Fixed(), Batch(x=x, target=target), spec=FIXED_SPEC
    )
    assert out.loss.item() == pytest.approx(4.0)


def test_gaussian_nll_matches_torch_and_bits():
    g = torch.Generator().manual_seed(0)
    target, mean, log_var = (torch.randn(3, 4, 7, generator=g) for _ in range(3))
    ours = gaussian_nll(target, mean, log_var).mean()
    ref = torch.nn.functional.gaussian_nll_loss(mean, target, log_var.exp(), full=True)
    torch.testing.assert_close(ours, ref)
    x = torch.randn(2, 3, 9, generator=g)
    out = ForecastObjective(build_config(ForecastConfig, {"loss": "gaussian_nll"}))(
        _Fixed(log_variance=0.0), Batch(x=x), spec=FIXED_SPEC
    )
    assert out.metrics["bits_per_channel_sample"].item() == pytest.approx(
        out.loss.item() / math.log(2)
    )


def test_discretised_bits_approach_differential_minus_log2_width():
    g = torch.Generator().manual_seed(1)
    target, mean = torch.randn(1000, generator=g), torch.zeros(1000)
    log_var = torch.zeros(1000)
    width = 1e-3
    bits = discretised_gaussian_bits(target, mean, log_var, width).mean()
    differential = gaussian_nll(target, mean, log_var).mean() / math.log(2)
    assert bits.item() == pytest.approx(differential.item() - math.log2(width), rel=1e-4)
    # A huge bin holds (almost) all the mass: close to zero bits.
    assert discretised_gaussian_bits(target, mean, log_var, 100.0).mean().item() < 1e-6


def test_errors_are_clear():
    objective = create(OBJECTIVES, {"name": "forecast", "loss": "gaussian_nll"})
    with pytest.raises(ValueError, match="needs a model that returns extras\\['log_variance'\\]"):
        objective(_Fixed(), Batch(x=torch.zeros(1, 2, 5)), spec=FIXED_SPEC)
    with pytest.raises(ValueError, match="needs a float signal"):
        objective(_Fixed(), Batch(x=torch.zeros(1, 2, 5, dtype=torch.int64)), spec=FIXED_SPEC)
    with pytest.raises(ConfigError, match="bin_width is only used with loss 'gaussian_nll'"):
        create(OBJECTIVES, {"name": "forecast", "bin_width": 0.1})


@pytest.mark.parametrize("loss", ["mse", "gaussian_nll"])
def test_conv_forecaster_overfits_one_batch(loss):
    torch.manual_seed(0)
    t = torch.arange(64.0)
    x = torch.stack([torch.sin(0.3 * t + k) for k in range(4)])[None].repeat(2, 1, 1)
    model = create(
        MODELS,
        {"name": "conv_forecaster", "preset": "tiny", "predict_variance": loss == "gaussian_nll"},
    )
    objective = create(OBJECTIVES, {"name": "forecast", "loss": loss})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        out = objective(model, Batch(x=x))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0] - abs(losses[0]) / 2
