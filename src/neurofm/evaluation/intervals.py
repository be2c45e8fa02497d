"""Block-bootstrap intervals over held-out windows.

Scores of neighbouring windows of one recording are correlated (the brain state drifts slowly),
so windows are resampled in contiguous blocks (the moving-block bootstrap, Künsch 1989): each
resample concatenates ``ceil(M / b)`` blocks of ``b`` consecutive windows, each starting at a
uniformly drawn window, cut to ``M`` windows. Every predictor is resampled with the **same**
windows, so the interval of a difference (model minus baseline) is paired. Intervals are the
percentile intervals of the resampled means. Windows must be given in time order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def default_block(n_windows: int) -> int:
    """Windows per block when none is given: ``ceil(sqrt(M))`` (long blocks, cautious)."""
    return max(1, math.ceil(math.sqrt(n_windows)))


def block_resamples(n_windows: int, n_resamples: int, block: int, seed: int) -> np.ndarray:
    """Window indices ``(n_resamples, n_windows)`` of moving-block bootstrap resamples."""
    if n_windows < 1 or block < 1 or n_resamples < 1:
        raise ValueError(
            f"block bootstrap: need n_windows, block, n_resamples >= 1, got "
            f"{n_windows}, {block}, {n_resamples}"
        )
    block = min(block, n_windows)
    n_blocks = math.ceil(n_windows / block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_windows - block + 1, (n_resamples, n_blocks))
    index = starts[..., None] + np.arange(block)  # (R, n_blocks, block)
    return index.reshape(n_resamples, -1)[:, :n_windows]


def _interval(samples: np.ndarray, mean: float, level: float) -> dict[str, float]:
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(mean), "low": float(low), "high": float(high)}


def bootstrap_intervals(
    per_window: dict[str, np.ndarray],
    *,
    reference: str = "model",
    n_resamples: int = 1000,
    block: int | None = None,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Intervals of each predictor's mean score and of ``reference`` minus each other predictor.

    Parameters
    ----------
    per_window : dict of name to array, shape (M,)
        A score per window (e.g. bits per channel-sample), the windows in time order and the same
        windows for every name. Each window must weigh alike (the same number of scored samples).
    reference : str
        The predictor differences are taken from (skipped when absent).
    n_resamples, block, seed, level
        Bootstrap resamples, windows per block (default :func:`default_block`), seed and
        coverage.

    Returns
    -------
    dict
        ``scores``: ``{name: {mean, low, high}}``; ``differences``: ``{name: {mean, low, high,
        below_zero}}`` of ``reference - name`` (``below_zero``: the whole interval is below 0);
        and the settings ``n_windows``, ``block_windows``, ``n_resamples``, ``level``, ``seed``.
    """
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in per_window.items()}
    sizes = {v.shape for v in scores.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) != 1:
        raise ValueError(f"bootstrap: every score needs one value per window, got {sizes}")
    n_windows = next(iter(sizes))[0]
    block = block or default_block(n_windows)
    index = block_resamples(n_windows, n_resamples, block, seed)
    out: dict[str, Any] = {
        "n_windows": int(n_windows),
        "block_windows": int(min(block, n_windows)),
        "n_resamples": int(n_resamples),
        "level": float(level),
        "seed": int(seed),
        "scores": {
            name: _interval(v[index].mean(axis=1), v.mean(), level) for name, v in scores.items()
        },
        "differences": {},
    }
    if reference in scores:
        ref = scores[reference]
        for name, v in scores.items():
            if name == reference:
                continue
            diff = ref - v
            interval = _interval(diff[index].mean(axis=1), diff.mean(), level)
            out["differences"][name] = {**interval, "below_zero": interval["high"] < 0}
    return out
