"""NSR: a state-space recurrent forecaster built of damped-oscillator cells (OscSSM) and RMSNorm.

Each block filters every feature through a bank of damped oscillators (a linear state-space
recurrence with complex modes ``exp(-alpha + i omega)``, :class:`~neurofm.layers.OscillatorSSM`)
and mixes features with an MLP, pre-norm with RMSNorm (:class:`~neurofm.layers.OscillatorBlock`).
Oscillators are a natural basis for electrophysiology, whose spectrum is a sum of damped rhythms.
Time ``t`` forecasts the sample (or code) at ``t + 1``.

- :class:`NSR` (``nsr``): continuous signal (B, C, T) in, next-sample prediction (B, C, T) out
  (channels mixed by 1x1 projections in and out);
- :class:`NSRQuantized` (``nsr_quantized``): codes (B, C, T) in, logits (B, C, T, V) out, every
  channel a sequence of its own (code + channel-id embeddings), weights shared.

Deviations from the reference description:

- the recurrence runs from rest at the window start and is computed as one exact causal
  convolution with its impulse response (no incremental cache: generation recomputes);
- the oscillators are diagonal per feature (no coupling between oscillators in the state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import OscillatorBlock, RMSNorm, channel_ids_for
from neurofm.layers.embeddings import check_ids
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class NSRConfig:
    """Configuration of :class:`NSR` and :class:`NSRQuantized`."""

    n_chans: int = 64  # channels C (NSR); channel-id vocabulary (NSRQuantized)
    vocab_size: int = 256  # quantizer levels V (NSRQuantized)
    d_model: int = 64  # feature size
    n_layers: int = 4  # oscillator blocks
    n_oscillators: int = 16  # damped oscillators per feature
    dropout: float = 0.0  # dropout on the block branches

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_chans": 4, "vocab_size": 32, "d_model": 16, "n_layers": 1, "n_oscillators": 4},
        "small": {"d_model": 64, "n_layers": 4, "n_oscillators": 16},
        "base": {"d_model": 256, "n_layers": 8, "n_oscillators": 32},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "vocab_size", "d_model", "n_layers", "n_oscillators")
        checks.fraction(self, "dropout")


def _trunk(config: NSRConfig) -> nn.Sequential:
    blocks = [
        OscillatorBlock(config.d_model, config.n_oscillators, dropout=config.dropout)
        for _ in range(config.n_layers)
    ]
    return nn.Sequential(*blocks, RMSNorm(config.d_model))


@MODELS.register(
    "nsr",
    config=NSRConfig,
    spec=ModelSpec(inputs="signal", outputs="prediction", causal=True),
)
class NSR(nn.Module):
    """Oscillator state-space forecaster: (B, C, T) signal -> next-sample prediction (B, C, T)."""

    def __init__(self, config: NSRConfig) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Linear(config.n_chans, config.d_model)
        self.trunk = _trunk(config)
        self.output = nn.Linear(config.d_model, config.n_chans)

    def forward(self, x: Tensor) -> ModelOutput:
        """Forecast the next sample of every channel.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
            Float signal with ``C == n_chans``.

        Returns
        -------
        ModelOutput
            ``prediction`` (B, C, T): at time ``t`` the forecast of ``x[..., t + 1]``.
        """
        if x.ndim != 3 or x.shape[1] != self.config.n_chans or not x.is_floating_point():
            raise ValueError(
                f"nsr: expected a float signal (B, {self.config.n_chans}, T), got "
                f"{tuple(x.shape)} {x.dtype}"
            )
        h = self.trunk(self.input(x.transpose(1, 2)))  # (B, T, D)
        return ModelOutput(prediction=x + self.output(h).transpose(1, 2))


@MODELS.register(
    "nsr_quantized",
    config=NSRConfig,
    spec=ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=True,
        sampling="autoregressive",
    ),
)
class NSRQuantized(nn.Module):
    """Oscillator state-space model over codes: (B, C, T) -> next-code logits (B, C, T, V)."""

    def __init__(self, config: NSRConfig) -> None:
        super().__init__()
        self.config = config
        self.code = nn.Embedding(config.vocab_size, config.d_model)
        self.channel = nn.Embedding(config.n_chans, config.d_model)
        self.trunk = _trunk(config)
        self.head = nn.Linear(config.d_model, config.vocab_size)

    def forward(self, x: Tensor, *, channel_ids: Tensor | None = None) -> ModelOutput:
        """Next-code logits of every channel.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes in ``[0, vocab_size)``.
        channel_ids : LongTensor (B, C) or (C,), optional
            Ids in ``[0, n_chans)`` (default ``0 .. C-1``); the spec lists no context, so
            training and generation use the default (channels told apart by position).

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V).
        """
        if x.ndim != 3 or x.dtype.is_floating_point:
            raise ValueError(f"nsr_quantized: expected codes (B, C, T), got {tuple(x.shape)}")
        check_ids("nsr_quantized", "codes", x, self.config.vocab_size)
        b, c, t = x.shape
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, "nsr_quantized")
        h = self.code(x) + self.channel(ids)[:, :, None]  # (B, C, T, D)
        h = self.trunk(h.reshape(b * c, t, -1))
        return ModelOutput(logits=self.head(h).view(b, c, t, -1))
