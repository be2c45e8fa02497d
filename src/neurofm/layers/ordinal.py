"""The ordinal output head of the GPT2MEG family and its linear autoregressive skip path.

The head reads codes as ordered amplitudes ``v_k = 2 k / (V - 1) - 1`` and mixes a free softmax
with a discretised Gaussian over those values (see :class:`OrdinalLogits`); with ``ar_order`` it
adds a causal linear filter over each channel's last code values to the Gaussian's mean, and the
cache of incremental decoding then carries the code history (:class:`ARPast`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neurofm.layers.embeddings import code_values

# initial width of the ordinal head's Gaussian, in code-value units (2 / (V - 1) per code)
ORDINAL_SIGMA0 = 0.1
# initial weight of the Gaussian component in the ordinal head's mixture
ORDINAL_WEIGHT0 = 0.9
# the AR filter's weights are stored divided by this gain: a signal's AR coefficients are of
# order one, and step-size-normalised optimisers (Adam) move each stored weight by about the
# learning rate per step, far too slowly for them at the learning rates of the transformer
AR_GAIN = 10.0


@dataclass
class ARPast:
    """Cache of a model with ``ar_order = p > 0``: the attention cache and the code history.

    Attributes
    ----------
    layers : list of KVCache or transformers Cache
        The attention cache of the backbone.
    codes : LongTensor, shape (B, C, p - 1)
        The last ``p - 1`` input codes of every sequence (edge-padded at the start).
    """

    layers: Any
    codes: Tensor


class OrdinalLogits(nn.Module):
    """The ordinal head: mixture of ``softmax(free)`` and ``softmax_k(-(v_k - mu)^2 / 2 sigma^2)``.

    ``mu = anchor + a(h)``; ``a``, ``log(1 / sigma)`` and the mixing logit are linear in ``h``;
    ``sigma`` starts at ``ORDINAL_SIGMA0`` and the Gaussian weight at ``ORDINAL_WEIGHT0``. With
    ``ar_order = p > 0`` the head also holds the AR filter's weights ``a_0 .. a_{p-1}`` (zeros at
    init) used by :meth:`anchor`.

    Parameters
    ----------
    d_model : int
    vocab_size : int
        Number of codes ``V``.
    ar_order : int
        Length ``p`` of the linear filter over the code values (0: none).
    """

    def __init__(self, d_model: int, vocab_size: int, *, ar_order: int = 0) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, 3)
        self.vocab_size = vocab_size
        self.register_buffer("values", code_values(torch.arange(vocab_size), vocab_size), False)
        self.ar = nn.Parameter(torch.zeros(ar_order)) if ar_order else None

    def reset_parameters(self) -> None:
        nn.init.normal_(self.proj.weight, std=0.02)
        with torch.no_grad():
            gate = math.log(ORDINAL_WEIGHT0 / (1.0 - ORDINAL_WEIGHT0))
            self.proj.bias.copy_(torch.tensor([0.0, -math.log(ORDINAL_SIGMA0), gate]))
            if self.ar is not None:
                self.ar.zero_()

    def anchor(self, codes: Tensor) -> Tensor:
        """Anchors (B, C, T) of the Gaussian's mean from ``codes`` (B, C, p - 1 + T), the
        ``p - 1`` codes preceding the inputs then the inputs: ``v(x_t) + sum_k a_k v(x_{t-k})``
        (``v(x_t)`` alone without the filter)."""
        values = code_values(codes, self.vocab_size)
        if self.ar is None:
            return values
        p = self.ar.numel()
        # window[..., t, j] = v(x_{t - p + 1 + j}): lag k = p - 1 - j
        windows = values.unfold(-1, p, 1)
        return values[..., p - 1 :] + windows @ (AR_GAIN * self.ar).flip(0)

    def forward(self, free: Tensor, h: Tensor, anchor: Tensor | None = None) -> Tensor:
        """Mixture log-probabilities (..., V) from the free logits ``free`` (..., V), the hidden
        states ``h`` (..., D) and the input codes' values ``anchor`` (...)."""
        change, log_precision, gate = self.proj(h).float().unsqueeze(-1).unbind(-2)
        mu = change if anchor is None else change + anchor.unsqueeze(-1)
        gauss = -0.5 * ((self.values - mu) * log_precision.exp()).square()
        return torch.logaddexp(
            gauss.log_softmax(-1) + nn.functional.logsigmoid(gate),
            free.float().log_softmax(-1) + nn.functional.logsigmoid(-gate),
        ).to(free.dtype)


def code_history(who: str, p: int, x: Tensor, past: object | None) -> Tensor | None:
    """The ``p - 1`` codes (B, C, p - 1) preceding the codes ``x`` (B, C, T) for an AR filter of
    order ``p``: from the cache ``past`` (an :class:`ARPast`), else the first code repeated;
    ``None`` when there is no filter (``p = 0``) or ``x`` holds embeddings. ``who`` names the
    model in errors."""
    if not p or x.dtype.is_floating_point:
        return None
    if past is None:
        return x[..., :1].expand(*x.shape[:2], p - 1)
    if past.codes.shape != (*x.shape[:2], p - 1):
        raise ValueError(
            f"{who}: the cache holds codes {tuple(past.codes.shape)}, the "
            f"input {tuple(x.shape)} needs (B, C, ar_order - 1) = {(*x.shape[:2], p - 1)}"
        )
    return past.codes


def split_past(who: str, p: int, past: object | None) -> object | None:
    """The backbone's cache inside ``past`` (an :class:`ARPast` when the filter order ``p > 0``)."""
    if past is None or not p:
        return past
    if not isinstance(past, ARPast):
        raise ValueError(
            f"{who}: with ar_order > 0 past must be the ARPast returned by an "
            f"earlier call, got {type(past).__name__}"
        )
    return past.layers


def join_past(layers: object, x: Tensor, history: Tensor | None) -> object:
    """The cache to return: ``layers``, with the newest ``p - 1`` codes when the model has an
    AR filter (``history`` not None)."""
    if history is None:
        return layers
    codes = torch.cat((history, x), dim=-1)
    return ARPast(layers, codes[..., codes.shape[-1] - history.shape[-1] :].clone())
