"""Denoising diffusion (DDPM, Ho et al. 2020) with imputation masks, for continuous signals.

For a clean window ``x_0`` (B, C, T) a step ``t`` is drawn uniformly from the schedule's
``n_train_steps`` and noise ``eps ~ N(0, I)``; ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 -
alpha_bar_t) eps`` (``diffusers``' ``add_noise`` with the run's :class:`NoiseSchedule`). The model,
called as ``model(t, x_t, observed=x_0, mask=m)``, predicts ``eps``; the loss is the mean squared
error. A fraction ``mask_probability`` of the windows carry an imputation mask ``m`` (1: known):
half of them a future to forecast (the last ``span`` samples of every channel unknown), half a gap
(``span`` samples from a random start); ``span`` is drawn in ``[min_span, max_span]`` of the
window. The other windows are unconditional (nothing known), so one model both generates and
imputes.

Metrics: ``mse`` of the noise prediction. The variational bound in bits per channel-sample is
computed by the evaluation (:mod:`neurofm.evaluation.generative`), not per training batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm.generation.diffusion import NoiseSchedule, make_scheduler
from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec


@dataclass
class DiffusionConfig:
    """Configuration of the diffusion objective (the noise schedule is the sampler's too)."""

    n_train_steps: int = 1000  # diffusion steps of the forward process
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "linear"
    beta_start: float = 1e-4  # beta_1
    beta_end: float = 0.02  # beta_T
    mask_probability: float = 0.5  # fraction of windows trained with an imputation mask
    min_span: float = 0.1  # shortest unknown span, as a fraction of the window
    max_span: float = 0.5  # longest unknown span, as a fraction of the window

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {"n_train_steps": 100}}

    def __post_init__(self) -> None:
        self.schedule()
        for name in ("mask_probability", "min_span", "max_span"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_span > self.max_span:
            raise ValueError(f"min_span {self.min_span} exceeds max_span {self.max_span}")

    def schedule(self) -> NoiseSchedule:
        """The noise schedule these fields describe."""
        return NoiseSchedule(
            n_train_steps=self.n_train_steps,
            beta_schedule=self.beta_schedule,
            beta_start=self.beta_start,
            beta_end=self.beta_end,
        )


def imputation_masks(
    shape: tuple[int, int, int],
    *,
    probability: float,
    min_span: float,
    max_span: float,
    device: torch.device,
) -> Tensor:
    """Masks (B, C, T), 1 where known: all-zero (unconditional), a future or a gap per window."""
    b, c, n = shape
    mask = torch.zeros(b, 1, n, device=device)
    conditional = torch.rand(b, device=device) < probability
    forecast = torch.rand(b, device=device) < 0.5
    spans = (min_span + (max_span - min_span) * torch.rand(b, device=device)) * n
    spans = spans.round().clamp(1, n - 1).long()
    starts = torch.where(
        forecast, n - spans, (torch.rand(b, device=device) * (n - spans + 1)).long()
    )
    time = torch.arange(n, device=device)[None, :]
    unknown = (time >= starts[:, None]) & (time < (starts + spans)[:, None])  # (B, T)
    mask[:, 0] = (~unknown).float()
    mask[~conditional] = 0.0
    return mask.expand(b, c, n)


@OBJECTIVES.register("diffusion", config=DiffusionConfig)
class DiffusionObjective(Objective):
    """Epsilon-prediction MSE for a diffusion denoiser over signals (B, C, T)."""

    name = "diffusion"
    input_kinds = ("signal",)
    output_kinds = ("noise",)
    sampling_kinds = ("diffusion",)

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        self.scheduler = make_scheduler(config.schedule())

    def forward(
        self, model: nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        self.spec_of(model, spec)
        x0 = batch.x
        if not x0.is_floating_point() or x0.dim() != 3:
            raise ValueError(
                f"objective 'diffusion' needs a float signal (B, C, T) in batch.x, got "
                f"{tuple(x0.shape)} {x0.dtype}; remove the tokenizer"
            )
        if x0.shape[-1] < 2:
            raise ValueError(
                f"objective 'diffusion' needs windows of >= 2 samples, got {x0.shape[-1]}"
            )
        x0 = x0.float()
        cfg = self.config
        schedule_of = getattr(model, "schedule", None)
        own = schedule_of() if callable(schedule_of) else None
        if own is not None and own != cfg.schedule():
            raise ValueError(
                f"objective 'diffusion': the model's schedule {own} differs from the "
                f"objective's {cfg.schedule()}; set the same n_train_steps / beta_* in both"
            )
        t = torch.randint(0, cfg.n_train_steps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        xt = self.scheduler.add_noise(x0, noise, t)
        mask = imputation_masks(
            tuple(x0.shape),
            probability=cfg.mask_probability,
            min_span=cfg.min_span,
            max_span=cfg.max_span,
            device=x0.device,
        )
        output = model(t, xt, observed=x0 * mask, mask=mask)
        prediction = output.prediction
        if prediction is None or tuple(prediction.shape) != tuple(x0.shape):
            got = None if prediction is None else tuple(prediction.shape)
            raise ValueError(
                f"objective 'diffusion': model prediction {got}, expected {tuple(x0.shape)}"
            )
        loss = (prediction.float() - noise).square().mean()
        metrics: dict[str, Tensor] = {"mse": loss.detach()}
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(loss=loss, metrics=metrics, n_items=x0.numel(), model_output=output)
