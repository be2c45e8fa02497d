"""A strided convolutional stem: a multichannel signal (B, C, T) -> a token sequence (B, N, D).

Each layer is a temporal convolution with stride ``stride`` (kernel ``2 * stride + 1``, padded
so that token ``i`` is centred on its patch of ``stride`` samples), followed by a GELU (not after
the last). ``N = T / prod(strides)``; the length must be a multiple of the total stride so that
every token covers a whole patch (nothing is padded at the end).
"""

from __future__ import annotations

import math

from torch import Tensor, nn


class ConvStem(nn.Module):
    """Strided temporal convolutions over all channels, then a token axis.

    Parameters
    ----------
    n_chans : int
        Input channels ``C``.
    d_model : int
        Output feature size ``D`` (and the hidden width).
    strides : list of int
        Stride of each layer; their product is the samples per token.
    """

    def __init__(self, n_chans: int, d_model: int, *, strides: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_chans
        for i, stride in enumerate(strides):
            layers.append(nn.Conv1d(width, d_model, 2 * stride + 1, stride, padding=stride))
            if i < len(strides) - 1:
                layers.append(nn.GELU())
            width = d_model
        self.layers = nn.Sequential(*layers)
        self.patch = math.prod(strides)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, T / patch, D)."""
        if x.shape[-1] % self.patch:
            raise ValueError(
                f"ConvStem: {x.shape[-1]} samples is not a multiple of the stem's total stride "
                f"{self.patch}; cut segments to a multiple of it"
            )
        return self.layers(x).transpose(1, 2)
