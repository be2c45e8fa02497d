"""The ordinal output head of the GPT2MEG family and its linear autoregressive skip path.

The head reads codes as ordered amplitudes ``v_k = 2 k / (V - 1) - 1`` and mixes a free softmax
with a discretised Gaussian over those values (see :class:`OrdinalLogits`); with ``ar_order`` it
adds a causal linear filter over each channel's last code values to the Gaussian's mean, with
``var_order`` a causal linear filter over *every* channel's last code values (a vector
autoregression, channels identified by their channel ids), and the cache of incremental decoding
then carries the code history (:class:`ARPast`). :func:`ridge_var` fits that filter in closed
form on training codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neurofm.layers.embeddings import code_values, mu_law_expand

# initial width of the ordinal head's Gaussian: in code-value units (2 / (V - 1) per code), and
# in unit-scale amplitude units (a robust-scaled signal's one-step changes are of this order)
ORDINAL_SIGMA0 = {"code": 0.1, "mulaw": 0.05}
# initial weight of the Gaussian component in the ordinal head's mixture
ORDINAL_WEIGHT0 = 0.9
# the AR filter's weights are stored divided by this gain: a signal's AR coefficients are of
# order one, and step-size-normalised optimisers (Adam) move each stored weight by about the
# learning rate per step, far too slowly for them at the learning rates of the transformer
AR_GAIN = 10.0
# the VAR filter's weights are stored divided by this gain: C * p of them act on every mean,
# fitted in closed form first (ridge_var), so Adam's per-weight steps must be small
VAR_GAIN = 0.05
# range of the Gaussian's log precision (1 / sigma): keeps the bin masses finite
LOG_PRECISION_RANGE = (-8.0, 16.0)


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
    seen: int = 0  # how many of ``codes`` are real inputs (the rest: edge padding)


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

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        *,
        ar_order: int = 0,
        var_order: int = 0,
        n_chans: int = 0,
        amplitude: str = "code",
        mu: float | None = None,
        volatility: bool = False,
    ) -> None:
        super().__init__()
        if volatility and not var_order:
            raise ValueError("volatility reads the VAR's history window: set var_order > 0")
        if var_order and n_chans < 1:
            raise ValueError(f"var_order={var_order} needs the channel vocabulary n_chans >= 1")
        if amplitude not in ORDINAL_SIGMA0:
            raise ValueError(
                f"amplitude must be one of {sorted(ORDINAL_SIGMA0)}, got {amplitude!r}"
            )
        self.proj = nn.Linear(d_model, 3)
        self.vocab_size = vocab_size
        self.amplitude = amplitude
        self.mu = float(vocab_size - 1 if mu is None else mu)
        grid = code_values(torch.arange(vocab_size), vocab_size)
        if amplitude == "code":
            self.register_buffer("values", grid, False)
            self.log_widths = None
        else:  # bin centres and widths of the mu-law codes at unit scale
            centres = mu_law_expand(grid, self.mu)
            edges = mu_law_expand((grid[1:] + grid[:-1]) / 2, self.mu)  # between the centres
            widths = edges[1:] - edges[:-1]
            # the end codes get their inner neighbour's width (the clipped tails are rare)
            widths = torch.cat((widths[:1], widths, widths[-1:]))
            self.register_buffer("values", centres, False)
            self.register_buffer("log_widths", widths.log(), False)
        self.ar = nn.Parameter(torch.zeros(ar_order)) if ar_order else None
        # var[k, c, d]: weight of channel d's value at lag k in channel c's mean
        self.var = nn.Parameter(torch.zeros(var_order, n_chans, n_chans)) if var_order else None
        # with the VAR: a log precision per channel, added to the one read from the hidden state
        self.channel_log_precision = nn.Parameter(torch.zeros(n_chans)) if var_order else None
        self.history = max(ar_order, var_order)
        # with volatility: the log precision also falls with the log of the recent mean squared
        # one-step change of each channel (over the history window), relative to its train mean
        self.vol_gain = nn.Parameter(torch.zeros(())) if volatility else None
        if volatility:
            self.register_buffer("vol_ref", torch.zeros(n_chans))
            self.register_buffer("vol_floor", torch.tensor(1e-6))

    def reset_parameters(self) -> None:
        nn.init.normal_(self.proj.weight, std=0.02)
        with torch.no_grad():
            gate = math.log(ORDINAL_WEIGHT0 / (1.0 - ORDINAL_WEIGHT0))
            sigma0 = ORDINAL_SIGMA0[self.amplitude]
            self.proj.bias.copy_(torch.tensor([0.0, -math.log(sigma0), gate]))
            if self.ar is not None:
                self.ar.zero_()
            if self.var is not None:
                self.var.zero_()
                self.channel_log_precision.zero_()
            if self.vol_gain is not None:
                self.vol_gain.zero_()

    def amplitudes(self, codes: Tensor) -> Tensor:
        """The values of ``codes`` in the head's domain: code values, or mu-law-expanded."""
        values = code_values(codes, self.vocab_size)
        return values if self.amplitude == "code" else mu_law_expand(values, self.mu)

    def anchor(self, codes: Tensor, channel_ids: Tensor | None = None) -> Tensor:
        """Anchors (B, C, T) of the Gaussian's mean from ``codes`` (B, C, q - 1 + T), the
        ``q - 1 = max(ar_order, var_order) - 1`` codes preceding the inputs then the inputs:
        ``v_c(x_t) + sum_k a_k v_c(x_{t-k}) + sum_k sum_d W_k[c, d] v_d(x_{t-k})`` (``v(x_t)``
        alone without filters). ``channel_ids`` (B, C) or (C,) pick the rows and columns of
        ``W`` (default ``0 .. C-1``)."""
        values = self.amplitudes(codes)
        q = max(self.history, 1)
        n_times = values.shape[-1] - (q - 1)
        out = values[..., q - 1 :]
        if self.ar is not None:
            p = self.ar.numel()
            # window[..., t, j] = v(x_{t - p + 1 + j}): lag k = p - 1 - j
            windows = values[..., q - p :].unfold(-1, p, 1)
            out = out + windows @ (AR_GAIN * self.ar).flip(0)
        if self.var is not None:
            b, c = values.shape[:2]
            ids = torch.arange(c, device=codes.device) if channel_ids is None else channel_ids
            ids = ids.expand(b, c)
            weights = VAR_GAIN * self.var[:, ids[:, :, None], ids[:, None, :]]  # (p, B, C, C)
            p = weights.shape[0]
            # one product over (channel, lag): lagged[b, d, k, t] = v_d(x_{t-k})
            lagged = torch.stack(
                [values[..., q - 1 - lag : q - 1 - lag + n_times] for lag in range(p)], dim=2
            )
            mixed = weights.permute(1, 2, 3, 0).reshape(b, c, c * p).to(values.dtype)
            out = out + torch.bmm(mixed, lagged.reshape(b, c * p, n_times))
        return out

    def log_energy(self, codes: Tensor, seen: int = 0) -> Tensor:
        """Log of the recent mean squared one-step change (B, C, T) of each channel.

        ``codes`` (B, C, q - 1 + T) are the ``q - 1`` codes before the inputs then the inputs, of
        which only the last ``seen`` of the ``q - 1`` are real (the others: edge padding, never
        counted). At input ``t`` the mean runs over the ``q - 1`` changes ending at ``t``; where
        none is real it is 0 (the channel's reference level)."""
        values = self.amplitudes(codes).float()
        h = self.history - 1
        if h < 1:
            raise ValueError("log_energy needs a history window (var_order > 1)")
        d2 = values.diff(dim=-1).square()  # (B, C, h + T - 1): change j -> j + 1
        real = (torch.arange(d2.shape[-1], device=codes.device) >= h - min(seen, h)).to(d2)
        zero = d2.new_zeros(*d2.shape[:-1], 1)
        total = torch.cat((zero, (d2 * real).cumsum(-1)), -1)  # (B, C, h + T)
        count = torch.cat((zero[0, 0], real.cumsum(-1)))  # (h + T,)
        n_times = values.shape[-1] - h
        sums = total[..., h:] - total[..., :n_times]
        counts = count[h:] - count[:n_times]
        mean = sums / counts.clamp_min(1.0)
        return torch.where(counts > 0, (mean + self.vol_floor).log(), torch.nan)

    def volatility(
        self, codes: Tensor, seen: int = 0, channel_ids: Tensor | None = None
    ) -> Tensor | None:
        """The volatility term of the log precision (B, C, T): ``-g / 2 (log e_t - ref_c)``
        (:meth:`log_energy`), 0 where no real change is known yet; None without volatility."""
        if self.vol_gain is None:
            return None
        log_e = self.log_energy(codes, seen)
        b, c = log_e.shape[:2]
        ids = torch.arange(c, device=codes.device) if channel_ids is None else channel_ids
        ref = self.vol_ref[ids.expand(b, c)][..., None]
        centred = torch.nan_to_num(log_e - ref, nan=0.0)
        return -0.5 * self.vol_gain * centred

    def channel_precision(self, b: int, c: int, channel_ids: Tensor | None) -> Tensor | None:
        """Per-channel log precisions (B, C, 1) of the channels ``channel_ids`` (default
        ``0 .. C-1``), or None without the VAR filter."""
        if self.channel_log_precision is None:
            return None
        ids = torch.arange(c, device=self.values.device) if channel_ids is None else channel_ids
        return self.channel_log_precision[ids.expand(b, c)][..., None]

    def forward(
        self,
        free: Tensor,
        h: Tensor,
        anchor: Tensor | None = None,
        channel_precision: Tensor | None = None,
    ) -> Tensor:
        """Mixture log-probabilities (B, C, T, V) from the free logits ``free`` (B, C, T, V),
        the hidden states ``h`` (B, C, T, D), the input codes' values ``anchor`` (B, C, T) and
        per-channel log precisions (B, C, 1) (:meth:`channel_precision`)."""
        change, log_precision, gate = self.proj(h).float().unsqueeze(-1).unbind(-2)
        if channel_precision is not None:
            log_precision = log_precision + channel_precision[..., None]
        log_precision = log_precision.clamp(*LOG_PRECISION_RANGE)
        mu = change if anchor is None else change + anchor.unsqueeze(-1)
        gauss = -0.5 * ((self.values - mu) * log_precision.exp()).square()
        if self.log_widths is not None:  # density times bin width: the mass of uneven bins
            gauss = gauss + self.log_widths
        gauss = gauss.log_softmax(-1)
        return torch.logaddexp(
            gauss + nn.functional.logsigmoid(gate),
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


def join_past(layers: object, x: Tensor, history: Tensor | None, seen: int = 0) -> object:
    """The cache to return: ``layers``, with the newest ``p - 1`` codes when the model has an
    AR filter (``history`` not None) and how many of them are real (``seen`` of the history
    were before this call)."""
    if history is None:
        return layers
    codes = torch.cat((history, x), dim=-1)
    keep = history.shape[-1]
    return ARPast(
        layers, codes[..., codes.shape[-1] - keep :].clone(), min(keep, seen + x.shape[-1])
    )


def seen_of(past: object | None) -> int:
    """How many codes of a cache's history are real inputs (0 without a cache)."""
    return past.seen if isinstance(past, ARPast) else 0


def lagged_values(values: Tensor, order: int) -> Tensor:
    """Features (N, order * C) of every channel's last ``order`` values before each target, and
    the targets' one-step changes, from code values ``values`` (W, C, T) of W windows: rows are
    (window, t) for ``t >= order``; column ``k * C + d`` holds channel d at lag k (0: the newest
    input)."""
    w, c, t = values.shape
    lags = [values[..., order - 1 - k : t - 1 - k] for k in range(order)]  # (W, C, T - order)
    return torch.stack(lags, dim=1).permute(0, 3, 1, 2).reshape(-1, order * c)


def ridge_var(
    values: Tensor, order: int, *, penalties: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
) -> tuple[Tensor, float, Tensor]:
    """Closed-form ridge fit of the VAR filter ``W`` (order, C, C) on code values (W, C, T).

    The target is the one-step change ``v(x_{t+1}) - v(x_t)`` (the head's mean already holds
    ``v(x_t)``). The penalty (relative to the mean feature variance) is chosen among
    ``penalties`` on the last fifth of the windows after fitting on the first four fifths, then
    the filter is refitted on all windows. Returns ``W``, the chosen penalty and the residual
    standard deviation of the refit per channel (C,).
    """
    values = values.double()
    w, c, t = values.shape
    if t <= order + 1 or w < 5:
        raise ValueError(
            f"ridge_var: need >= 5 windows longer than order + 1 = {order + 1} samples, got "
            f"{w} windows of {t}"
        )

    def design(v: Tensor) -> tuple[Tensor, Tensor]:
        x = lagged_values(v, order)
        y = (v[..., order:] - v[..., order - 1 : -1]).permute(0, 2, 1).reshape(-1, c)
        return x, y

    def solve(x: Tensor, y: Tensor, penalty: float) -> Tensor:
        gram = x.T @ x
        scale = gram.diagonal().mean()
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        return torch.linalg.solve(gram + penalty * scale * eye, x.T @ y)  # (order * C, C)

    split = w - max(1, w // 5)
    x_fit, y_fit = design(values[:split])
    x_held, y_held = design(values[split:])
    errors = [((x_held @ solve(x_fit, y_fit, p) - y_held) ** 2).mean() for p in penalties]
    best = penalties[int(torch.stack(errors).argmin())]
    x_all, y_all = design(values)
    coef = solve(x_all, y_all, best)  # (order * C, C): [k * C + d, c]
    residual = (x_all @ coef - y_all).std(dim=0).float()  # (C,)
    return coef.view(order, c, c).transpose(1, 2).float(), float(best), residual
