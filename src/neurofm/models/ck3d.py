"""CK3D: causal 3-D convolutions, attention over the sensor grid and a spatial pyramid, with a
mixture-of-softmaxes head, over codes placed on a sensor grid.

After the CK3D forecasters of the MEG model zoo (brain-gen), which treat MEG as a video of sensor
maps. The channels of every window are placed on an ``H x W`` grid from their positions
(:class:`~neurofm.layers.PositionGrid`); each block then adds, residually,

- a causal 3-D convolution (causal in time, ``spatial_size`` taps along H and W,
  :class:`~neurofm.layers.CausalConv3d`);
- a coarse path: the grid average-pooled 2 x 2 in space, a causal 3-D convolution there, and
  nearest upsampling back (a two-level down/up-sampling pyramid);
- attention-style mixing: self-attention among the cells of the same time step
  (:class:`~neurofm.layers.TransformerBlock`, no positional rotation, non-causal over space only).

Every channel reads its features at its own cell; a mixture of softmaxes
(:class:`~neurofm.layers.MixtureSoftmaxHead`) gives the logits (normalised log-probabilities)
of its code at ``t + 1``: (B, C, T, V).

Deviations from the reference description:

- inputs are codes (B, C, T) with sensor positions, not precomputed (B, C, T, H, W) volumes, and
  outputs are per-channel logits (no volume reconstruction head);
- the pyramid has one coarse level; time is never downsampled (outputs stay per step, causal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import CausalConv3d, MixtureSoftmaxHead, PositionGrid, TransformerBlock
from neurofm.layers.embeddings import check_ids
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class CK3DConfig:
    """Configuration of :class:`CK3D`."""

    vocab_size: int = 256  # quantizer levels V
    d_model: int = 32  # feature size at every cell
    n_layers: int = 2  # blocks
    n_heads: int = 2  # attention heads over the grid's cells
    kernel_size: int = 3  # time taps of the 3-D convolutions
    spatial_size: int = 3  # taps along each grid axis (odd)
    grid_size: int = 10  # the sensor grid is grid_size x grid_size
    n_mixtures: int = 3  # softmax components of the head
    dropout: float = 0.0  # dropout in the attention blocks

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"vocab_size": 32, "d_model": 16, "n_layers": 1, "grid_size": 4, "n_mixtures": 2},
        "small": {"d_model": 32, "n_layers": 2},
        "base": {"d_model": 128, "n_layers": 6, "n_heads": 4, "grid_size": 16},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "vocab_size", "d_model", "n_layers", "n_heads", "kernel_size")
        checks.positive(self, "grid_size", "n_mixtures")
        checks.divides(self, "n_heads", "d_model")
        checks.fraction(self, "dropout")
        if self.spatial_size < 1 or self.spatial_size % 2 == 0:
            raise ValueError(f"spatial_size must be odd and >= 1, got {self.spatial_size}")


class _Block(nn.Module):
    """Local conv, coarse conv and cell attention, each added to ``h`` (B, D, T, H, W)."""

    def __init__(self, config: CK3DConfig) -> None:
        super().__init__()
        d, k, s = config.d_model, config.kernel_size, config.spatial_size
        self.local = CausalConv3d(d, d, k, spatial_size=s)
        self.coarse = CausalConv3d(d, d, k, spatial_size=s)
        self.mixing = TransformerBlock(d, config.n_heads, dropout=config.dropout, rotary=False)

    def forward(self, h: Tensor) -> Tensor:
        b, d, t, height, width = h.shape
        h = h + F.gelu(self.local(h))
        coarse = F.avg_pool3d(h, (1, 2, 2), ceil_mode=True)
        coarse = F.interpolate(F.gelu(self.coarse(coarse)), scale_factor=(1, 2, 2), mode="nearest")
        h = h + coarse[..., :height, :width]
        cells = h.permute(0, 2, 3, 4, 1).reshape(b * t, height * width, d)
        cells = self.mixing(cells, causal=False)  # attention within each time step
        return cells.view(b, t, height, width, d).permute(0, 4, 1, 2, 3)


@MODELS.register(
    "ck3d",
    config=CK3DConfig,
    spec=ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=True,
        context=("positions",),
        sampling="autoregressive",
    ),
)
class CK3D(nn.Module):
    """Causal 3-D conv + cell attention on a sensor grid: codes (B, C, T) -> (B, C, T, V)."""

    def __init__(self, config: CK3DConfig) -> None:
        super().__init__()
        self.config = config
        self.grid = PositionGrid(config.grid_size, config.grid_size, where="ck3d")
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.head = MixtureSoftmaxHead(config.d_model, config.vocab_size, config.n_mixtures)

    def forward(self, x: Tensor, *, positions: Tensor | None = None) -> ModelOutput:
        """Next-code log-probabilities of every channel.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes in ``[0, vocab_size)``.
        positions : Tensor, shape (B, C, 3) or (C, 3)
            Sensor positions (m); they place the channels on the grid.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), normalised log-probabilities of a softmax mixture.
        """
        if x.ndim != 3 or x.dtype.is_floating_point:
            raise ValueError(f"ck3d: expected codes (B, C, T), got {tuple(x.shape)} {x.dtype}")
        if positions is None:
            raise ValueError("ck3d: needs the positions (B, C, 3) of the channels")
        check_ids("ck3d", "codes", x, self.config.vocab_size)
        cells = self.grid.cells(positions)
        h = self.grid.scatter(self.embedding(x), cells)  # (B, D, T, H, W)
        for block in self.blocks:
            h = block(h)
        return ModelOutput(logits=self.head(self.grid.gather(h, cells)))
