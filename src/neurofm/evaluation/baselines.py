"""Baselines scored with the same metrics, on the same held-out windows, as the model.

Every baseline is fitted on the TRAIN split only. Forecasting baselines predict the code at
``t + 1`` from the codes up to ``t`` and return a distribution over the tokenizer's own code bins
(so bits per channel-sample compare directly with the model's) plus a point forecast in signal
space. They see what the model sees: codes, read in signal space through :class:`CodeBins`.

- :class:`LastValue`: the next code is the last code plus a jump ``d`` drawn from the train
  histogram of one-step code jumps with add-one (Laplace) smoothing over every possible jump
  ``d in [-(V-1), V-1]``: ``P(c_{t+1}=k | c_t=j) = h(k-j) / sum_{k'} h(k'-j)``,
  ``h(d) = count_train(d) + 1``. Its point forecast is the value of the last code.
- :class:`LinearAR`: per channel, ``v_{t+1} = b + sum_i a_i v_{t+1-i} + e`` fitted by least
  squares on train (``v`` = decoded code values; rows never cross a window end). The predictive
  distribution is Gaussian with the channel's train residual variance, discretised onto the code
  bins: ``P(k) = Phi((e_{k+1} - mu) / sigma) - Phi((e_k - mu) / sigma)`` with bin edges ``e`` at the
  midpoints between consecutive decoded code values (outer edges at -inf, +inf).
- :class:`Unigram`: train code frequencies with add-one smoothing, ``P(k) = (n_k + 1) / (N + V)``;
  its point forecast is the mean value of that distribution.
- :class:`Bigram`: level-dependent transitions ``P(c_{t+1}=k | c_t=j) = (n_jk + 1) / (n_j + V)``
  (train pair counts pooled over channels, add-one smoothed); point forecast: their mean value.
- :class:`Uniform`: ``log2 V`` bits, the chance reference.
- :class:`~neurofm.evaluation.linear.RidgeVAR` (in :mod:`~neurofm.evaluation.linear`): a
  multichannel linear model over every channel's recent values.

The decoding baselines are in :mod:`~neurofm.evaluation.decoding_baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from neurofm.evaluation.metrics import _as_numpy

FIT_CHUNK = 32
"""Train windows whose lagged design a linear baseline holds at once while fitting."""

PROB_FLOOR = 1e-12
"""Smallest probability a discretised Gaussian gives a bin before renormalising."""


@dataclass
class CodeBins:
    """The signal value of each code, per channel, and the bin edges between them.

    Attributes
    ----------
    values : ndarray, shape (C, V)
        Decoded value of each code on each channel (per-channel scaling makes them differ),
        strictly increasing along V. ``C == 1`` means the same values on every channel.
    edges : ndarray, shape (C, V + 1)
        ``-inf``, the midpoints between consecutive values, ``+inf``.
    """

    values: np.ndarray
    edges: np.ndarray

    @classmethod
    def from_values(cls, values: Any) -> CodeBins:
        """Bins from decoded code values ``(V,)`` or ``(C, V)``; each row strictly increasing."""
        values = _as_numpy(values).astype(np.float64)
        values = values[None] if values.ndim == 1 else values
        if values.ndim != 2 or values.shape[1] < 2:
            raise ValueError(f"decoded code values must be (V,) or (C, V), got {values.shape}")
        bad = np.flatnonzero(~np.all(np.diff(values, axis=1) > 0, axis=1))
        if bad.size:
            raise ValueError(
                f"decoded code values must be strictly increasing (an ordered "
                f"quantizer); channel(s) {bad.tolist()} are not"
            )
        mid = 0.5 * (values[:, 1:] + values[:, :-1])
        inf = np.full((len(values), 1), np.inf)
        return cls(values=values, edges=np.concatenate([-inf, mid, inf], axis=1))

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, n_chans: int) -> CodeBins:
        """Bins of a per-sample scalar tokenizer: decode every code ``0..V-1`` on each channel."""
        import torch

        codes = torch.arange(int(tokenizer.vocab_size), dtype=torch.int64)
        codes = codes.expand(1, int(n_chans), -1).contiguous()  # (1, C, V)
        return cls.from_values(_as_numpy(tokenizer.decode(codes))[0])

    @classmethod
    def from_bin_bounds(cls, tokenizer: Any, n_chans: int) -> CodeBins:
        """The exact bins of a per-sample tokenizer with ``bin_bounds`` (e.g. mu-law): a value
        falls in bin ``k`` iff the tokenizer encodes it as code ``k``; the outer bins reach to
        -inf and +inf (clipped samples take the end codes)."""
        import torch

        codes = torch.arange(int(tokenizer.vocab_size), dtype=torch.int64)
        codes = codes.expand(1, int(n_chans), -1).contiguous()  # (1, C, V)
        values = _as_numpy(tokenizer.decode(codes))[0].astype(np.float64)
        _, high = tokenizer.bin_bounds(codes)
        inner = _as_numpy(high)[0, :, :-1].astype(np.float64)  # (C, V - 1) upper edges
        if not (np.all(np.diff(inner, axis=1) > 0) and np.all(np.diff(values, axis=1) > 0)):
            raise ValueError("the tokenizer's bins must be ordered along the codes on each channel")
        inf = np.full((int(n_chans), 1), np.inf)
        return cls(values=values, edges=np.concatenate([-inf, inner, inf], axis=1))

    @property
    def vocab_size(self) -> int:
        return int(self.values.shape[1])

    def rows(self, n_chans: int) -> np.ndarray:
        """Channel index of each of ``n_chans`` data channels into ``values``."""
        if len(self.values) == 1:
            return np.zeros(n_chans, dtype=np.int64)
        if len(self.values) != n_chans:
            raise ValueError(f"code bins hold {len(self.values)} channels, the data {n_chans}")
        return np.arange(n_chans)

    def decode(self, codes: Any) -> np.ndarray:
        """Signal value of each code of ``codes (B, C, T)`` (same shape)."""
        codes = _as_numpy(codes).astype(np.int64)
        return self.values[self.rows(codes.shape[1])[None, :, None], codes]

    def encode(self, x: Any) -> np.ndarray:
        """The bin of each value of ``x (B, C, T)`` (nearest code value), int64, same shape."""
        x = _as_numpy(x).astype(np.float64)
        out = np.empty(x.shape, dtype=np.int64)
        for ch, row in enumerate(self.rows(x.shape[1])):
            out[:, ch] = np.searchsorted(self.edges[row, 1:-1], x[:, ch], side="right")
        return out

    def mean_value(self, log_p: np.ndarray, n_chans: int) -> np.ndarray:
        """Per-channel mean ``(C,)`` of one distribution ``log_p (V,)`` over the code values."""
        return self.values[self.rows(n_chans)] @ np.exp(log_p)

    def min_step(self, n_chans: int) -> np.ndarray:
        """Smallest gap between consecutive code values on each channel ``(C,)``."""
        return np.diff(self.values[self.rows(n_chans)], axis=1).min(axis=1)

    def discretised_gaussian(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Log-probabilities ``(B, C, T, V)`` of Gaussians ``N(mean, std²)`` (both (B, C, T))
        integrated over each bin of the channel."""
        edges = self.edges[self.rows(mean.shape[1])][None, :, None, :]  # (1, C, 1, V + 1)
        z = (edges - mean[..., None]) / std[..., None]
        p = np.diff(ndtr(z), axis=-1)
        p = np.maximum(p, PROB_FLOOR)
        return np.log(p / p.sum(axis=-1, keepdims=True))

    def target_log_prob(self, mean: np.ndarray, std: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Log-probabilities ``(B, C, T)`` of the codes ``targets`` under
        :meth:`discretised_gaussian` ``(mean, std)``, from the targets' bins alone: the same
        masses, without renormalising the floored bins (a relative difference of at most
        ``V * PROB_FLOOR``). For scoring many candidates cheaply."""
        edges = self.edges[self.rows(mean.shape[1])]  # (C, V + 1)
        ch = np.arange(mean.shape[1])[None, :, None]
        low, high = edges[ch, targets], edges[ch, targets + 1]
        p = ndtr((high - mean) / std) - ndtr((low - mean) / std)
        return np.log(np.maximum(p, PROB_FLOOR))


def _check_codes(codes: Any, bins: CodeBins, what: str) -> np.ndarray:
    codes = _as_numpy(codes).astype(np.int64)
    if codes.ndim != 3:
        raise ValueError(f"{what}: expected codes (B, C, T), got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= bins.vocab_size):
        raise ValueError(f"{what}: codes outside 0..{bins.vocab_size - 1}")
    return codes


class LastValue:
    """Persistence: the last code plus a train-fitted jump distribution (see module doc)."""

    name = "last_value"
    min_context = 1

    def __init__(self, bins: CodeBins) -> None:
        self.bins = bins
        self.log_transition: np.ndarray | None = None

    def fit(self, train_codes: Any) -> LastValue:
        """Count the one-step code jumps of ``train_codes (N, C, T)``."""
        codes = _check_codes(train_codes, self.bins, "LastValue.fit")
        n_bins = self.bins.vocab_size
        jumps = (codes[..., 1:] - codes[..., :-1]).reshape(-1) + (n_bins - 1)
        h = np.bincount(jumps, minlength=2 * n_bins - 1).astype(np.float64) + 1.0
        j, k = np.meshgrid(np.arange(n_bins), np.arange(n_bins), indexing="ij")
        table = h[k - j + n_bins - 1]  # (V last, V next)
        self.log_transition = np.log(table / table.sum(axis=1, keepdims=True))
        return self

    def predict(self, codes: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Predictions for the targets ``codes[..., start:]``.

        Returns
        -------
        log_probs : (B, C, T - start, V) and point : (B, C, T - start) signal-space forecasts.
        """
        if self.log_transition is None:
            raise RuntimeError("LastValue: call fit() first")
        codes = _check_codes(codes, self.bins, "LastValue.predict")
        last = codes[..., start - 1 : -1]
        return self.log_transition[last], self.bins.decode(last)

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        """Point forecasts ``(B, C, horizon)``: the last value repeated."""
        last = self.bins.decode(_as_numpy(context)[..., -1:])
        return np.repeat(last, horizon, axis=-1)


class Unigram:
    """Train code frequencies with add-one smoothing (see module doc)."""

    name = "unigram"
    min_context = 1

    def __init__(self, bins: CodeBins) -> None:
        self.bins = bins
        self.log_p: np.ndarray | None = None

    def fit(self, train_codes: Any) -> Unigram:
        codes = _check_codes(train_codes, self.bins, "Unigram.fit")
        counts = np.bincount(codes.reshape(-1), minlength=self.bins.vocab_size) + 1.0
        self.log_p = np.log(counts / counts.sum())
        return self

    def entropy_bits(self) -> float:
        """Entropy of the fitted distribution in bits."""
        return float(-(np.exp(self.log_p) * self.log_p).sum() / np.log(2.0))

    def predict(self, codes: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        if self.log_p is None:
            raise RuntimeError("Unigram: call fit() first")
        codes = _check_codes(codes, self.bins, "Unigram.predict")
        shape = (*codes.shape[:2], codes.shape[2] - start)
        mean = self.bins.mean_value(self.log_p, codes.shape[1])[None, :, None]
        log_p = np.broadcast_to(self.log_p, (*shape, self.bins.vocab_size))
        return log_p, np.broadcast_to(mean, shape)

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        b, c = _as_numpy(context).shape[:2]
        mean = self.bins.mean_value(self.log_p, c)[None, :, None]
        return np.broadcast_to(mean, (b, c, horizon)).copy()


class Bigram:
    """Level-dependent code transitions: ``P(c_{t+1}=k | c_t=j) = (n_jk + 1) / (n_j + V)`` from
    train counts pooled over channels (see module doc); its point forecast is the mean value of
    that distribution."""

    name = "bigram"
    min_context = 1

    def __init__(self, bins: CodeBins) -> None:
        self.bins = bins
        self.log_transition: np.ndarray | None = None

    def fit(self, train_codes: Any) -> Bigram:
        """Count the code pairs ``(c_t, c_{t+1})`` of ``train_codes (N, C, T)``."""
        codes = _check_codes(train_codes, self.bins, "Bigram.fit")
        n_bins = self.bins.vocab_size
        pairs = (codes[..., :-1] * n_bins + codes[..., 1:]).reshape(-1)
        counts = np.bincount(pairs, minlength=n_bins * n_bins).reshape(n_bins, n_bins) + 1.0
        self.log_transition = np.log(counts / counts.sum(axis=1, keepdims=True))
        return self

    def _means(self, n_chans: int) -> np.ndarray:
        """Mean value ``(C, V)`` of the next code after each code, per channel."""
        return self.bins.values[self.bins.rows(n_chans)] @ np.exp(self.log_transition).T

    def predict(self, codes: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        if self.log_transition is None:
            raise RuntimeError("Bigram: call fit() first")
        codes = _check_codes(codes, self.bins, "Bigram.predict")
        last = codes[..., start - 1 : -1]
        means = self._means(codes.shape[1])
        return self.log_transition[last], np.take_along_axis(means[None], last, axis=-1)

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        """Exact mean forecasts ``(B, C, horizon)``: the last code's distribution propagated
        through the transition matrix."""
        last = _check_codes(context, self.bins, "Bigram.forecast")[..., -1]  # (B, C)
        transition = np.exp(self.log_transition)
        values = self.bins.values[self.bins.rows(last.shape[1])]  # (C, V)
        p = transition[last]  # (B, C, V)
        out = np.empty((*last.shape, horizon))
        for step in range(horizon):
            out[..., step] = (p * values[None]).sum(-1)
            p = p @ transition
        return out


class Uniform:
    """Every code alike: ``log2 V`` bits, the chance reference; no point forecast."""

    name = "uniform"
    min_context = 1

    def __init__(self, bins: CodeBins) -> None:
        self.bins = bins

    def predict(self, codes: Any, start: int) -> tuple[np.ndarray, None]:
        codes = _as_numpy(codes)
        n_bins = self.bins.vocab_size
        shape = (*codes.shape[:2], codes.shape[2] - start, n_bins)
        return np.broadcast_to(np.float64(-np.log(n_bins)), shape), None


class LinearAR:
    """Per-channel linear autoregressive model of order ``order`` (see module doc).

    Attributes after :meth:`fit`: ``coef`` (C, order) with ``coef[:, i]`` the weight of lag
    ``i + 1``, ``intercept`` (C,), ``residual_std`` (C,).
    """

    name = "linear_ar"

    def __init__(self, bins: CodeBins, *, order: int = 8) -> None:
        if order < 1:
            raise ValueError(f"LinearAR: order must be >= 1, got {order}")
        self.bins = bins
        self.order = int(order)
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None
        self.residual_std: np.ndarray | None = None

    @property
    def min_context(self) -> int:
        return self.order

    def _lags(self, v: np.ndarray) -> np.ndarray:
        """``(B, C, T - order + 1, order)``: for each t >= order - 1, values at t, t-1, ..., t-order+1."""
        windows = np.lib.stride_tricks.sliding_window_view(v, self.order, axis=-1)
        return windows[..., ::-1]

    def _design(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lagged values with a constant ``(N, C, T - order, order + 1)`` and targets."""
        x = self._lags(v[..., :-1])  # (N, C, T - order, order)
        x = np.concatenate([np.ones((*x.shape[:-1], 1)), x], axis=-1)
        return x, v[..., self.order :]

    def fit_signal(self, train_values: Any) -> LinearAR:
        """Fit on signal values ``(N, C, T)`` directly (rows never cross a window end)."""
        v = _as_numpy(train_values).astype(np.float64)
        if v.ndim != 3 or v.shape[-1] <= self.order + 1:
            raise ValueError(
                f"LinearAR.fit: need (N, C, T) with T > {self.order + 1}, got {v.shape}"
            )
        n_feat = self.order + 1
        gram = np.zeros((v.shape[1], n_feat, n_feat))
        rhs = np.zeros((v.shape[1], n_feat))
        yy = np.zeros(v.shape[1])
        for lo in range(0, len(v), FIT_CHUNK):  # chunks keep the lag arrays small
            x, y = self._design(v[lo : lo + FIT_CHUNK])
            gram += np.einsum("nctp,nctq->cpq", x, x)
            rhs += np.einsum("nctp,nct->cp", x, y)
            yy += (y**2).sum(axis=(0, 2))
        ridge = 1e-9 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(n_feat)
        beta = np.linalg.solve(gram + ridge, rhs[..., None])[..., 0]  # (C, order + 1)
        # residual sum of squares from the moments: y'y - 2 b'X'y + b'X'Xb
        rss = yy - 2 * (beta * rhs).sum(-1) + np.einsum("cp,cpq,cq->c", beta, gram, beta)
        n_rows = v.shape[0] * (v.shape[2] - self.order)
        dof = max(n_rows - self.order - 1, 1)
        self.intercept, self.coef = beta[:, 0], beta[:, 1:]
        std = np.sqrt(np.maximum(rss, 0.0) / dof)
        # a channel predicted exactly still needs a spread: at least a tenth of the finest bin
        self.residual_std = np.maximum(std, 0.1 * self.bins.min_step(v.shape[1]))
        return self

    def fit(self, train_codes: Any) -> LinearAR:
        """Fit on the decoded values of ``train_codes (N, C, T)``."""
        codes = _check_codes(train_codes, self.bins, "LinearAR.fit")
        return self.fit_signal(self.bins.decode(codes))

    def _mean_next(self, v: np.ndarray) -> np.ndarray:
        """Mean of ``v_{t+1}`` for each t >= order - 1: shape (B, C, T - order + 1)."""
        return self.intercept[:, None] + np.einsum("bctp,cp->bct", self._lags(v), self.coef)

    def predict(self, codes: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        codes = _check_codes(codes, self.bins, "LinearAR.predict")
        return self.predict_signal(self.bins.decode(codes), start)

    def predict_signal(self, values: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Predictions for the targets ``values[..., start:]`` from signal values ``(B, C, T)``:
        log-probabilities over the code bins ``(B, C, T - start, V)`` and the means."""
        mean = self.mean_signal(values, start)
        std = np.broadcast_to(self.residual_std[:, None], mean.shape)
        return self.bins.discretised_gaussian(mean, std), mean

    def mean_signal(self, values: Any, start: int) -> np.ndarray:
        """Predictive means ``(B, C, T - start)`` of the targets ``values[..., start:]``."""
        if self.coef is None:
            raise RuntimeError("LinearAR: call fit() first")
        if start < self.order:
            raise ValueError(
                f"LinearAR: scoring must start at t >= order ({self.order}), got {start}"
            )
        v = _as_numpy(values).astype(np.float64)
        return self._mean_next(v[..., :-1])[..., start - self.order :]

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        """Iterated mean forecasts ``(B, C, horizon)`` from code context ``(B, C, L >= order)``."""
        return self._iterate(self.bins.decode(context), horizon, rng=None)

    def forecast_signal(self, context_values: Any, horizon: int) -> np.ndarray:
        """Iterated mean forecasts ``(B, C, horizon)`` after a signal context ``(B, C, L)``."""
        return self._iterate(_as_numpy(context_values).astype(np.float64), horizon, rng=None)

    def simulate(self, context_values: Any, n_steps: int, *, seed: int = 0) -> np.ndarray:
        """Sample ``n_steps`` values ``(B, C, n_steps)`` after a signal context, with Gaussian noise."""
        return self._iterate(
            _as_numpy(context_values).astype(np.float64), n_steps, rng=np.random.default_rng(seed)
        )

    def _iterate(self, v: np.ndarray, n_steps: int, rng: np.random.Generator | None) -> np.ndarray:
        if v.shape[-1] < self.order:
            raise ValueError(f"LinearAR: context of {v.shape[-1]} samples < order {self.order}")
        hist = list(np.moveaxis(v[..., -self.order :], -1, 0))  # order arrays (B, C)
        out = np.empty((*v.shape[:2], n_steps))
        for step in range(n_steps):
            lagged = np.stack(hist[::-1], axis=-1)  # (B, C, order), lag 1 first
            nxt = self.intercept + np.einsum("bcp,cp->bc", lagged, self.coef)
            if rng is not None:
                nxt = nxt + rng.standard_normal(nxt.shape) * self.residual_std
            out[..., step] = nxt
            hist = hist[1:] + [nxt]
        return out
