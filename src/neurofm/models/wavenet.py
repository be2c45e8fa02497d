"""WaveNet over quantized channels: :class:`WavenetFullChannel` and :class:`Wavenet3D`.

After WaveNet (van den Oord et al. 2016, arXiv:1609.03499) as used in the MEG model zoo
(brain-gen): stacks of causal dilated convolutions with gated activations
``tanh(a) * sigmoid(b)``, residual and skip paths, and a logits head over the skip sum
(``relu -> 1x1 -> relu -> logits``). Time ``t`` predicts the code at ``t + 1``.

- :class:`WavenetFullChannel` (``wavenet``): all channels of a time step form one input vector
  (:class:`~neurofm.layers.ChannelCodeInput`, a code table per channel id), one temporal stack
  runs over it, and a readout per channel id gives logits (B, C, T, V).
- :class:`Wavenet3D` (``wavenet3d``): channels are placed on a sensor grid from their positions
  (:class:`~neurofm.layers.PositionGrid`, neurofm's topomap layout), the stack's convolutions
  are causal in time and 3 x 3 in space (:class:`~neurofm.layers.CausalConv3d`), and every
  channel reads its logits at its own cell.

Fast generation (Paine et al. 2016, "Fast WaveNet generation algorithm"): with
``use_cache=True`` the model returns, per block, the last ``(kernel_size - 1) * dilation``
inputs of its convolution; fed back with the next code only, one step costs one short
convolution per layer instead of recomputing the receptive field, with the same output.
:meth:`WavenetFullChannel.stream` goes further for sampling: ring buffers and weights prepared
once (:mod:`neurofm.models.wavenet_stream`), so that a step is a few matrix products per block.

Deviations from the reference code:

- inputs are codes (B, C, T) with channel ids (or positions), not one-hot maps (B, Q, T); logits
  are (B, C, T, V) as every neurofm model over channel codes, not (B, Q, T) or (B, Q, T, H, W);
- the channel axis of a full-channel input is a table per channel id summed over channels
  (scaled by ``1 / sqrt(C)``), so any subset of the ``n_chans`` channels can be read;
- the 3-D model takes the grid from the ``positions`` context instead of a fixed layout file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import (
    ChannelCodeInput,
    ChannelHead,
    DilatedResidualBlock,
    PositionGrid,
    channel_ids_for,
    receptive_field,
)
from neurofm.layers.conv import pointwise
from neurofm.models.wavenet_stream import WavenetStream
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class WavenetConfig:
    """Configuration of :class:`WavenetFullChannel` and :class:`Wavenet3D`."""

    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 64  # channel-id vocabulary (WavenetFullChannel)
    d_model: int = 64  # residual channels
    d_skip: int = 128  # skip channels (and the head's hidden size)
    n_layers: int = 10  # gated residual blocks
    dilation_cycle: int = 10  # block i has dilation 2 ** (i % dilation_cycle)
    kernel_size: int = 2  # taps of every dilated convolution
    dropout: float = 0.0  # dropout on the gated activations
    grid_size: int = 10  # Wavenet3D: the sensor grid is grid_size x grid_size
    spatial_size: int = 3  # Wavenet3D: taps along each grid axis (odd)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "vocab_size": 32,
            "n_chans": 8,
            "d_model": 16,
            "d_skip": 16,
            "n_layers": 3,
            "grid_size": 4,
        },
        "small": {"d_model": 32, "d_skip": 64, "n_layers": 8, "dilation_cycle": 8},
        "base": {"d_model": 64, "d_skip": 256, "n_layers": 20, "dilation_cycle": 10},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "vocab_size", "n_chans", "d_model", "d_skip", "n_layers")
        checks.positive(self, "dilation_cycle", "grid_size")
        checks.at_least(self, 2, "kernel_size")
        checks.fraction(self, "dropout")
        if self.spatial_size < 1 or self.spatial_size % 2 == 0:
            raise ValueError(f"spatial_size must be odd and >= 1, got {self.spatial_size}")

    @property
    def dilations(self) -> list[int]:
        """Dilation of each block: 1, 2, 4, ... restarting every ``dilation_cycle`` blocks."""
        return [2 ** (i % self.dilation_cycle) for i in range(self.n_layers)]

    @property
    def receptive_field(self) -> int:
        """Time steps one output depends on (itself included)."""
        return receptive_field(self.kernel_size, self.dilations)


def _blocks(config: WavenetConfig, spatial_size: int = 0) -> nn.ModuleList:
    return nn.ModuleList(
        DilatedResidualBlock(
            config.d_model,
            config.kernel_size,
            dilation,
            activation="gated",
            dropout=config.dropout,
            skip_channels=config.d_skip,
            residual=i < config.n_layers - 1,  # the last block is read through its skip only
            spatial_size=spatial_size,
        )
        for i, dilation in enumerate(config.dilations)
    )


def run_stack(
    blocks: nn.ModuleList, h: Tensor, past: list[Tensor] | None, where: str
) -> tuple[Tensor, list[Tensor]]:
    """Run the gated blocks over ``h`` (B, D, n, ...) after the states ``past`` (None: the
    sequence starts here); returns the skip sum (B, d_skip, n, ...) and the new states."""
    if past is None:
        states: list[Tensor | None] = [None] * len(blocks)
    elif isinstance(past, list) and len(past) == len(blocks):
        states = list(past)
    else:
        raise ValueError(
            f"{where}: past must be the list of {len(blocks)} block states it returned"
        )
    skip_sum, new_states = 0, []
    for block, state in zip(blocks, states):
        h, skip, state = block.step(h, state)
        skip_sum = skip_sum + skip
        new_states.append(state)
    return skip_sum, new_states


def _check_codes(x: Tensor, where: str) -> None:
    if x.ndim != 3 or x.dtype.is_floating_point:
        raise ValueError(
            f"{where}: expected integer codes (B, C, T), got {tuple(x.shape)} {x.dtype}"
        )


def _spec(context: tuple[str, ...]) -> ModelSpec:
    """Both WaveNets: causal over channel codes, with a cache of block states."""
    return ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=True,
        cache=True,
        context=context,
        sampling="autoregressive",
    )


@MODELS.register("wavenet", config=WavenetConfig, spec=_spec(("channel_ids",)))
class WavenetFullChannel(nn.Module):
    """WaveNet over all channels jointly: codes (B, C, T) -> next-code logits (B, C, T, V)."""

    def __init__(self, config: WavenetConfig) -> None:
        super().__init__()
        self.config = config
        self.input = ChannelCodeInput(config.n_chans, config.vocab_size, config.d_model)
        self.blocks = _blocks(config)
        self.post = nn.Conv1d(config.d_skip, config.d_skip, 1)
        self.head = ChannelHead(config.n_chans, config.d_skip, config.vocab_size)

    def forward(
        self,
        x: Tensor,
        *,
        channel_ids: Tensor | None = None,
        past: list[Tensor] | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits of every channel.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes in ``[0, vocab_size)``; with ``past``, the steps after the cached ones.
        channel_ids : LongTensor (B, C) or (C,), optional
            Ids in ``[0, n_chans)`` (default ``0 .. C-1``).
        past : list of Tensor, optional
            The block states of an earlier call with ``use_cache=True``.
        use_cache : bool
            Return the block states in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V) and, with ``use_cache``, ``past``.
        """
        _check_codes(x, "wavenet")
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, "wavenet")
        skip, states = run_stack(self.blocks, self.input(x, ids), past, "wavenet")
        hidden = F.relu(pointwise(self.post, F.relu(skip)))  # (B, d_skip, T)
        return ModelOutput(logits=self.head(hidden, ids), past=states if use_cache else None)

    def stream(self, prompt: Tensor, *, channel_ids: Tensor | None = None) -> WavenetStream:
        """A :class:`~neurofm.models.wavenet_stream.WavenetStream` primed with ``prompt``
        (B, C, T0): fast one-step generation, equal to the cached forward (the sampler uses it
        when the cache is on)."""
        return WavenetStream(self, prompt, channel_ids)


@MODELS.register("wavenet3d", config=WavenetConfig, spec=_spec(("positions",)))
class Wavenet3D(nn.Module):
    """WaveNet on a sensor grid: codes (B, C, T) at positions (B, C, 3) -> logits (B, C, T, V)."""

    def __init__(self, config: WavenetConfig) -> None:
        super().__init__()
        self.config = config
        self.grid = PositionGrid(config.grid_size, config.grid_size, where="wavenet3d")
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.cell = nn.Parameter(0.02 * torch.randn(config.d_model, config.grid_size))
        self.blocks = _blocks(config, config.spatial_size)
        self.post = nn.Conv3d(config.d_skip, config.d_skip, 1)
        self.head = nn.Linear(config.d_skip, config.vocab_size)

    def forward(
        self,
        x: Tensor,
        *,
        positions: Tensor | None = None,
        past: list[Tensor] | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits of every channel.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes in ``[0, vocab_size)``; with ``past``, the steps after the cached ones.
        positions : Tensor, shape (B, C, 3) or (C, 3)
            Sensor positions (m); they place the channels on the grid.
        past, use_cache
            As :meth:`WavenetFullChannel.forward`.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V) and, with ``use_cache``, ``past``.
        """
        _check_codes(x, "wavenet3d")
        if positions is None:
            raise ValueError("wavenet3d: needs the positions (B, C, 3) of the channels")
        cells = self.grid.cells(positions)  # (B, C)
        h = self.grid.scatter(self.embedding(x), cells)  # (B, D, T, H, W)
        h = h + self.cell[:, None, :, None] + self.cell[:, None, None, :]
        skip, states = run_stack(self.blocks, h, past, "wavenet3d")
        hidden = F.relu(self.post(F.relu(skip)))  # (B, d_skip, T, H, W)
        logits = self.head(self.grid.gather(hidden, cells))  # (B, C, T, V)
        return ModelOutput(logits=logits, past=states if use_cache else None)
