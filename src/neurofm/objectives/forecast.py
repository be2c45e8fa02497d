"""Continuous forecasting: predict the next sample of every channel from the past.

The model receives the window without its last sample, ``x[..., :-1]`` (B, C, T - 1), and its
prediction at time ``t`` is compared with ``x[..., t + 1]`` (a causal model therefore forecasts
one sample ahead). When the batch carries an explicit ``target`` (B, C, T) the model receives the
whole window and is compared with that target instead.

Losses
------
``mse``
    Mean squared error of ``ModelOutput.prediction``.
``gaussian_nll``
    Negative log-likelihood of a Gaussian whose mean is ``ModelOutput.prediction`` and whose
    log-variance is ``ModelOutput.extras["log_variance"]`` (both (B, C, T)).

Bits per channel-sample (Gaussian only)
---------------------------------------
With ``bin_width: null`` the objective reports the *differential* code length
``nll / ln 2`` of the continuous density, in the units of the model input (after the store's
scaling); it can be negative and shifts by ``-log2(s)`` when the signal is scaled by ``s``.
With ``bin_width: w`` it reports the *discretised* code length ``-log2 P(bin)``, the probability
mass the Gaussian puts on the bin of width ``w`` centred on the target,
``Phi((y + w/2 - mu) / sigma) - Phi((y - w/2 - mu) / sigma)``; that is a true code length in bits,
comparable with token models that quantise the signal on a grid of the same width. For small
``w`` the two differ by ``log2(w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from neurofm.objectives.base import LN2, Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec

_LOG_2PI = math.log(2.0 * math.pi)
_MIN_PROBABILITY = 1e-30


@dataclass
class ForecastConfig:
    """Configuration of the continuous forecasting objective."""

    loss: Literal["mse", "gaussian_nll"] = "mse"  # training loss
    bin_width: float | None = None  # bin width for the discretised likelihood; None: differential
    min_log_variance: float = -12.0  # lower clamp of the predicted log-variance (numerical floor)
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"loss": "mse"},
        "gaussian": {"loss": "gaussian_nll"},
    }

    def __post_init__(self) -> None:
        if self.bin_width is not None and not self.bin_width > 0:
            raise ValueError(f"bin_width must be > 0 or null, got {self.bin_width}")
        if self.bin_width is not None and self.loss != "gaussian_nll":
            raise ValueError("bin_width is only used with loss 'gaussian_nll'")


def gaussian_nll(target: Tensor, mean: Tensor, log_variance: Tensor) -> Tensor:
    """Elementwise negative log-density (nats) of ``target`` under N(mean, exp(log_variance))."""
    return 0.5 * (_LOG_2PI + log_variance + (target - mean) ** 2 * torch.exp(-log_variance))


def discretised_gaussian_bits(
    target: Tensor, mean: Tensor, log_variance: Tensor, bin_width: float
) -> Tensor:
    """Elementwise ``-log2`` of the Gaussian mass on the bin of width ``bin_width`` around ``target``."""
    inv_sigma = torch.exp(-0.5 * log_variance)
    upper = torch.special.ndtr((target + 0.5 * bin_width - mean) * inv_sigma)
    lower = torch.special.ndtr((target - 0.5 * bin_width - mean) * inv_sigma)
    return -torch.log2((upper - lower).clamp_min(_MIN_PROBABILITY))


@OBJECTIVES.register("forecast", config=ForecastConfig)
class ForecastObjective(Objective):
    """Continuous next-sample forecasting with MSE or Gaussian NLL (model predicts mean, log-var)."""

    name = "forecast"
    input_kinds = ("signal",)
    output_kinds = ("prediction",)

    def __init__(self, config: ForecastConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, model: torch.nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        spec = self.spec_of(model, spec)
        x = batch.x
        if not x.is_floating_point():
            raise ValueError(
                f"objective 'forecast' needs a float signal in batch.x, got {x.dtype} codes; "
                "use the 'next_token' objective for tokenized data"
            )
        if batch.target is None:
            if x.shape[-1] < 2:
                raise ValueError(
                    f"objective 'forecast' needs windows of >= 2 samples, got {x.shape[-1]}"
                )
            inputs, target = x[..., :-1], x[..., 1:]
        else:
            inputs, target = x, batch.target
        output = model(inputs, **spec.context_of(batch.context, stop=inputs.shape[-1]))
        mean = output.prediction
        if mean is None or tuple(mean.shape) != tuple(target.shape):
            got = None if mean is None else tuple(mean.shape)
            raise ValueError(
                f"objective 'forecast': model prediction has shape {got}, "
                f"expected {tuple(target.shape)}"
            )
        mean = mean.float()
        target = target.float()
        error = mean - target
        metrics: dict[str, Tensor] = {
            "mse": (error**2).mean().detach(),
            "mae": error.abs().mean().detach(),
        }
        if self.config.loss == "mse":
            loss = (error**2).mean()
        else:
            log_variance = output.extras.get("log_variance") if spec.variance else None
            if log_variance is None:
                raise ValueError(
                    "objective 'forecast' with loss 'gaussian_nll' needs a model that returns "
                    "extras['log_variance'] (e.g. conv_forecaster with predict_variance: true)"
                )
            log_variance = log_variance.float().clamp_min(self.config.min_log_variance)
            nll = gaussian_nll(target, mean, log_variance).mean()
            loss = nll
            metrics["nll"] = nll.detach()
            if self.config.bin_width is None:
                metrics["bits_per_channel_sample"] = (nll / LN2).detach()
            else:
                bits = discretised_gaussian_bits(target, mean, log_variance, self.config.bin_width)
                metrics["bits_per_channel_sample"] = bits.mean().detach()
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=target.numel(), model_output=output
        )
