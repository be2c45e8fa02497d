"""ConvForecaster: a causal dilated convolutional forecaster of continuous signals.

A WaveNet-like stack (van den Oord et al. 2016, arXiv:1609.03499) of causal dilated temporal
convolutions with residual connections over all channels jointly; the output at time ``t``
forecasts the sample at ``t + 1`` from samples ``<= t``.

Deviations from the reference description:

- continuous output (a mean and optionally a log-variance per channel-sample, for the Gaussian
  likelihood of the ``forecast`` objective) instead of a softmax over quantised amplitudes;
- plain GELU residual blocks (:class:`~neurofm.layers.DilatedResidualBlock`) instead of gated
  activations with skip connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from neurofm import checks
from neurofm.layers.conv import DilatedResidualBlock, receptive_field
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class ConvForecasterConfig:
    """Configuration of :class:`ConvForecaster`."""

    n_chans: int = 64  # input and output channels C
    d_model: int = 64  # hidden convolution channels
    n_layers: int = 4  # residual blocks; block i has dilation 2**i
    kernel_size: int = 2  # temporal kernel length (samples)
    dropout: float = 0.0  # dropout inside each residual block
    predict_variance: bool = False  # also output a per-sample log-variance (Gaussian NLL)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_chans": 4, "d_model": 8, "n_layers": 2},
        "small": {"d_model": 64, "n_layers": 6},
        "base": {"d_model": 128, "n_layers": 10},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "d_model", "n_layers")
        checks.at_least(self, 2, "kernel_size")
        checks.fraction(self, "dropout")

    @property
    def dilations(self) -> list[int]:
        """Dilation of each residual block: 1, 2, 4, ..."""
        return [2**i for i in range(self.n_layers)]

    @property
    def receptive_field(self) -> int:
        """Samples of past context one output sees (itself included)."""
        return receptive_field(self.kernel_size, self.dilations)


@MODELS.register(
    "conv_forecaster",
    config=ConvForecasterConfig,
    spec=lambda cfg: ModelSpec(
        inputs="signal",
        outputs="prediction",
        causal=True,
        variance=cfg.predict_variance,
    ),
)
class ConvForecaster(nn.Module):
    """Causal dilated conv forecaster: (B, C, T) signal -> next-sample mean (and log-variance)."""

    def __init__(self, config: ConvForecasterConfig) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Conv1d(config.n_chans, config.d_model, 1)
        self.blocks = nn.ModuleList(
            DilatedResidualBlock(
                config.d_model, config.kernel_size, dilation, dropout=config.dropout
            )
            for dilation in config.dilations
        )
        n_out = 2 * config.n_chans if config.predict_variance else config.n_chans
        self.output = nn.Conv1d(config.d_model, n_out, 1)

    def forward(self, x: Tensor) -> ModelOutput:
        """Forecast the next sample of every channel.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
            Float signal with ``C == config.n_chans``.

        Returns
        -------
        ModelOutput
            ``prediction`` (B, C, T): at time ``t`` the forecast of ``x[..., t + 1]``; with
            ``predict_variance``, ``extras["log_variance"]`` (B, C, T) as well.
        """
        if x.ndim != 3 or x.shape[1] != self.config.n_chans:
            raise ValueError(
                f"conv_forecaster: expected x of shape (B, {self.config.n_chans}, T), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"conv_forecaster: expected a float signal, got {x.dtype}")
        h = self.input(x)  # (B, D, T)
        for block in self.blocks:
            h, _ = block(h)
        out = self.output(h)  # (B, C or 2C, T)
        if not self.config.predict_variance:
            return ModelOutput(prediction=out)
        mean, log_variance = out.chunk(2, dim=1)
        return ModelOutput(prediction=mean, extras={"log_variance": log_variance})
