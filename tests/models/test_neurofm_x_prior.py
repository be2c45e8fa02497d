"""NeuroFM-X's latent diffusion prior: cosine schedule, sample shapes through the generation
layer, its loss falls on a fixed batch, and it joins the multi-task loss as a term."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("mambapy")
pytest.importorskip("diffusers")

from neurofm.models.neurofm_x import NeuroFMX  # noqa: E402
from neurofm.models.neurofm_x.prior import LatentDiffusionPrior  # noqa: E402
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective  # noqa: E402
from neurofm.types import Batch  # noqa: E402


def test_prior_loss_falls_on_a_fixed_batch_and_samples_have_the_latent_shape():
    torch.manual_seed(0)
    prior = LatentDiffusionPrior(4, 8, n_layers=1, n_heads=2, n_train_steps=1000)
    assert prior.schedule.beta_schedule == "squaredcos_cap_v2"
    assert prior.alphas_cumprod.shape == (1000,)
    latents = torch.randn(1, 4, 8).repeat(16, 1, 1) * 0.5 + 1.0  # one point: easy to learn

    def fixed_loss() -> float:
        with torch.no_grad():
            return prior.loss(latents, generator=torch.Generator().manual_seed(1)).item()

    before = fixed_loss()
    optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
    for _ in range(60):
        loss = prior.loss(latents)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert fixed_loss() < 0.7 * before
    samples = prior.sample(3, n_steps=10, seed=0)
    assert samples.shape == (3, 4, 8) and samples.isfinite().all()
    assert torch.equal(samples, prior.sample(3, n_steps=10, seed=0))  # seeded
    ddpm = prior.sample(2, n_steps=5, sampler="ddpm", seed=0)
    assert ddpm.shape == (2, 4, 8)
    with pytest.raises(ValueError, match=r"expected latents \(B, 4, 8\)"):
        prior(torch.zeros(2, dtype=torch.long), torch.zeros(2, 3, 8))


def test_prior_is_a_term_of_the_multitask_loss():
    torch.manual_seed(0)
    model = NeuroFMX.from_config({"preset": "tiny", "diffusion_weight": 0.5})
    x = torch.poisson(torch.full((2, 16, 6), 2.0))
    out = MultitaskObjective(MultitaskConfig())(model, Batch(x=x))
    assert "aux_diffusion_prior" in out.metrics
    out.loss.backward()
    assert all(p.grad is not None for p in model.prior.parameters())
    latents = model.sample_latents(2, n_steps=4, seed=0)
    assert latents.shape == (2, model.config.n_latents, model.config.d_latent)
    with pytest.raises(ValueError, match="no diffusion prior"):
        NeuroFMX.from_config({"preset": "tiny"}).sample_latents(1)
