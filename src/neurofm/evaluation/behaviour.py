"""Behaviour decoding scores and linear baselines: R² with moving-block bootstrap intervals, and
ridge / Wiener-filter regressions (the current and previous bins of every unit)."""

from __future__ import annotations

import numpy as np


def r2_score(y: np.ndarray, prediction: np.ndarray) -> float:
    """Coefficient of determination of ``prediction`` (N, K), averaged over the K columns."""
    residual = ((y - prediction) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))


def block_bootstrap(
    y: np.ndarray, prediction: np.ndarray, *, n: int, block: int, seed: int
) -> tuple[float, float]:
    """95% percentile interval of :func:`r2_score` over moving-block resamples of the rows."""
    rng = np.random.default_rng(seed)
    n_rows = y.shape[0]
    n_blocks = int(np.ceil(n_rows / block))
    scores = []
    for _ in range(n):
        starts = rng.integers(0, n_rows - block + 1, n_blocks)
        rows = (starts[:, None] + np.arange(block)).reshape(-1)
        scores.append(r2_score(y[rows], prediction[rows]))
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def lagged(counts: np.ndarray, n_lags: int) -> np.ndarray:
    """(T, U * n_lags) features: the counts at bins t, t-1, ..., t-n_lags+1 (zeros before 0)."""
    padded = np.concatenate([np.zeros((n_lags - 1, counts.shape[1])), counts])
    return np.concatenate(
        [padded[n_lags - 1 - lag : padded.shape[0] - lag] for lag in range(n_lags)], axis=1
    )


def two_sided_lags(counts: np.ndarray, n_lags: int) -> np.ndarray:
    """(T, U * (2 n_lags + 1)) features: counts at bins t - n_lags .. t + n_lags (zeros outside)."""
    past = lagged(counts, n_lags + 1)  # t, t-1, ..., t-n_lags
    future = lagged(counts[::-1], n_lags + 1)[::-1][:, counts.shape[1] :]  # t+1 .. t+n_lags
    return np.concatenate([past, future], axis=1)


def fit_ridge(
    features: np.ndarray, y: np.ndarray, ridges: tuple[float, ...]
) -> tuple[np.ndarray, float]:
    """Ridge weights (with intercept) on ``features``, penalty chosen on the last 20% of rows."""
    split = int(0.8 * features.shape[0])

    def solve(x: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
        x1 = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        penalty = ridge * np.eye(x1.shape[1])
        penalty[-1, -1] = 0.0
        return np.linalg.solve(x1.T @ x1 + penalty, x1.T @ target)

    def predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1) @ weights

    scores = {
        ridge: r2_score(
            y[split:], predict(solve(features[:split], y[:split], ridge), features[split:])
        )
        for ridge in ridges
    }
    best = max(scores, key=scores.get)
    return solve(features, y, best), best
