"""The variational bound of a DDPM on code bins, in bits per channel-sample.

A diffusion model defines a density over continuous signals; to compare it with token models it
is scored on the **same code bins**: each target sample ``x`` lies in one bin ``[lo, hi)`` of the
256-level mu-law tokenizer fitted on train (the bins of the continuous forecaster's bits,
:mod:`~neurofm.evaluation.continuous`), and the model's code length is ``-log2 P(bins)``, with
``P(bins)`` the probability its reverse process puts on the window's bins. That probability is
intractable; the DDPM variational bound (Ho et al. 2020, eq. 5) bounds its code length from
above. The decoder ``p(x_0 | x_1) = N(m, s²)`` factorises over elements, so

``P(bins) = E_{p(x_{1:N})} [prod_inner int_bin N(u; m, s²) du * prod_outer P_tail(bin | x_1)]``

and for any proposal Jensen's inequality gives an upper bound on ``-ln P(bins)``. The proposal:
for an inner (finite) bin of width ``w`` a point ``u ~ U[lo, hi)`` (uniform dequantisation,
contributing ``ln q(u) = -ln w`` to the bound); for an outer bin (reaching to -inf or +inf, clipped samples)
the sample itself; then the forward process ``q(x_{1:N} | u)``. Every term is a sum over
elements, and bits per channel-sample are the per-element mean divided by ln 2. In Ho's step
numbering (``k = 1..N``; ``diffusers`` index ``k - 1``), with ``u`` the proposal's point:

- ``L_N = KL(q(x_N | u) || N(0, 1)) = (abar_N u² + (1 - abar_N) - 1 - ln(1 - abar_N)) / 2``;
- ``L_{k-1} = KL(q(x_{k-1} | x_k, u) || p(x_{k-1} | x_k))``, the posterior with variance
  ``beta~_k = beta_k (1 - abar_{k-1}) / (1 - abar_k)``, the model with variance ``beta_k``
  (``diffusers``' ``fixed_large``, which the DDPM sampler uses), so it is
  ``(ln(beta_k / beta~_k) + (beta~_k + d²) / beta_k - 1) / 2`` with ``d = mu_q - mu_p = beta_k /
  (sqrt(alpha_k) sqrt(1 - abar_k)) (eps_theta(x_k, k) - eps)`` for ``x_k = sqrt(abar_k) u +
  sqrt(1 - abar_k) eps``;
- ``L_0``, with ``m = (x_1 - sqrt(1 - abar_1) eps_theta(x_1, 1)) / sqrt(abar_1)`` and ``s² =
  beta_1``: for an inner bin ``-ln N(u; m, s²) - ln w`` (the second part is ``ln q(u)``); for an outer bin ``-ln P_tail``, the
  decoder's mass beyond the bin's finite edge.

Two choices make the bound tight (``tests/evaluation/test_diffusion_bound.py`` checks it against
the exact code length of Gaussian data under its exact denoiser: 4.13 bits for an exact 4.08 at
bin width 0.25 with 1000 linear steps). Without the dequantisation (``u = x`` everywhere, the
usual discretised decoder) the bound stays valid but is loose by about
``ln(w / sqrt(2 pi e beta_1))`` nats when the bins are much wider than the decoder's scale, as
they are for EEG (7.4 bits instead of 4.1 in that test). With the reverse variance
``beta~_k`` (``fixed_small``) instead of ``beta_k`` it is loose by about 0.7 bits there (the
first steps, where the noise is unpredictable, pay for a too narrow reverse step; Nichol &
Dhariwal 2021 learn the variance for this reason).

**Conditional bound (imputation).** With ``known`` (1 where a sample is given, as the sampler's
imputation mask), the bound is on ``-ln P(bins of the unknown samples | the known samples)`` under
the conditional reverse process the sampler runs (:func:`~neurofm.generation.diffusion.
sample_diffusion`): the denoiser reads the known samples and the mask at every step; the unknown
elements follow the model's reverse step; the known ones start from ``q(x_N | x_0)`` and are
drawn from the exact posterior ``q(x_{k-1} | x_k, x_0)``. The proposal holds the known elements'
forward paths from their true values (no dequantisation). Their factors are then the same in the
reverse process and in the proposal and cancel: only the unknown elements carry ``L_N``,
``L_{k-1}`` and ``L_0`` (the known ones still enter every term through the denoiser's input).
Divide the sum by the number of unknown elements for bits per predicted channel-sample.

The sum over ``k`` is estimated without bias from ``n_bound_steps`` steps drawn evenly spaced
with a random offset (stratified) per window, each with fresh noise; bits are nats / ln 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from neurofm.generation.diffusion import NoiseSchedule, make_scheduler

_MIN_PROBABILITY = 1e-30

EpsilonFunction = Callable[[Tensor, Tensor], Tensor]
"""``eps(t (B,) int64 diffusers step, x_t (B, C, T)) -> predicted noise (B, C, T)``."""


def _terms(schedule: NoiseSchedule) -> dict[str, Tensor]:
    scheduler = make_scheduler(schedule)
    betas = scheduler.betas.double()
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, dim=0)
    abar_prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    tilde = betas * (1.0 - abar_prev) / (1.0 - abar)
    return {"betas": betas, "alphas": alphas, "abar": abar, "tilde": tilde}


@torch.no_grad()
def bound_nats(
    eps_fn: EpsilonFunction,
    x: Tensor,
    lower: Tensor,
    upper: Tensor,
    schedule: NoiseSchedule,
    *,
    n_bound_steps: int | None = None,
    generator: torch.Generator | None = None,
    known: Tensor | None = None,
) -> Tensor:
    """Per-element upper bound (nats) on ``-ln P(bin)`` for the signal ``x`` (B, C, T).

    Parameters
    ----------
    eps_fn : callable
        The denoiser as ``eps_fn(t, x_t)``.
    x : Tensor, shape (B, C, T)
        Clean signal (the bins' units).
    lower, upper : Tensor, shape (B, C, T)
        Edges of the bin holding each sample (``-inf`` / ``+inf`` for the outer bins).
    schedule : NoiseSchedule
        The schedule the model was trained with.
    n_bound_steps : int, optional
        Steps ``k >= 2`` evaluated per window (default: all ``N - 1``, exact sum).
    generator : torch.Generator, optional
        For the noise and the step offsets.
    known : Tensor, shape (B, C, T), optional
        1 where the sample is given (conditional bound, see the module docstring; ``eps_fn``
        must then read the known samples and the mask itself): those elements follow their
        true forward paths and contribute zero. None: nothing is known.

    Returns
    -------
    Tensor, shape (B, C, T), float64
        ``L_N + sum L_{k-1} + L_0`` per element (a stochastic estimate when steps are sampled);
        its sum over a window bounds the window's (conditional) code length.
    """
    terms = {k: v.to(x.device) for k, v in _terms(schedule).items()}
    n = schedule.n_train_steps
    x = x.double()
    b = x.shape[0]
    lower, upper = lower.double(), upper.double()
    given = torch.zeros_like(x, dtype=torch.bool) if known is None else known.bool()
    if tuple(given.shape) != tuple(x.shape):
        raise ValueError(
            f"bound_nats: known {tuple(given.shape)} must be shaped like x {tuple(x.shape)}"
        )
    inner = torch.isfinite(lower) & torch.isfinite(upper) & ~given
    width = torch.where(inner, upper - lower, torch.ones_like(x))
    dither = torch.rand(x.shape, generator=generator, dtype=torch.float64, device=x.device)
    x = torch.where(inner, torch.where(inner, lower, 0.0) + dither * width, x)  # the proposal's u

    def noisy(index: Tensor) -> tuple[Tensor, Tensor]:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64, device=x.device)
        abar = terms["abar"][index].view(b, 1, 1)
        return abar.sqrt() * x + (1.0 - abar).sqrt() * noise, noise

    def eps_at(index: Tensor, xt: Tensor) -> Tensor:
        return eps_fn(index, xt.float()).double()

    abar_n = terms["abar"][-1]
    total = 0.5 * (abar_n * x**2 + (1.0 - abar_n) - 1.0 - torch.log1p(-abar_n))
    # L_0: the discretised decoder at diffusers index 0 (Ho's step 1)
    first = torch.zeros(b, dtype=torch.long, device=x.device)
    x1, _ = noisy(first)
    abar1 = terms["abar"][0]
    mean = (x1 - (1.0 - abar1).sqrt() * eps_at(first, x1)) / abar1.sqrt()
    scale = terms["betas"][0].sqrt()
    tail = torch.special.ndtr((upper - mean) / scale) - torch.special.ndtr((lower - mean) / scale)
    density = 0.5 * ((x - mean) / scale) ** 2 + torch.log(scale) + 0.5 * math.log(2.0 * math.pi)
    decoder = torch.where(
        inner, density - torch.log(width), -torch.log(tail.clamp_min(_MIN_PROBABILITY))
    )
    total = total + decoder
    # sum over Ho's k = 2..N, diffusers indices 1..N-1
    count = n - 1
    n_steps = count if n_bound_steps is None else min(int(n_bound_steps), count)
    if n_steps == count:
        grid = torch.arange(1, n, device=x.device)[None, :].expand(b, -1)
    else:
        offset = torch.rand(b, 1, generator=generator, dtype=torch.float64, device=x.device)
        positions = (torch.arange(n_steps, device=x.device)[None, :] + offset) * count / n_steps
        grid = 1 + positions.floor().long().clamp(max=count - 1)
    weight = count / n_steps
    for j in range(grid.shape[1]):
        index = grid[:, j]
        xt, noise = noisy(index)
        beta = terms["betas"][index]
        coef = beta / (terms["alphas"][index].sqrt() * (1.0 - terms["abar"][index]).sqrt())
        difference = coef.view(b, 1, 1) * (eps_at(index, xt) - noise)
        posterior = terms["tilde"][index].view(b, 1, 1)
        model_var = beta.view(b, 1, 1)
        kl = torch.log(model_var / posterior) + (posterior + difference**2) / model_var - 1.0
        total = total + weight * 0.5 * kl
    # the known elements' reverse factors are the proposal's own posteriors: they cancel
    return torch.where(given, 0.0, total)


def bound_bits(
    eps_fn: EpsilonFunction,
    x: Tensor,
    lower: Tensor,
    upper: Tensor,
    schedule: NoiseSchedule,
    **kwargs: object,
) -> Tensor:
    """:func:`bound_nats` in bits (per element, float64)."""
    return bound_nats(eps_fn, x, lower, upper, schedule, **kwargs) / math.log(2.0)
