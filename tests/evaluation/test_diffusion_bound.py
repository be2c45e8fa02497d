"""The diffusion variational bound on code bins against an exact answer: Gaussian data under its
exact (optimal) denoiser, whose code length on the bins is known in closed form."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from neurofm.evaluation.diffusion_bound import bound_bits  # noqa: E402
from neurofm.generation.diffusion import NoiseSchedule, alphas_cumprod  # noqa: E402


def _optimal_denoiser(schedule: NoiseSchedule, scale: float):
    abar = alphas_cumprod(schedule)

    def eps(t: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        a2 = abar[t].view(-1, 1, 1)
        sigma = (1.0 - a2).sqrt()
        return (sigma * xt.double() / (a2 * scale**2 + sigma**2)).float()  # E[eps | x_t]

    return eps


def test_bound_is_close_above_the_exact_code_length_of_gaussian_data():
    schedule, scale, width = NoiseSchedule(n_train_steps=1000), 1.0, 0.25
    gen = torch.Generator().manual_seed(0)
    x = scale * torch.randn(16, 4, 32, generator=gen)
    lower = torch.floor(x / width) * width
    exact = -torch.log2(
        torch.special.ndtr((lower + width) / scale) - torch.special.ndtr(lower / scale)
    ).mean()
    bound = bound_bits(
        _optimal_denoiser(schedule, scale), x, lower, lower + width, schedule, generator=gen
    ).mean()
    assert exact < bound < exact + 0.15, (float(exact), float(bound))


def test_outer_bins_use_the_decoder_tail():
    """Samples in half-infinite bins: the bound stays finite and above the exact tail mass."""
    schedule, scale = NoiseSchedule(n_train_steps=200), 1.0
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 2, 16, generator=gen).abs() + 2.0  # all above the edge 2.0
    lower, upper = torch.full_like(x, 2.0), torch.full_like(x, float("inf"))
    exact = -torch.log2(1.0 - torch.special.ndtr(torch.tensor(2.0)))
    bits = bound_bits(_optimal_denoiser(schedule, scale), x, lower, upper, schedule, generator=gen)
    assert torch.isfinite(bits).all()
    assert bits.mean() > exact - 0.1  # a bound on average (small Monte Carlo slack)


def test_conditional_bound_on_independent_data_is_the_marginal_code_length():
    """Known samples independent of the unknown ones: the conditional code length of the unknown
    half is its marginal one. The known elements follow their exact posteriors in the sampler, so
    they cost nothing and what the denoiser predicts for them does not matter."""
    schedule, width = NoiseSchedule(n_train_steps=300), 0.25
    marginal = _optimal_denoiser(schedule, 1.0)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(16, 4, 64, generator=gen)
    known = torch.zeros_like(x)
    known[..., :32] = 1.0
    lower = torch.floor(x / width) * width
    unknown = ~known.bool()
    exact = -torch.log2(
        torch.special.ndtr(lower[unknown] + width) - torch.special.ndtr(lower[unknown])
    ).mean()

    def wrong_on_known(t: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        return torch.where(known.bool(), torch.full_like(xt, 3.0), marginal(t, xt))

    for eps in (marginal, wrong_on_known):
        bits = bound_bits(
            eps,
            x,
            lower,
            lower + width,
            schedule,
            generator=torch.Generator().manual_seed(3),
            known=known,
        )
        assert torch.all(bits[known.bool()] == 0.0)
        per_unknown = bits.sum() / unknown.sum()
        # its exact code length within Monte Carlo error (about 0.05 bit at this size) plus the
        # bound's slack (0.05 bit in the test above)
        assert abs(per_unknown - exact) < 0.12, (float(exact), float(per_unknown))
