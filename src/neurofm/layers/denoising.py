"""Building blocks of denoising (diffusion / flow) networks.

- :func:`sinusoidal_embedding`: the transformer sinusoid of a continuous or integer timestep;
- :class:`TimestepEmbedding`: sinusoid followed by a two-layer MLP (as in DDPM / DiT);
- :class:`MaskedConv1d`: a partial convolution over observed samples only, renormalised by the
  fraction of observed samples under the kernel (Liu et al. 2018, arXiv:1804.07723), so that the
  conditioning signal of an imputation is read without the zeros standing for missing samples;
- :class:`AdaptiveConvBlock`: a residual 1-D convolution block whose normalised features are
  scaled and shifted by a conditioning vector (FiLM / adaptive group norm, Perez et al. 2018).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, *, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of timesteps ``t`` (B,) -> (B, dim), cos half then sin half.

    ``t`` may be a flow time in [0, 1] (scaled by 1000 so that low frequencies still turn) or an
    integer diffusion step; both are read as float32.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal_embedding: dim must be even, got {dim}")
    half = dim // 2
    t = t.float().reshape(-1)
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    angles = t[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepEmbedding(nn.Module):
    """Timestep (B,) -> (B, d_out): sinusoid of ``time_embed_dim`` features then Linear-SiLU-Linear.

    Parameters
    ----------
    time_embed_dim : int
        Number of sinusoidal features (even).
    d_out : int
        Output feature size.
    scale : float
        Multiplies ``t`` before the sinusoid (1000 for flow times in [0, 1], 1 for integer steps).
    """

    def __init__(self, time_embed_dim: int, d_out: int, *, scale: float = 1.0) -> None:
        super().__init__()
        self.time_embed_dim = time_embed_dim
        self.scale = float(scale)
        self.mlp = nn.Sequential(
            nn.Linear(time_embed_dim, d_out), nn.SiLU(), nn.Linear(d_out, d_out)
        )

    def forward(self, t: Tensor) -> Tensor:
        features = sinusoidal_embedding(t * self.scale, self.time_embed_dim)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class MaskedConv1d(nn.Conv1d):
    """Partial convolution: ``conv(x * m) * (k / sum(m under kernel))`` where observed, 0 elsewhere.

    ``forward(x, mask)`` takes ``x`` (N, C_in, T) and a mask (N, 1, T) or (N, C_in, T), 1 where
    the sample is observed; the output is zero where the kernel sees no observed sample. Same
    ("same"-padded, odd kernel) length in and out.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f"MaskedConv1d: kernel_size must be odd, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if mask is None:
            return super().forward(x)
        mask = mask.to(x.dtype).expand_as(x)
        out = F.conv1d(x * mask, self.weight, None, padding=self.padding)
        ones = torch.ones(1, x.shape[1], self.kernel_size[0], device=x.device, dtype=x.dtype)
        seen = F.conv1d(mask, ones, padding=self.padding)  # observed inputs under the kernel
        full = float(x.shape[1] * self.kernel_size[0])
        ratio = torch.where(seen > 0, full / seen.clamp_min(1.0), torch.zeros_like(seen))
        out = out * ratio + self.bias[None, :, None]
        return out * (seen > 0).to(x.dtype)


class AdaptiveConvBlock(nn.Module):
    """``h + conv2(act(conv1(act(film(norm(h), cond)))))`` over (N, d_model, T).

    Parameters
    ----------
    d_model : int
        Feature channels.
    d_cond : int
        Size of the conditioning vector (timestep + channel embedding).
    kernel_size : int
        Odd temporal kernel (non-causal, "same" padding).
    dilation : int
        Dilation of the first convolution.
    dropout : float
        Dropout before the second convolution.
    """

    def __init__(
        self,
        d_model: int,
        d_cond: int,
        kernel_size: int,
        *,
        dilation: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"AdaptiveConvBlock: kernel_size must be odd, got {kernel_size}")
        groups = 8 if d_model % 8 == 0 else 1
        self.norm = nn.GroupNorm(groups, d_model)
        self.film = nn.Linear(d_cond, 2 * d_model)
        pad = dilation * (kernel_size // 2)
        self.conv1 = nn.Conv1d(d_model, d_model, kernel_size, padding=pad, dilation=dilation)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        """``h`` (N, d_model, T), ``cond`` (N, d_cond) -> (N, d_model, T)."""
        scale, shift = self.film(cond)[..., None].chunk(2, dim=1)  # (N, D, 1) each
        z = self.norm(h) * (1.0 + scale) + shift
        z = self.conv1(F.silu(z))
        z = self.conv2(self.dropout(F.silu(z)))
        return h + z
