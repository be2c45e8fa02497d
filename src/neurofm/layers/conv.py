"""Causal temporal convolutions: the padded convolution and the dilated residual block.

- :class:`CausalConv1d`: ``nn.Conv1d`` padded on the left only, so the output at time ``t``
  reads inputs at ``t - (kernel_size - 1) * dilation .. t`` and never a later one.
- :class:`DilatedResidualBlock`: ``h + mix(dropout(act(conv(h))))`` on ``(B, D, T)`` with a
  causal dilated ``conv``; ``act`` is GELU, or WaveNet's gated ``tanh(a) * sigmoid(b)`` (van den
  Oord et al. 2016, arXiv:1609.03499) over the two halves of a conv twice as wide; an optional
  1x1 ``skip`` projection of the activation feeds a skip sum (WaveNet, BENDR, NTD).
- :func:`receptive_field`: samples of past context a stack of causal convolutions sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ConvActivation = Literal["gelu", "gated"]
CONV_ACTIVATIONS = ("gelu", "gated")


def receptive_field(kernel_size: int, dilations: Iterable[int]) -> int:
    """Samples one output of stacked causal convolutions depends on (itself included).

    Each convolution adds ``(kernel_size - 1) * dilation`` samples of past.
    """
    return 1 + sum((kernel_size - 1) * d for d in dilations)


class CausalConv1d(nn.Conv1d):
    """``nn.Conv1d`` on ``(B, C_in, T) -> (B, C_out, T)`` with ``(kernel_size - 1) * dilation``
    zeros padded before the first sample and none after (the output keeps length ``T``).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output.
    kernel_size : int
        Taps of the kernel (samples).
    dilation : int
        Spacing of the taps (samples).
    bias : bool
        Add a learned bias.
    device, dtype : optional
        Factory arguments of the parameters.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        dilation: int = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if kernel_size < 1 or dilation < 1:
            raise ValueError(
                f"CausalConv1d: kernel_size and dilation must be >= 1, got {kernel_size} "
                f"and {dilation}"
            )
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            dilation=dilation,
            bias=bias,
            device=device,
            dtype=dtype,
        )

    @property
    def left_pad(self) -> int:
        """Samples of past the output at ``t`` reads beyond ``t`` itself."""
        return (self.kernel_size[0] - 1) * self.dilation[0]

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` (B, C_in, T) causally into (B, C_out, T)."""
        return super().forward(F.pad(x, (self.left_pad, 0)))


class DilatedResidualBlock(nn.Module):
    """Residual block of a causal dilated conv stack on ``(B, D, T)`` (see the module doc).

    Parameters
    ----------
    width : int
        Residual channels D.
    kernel_size : int
        Taps of the dilated convolution.
    dilation : int
        Its dilation (samples).
    activation : {"gelu", "gated"}
        GELU, or ``tanh(a) * sigmoid(b)`` with ``a, b`` the two halves of a ``2 * width`` conv.
    dropout : float
        Dropout on the activation, before the residual and skip projections.
    skip_channels : int
        Channels of the 1x1 skip projection; 0 for none.
    device, dtype : optional
        Factory arguments of the parameters.

    Parameter names ``conv``, ``mix`` (residual 1x1) and ``skip`` are part of saved checkpoints.
    """

    def __init__(
        self,
        width: int,
        kernel_size: int,
        dilation: int,
        *,
        activation: ConvActivation = "gelu",
        dropout: float = 0.0,
        skip_channels: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation not in CONV_ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; allowed: {', '.join(CONV_ACTIVATIONS)}"
            )
        if skip_channels < 0:
            raise ValueError(f"skip_channels must be >= 0 (0: no skip), got {skip_channels}")
        factory = {"device": device, "dtype": dtype}
        self.activation = activation
        n_conv = 2 * width if activation == "gated" else width
        self.conv = CausalConv1d(width, n_conv, kernel_size, dilation=dilation, **factory)
        self.mix = nn.Conv1d(width, width, 1, **factory)
        self.skip = nn.Conv1d(width, skip_channels, 1, **factory) if skip_channels else None
        self.dropout = nn.Dropout(dropout)

    @property
    def receptive_field(self) -> int:
        """Samples one output depends on (itself included)."""
        return self.conv.left_pad + 1

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor | None]:
        """Map ``h`` (B, D, T) to the block output (B, D, T) and the skip output
        (B, skip_channels, T), None without a skip projection."""
        y = self.conv(h)  # (B, D or 2D, T)
        if self.activation == "gated":
            filt, gate = y.chunk(2, dim=1)
            y = torch.tanh(filt) * torch.sigmoid(gate)
        else:
            y = F.gelu(y)
        y = self.dropout(y)
        skip = None if self.skip is None else self.skip(y)
        return h + self.mix(y), skip
