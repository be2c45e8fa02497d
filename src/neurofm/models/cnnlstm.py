"""CNNLSTM: per-channel convolutions, pooling and an LSTM, as a classifier or a forecaster.

A convolutional front end applied to every channel with shared weights, max-pooling over time,
and an LSTM that summarises (or continues) the sequence, after the CNN-LSTM decoders of the MEG
model zoo (brain-gen) and the EEG literature (e.g. Bashivan et al. 2016, arXiv:1511.06448).

- :class:`CNNLSTMClassifier` (``cnnlstm_classifier``): float signal (B, C, T); the pooled
  features of all channels form the LSTM's input; its last state gives class logits (B, K).
- :class:`CNNLSTM` (``cnnlstm``): codes (B, C, T), every channel a sequence of its own (code +
  channel-id embeddings); a causal convolution and a causal max-pool (over the last
  ``pool_size`` steps, stride 1) feed the LSTM, whose state at ``t`` gives the logits of the code
  at ``t + 1``: (B, C, T, V).

Deviations from the reference description:

- the autoregressive variant pools with stride 1 (a strided pool would lose the per-step
  outputs) and reads channels as independent sequences sharing weights;
- no incremental cache: generation recomputes the window (the LSTM is cheap at these sizes).

The classifier computes the same function as ``lstm(pool(gelu(conv(x))))`` in fewer, larger
operations: the one-input-channel convolution as one batched product, and the LSTM's input
projection of all time steps as one matrix product over the pooled features where they lie,
before torch's LSTM kernel runs the recurrence (:func:`last_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers import CausalConv1d, channel_ids_for
from neurofm.layers.embeddings import check_ids
from neurofm.layers.fused import fresh_gelu, single_channel_conv
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class CNNLSTMConfig:
    """Configuration of :class:`CNNLSTM` and :class:`CNNLSTMClassifier`."""

    n_chans: int = 64  # channels C (classifier); channel-id vocabulary (forecaster)
    vocab_size: int = 256  # quantizer levels V (forecaster)
    n_classes: int = 2  # classes K (classifier)
    d_model: int = 32  # convolution channels per EEG channel
    d_hidden: int = 64  # LSTM state size
    n_layers: int = 1  # stacked LSTM layers
    kernel_size: int = 5  # taps of the temporal convolution
    pool_size: int = 2  # max-pool length (the classifier's stride too)
    dropout: float = 0.0  # dropout between LSTM layers and before the head

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "vocab_size": 32,
            "n_classes": 3,
            "d_model": 16,
            "d_hidden": 32,
            "kernel_size": 3,
        },
        "small": {"d_model": 32, "d_hidden": 64},
        "base": {"d_model": 64, "d_hidden": 256, "n_layers": 2},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "vocab_size", "d_model", "d_hidden", "n_layers")
        checks.positive(self, "kernel_size", "pool_size")
        checks.at_least(self, 2, "n_classes")
        checks.fraction(self, "dropout")


def last_state(lstm: nn.LSTM, features: Tensor, training: bool) -> Tensor:
    """The last layer's final state (B, d_hidden) of ``lstm`` (batch first) over the sequence
    ``features`` (B, n_inputs, T), stored time-last as the convolutions leave it.

    The same as ``lstm(features.transpose(1, 2))[1][0][-1]``, computed in two parts: the input
    projection of every time step as one matrix product read in place (the first layer's
    ``n_inputs = C * d_model`` inputs make it most of the work), then torch's LSTM kernel
    for the recurrence, fed the projected gates through an identity input matrix.
    """
    weights = [
        getattr(lstm, f"{kind}_l{layer}")
        for layer in range(lstm.num_layers)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]
    w_ih, w_hh, b_ih, b_hh = weights[:4]
    gates = torch.bmm(w_ih.expand(features.shape[0], -1, -1), features)  # (B, 4H, T)
    gates += (b_ih + b_hh)[:, None]
    gates = gates.transpose(1, 2)  # (B, T, 4H)
    b, n_gates = gates.shape[0], gates.shape[-1]
    zeros = gates.new_zeros(1, b, lstm.hidden_size)
    eye = torch.eye(n_gates, dtype=gates.dtype, device=gates.device)
    out, state, _ = torch.lstm(
        gates, (zeros, zeros), [eye, w_hh], False, 1, 0.0, training, False, True
    )
    if lstm.num_layers > 1:
        out = F.dropout(out, lstm.dropout, training)
        zeros = zeros.new_zeros(lstm.num_layers - 1, b, lstm.hidden_size)
        _, state, _ = torch.lstm(
            out,
            (zeros, zeros),
            weights[4:],
            True,
            lstm.num_layers - 1,
            lstm.dropout,
            training,
            False,
            True,
        )
    return state[-1]


def _lstm(config: CNNLSTMConfig, n_inputs: int) -> nn.LSTM:
    return nn.LSTM(
        n_inputs,
        config.d_hidden,
        num_layers=config.n_layers,
        batch_first=True,
        dropout=config.dropout if config.n_layers > 1 else 0.0,
    )


@MODELS.register(
    "cnnlstm_classifier",
    config=CNNLSTMConfig,
    spec=ModelSpec(inputs="signal", outputs="class_logits"),
)
class CNNLSTMClassifier(nn.Module):
    """CNN-LSTM window classifier: (B, C, T) float signal -> (B, n_classes) logits."""

    def __init__(self, config: CNNLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.conv = nn.Conv1d(
            1, config.d_model, config.kernel_size, padding=config.kernel_size // 2
        )
        self.pool = nn.MaxPool1d(config.pool_size, ceil_mode=True)
        self.lstm = _lstm(config, config.n_chans * config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_hidden, config.n_classes)

    def forward(self, x: Tensor) -> ModelOutput:
        """Classify windows ``x`` (B, C, T) float with ``C == n_chans``; logits (B, n_classes)."""
        if x.ndim != 3 or x.shape[1] != self.config.n_chans or not x.is_floating_point():
            raise ValueError(
                f"cnnlstm_classifier: expected a float signal (B, {self.config.n_chans}, T), "
                f"got {tuple(x.shape)} {x.dtype}"
            )
        b, c, t = x.shape
        conv = self.conv
        h = single_channel_conv(
            x.reshape(b * c, t), conv.weight[:, 0], conv.bias, 1, conv.padding[0]
        )  # (B*C, D, T), the one-input-channel convolution as one batched product
        h = self.pool(fresh_gelu(h))  # (B*C, D, T')
        state = last_state(self.lstm, h.view(b, c * h.shape[1], -1), self.training)
        return ModelOutput(logits=self.head(self.dropout(state)))


@MODELS.register(
    "cnnlstm",
    config=CNNLSTMConfig,
    spec=ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=True,
        sampling="autoregressive",
    ),
)
class CNNLSTM(nn.Module):
    """Causal CNN-LSTM over codes: (B, C, T) -> next-code logits (B, C, T, V)."""

    def __init__(self, config: CNNLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.code = nn.Embedding(config.vocab_size, config.d_model)
        self.channel = nn.Embedding(config.n_chans, config.d_model)
        self.conv = CausalConv1d(config.d_model, config.d_model, config.kernel_size)
        self.lstm = _lstm(config, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_hidden, config.vocab_size)

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
            raise ValueError(f"cnnlstm: expected codes (B, C, T), got {tuple(x.shape)} {x.dtype}")
        check_ids("cnnlstm", "codes", x, self.config.vocab_size)
        b, c, t = x.shape
        ids = channel_ids_for(x, channel_ids, self.config.n_chans, "cnnlstm")
        h = (self.code(x) + self.channel(ids)[:, :, None]).view(b * c, t, -1)  # (B*C, T, D)
        y = F.gelu(self.conv(h.transpose(1, 2)))  # (B*C, D, T)
        pool = self.config.pool_size
        y = F.max_pool1d(F.pad(y, (pool - 1, 0), value=float("-inf")), pool, stride=1)
        out, _ = self.lstm(y.transpose(1, 2) + h)  # (B*C, T, d_hidden)
        return ModelOutput(logits=self.head(self.dropout(out)).view(b, c, t, -1))
