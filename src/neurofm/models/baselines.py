"""CNN baseline classifiers: multivariate and univariate, over float signals or codes.

Two compact convolutional decoders used as baselines in the MEG model zoo (brain-gen):

- multivariate (``cnn_multivariate``): a 1x1 spatial filter mixes all channels into ``d_model``
  virtual channels, then strided temporal convolutions, global average pooling over time and a
  linear head, in the spirit of ShallowConvNet / EEGNet's spatial-then-temporal factorisation;
- univariate (``cnn_univariate``): the same temporal convolutions run on every channel alone
  (shared weights), pooled over time; a linear readout per channel sums the channels' features
  into class logits.

The quantized variants (``cnn_multivariate_quantized``, ``cnn_univariate_quantized``) take codes
(B, C, T) instead: the multivariate one reads a code table per channel id summed over channels
(:class:`~neurofm.layers.ChannelCodeInput`, a 1x1 spatial filter of one-hot codes), the univariate
one a code embedding shared by all channels; both read any subset of ``n_chans`` channels named by
their ids. Deviation: no batch norm (compact, deterministic in eval and train alike).

The univariate models compute their input lift (1x1 projection, or code embedding) and the
first temporal convolution as one folded operation (:mod:`neurofm.layers.fused`): the same
outputs with a one-channel convolution or a table sum in place of a ``d -> d`` convolution over
every channel, which keeps a 306-channel window within a few milliseconds on one CPU thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import ChannelCodeInput, channel_ids_for
from neurofm.layers.embeddings import check_ids
from neurofm.layers.fused import channels_last_stack, embedded_conv, pointwise_then_conv
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class CNNBaselineConfig:
    """Configuration of the CNN baselines (all four classes)."""

    n_chans: int = 64  # channels C (float inputs); channel-id vocabulary (codes)
    vocab_size: int = 256  # quantizer levels V (quantized variants)
    n_classes: int = 2  # number of classes
    d_model: int = 32  # convolution channels
    n_layers: int = 2  # temporal convolutions, each halving the time axis
    kernel_size: int = 7  # temporal kernel length (samples), odd
    dropout: float = 0.25  # dropout before the head

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "vocab_size": 32,
            "n_classes": 3,
            "d_model": 8,
            "n_layers": 1,
            "kernel_size": 3,
            "dropout": 0.0,
        },
        "small": {"d_model": 32, "n_layers": 2},
        "base": {"d_model": 64, "n_layers": 4},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "vocab_size", "d_model", "n_layers", "kernel_size")
        checks.at_least(self, 2, "n_classes")
        checks.fraction(self, "dropout")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")


def _temporal(config: CNNBaselineConfig) -> nn.Sequential:
    d, k = config.d_model, config.kernel_size
    layers: list[nn.Module] = []
    for _ in range(config.n_layers):
        layers += [nn.Conv1d(d, d, k, stride=2, padding=k // 2), nn.GELU()]
    return nn.Sequential(*layers)


def _check_signal(x: Tensor, n_chans: int, where: str) -> None:
    if x.ndim != 3 or x.shape[1] != n_chans or not x.is_floating_point():
        raise ValueError(
            f"{where}: expected a float signal (B, {n_chans}, T), got {tuple(x.shape)} {x.dtype}"
        )


def _check_codes(x: Tensor, vocab_size: int, where: str) -> None:
    if x.ndim != 3 or x.dtype.is_floating_point:
        raise ValueError(
            f"{where}: expected integer codes (B, C, T), got {tuple(x.shape)} {x.dtype}"
        )
    check_ids(where, "codes", x, vocab_size)


class _Multivariate(nn.Module):
    """Shared body: features (B, d_model, T) -> temporal convs -> mean over time -> logits."""

    def __init__(self, config: CNNBaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.temporal = _temporal(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_model, config.n_classes)

    def classify(self, h: Tensor) -> ModelOutput:
        return ModelOutput(logits=self.head(self.dropout(self.temporal(h).mean(dim=-1))))


@MODELS.register(
    "cnn_multivariate",
    config=CNNBaselineConfig,
    spec=ModelSpec(inputs="signal", outputs="class_logits"),
)
class CNNMultivariate(_Multivariate):
    """Spatial 1x1 filter then temporal convs: (B, C, T) float -> (B, n_classes) logits."""

    def __init__(self, config: CNNBaselineConfig) -> None:
        super().__init__(config)
        self.spatial = nn.Conv1d(config.n_chans, config.d_model, 1)

    def forward(self, x: Tensor) -> ModelOutput:
        """Classify windows ``x`` (B, C, T) with ``C == n_chans``; ``logits`` (B, n_classes)."""
        _check_signal(x, self.config.n_chans, "cnn_multivariate")
        return self.classify(self.spatial(x))


@MODELS.register(
    "cnn_multivariate_quantized",
    config=CNNBaselineConfig,
    spec=ModelSpec(inputs="channel_codes", outputs="class_logits", context=("channel_ids",)),
)
class CNNMultivariateQuantized(_Multivariate):
    """Per-channel code tables summed, then temporal convs: (B, C, T) codes -> (B, K) logits."""

    def __init__(self, config: CNNBaselineConfig) -> None:
        super().__init__(config)
        self.spatial = ChannelCodeInput(config.n_chans, config.vocab_size, config.d_model)

    def forward(self, x: Tensor, *, channel_ids: Tensor | None = None) -> ModelOutput:
        """Classify codes ``x`` (B, C, T) of channels ``channel_ids`` (default ``0 .. C-1``)."""
        where = "cnn_multivariate_quantized"
        _check_codes(x, self.config.vocab_size, where)
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, where)
        return self.classify(self.spatial(x, ids))


class _Univariate(nn.Module):
    """Shared body: every channel (B*C, d_model, T) through the temporal convs, pooled, read
    out per channel id and summed over channels."""

    def __init__(self, config: CNNBaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.temporal = _temporal(config)
        self.dropout = nn.Dropout(config.dropout)
        scale = 1.0 / math.sqrt(config.d_model)
        self.readout = nn.Parameter(
            scale * torch.randn(config.n_chans, config.d_model, config.n_classes)
        )
        self.bias = nn.Parameter(torch.zeros(config.n_classes))

    def classify(self, first: Tensor, ids: Tensor) -> ModelOutput:
        """``first`` (B*C, d_model, T'), the output of the first temporal convolution, of the
        channels ``ids`` (B, C) -> logits (B, n_classes)."""
        b, c = ids.shape
        features = channels_last_stack(first, self.temporal[1:]).mean(dim=-1).view(b, c, -1)
        features = self.dropout(features)
        logits = torch.einsum("bcd,bcdk->bk", features, self.readout[ids]) / math.sqrt(c)
        return ModelOutput(logits=logits + self.bias)


@MODELS.register(
    "cnn_univariate",
    config=CNNBaselineConfig,
    spec=ModelSpec(inputs="signal", outputs="class_logits"),
)
class CNNUnivariate(_Univariate):
    """Shared per-channel temporal convs: (B, C, T) float -> (B, n_classes) logits."""

    def __init__(self, config: CNNBaselineConfig) -> None:
        super().__init__(config)
        self.input = nn.Conv1d(1, config.d_model, 1)

    def forward(self, x: Tensor) -> ModelOutput:
        """Classify windows ``x`` (B, C, T) with ``C == n_chans``; ``logits`` (B, n_classes)."""
        _check_signal(x, self.config.n_chans, "cnn_univariate")
        b, c, t = x.shape
        # the 1x1 input projection folded into the first temporal convolution
        first = pointwise_then_conv(x.reshape(b * c, t), self.input, self.temporal[0])
        ids = torch.arange(c, device=x.device).expand(b, c)
        return self.classify(first, ids)


@MODELS.register(
    "cnn_univariate_quantized",
    config=CNNBaselineConfig,
    spec=ModelSpec(inputs="channel_codes", outputs="class_logits", context=("channel_ids",)),
)
class CNNUnivariateQuantized(_Univariate):
    """Shared per-channel temporal convs over code embeddings: (B, C, T) codes -> (B, K)."""

    def __init__(self, config: CNNBaselineConfig) -> None:
        super().__init__(config)
        self.code = nn.Embedding(config.vocab_size, config.d_model)

    def forward(self, x: Tensor, *, channel_ids: Tensor | None = None) -> ModelOutput:
        """Classify codes ``x`` (B, C, T) of channels ``channel_ids`` (default ``0 .. C-1``)."""
        where = "cnn_univariate_quantized"
        _check_codes(x, self.config.vocab_size, where)
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, where)
        b, c, t = x.shape
        # the code embedding folded into the first temporal convolution (per-tap tables)
        first = embedded_conv(x.reshape(b * c, t), self.code.weight, self.temporal[0])
        return self.classify(first, ids)
