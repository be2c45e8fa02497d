"""A bank of damped oscillators as a linear state-space layer (OscSSM), computed exactly causally.

Every feature ``d`` of the input ``u`` (B, D, T) drives ``N`` damped oscillators, the discrete
modes ``lambda_n = exp(-alpha_n + i omega_n)`` of a second-order linear system (decay
``alpha_n = softplus(a_n) > 0`` per step, frequency ``omega_n = pi * sigmoid(w_n)`` in
``(0, pi)`` radians per step). Their summed read-out is the impulse response

    k_d[s] = sum_n exp(-alpha_n s) (c_n cos(omega_n s) + e_n sin(omega_n s)),   s = 0 .. T-1

and the layer returns ``y_d[t] = sum_{s <= t} k_d[s] u_d[t - s] + skip_d u_d[t]``: the output of
the state-space recurrence, computed as one depthwise causal convolution with the kernel
truncated at the window (exact, since the recurrence starts from rest at the window start).
A direct convolution rather than an FFT: an FFT's rounding would leak later inputs into earlier
outputs at the 1e-7 level, and neurofm's causal models ignore the future exactly. The kernel
runs in float32 under autocast (STYLE 11).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class OscillatorSSM(nn.Module):
    """Damped-oscillator state-space layer on ``(B, D, T)`` (see the module doc).

    Parameters
    ----------
    d_model : int
        Features D, each with its own oscillators.
    n_oscillators : int
        Oscillators N per feature.
    max_decay : float
        Largest initial decay per step; initial decays are spread log-uniformly over
        ``[1e-3, max_decay]`` and frequencies uniformly over ``(0, pi)``.
    """

    def __init__(self, d_model: int, n_oscillators: int, *, max_decay: float = 0.5) -> None:
        super().__init__()
        if d_model <= 0 or n_oscillators <= 0:
            raise ValueError(
                f"OscillatorSSM: d_model and n_oscillators must be positive, got {d_model} "
                f"and {n_oscillators}"
            )
        decay = torch.exp(
            torch.empty(d_model, n_oscillators).uniform_(math.log(1e-3), math.log(max_decay))
        )
        self.decay_raw = nn.Parameter(torch.log(torch.expm1(decay)))  # softplus^-1
        freq = torch.empty(d_model, n_oscillators).uniform_(0.02, 0.98)
        self.freq_raw = nn.Parameter(torch.log(freq / (1 - freq)))  # sigmoid^-1
        scale = 1.0 / math.sqrt(n_oscillators)
        self.cos_weight = nn.Parameter(scale * torch.randn(d_model, n_oscillators))
        self.sin_weight = nn.Parameter(scale * torch.randn(d_model, n_oscillators))
        self.skip = nn.Parameter(torch.ones(d_model))

    def kernel(self, length: int) -> Tensor:
        """Impulse responses (D, length) in float32, ``[:, s]`` the response ``s`` steps later."""
        steps = torch.arange(length, device=self.decay_raw.device, dtype=torch.float32)
        decay = F.softplus(self.decay_raw.float())[..., None]  # (D, N, 1)
        freq = math.pi * torch.sigmoid(self.freq_raw.float())[..., None]
        envelope = torch.exp(-decay * steps)  # (D, N, L)
        waves = self.cos_weight.float()[..., None] * torch.cos(freq * steps)
        waves = waves + self.sin_weight.float()[..., None] * torch.sin(freq * steps)
        return (envelope * waves).sum(dim=1)

    def forward(self, u: Tensor) -> Tensor:
        """Filter ``u`` (B, D, T) causally; returns (B, D, T) in the input's dtype."""
        d, t = u.shape[1], u.shape[-1]
        kernel = self.kernel(t).flip(-1)[:, None]  # (D, 1, T): conv1d correlates
        y = F.conv1d(F.pad(u.float(), (t - 1, 0)), kernel, groups=d)
        return (y + self.skip.float()[:, None] * u.float()).to(u.dtype)


class OscillatorBlock(nn.Module):
    """Pre-norm residual block ``h + ssm(norm(h))`` then ``h + mlp(norm(h))`` on ``(B, T, D)``.

    The SSM mixes time (per feature, :class:`OscillatorSSM`), the MLP mixes features per step;
    the norms are :class:`~neurofm.layers.RMSNorm`.

    Parameters
    ----------
    d_model : int
    n_oscillators : int
    dropout : float
        Dropout on both branches.
    """

    def __init__(self, d_model: int, n_oscillators: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        from neurofm.layers.mlp import MLP
        from neurofm.layers.norms import RMSNorm

        self.norm_ssm = RMSNorm(d_model)
        self.ssm = OscillatorSSM(d_model, n_oscillators)
        self.out = nn.Linear(d_model, d_model)
        self.norm_mlp = RMSNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        """Map ``h`` (B, T, D) to the same shape, causally in T."""
        y = self.ssm(self.norm_ssm(h).transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        h = h + self.dropout(self.out(F.gelu(y)))
        return h + self.mlp(self.norm_mlp(h))
