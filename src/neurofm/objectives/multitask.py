"""Multi-task training of spiking models: co-smoothing, behaviour decoding, contrastive.

The model maps binned counts ``batch.x`` (B, T, n_units) to per-bin log firing rates
``ModelOutput.prediction`` (B, T, n_units) and, when it has a behaviour head,
``extras["behaviour"]`` (B, T, n_behaviour). The loss is

    encoder_weight * Poisson deviance of the rates (per unit-bin, hidden units or all)
  + behaviour_weight * MSE of the behaviour against ``batch.target`` (B, T, n_behaviour)
  + the model's auxiliary losses (its contrastive InfoNCE, weighted in the model config).

Spike-event models (spec inputs ``spike_events``) take the packed events ``batch.x``
(B, N, 2 + F) and return the binned counts of those events (``extras["counts"]``, B, n_bins,
n_units): the deviance is taken against them, the behaviour target is per bin. Field-potential
models (``field_potentials``) take ``batch.x`` (B, C, T); the encoder term is then the MSE of
the predicted log band powers against ``extras["band_power"]`` (B, T / pool, C * 5) and the
behaviour target lives on the pooled grid (:func:`neurofm.data.spike_events.pool_steps`); no
units are masked.

Co-smoothing: each step hides a random ``mask_fraction`` of the units of every window from the
model (``observed=`` mask); the deviance is taken on the hidden units (all units when
``mask_fraction`` is 0). The deviance ``y log(y / rate) - (y - rate)`` is the Poisson negative
log-likelihood minus that of the saturated model: zero at a perfect fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from neurofm import checks
from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec

INPUT_SHAPES = {
    "binned_counts": "counts (B, T, n_units)",
    "spike_events": "spike events (B, N, 2 + F)",
    "field_potentials": "field potentials (B, C, T)",
}


@dataclass
class MultitaskConfig:
    """Weights of the multi-task loss and the co-smoothing mask."""

    encoder_weight: float = 1.0  # weight of the Poisson deviance of the predicted rates
    behaviour_weight: float = 1.0  # weight of the behaviour MSE (needs batch.target)
    mask_fraction: float = 0.25  # units hidden from the input per window (0: none hidden)
    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}

    def __post_init__(self) -> None:
        checks.non_negative(self, "encoder_weight", "behaviour_weight")
        checks.fraction(self, "mask_fraction")


def poisson_deviance(log_rate: Tensor, counts: Tensor) -> Tensor:
    """Per-element Poisson deviance of ``counts`` under rates ``exp(log_rate)`` (same shape)."""
    log_rate, counts = log_rate.float(), counts.float()
    rate = log_rate.exp()
    return torch.xlogy(counts, counts) - counts * log_rate - (counts - rate)


def random_observed(n_windows: int, n_units: int, fraction: float, *, like: Tensor) -> Tensor:
    """(B, U) boolean: each window hides ``round(fraction * U)`` random units (at least one)."""
    n_hidden = max(1, round(fraction * n_units))
    order = torch.rand(n_windows, n_units, device=like.device).argsort(dim=1)
    return order >= n_hidden


@OBJECTIVES.register("multitask", config=MultitaskConfig)
class MultitaskObjective(Objective):
    """Co-smoothing Poisson deviance + behaviour MSE + the model's contrastive aux loss."""

    name = "multitask"
    input_kinds = ("binned_counts", "spike_events", "field_potentials")
    output_kinds = ("prediction",)

    def __init__(self, config: MultitaskConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, model: torch.nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        spec = self.spec_of(model, spec)
        cfg = self.config
        x = batch.x
        if x.ndim != 3:
            raise ValueError(
                f"objective 'multitask': batch.x must be {INPUT_SHAPES[spec.inputs]}, got "
                f"{tuple(x.shape)}"
            )
        context = spec.context_of(batch.context)
        if spec.inputs == "field_potentials":
            output = model(x, **context)
            target = output.extras["band_power"]
            encoder = (output.prediction.float() - target.float()).square().mean()
            metrics = {"band_power_mse": encoder.detach()}
        else:
            b = x.shape[0]
            # spike events: the model's unit vocabulary (a Unit-ID adapter's, when adapted)
            n_units = getattr(model, "n_units", None) or model.config.n_units
            n_units = x.shape[-1] if spec.inputs == "binned_counts" else n_units
            observed = None
            if cfg.mask_fraction > 0 and self.training:
                observed = random_observed(b, n_units, cfg.mask_fraction, like=x)
            output = model(x, observed=observed, **context)
            counts = x if spec.inputs == "binned_counts" else output.extras["counts"]
            deviance = poisson_deviance(output.prediction, counts)  # (B, T, U)
            if observed is not None:
                scored = (~observed)[:, None, :].expand_as(deviance)
                encoder = deviance[scored].mean()
            else:
                encoder = deviance.mean()
            metrics = {"poisson_deviance": encoder.detach()}
        loss = cfg.encoder_weight * encoder
        behaviour = output.extras.get("behaviour")
        if cfg.behaviour_weight > 0 and behaviour is not None:
            if batch.target is None:
                raise ValueError(
                    "objective 'multitask': the model decodes behaviour but batch.target is "
                    "None; give the behaviour (B, T, n_behaviour) or set behaviour_weight: 0"
                )
            if batch.target.shape != behaviour.shape:
                raise ValueError(
                    f"objective 'multitask': batch.target {tuple(batch.target.shape)} does not "
                    f"match the decoded behaviour {tuple(behaviour.shape)} (one row per output "
                    "step: per bin; per pooled step for field potentials, see pool_steps)"
                )
            mse = (behaviour.float() - batch.target.float()).square().mean()
            metrics["behaviour_mse"] = mse.detach()
            loss = loss + cfg.behaviour_weight * mse
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=int(output.prediction.numel()), model_output=output
        )
