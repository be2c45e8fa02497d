"""ClassifierContinuous: a small convolutional window classifier over float signals.

A stack of temporal convolutions (each halving the time axis), global average pooling over time
and a linear head, in the spirit of the compact CNN decoders used for EEG/MEG (e.g. Schirrmeister
et al. 2017, "Deep learning with convolutional neural networks for EEG decoding").

Deviations from the reference description:

- one plain design (conv -> GELU -> dropout blocks) instead of an encoder wrapper around an
  arbitrary backbone; quantized-input variants are not provided;
- ``forward`` returns a ``ModelOutput`` with ``logits`` (B, n_classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class ClassifierConfig:
    """Configuration of :class:`ClassifierContinuous`."""

    n_chans: int = 64  # input channels C
    n_classes: int = 2  # number of classes
    d_model: int = 64  # convolution channels
    n_layers: int = 3  # convolution blocks, each halving the time axis
    kernel_size: int = 7  # temporal kernel length (samples), odd
    dropout: float = 0.1  # dropout after each block

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_chans": 4, "n_classes": 3, "d_model": 8, "n_layers": 2, "kernel_size": 3},
        "small": {"d_model": 64, "n_layers": 3},
        "base": {"d_model": 128, "n_layers": 5},
    }

    def __post_init__(self) -> None:
        for name in ("n_chans", "d_model", "n_layers", "kernel_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@MODELS.register(
    "classifier_continuous",
    config=ClassifierConfig,
    spec=ModelSpec(inputs="signal", outputs="class_logits"),
)
class ClassifierContinuous(nn.Module):
    """Convolutional window classifier: (B, C, T) float signal -> (B, n_classes) logits."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        width = config.n_chans
        for _ in range(config.n_layers):
            blocks += [
                nn.Conv1d(
                    width,
                    config.d_model,
                    config.kernel_size,
                    stride=2,
                    padding=config.kernel_size // 2,
                ),
                nn.GELU(),
                nn.Dropout(config.dropout),
            ]
            width = config.d_model
        self.encoder = nn.Sequential(*blocks)
        self.head = nn.Linear(config.d_model, config.n_classes)

    def forward(self, x: Tensor) -> ModelOutput:
        """Classify windows.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
            Float signal windows with ``C == config.n_chans``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, n_classes).
        """
        if x.ndim != 3 or x.shape[1] != self.config.n_chans:
            raise ValueError(
                f"classifier_continuous: expected x of shape (B, {self.config.n_chans}, T), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"classifier_continuous: expected a float signal, got {x.dtype}")
        features = self.encoder(x).mean(dim=-1)  # (B, d_model)
        return ModelOutput(logits=self.head(features))
