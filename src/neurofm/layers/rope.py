"""Rotary position embeddings (RoPE; Su et al. 2021, arXiv:2104.09864).

Pairs of features are rotated by an angle proportional to the position. The angles are computed
in float32 on the fly for the positions ``offset .. offset + T - 1``, so a cached decoding step at
position ``offset`` rotates its query and key exactly as the full forward does, with no maximum
length and no buffer that a ``.to(bfloat16)`` could degrade.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def rotate_half(x: Tensor) -> Tensor:
    """Map the two halves ``(a, b)`` of the last axis to ``(-b, a)``."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` (..., T, Dh) by angles given as ``cos``/``sin`` of shape (T, Dh)."""
    x32 = x.float()
    return (x32 * cos + rotate_half(x32) * sin).to(x.dtype)


class RotaryEmbedding(nn.Module):
    """Rotary embedding applied to queries and keys of shape (B, H, T, Dh).

    Parameters
    ----------
    head_dim : int
        Per-head feature size ``Dh`` (must be even).
    base : float
        Wavelength base of the rotation frequencies.
    """

    def __init__(self, head_dim: int, *, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim <= 0 or head_dim % 2:
            raise ValueError(
                f"RotaryEmbedding: head_dim must be a positive even number, got {head_dim}"
            )
        if base <= 1.0:
            raise ValueError(f"RotaryEmbedding: base must be > 1, got {base}")
        self.head_dim = head_dim
        self.base = float(base)

    def angles(self, n_positions: int, offset: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``cos`` and ``sin`` (float32, shape (n_positions, Dh)) for positions from ``offset``."""
        half = self.head_dim // 2
        inv_freq = self.base ** (-torch.arange(half, device=device, dtype=torch.float32) / half)
        pos = torch.arange(offset, offset + n_positions, device=device, dtype=torch.float32)
        freqs = torch.outer(pos, inv_freq)  # (T, Dh/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, Dh)
        return emb.cos(), emb.sin()

    def forward(self, q: Tensor, k: Tensor, *, offset: int = 0) -> tuple[Tensor, Tensor]:
        """Rotate ``q`` and ``k`` (B, H, T, Dh) as tokens at positions ``offset .. offset+T-1``."""
        if q.shape[-1] != self.head_dim or k.shape[-1] != self.head_dim:
            raise ValueError(
                f"RotaryEmbedding: expected head size {self.head_dim}, got q {tuple(q.shape)}, "
                f"k {tuple(k.shape)}"
            )
        cos, sin = self.angles(q.shape[-2], offset, q.device)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"
