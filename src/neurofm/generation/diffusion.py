"""Sampling a denoising diffusion model with ``diffusers``' DDPM and DDIM schedulers.

The noise schedule (:class:`NoiseSchedule`) is shared by the ``diffusion`` objective, the
samplers and the variational bound, so that a run samples with the schedule it was trained on.
:func:`sample_diffusion` runs the reverse process in ``n_steps`` network calls: DDPM (ancestral,
Ho et al. 2020) or DDIM (``eta`` = 0: deterministic, Song et al. 2021) over a subsequence of the
training steps.

Imputation (fill a gap, forecast the future) is by masking: the denoiser is given the observed
samples and their mask at every step (it was trained so, see the ``diffusion`` objective). The
known elements of ``x_t`` do not follow the network's reverse step: they start from the forward
process ``q(x_N | x_0)`` and each step draws them from the exact posterior ``q(x_s | x_t, x_0)``
(:func:`known_posterior_step`), so at every step they are distributed as in training (noised true
values) whatever the network predicts for them, and only the unknown elements are generated. The
observed samples are returned unchanged. (Letting the known elements follow the network's own
reverse step drifts them off the forward process wherever the predicted noise is wrong, and the
unknown elements, read next to them, drift with them.)

The denoiser is any model whose spec has ``sampling="diffusion"``: ``model(t, x_t, observed=,
mask=)`` with integer steps ``t`` (B,) and ``x_t`` (B, C, T), returning the predicted noise in
``ModelOutput.prediction`` (B, C, T).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from neurofm.errors import require_extra

SAMPLERS = ("ddpm", "ddim")


@dataclass
class NoiseSchedule:
    """The forward-process noise schedule (``diffusers`` names)."""

    n_train_steps: int = 1000  # diffusion steps of the forward process
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "linear"
    beta_start: float = 1e-4  # beta_1 (linear schedules)
    beta_end: float = 0.02  # beta_T (linear schedules)

    def __post_init__(self) -> None:
        if self.n_train_steps < 2:
            raise ValueError(f"n_train_steps must be >= 2, got {self.n_train_steps}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(
                f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}"
            )


def make_scheduler(schedule: NoiseSchedule, sampler: str = "ddpm") -> Any:
    """A ``diffusers`` ``DDPMScheduler`` or ``DDIMScheduler`` for ``schedule`` (epsilon
    prediction, no clipping: neural signals are not bounded to [-1, 1]). DDPM's reverse variance
    is ``beta_t`` (``fixed_large``), the model whose variational bound
    :mod:`neurofm.evaluation.diffusion_bound` computes."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r} is not one of {SAMPLERS}")
    module = require_extra(f"diffusers.schedulers.scheduling_{sampler}", "diffusion")
    if sampler == "ddpm":
        return module.DDPMScheduler(variance_type="fixed_large", **_schedule_arguments(schedule))
    return module.DDIMScheduler(**_schedule_arguments(schedule))


def _schedule_arguments(schedule: NoiseSchedule) -> dict[str, Any]:
    return dict(
        num_train_timesteps=schedule.n_train_steps,
        beta_schedule=schedule.beta_schedule,
        beta_start=schedule.beta_start,
        beta_end=schedule.beta_end,
        clip_sample=False,
        prediction_type="epsilon",
    )


def alphas_cumprod(schedule: NoiseSchedule) -> Tensor:
    """``alpha_bar_t`` (n_train_steps,) float64 of the schedule, as ``diffusers`` computes it."""
    return make_scheduler(schedule).alphas_cumprod.double()


def known_posterior_step(
    x0: Tensor,
    xt: Tensor,
    abar_t: float,
    abar_s: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A draw from ``q(x_s | x_t, x_0)`` for ``s < t`` (``abar_s = 1``: ``x_0`` itself).

    With ``r = abar_t / abar_s`` the forward step ``x_t | x_s ~ N(sqrt(r) x_s, 1 - r)`` gives the
    posterior mean ``(sqrt(abar_s) (1 - r) x_0 + sqrt(r) (1 - abar_s) x_t) / (1 - abar_t)`` and
    variance ``(1 - abar_s) (1 - r) / (1 - abar_t)``.
    """
    if abar_s >= 1.0:
        return x0.clone()
    r = abar_t / abar_s
    mean = (abar_s**0.5 * (1.0 - r) * x0 + r**0.5 * (1.0 - abar_s) * xt) / (1.0 - abar_t)
    std = ((1.0 - abar_s) * (1.0 - r) / (1.0 - abar_t)) ** 0.5
    noise = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
    return mean + std * noise


@torch.no_grad()
def sample_diffusion(
    model: nn.Module,
    shape: tuple[int, int, int],
    *,
    n_steps: int,
    schedule: NoiseSchedule | None = None,
    sampler: str = "ddpm",
    eta: float = 0.0,
    observed: Tensor | None = None,
    mask: Tensor | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Generate signals (B, C, T) with the reverse process in ``n_steps`` network calls.

    Parameters
    ----------
    model : nn.Module
        A denoiser with spec ``sampling="diffusion"``.
    shape : (B, C, T)
        Shape of the signals.
    n_steps : int
        Network calls, at most ``schedule.n_train_steps``.
    schedule : NoiseSchedule, optional
        The training schedule (default ``NoiseSchedule()``).
    sampler : {"ddpm", "ddim"}
        Ancestral DDPM or DDIM.
    eta : float
        DDIM's noise scale (0: deterministic).
    observed, mask : Tensor (B, C, T), optional
        Known samples and where they are known (1 / True); both or neither.
    seed : int, optional
        Seeds the initial noise and the DDPM noise: the same seed gives the same samples.
    device : optional
        Default: the model's parameters' device.
    """
    schedule = schedule or NoiseSchedule()
    if not 1 <= n_steps <= schedule.n_train_steps:
        raise ValueError(
            f"sample_diffusion: n_steps must be in [1, {schedule.n_train_steps}], got {n_steps}"
        )
    if (observed is None) != (mask is None):
        raise ValueError("sample_diffusion: give observed and mask together or neither")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    keywords: dict[str, Tensor] = {}
    if observed is not None:
        mask = mask.to(device=device, dtype=torch.float32)
        observed = observed.to(device=device, dtype=torch.float32)
        if tuple(observed.shape) != tuple(shape) or tuple(mask.shape) != tuple(shape):
            raise ValueError(
                f"sample_diffusion: observed {tuple(observed.shape)} and mask "
                f"{tuple(mask.shape)} must have shape {tuple(shape)}"
            )
        keywords = {"observed": observed * mask, "mask": mask}
    scheduler = make_scheduler(schedule, sampler)
    scheduler.set_timesteps(n_steps, device=device)
    step_keywords: dict[str, Any] = {"generator": generator}
    if sampler == "ddim":
        step_keywords["eta"] = eta
    was_training = model.training
    model.eval()
    try:
        x = torch.randn(tuple(shape), generator=generator, device=device)
        abar = scheduler.alphas_cumprod.to(torch.float64)
        timesteps = [int(t) for t in scheduler.timesteps]
        if observed is not None:  # the known elements start from q(x_N | x_0)
            first = float(abar[timesteps[0]])
            x = torch.where(mask.bool(), first**0.5 * observed + (1.0 - first) ** 0.5 * x, x)
        for i, t in enumerate(timesteps):
            steps = torch.full((shape[0],), t, device=device, dtype=torch.long)
            noise = model(steps, x, **keywords).prediction.float()
            new = scheduler.step(noise, t, x, **step_keywords).prev_sample
            if observed is not None:
                s = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                abar_s = float(abar[s]) if s >= 0 else 1.0
                known = known_posterior_step(observed, x, float(abar[t]), abar_s, generator)
                new = torch.where(mask.bool(), known, new)
            x = new
    finally:
        model.train(was_training)
    if observed is not None:
        x = torch.where(mask.bool(), observed, x)
    return x
