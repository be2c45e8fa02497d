"""Normalisation layers: RMSNorm (computed in float32) and a name -> norm factory."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

NormName = Literal["rms", "layer"]
NORMS = ("rms", "layer")


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang & Sennrich, 2019) over the last axis.

    The statistic is computed in float32 whatever the input dtype (bf16/fp16 under autocast lose
    too much precision in a mean of squares), and the result is cast back to the input dtype.

    Parameters
    ----------
    dim : int
        Size of the normalised (last) axis.
    eps : float
        Added to the mean square before the square root.
    elementwise_affine : bool
        Learn a per-feature gain (initialised to one).
    """

    def __init__(self, dim: int, *, eps: float = 1e-6, elementwise_affine: bool = True) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"RMSNorm: dim must be positive, got {dim}")
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` of shape (..., dim); same shape and dtype out."""
        x32 = x.float()
        out = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight is not None:
            out = out * self.weight.float()
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, affine={self.weight is not None}"


def make_norm(name: NormName, dim: int, *, eps: float = 1e-6) -> nn.Module:
    """Build a normalisation layer by name: ``"rms"`` (RMSNorm) or ``"layer"`` (LayerNorm).

    Raises
    ------
    ValueError
        For an unknown name, listing the allowed ones.
    """
    if name == "rms":
        return RMSNorm(dim, eps=eps)
    if name == "layer":
        return nn.LayerNorm(dim, eps=eps)
    raise ValueError(f"unknown norm {name!r}; allowed: {', '.join(NORMS)}")
