"""A denoising diffusion prior over NeuroFM-X's fused latents (B, n_latents, d_latent).

The forward process is ``diffusers``' cosine schedule (``squaredcos_cap_v2``, 1000 steps by
default, through :mod:`neurofm.generation.diffusion`); the denoiser is a small transformer over
the latent vectors (no positions: the latents are a learned set, their index is their identity,
given by a learned embedding) conditioned on the step by adding a timestep embedding to every
vector; it predicts the noise (epsilon). Its loss is the DDPM simple loss, the MSE of the
predicted noise at a uniformly drawn step. Sampling (:meth:`LatentDiffusionPrior.sample`) is
:func:`~neurofm.generation.diffusion.sample_diffusion` (DDPM or DDIM) with the same schedule.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurofm.generation.diffusion import NoiseSchedule, alphas_cumprod, sample_diffusion
from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.denoising import TimestepEmbedding
from neurofm.layers.norms import RMSNorm
from neurofm.types import ModelOutput


class LatentDiffusionPrior(nn.Module):
    """Epsilon-prediction denoiser of latent sets ``(B, n_latents, d_latent)``.

    Parameters
    ----------
    n_latents, d_latent : int
        Shape of one latent set.
    n_layers, n_heads : int
        Transformer layers and heads of the denoiser.
    n_train_steps : int
        Diffusion steps of the cosine schedule.
    """

    def __init__(
        self, n_latents: int, d_latent: int, *, n_layers: int, n_heads: int, n_train_steps: int
    ) -> None:
        super().__init__()
        self.n_latents, self.d_latent = n_latents, d_latent
        self.schedule = NoiseSchedule(
            n_train_steps=n_train_steps, beta_schedule="squaredcos_cap_v2"
        )
        self.register_buffer(
            "alphas_cumprod", alphas_cumprod(self.schedule).float(), persistent=False
        )
        self.index = nn.Parameter(0.02 * torch.randn(n_latents, d_latent))
        self.time = TimestepEmbedding(d_latent, d_latent)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_latent, n_heads, rotary=False) for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_latent)
        self.out = nn.Linear(d_latent, d_latent)

    def forward(self, steps: Tensor, x: Tensor) -> ModelOutput:
        """Predicted noise (``prediction``, (B, n_latents, d_latent)) of noisy latents ``x`` at
        integer ``steps`` (B,)."""
        if x.ndim != 3 or x.shape[1:] != (self.n_latents, self.d_latent):
            raise ValueError(
                f"LatentDiffusionPrior: expected latents (B, {self.n_latents}, {self.d_latent}), "
                f"got {tuple(x.shape)}"
            )
        h = x.to(self.out.weight.dtype) + self.index + self.time(steps)[:, None]
        for block in self.blocks:
            h = block(h, causal=False)
        return ModelOutput(prediction=self.out(self.norm(h)))

    def loss(self, latents: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """DDPM simple loss: MSE of the predicted noise of ``latents`` noised at random steps."""
        b = latents.shape[0]
        steps = torch.randint(
            0, self.schedule.n_train_steps, (b,), device=latents.device, generator=generator
        )
        noise = torch.randn(latents.shape, device=latents.device, generator=generator)
        alpha_bar = self.alphas_cumprod.to(latents.device)[steps][:, None, None]  # (B, 1, 1)
        noisy = alpha_bar.sqrt() * latents.float() + (1 - alpha_bar).sqrt() * noise
        return (self(steps, noisy).prediction.float() - noise).square().mean()

    def sample(
        self, n: int, *, n_steps: int = 50, sampler: str = "ddim", seed: int | None = None
    ) -> Tensor:
        """``n`` latent sets (n, n_latents, d_latent) drawn in ``n_steps`` denoiser calls."""
        return sample_diffusion(
            self,
            (n, self.n_latents, self.d_latent),
            n_steps=n_steps,
            schedule=self.schedule,
            sampler=sampler,
            seed=seed,
        )
