"""Window classifiers: :class:`ClassifierContinuous` over float signals, and
:class:`ClassifierQuantized` / :class:`ClassifierQuantizedImage` over codes.

A stack of temporal convolutions (each halving the time axis), global average pooling over time
and a linear head, in the spirit of the compact CNN decoders used for EEG/MEG (e.g. Schirrmeister
et al. 2017, "Deep learning with convolutional neural networks for EEG decoding").

Deviations from the reference description:

- one plain design (conv -> GELU -> dropout blocks) instead of an encoder wrapper around an
  arbitrary backbone;
- ``forward`` returns a ``ModelOutput`` with ``logits`` (B, n_classes).

The quantized variants take codes (B, C, T) (e.g. mu-law; the run's tokenizer makes them):

- :class:`ClassifierQuantized` (``classifier_quantized``): every channel's codes (code +
  channel-id embeddings) run through the same strided temporal convolutions and are pooled over
  time; a per-channel MLP (channel embedding added) and a mean over channels give the logits;
  the embeddings and the first convolution are computed as one sum of per-tap table rows
  (:func:`~neurofm.layers.fused.embedded_conv`, same outputs, a fraction of the operations);
- :class:`ClassifierQuantizedImage` (``classifier_quantized_image``): the code embeddings are
  placed on a sensor grid from the channels' positions (:class:`~neurofm.layers.PositionGrid`),
  3-D convolutions (strided in time) run over the (T, H, W) volume, time is pooled and the
  (D, H, W) map read by a linear head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import PositionGrid, channel_ids_for
from neurofm.layers.embeddings import check_ids
from neurofm.layers.fused import channels_last_stack, embedded_conv
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


@dataclass
class QuantizedClassifierConfig:
    """Configuration of :class:`ClassifierQuantized` and :class:`ClassifierQuantizedImage`."""

    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 64  # channel-id vocabulary
    n_classes: int = 2  # number of classes
    d_model: int = 32  # embedding and convolution channels
    n_layers: int = 3  # convolution blocks, each halving the time axis
    kernel_size: int = 7  # temporal kernel length (samples), odd
    grid_size: int = 10  # ClassifierQuantizedImage: the grid is grid_size x grid_size
    dropout: float = 0.1  # dropout before the head

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "vocab_size": 32,
            "n_chans": 4,
            "n_classes": 3,
            "d_model": 8,
            "n_layers": 2,
            "kernel_size": 3,
            "grid_size": 3,
            "dropout": 0.0,
        },
        "small": {"d_model": 32, "n_layers": 3},
        "base": {"d_model": 64, "n_layers": 5},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "vocab_size", "n_chans", "d_model", "n_layers", "kernel_size")
        checks.positive(self, "grid_size")
        checks.at_least(self, 2, "n_classes")
        checks.fraction(self, "dropout")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")


def _check_codes(x: Tensor, vocab_size: int, where: str) -> None:
    if x.ndim != 3 or x.dtype.is_floating_point:
        raise ValueError(
            f"{where}: expected integer codes (B, C, T), got {tuple(x.shape)} {x.dtype}"
        )
    check_ids(where, "codes", x, vocab_size)


@MODELS.register(
    "classifier_quantized",
    config=QuantizedClassifierConfig,
    spec=ModelSpec(inputs="channel_codes", outputs="class_logits", context=("channel_ids",)),
)
class ClassifierQuantized(nn.Module):
    """Convolutional classifier over codes: (B, C, T) token ids -> (B, n_classes) logits."""

    def __init__(self, config: QuantizedClassifierConfig) -> None:
        super().__init__()
        self.config = config
        d, k = config.d_model, config.kernel_size
        self.code = nn.Embedding(config.vocab_size, d)
        self.channel = nn.Embedding(config.n_chans, d)
        self.encoder = nn.Sequential(
            *[
                layer
                for _ in range(config.n_layers)
                for layer in (nn.Conv1d(d, d, k, stride=2, padding=k // 2), nn.GELU())
            ]
        )
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout))
        self.head = nn.Linear(d, config.n_classes)

    def forward(self, x: Tensor, *, channel_ids: Tensor | None = None) -> ModelOutput:
        """Classify windows of codes ``x`` (B, C, T) of the channels ``channel_ids`` (B, C) or
        (C,) (default ``0 .. C-1``); returns ``logits`` (B, n_classes)."""
        _check_codes(x, self.config.vocab_size, "classifier_quantized")
        b, c, t = x.shape
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, "classifier_quantized")
        channel = self.channel(ids)  # (B, C, D)
        # the first convolution over (code + channel) embeddings, folded into per-tap tables
        first = embedded_conv(
            x.reshape(b * c, t),
            self.code.weight,
            self.encoder[0],
            self.channel.weight,
            ids.reshape(b * c),
        )  # (B*C, D, T / 2)
        features = channels_last_stack(first, self.encoder[1:]).mean(dim=-1)
        features = features.view(b, c, -1)  # (B, C, D)
        return ModelOutput(logits=self.head(self.mlp(features + channel).mean(dim=1)))


@MODELS.register(
    "classifier_quantized_image",
    config=QuantizedClassifierConfig,
    spec=ModelSpec(inputs="channel_codes", outputs="class_logits", context=("positions",)),
)
class ClassifierQuantizedImage(nn.Module):
    """Classifier over codes on a sensor grid: (B, C, T) at positions (B, C, 3) -> (B, K)."""

    def __init__(self, config: QuantizedClassifierConfig) -> None:
        super().__init__()
        self.config = config
        d, k, g = config.d_model, config.kernel_size, config.grid_size
        self.grid = PositionGrid(g, g, where="classifier_quantized_image")
        self.code = nn.Embedding(config.vocab_size, d)
        self.encoder = nn.Sequential(
            *[
                layer
                for _ in range(config.n_layers)
                for layer in (
                    nn.Conv3d(d, d, (k, 3, 3), stride=(2, 1, 1), padding=(k // 2, 1, 1)),
                    nn.GELU(),
                )
            ]
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(d * g * g, config.n_classes)

    def forward(self, x: Tensor, *, positions: Tensor | None = None) -> ModelOutput:
        """Classify windows of codes ``x`` (B, C, T) at ``positions`` (B, C, 3) or (C, 3) (m);
        returns ``logits`` (B, n_classes)."""
        _check_codes(x, self.config.vocab_size, "classifier_quantized_image")
        if positions is None:
            raise ValueError("classifier_quantized_image: needs the positions (B, C, 3)")
        grid = self.grid.scatter(self.code(x), self.grid.cells(positions))  # (B, D, T, H, W)
        features = self.encoder(grid).mean(dim=2).flatten(1)  # (B, D*H*W)
        return ModelOutput(logits=self.head(self.dropout(features)))
