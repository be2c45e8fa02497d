"""BENDRForecast: a BENDR-style convolutional encoder and contextual transformer, decoded causally
into next-code logits.

After BENDR (Kostas et al. 2021, "BENDR: using transformers and a contrastive self-supervised
learning task to learn from massive amounts of EEG data"): strided convolutions compress the
multichannel input into one latent every ``r = prod(strides)`` samples, and a transformer reads
the latent sequence in context. For forecasting, the transformer is causal and a transposed
convolution expands every latent back to ``r`` samples — the samples of the *next* block, so
that time ``t`` only sees blocks that ended before it — and a causal convolution at full rate
adds the samples of the current block. Time ``t`` predicts the code at ``t + 1``: logits
(B, C, T, V).

Deviations from the reference description:

- inputs are codes (B, C, T) read through a per-channel code table
  (:class:`~neurofm.layers.ChannelCodeInput`, any subset of ``n_chans`` channels by id) rather
  than the float signal, so the model trains with the next-token objective like the other
  forecasters over codes; the logits come from a readout per channel id;
- no contrastive pretraining and no group norm (a norm over time would read the future): the
  encoder normalises each latent with RMSNorm;
- the transformer uses neurofm's pre-norm RoPE blocks; windows whose length is not a multiple of
  ``r`` are completed on the right with zeros inside the model, which only reach latents that no
  returned output reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import (
    CausalConv1d,
    ChannelCodeInput,
    ChannelHead,
    RMSNorm,
    TransformerBlock,
    channel_ids_for,
)
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class BENDRForecastConfig:
    """Configuration of :class:`BENDRForecast`."""

    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 64  # channel-id vocabulary
    d_model: int = 64  # feature size of the encoder, transformer and decoder
    strides: list[int] = field(default_factory=lambda: [2, 2])  # encoder convolutions' strides
    n_layers: int = 2  # transformer blocks
    n_heads: int = 4  # attention heads
    kernel_size: int = 3  # taps of the full-rate causal convolution
    dropout: float = 0.0  # dropout in the transformer

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"vocab_size": 32, "n_chans": 8, "d_model": 16, "n_layers": 1, "n_heads": 2},
        "small": {"d_model": 64, "n_layers": 2, "n_heads": 4},
        "base": {"d_model": 256, "strides": [3, 2, 2], "n_layers": 6, "n_heads": 8},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "vocab_size", "n_chans", "d_model", "n_layers", "n_heads")
        checks.positive(self, "kernel_size")
        checks.divides(self, "n_heads", "d_model")
        checks.even_head_size(self)
        checks.fraction(self, "dropout")
        if not self.strides or any(int(s) < 1 for s in self.strides):
            raise ValueError(f"strides must be a non-empty list of ints >= 1, got {self.strides}")

    @property
    def downsampling(self) -> int:
        """Samples per latent, ``prod(strides)``."""
        return math.prod(int(s) for s in self.strides)


@MODELS.register(
    "bendr_forecast",
    config=BENDRForecastConfig,
    spec=ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=True,
        context=("channel_ids",),
        sampling="autoregressive",
    ),
)
class BENDRForecast(nn.Module):
    """BENDR-style encoder, causal transformer and decoder: codes (B, C, T) -> (B, C, T, V)."""

    def __init__(self, config: BENDRForecastConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.input = ChannelCodeInput(config.n_chans, config.vocab_size, d)
        self.encoder = nn.ModuleList(nn.Conv1d(d, d, s, stride=s) for s in config.strides)
        self.latent_norm = RMSNorm(d)
        self.blocks = nn.ModuleList(
            TransformerBlock(d, config.n_heads, dropout=config.dropout)
            for _ in range(config.n_layers)
        )
        r = config.downsampling
        self.decoder = nn.ConvTranspose1d(d, d, r, stride=r)
        self.local = CausalConv1d(d, d, config.kernel_size)
        self.head = ChannelHead(config.n_chans, d, config.vocab_size)

    def forward(self, x: Tensor, *, channel_ids: Tensor | None = None) -> ModelOutput:
        """Next-code logits of every channel.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes in ``[0, vocab_size)``.
        channel_ids : LongTensor (B, C) or (C,), optional
            Ids in ``[0, n_chans)`` (default ``0 .. C-1``).

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V).
        """
        if x.ndim != 3 or x.dtype.is_floating_point:
            raise ValueError(f"bendr_forecast: expected codes (B, C, T), got {tuple(x.shape)}")
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, "bendr_forecast")
        e = self.input(x, ids)  # (B, D, T)
        t, r = e.shape[-1], self.config.downsampling
        z = F.pad(e, (0, -t % r))  # (B, D, r * n_blocks)
        for conv in self.encoder:
            z = F.gelu(conv(z))
        z = self.latent_norm(z.transpose(1, 2))  # (B, n_blocks, D)
        for block in self.blocks:
            z = block(z, causal=True)
        # block j of the output reads the latent of block j - 1 (zeros for the first)
        z = torch.cat((torch.zeros_like(z[:, :1]), z[:, :-1]), dim=1)
        decoded = self.decoder(z.transpose(1, 2))[..., :t]  # (B, D, T)
        h = F.gelu(e + decoded + self.local(e))
        return ModelOutput(logits=self.head(h, ids))
