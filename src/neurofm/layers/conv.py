"""Causal temporal convolutions: the padded convolution and the dilated residual block.

- :class:`CausalConv1d`: ``nn.Conv1d`` padded on the left only, so the output at time ``t``
  reads inputs at ``t - (kernel_size - 1) * dilation .. t`` and never a later one.
- :class:`DilatedResidualBlock`: ``h + mix(dropout(act(conv(h))))`` on ``(B, D, T)`` with a
  causal dilated ``conv``; ``act`` is GELU, or WaveNet's gated ``tanh(a) * sigmoid(b)`` (van den
  Oord et al. 2016, arXiv:1609.03499) over the two halves of a conv twice as wide; an optional
  1x1 ``skip`` projection of the activation feeds a skip sum (WaveNet, BENDR, NTD).
- :class:`CausalConv3d`: the same over ``(B, C, T, H, W)``, causal in time and centred
  ("same") in space, for sensor grids.
- Streaming: ``conv.step(x, state)`` convolves the newest samples given the ``left_pad`` inputs
  before them (``state``, None at the start: zeros, as the padding of ``forward``), so that a
  generator keeps one small buffer per layer instead of recomputing the receptive field
  (:meth:`DilatedResidualBlock.step`, Paine et al. 2016, "Fast WaveNet generation").
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


def _step(conv: nn.Module, x: Tensor, state: Tensor | None, left_pad: int) -> tuple[Tensor, Tensor]:
    """Convolve the new steps ``x`` (B, C_in, n, ...) after ``state`` (B, C_in, left_pad, ...)."""
    if state is None:
        state = x.new_zeros(*x.shape[:2], left_pad, *x.shape[3:])
    full = torch.cat((state, x), dim=2)  # (B, C_in, left_pad + n, ...)
    if full.ndim == 3:
        # the few taps a step reads, as one matmul (no dilated-convolution kernel, whose CPU path
        # is slow on short inputs with large dilations)
        n, dilation = x.shape[2], conv.dilation[0]
        taps = [full[:, :, k * dilation : k * dilation + n] for k in range(conv.kernel_size[0])]
        weight = conv.weight.flatten(1)  # (C_out, C_in * K), C_in-major like the stacked taps
        y = weight @ torch.stack(taps, dim=2).flatten(1, 2)  # (B, C_out, n)
        y = y if conv.bias is None else y + conv.bias[:, None]
    else:
        y = conv.convolve(full)
    return y, full[:, :, full.shape[2] - left_pad :]


def pointwise(conv: nn.Module, h: Tensor) -> Tensor:
    """A 1x1 ``nn.Conv1d`` applied to ``h`` (B, C_in, T) as a matmul (the CPU convolution path
    costs more than the product itself on the short inputs of streamed steps); any other
    module is called as is."""
    if isinstance(conv, nn.Conv1d) and conv.kernel_size == (1,):
        y = conv.weight[:, :, 0] @ h
        return y if conv.bias is None else y + conv.bias[:, None]
    return conv(h)


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

    def convolve(self, x: Tensor) -> Tensor:
        """The unpadded convolution: (B, C_in, T + left_pad) -> (B, C_out, T)."""
        return super().forward(x)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` (B, C_in, T) causally into (B, C_out, T)."""
        return super().forward(F.pad(x, (self.left_pad, 0)))

    def step(self, x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        """Convolve new samples ``x`` (B, C_in, n) that follow the inputs held in ``state``.

        Returns the output (B, C_out, n), equal to the last ``n`` steps of ``forward`` over the
        whole sequence, and the new state (B, C_in, left_pad): the latest ``left_pad`` inputs.
        """
        return _step(self, x, state, self.left_pad)


class CausalConv3d(nn.Conv3d):
    """``nn.Conv3d`` on ``(B, C_in, T, H, W)``: causal along T (left padding only, as
    :class:`CausalConv1d`), zero-padded ``spatial_size // 2`` on each side of H and W.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Taps along time.
    spatial_size : int
        Taps along H and W (odd, so that the grid keeps its size).
    dilation : int
        Spacing of the time taps (samples).
    device, dtype : optional
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        spatial_size: int = 3,
        dilation: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if kernel_size < 1 or dilation < 1 or spatial_size < 1 or spatial_size % 2 == 0:
            raise ValueError(
                f"CausalConv3d: kernel_size and dilation must be >= 1 and spatial_size odd, "
                f"got {kernel_size}, {dilation} and {spatial_size}"
            )
        half = spatial_size // 2
        super().__init__(
            in_channels,
            out_channels,
            (kernel_size, spatial_size, spatial_size),
            dilation=(dilation, 1, 1),
            padding=(0, half, half),
            device=device,
            dtype=dtype,
        )

    @property
    def left_pad(self) -> int:
        """Time steps of past the output at ``t`` reads beyond ``t`` itself."""
        return (self.kernel_size[0] - 1) * self.dilation[0]

    def convolve(self, x: Tensor) -> Tensor:
        """The convolution without time padding: T + left_pad steps in, T out."""
        return super().forward(x)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` (B, C_in, T, H, W) into (B, C_out, T, H, W), causally in time."""
        return super().forward(F.pad(x, (0, 0, 0, 0, self.left_pad, 0)))

    def step(self, x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        """As :meth:`CausalConv1d.step` on (B, C_in, n, H, W) with a (B, C_in, left_pad, H, W)
        state."""
        return _step(self, x, state, self.left_pad)


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
    residual : bool
        Add the 1x1 residual projection ``mix``; False for the last block of a stack read only
        through its skips (its block output is then ``h`` unchanged).
    spatial_size : int
        0 for a block over time ``(B, D, T)``; an odd size for a block over sensor grids
        ``(B, D, T, H, W)`` whose convolution is a :class:`CausalConv3d` with that many taps
        along H and W.
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
        residual: bool = True,
        spatial_size: int = 0,
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
        if spatial_size:
            self.conv: CausalConv1d | CausalConv3d = CausalConv3d(
                width, n_conv, kernel_size, spatial_size=spatial_size, dilation=dilation, **factory
            )
            pointwise: type[nn.Module] = nn.Conv3d
        else:
            self.conv = CausalConv1d(width, n_conv, kernel_size, dilation=dilation, **factory)
            pointwise = nn.Conv1d
        self.mix = pointwise(width, width, 1, **factory) if residual else None
        self.skip = pointwise(width, skip_channels, 1, **factory) if skip_channels else None
        self.dropout = nn.Dropout(dropout)

    @property
    def receptive_field(self) -> int:
        """Samples one output depends on (itself included)."""
        return self.conv.left_pad + 1

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor | None]:
        """Map ``h`` (B, D, T) to the block output (B, D, T) and the skip output
        (B, skip_channels, T), None without a skip projection (with ``spatial_size``:
        (B, D, T, H, W) and (B, skip_channels, T, H, W))."""
        return self._rest(h, self.conv(h))

    def step(self, h: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor]:
        """:meth:`forward` over new steps ``h`` (B, D, n, ...) given the convolution's state
        (see :meth:`CausalConv1d.step`; None at the start); returns the block and skip outputs of
        those steps and the new state."""
        y, state = self.conv.step(h, state)
        out, skip = self._rest(h, y)
        return out, skip, state

    def _rest(self, h: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """Activation, dropout, skip and residual after the convolution ``y`` of ``h``."""
        if self.activation == "gated":
            filt, gate = y.chunk(2, dim=1)
            y = torch.tanh(filt) * torch.sigmoid(gate)
        else:
            y = F.gelu(y)
        y = self.dropout(y)
        skip = None if self.skip is None else pointwise(self.skip, y)
        return (h if self.mix is None else h + pointwise(self.mix, y)), skip
