"""Linear forecasting baselines with their sizes chosen on validation data.

- :class:`RidgeVAR`: a vector autoregression over every channel,
  ``v_{t+1} = b + sum_{i=1..L} A_i v_{t+1-i} + e`` (``v`` (C,) the values of all channels, so
  ``C * L`` features per target), fitted by ridge regression in closed form on train:
  ``B = (X'X + lambda D)^-1 X'Y`` with ``D`` the identity except for the unpenalised intercept and
  ``lambda = ridge * trace(X'X) / (C * L)`` (``ridge`` is relative to the mean feature power). The
  predictive distribution of each channel is Gaussian with its train residual variance,
  integrated over the code bins, as :class:`~neurofm.evaluation.baselines.LinearAR`.
- :func:`fit_linear_baselines`: the per-channel AR order and the VAR lag and ridge strength, each
  chosen by bits per channel-sample on validation windows among candidates that fit in the
  scored context; the chosen fits and every candidate's validation score.

Both fit on moments accumulated over chunks of windows, so 64 channels x 16 lags (1024 features)
over thousands of windows stay a few MB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurofm.evaluation.baselines import FIT_CHUNK, CodeBins, LinearAR
from neurofm.evaluation.metrics import LN2, _as_numpy


class RidgeVAR:
    """Multichannel ridge vector autoregression of ``lags`` steps (see module doc).

    Attributes after :meth:`fit_signal`: ``coef`` (C * lags, C) (rows: channel-major, lag 1
    first within a channel), ``intercept`` (C,), ``residual_std`` (C,).
    """

    name = "ridge_var"

    def __init__(self, bins: CodeBins, *, lags: int, ridge: float) -> None:
        if lags < 1 or ridge < 0:
            raise ValueError(f"RidgeVAR: need lags >= 1 and ridge >= 0, got {lags}, {ridge}")
        self.bins = bins
        self.lags = int(lags)
        self.ridge = float(ridge)
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None
        self.residual_std: np.ndarray | None = None

    @property
    def min_context(self) -> int:
        return self.lags

    def _features(self, v: np.ndarray) -> np.ndarray:
        """``(B, T - lags + 1, C * lags)``: for each t >= lags - 1 the values at t, ..., t-lags+1."""
        windows = np.lib.stride_tricks.sliding_window_view(v, self.lags, axis=-1)[..., ::-1]
        b, c, n, lags = windows.shape  # (B, C, T - lags + 1, lags)
        return windows.transpose(0, 2, 1, 3).reshape(b, n, c * lags)

    @staticmethod
    def moments(values: Any, lags: int) -> dict[str, Any]:
        """Moments of the lag design over train values ``(N, C, T)``: ``gram`` (d+1, d+1) with
        the intercept first, ``cross`` (d+1, C), ``yy`` (C,), ``n_rows``."""
        v = _as_numpy(values).astype(np.float64)
        if v.ndim != 3 or v.shape[-1] <= lags + 1:
            raise ValueError(f"RidgeVAR: need (N, C, T) with T > {lags + 1}, got {v.shape}")
        probe = RidgeVAR(CodeBins.from_values([0.0, 1.0]), lags=lags, ridge=0.0)
        d = v.shape[1] * lags + 1
        gram, cross, yy, n_rows = np.zeros((d, d)), np.zeros((d, v.shape[1])), 0.0, 0
        for lo in range(0, len(v), FIT_CHUNK):
            part = v[lo : lo + FIT_CHUNK]
            x = probe._features(part[..., :-1]).reshape(-1, d - 1)
            x = np.concatenate([np.ones((len(x), 1)), x], axis=1)
            y = part[..., lags:].transpose(0, 2, 1).reshape(-1, v.shape[1])
            gram += x.T @ x
            cross += x.T @ y
            yy = yy + (y**2).sum(axis=0)
            n_rows += len(x)
        return {"gram": gram, "cross": cross, "yy": yy, "n_rows": n_rows, "n_chans": v.shape[1]}

    def fit_moments(self, moments: dict[str, Any]) -> RidgeVAR:
        """Solve the ridge regression from :meth:`moments` of the same ``lags``."""
        gram, cross = moments["gram"], moments["cross"]
        d = gram.shape[0] - 1
        if d != moments["n_chans"] * self.lags:
            raise ValueError(f"RidgeVAR: moments of {d} features, expected C * {self.lags}")
        penalty = np.eye(d + 1)
        penalty[0, 0] = 0.0
        scale = np.trace(gram[1:, 1:]) / d
        beta = np.linalg.solve(
            gram + self.ridge * scale * penalty + 1e-12 * scale * np.eye(d + 1), cross
        )
        rss = moments["yy"] - 2 * (beta * cross).sum(0) + (beta * (gram @ beta)).sum(0)
        std = np.sqrt(np.maximum(rss, 0.0) / max(moments["n_rows"] - 1, 1))
        self.intercept, self.coef = beta[0], beta[1:]
        self.residual_std = np.maximum(std, 0.1 * self.bins.min_step(moments["n_chans"]))
        return self

    def fit_signal(self, train_values: Any) -> RidgeVAR:
        """Fit on signal values ``(N, C, T)`` (rows never cross a window end)."""
        return self.fit_moments(self.moments(train_values, self.lags))

    def fit(self, train_codes: Any) -> RidgeVAR:
        """Fit on the decoded values of ``train_codes (N, C, T)``."""
        return self.fit_signal(self.bins.decode(train_codes))

    def predict_signal(self, values: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Predictions for the targets ``values[..., start:]`` from values ``(B, C, T)``:
        log-probabilities over the code bins ``(B, C, T - start, V)`` and the means."""
        mean = self.mean_signal(values, start)
        std = np.broadcast_to(self.residual_std[:, None], mean.shape)
        return self.bins.discretised_gaussian(mean, std), mean

    def mean_signal(self, values: Any, start: int) -> np.ndarray:
        """Predictive means ``(B, C, T - start)`` of the targets ``values[..., start:]``."""
        if self.coef is None:
            raise RuntimeError("RidgeVAR: call fit() first")
        if start < self.lags:
            raise ValueError(
                f"RidgeVAR: scoring must start at t >= lags ({self.lags}), got {start}"
            )
        v = _as_numpy(values).astype(np.float64)
        feats = self._features(v[..., :-1])[:, start - self.lags :]  # (B, T - start, C * lags)
        return (feats @ self.coef + self.intercept).transpose(0, 2, 1)

    def predict(self, codes: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        return self.predict_signal(self.bins.decode(codes), start)

    def forecast_signal(self, context_values: Any, horizon: int) -> np.ndarray:
        """Iterated mean forecasts ``(B, C, horizon)`` after a signal context ``(B, C, L)``."""
        v = _as_numpy(context_values).astype(np.float64)
        if v.shape[-1] < self.lags:
            raise ValueError(f"RidgeVAR: context of {v.shape[-1]} samples < lags {self.lags}")
        hist = v[..., -self.lags :]
        out = np.empty((*v.shape[:2], horizon))
        for step in range(horizon):
            nxt = self._features(hist)[:, -1] @ self.coef + self.intercept  # (B, C)
            out[..., step] = nxt
            hist = np.concatenate([hist[..., 1:], nxt[..., None]], axis=-1)
        return out

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        """Iterated mean forecasts ``(B, C, horizon)`` from code context ``(B, C, L >= lags)``."""
        return self.forecast_signal(self.bins.decode(context), horizon)


def bits_on(predictor: Any, values: np.ndarray, codes: np.ndarray, start: int) -> float:
    """Bits per channel-sample of a linear baseline (Gaussian ``mean_signal`` with its
    ``residual_std``, integrated over the code bins) on ``codes[..., start:]``, from the targets'
    bins alone (:meth:`~neurofm.evaluation.baselines.CodeBins.target_log_prob`: the full
    distribution's bits within ``V * PROB_FLOOR``): cheap enough to score every candidate size."""
    nats, count = 0.0, 0
    for lo in range(0, len(values), 32):
        mean = predictor.mean_signal(values[lo : lo + 32], start)
        std = np.broadcast_to(predictor.residual_std[:, None], mean.shape)
        targets = codes[lo : lo + 32, :, start:]
        nats -= float(predictor.bins.target_log_prob(mean, std, targets).sum())
        count += targets.size
    return nats / count / LN2


def fit_linear_baselines(
    bins: CodeBins,
    *,
    train_values: np.ndarray,
    val_values: np.ndarray,
    val_codes: np.ndarray,
    start: int,
    ar_orders: list[int],
    var_lags: list[int],
    var_ridges: list[float],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The per-channel AR and the ridge VAR with their sizes chosen on validation windows.

    Candidates longer than ``start`` (the first scored position) are left out, so every baseline
    predicts every scored position; when none fits, ``start`` itself is the one candidate.

    Returns
    -------
    fitted : dict
        ``linear_ar`` (:class:`LinearAR`) and ``ridge_var`` (:class:`RidgeVAR`), fitted on
        ``train_values``.
    selection : dict
        For each, the candidates' validation bits and the chosen setting.
    """
    n_times = min(train_values.shape[-1], val_values.shape[-1])
    allowed = [p for p in ar_orders if p <= start and p + 1 < n_times] or [start]
    ar_scores = {}
    ar_fits = {}
    for order in allowed:
        ar_fits[order] = LinearAR(bins, order=order).fit_signal(train_values)
        ar_scores[order] = bits_on(ar_fits[order], val_values, val_codes, start)
    best_order = min(ar_scores, key=ar_scores.get)

    lags_allowed = [lag for lag in var_lags if lag <= start and lag + 1 < n_times] or [start]
    var_scores: dict[str, float] = {}
    best_var, best_bits = None, np.inf
    for lags in lags_allowed:
        moments = RidgeVAR.moments(train_values, lags)
        for ridge in var_ridges:
            var = RidgeVAR(bins, lags=lags, ridge=ridge).fit_moments(moments)
            bits = bits_on(var, val_values, val_codes, start)
            var_scores[f"lags={lags}, ridge={ridge:g}"] = bits
            if bits < best_bits:
                best_var, best_bits = var, bits
    selection = {
        "linear_ar": {
            "candidates": list(ar_orders),
            "val_bits": {str(p): b for p, b in ar_scores.items()},
            "order": int(best_order),
        },
        "ridge_var": {
            "candidates_lags": list(var_lags),
            "candidates_ridge": list(var_ridges),
            "val_bits": var_scores,
            "lags": int(best_var.lags),
            "ridge": float(best_var.ridge),
        },
    }
    return {"linear_ar": ar_fits[best_order], "ridge_var": best_var}, selection
