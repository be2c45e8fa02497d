"""Forecasting metrics on one scale for every model family and every baseline.

Conventions
-----------
- ``log_probs`` are natural-log probabilities over ``V`` code bins, shape ``(..., V)``; position
  ``t`` of a sequence predicts the code at ``t + 1``.
- **bits per channel-sample** is the mean of ``-log2 p(target)`` over every scored channel and time
  sample (a uniform distribution over ``V`` bins scores ``log2 V``; a certain, correct one 0).
- Signal-space scores compare point forecasts with the continuous signal (the window the
  tokenizer encoded, in its scaled units). R² is pooled over channels, each channel centred on its
  own mean over the scored samples: ``R² = 1 - SSE / sum_c sum_t (y_ct - mean_c)²``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LN2 = float(np.log(2.0))


def _as_numpy(x: Any) -> np.ndarray:
    """A numpy view of ``x`` (torch tensors are detached and moved to host memory)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def log_softmax(logits: Any) -> np.ndarray:
    """Natural-log probabilities from scores ``(..., V)`` (float64, numerically stable)."""
    z = _as_numpy(logits).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def log_probabilities(probabilities: Any, *, floor: float = 1e-12) -> np.ndarray:
    """Natural-log of a per-bin predictive distribution ``(..., V)``.

    Each distribution is floored at ``floor`` and renormalised, so a bin given zero mass costs
    ``-log2(floor)`` bits instead of infinity. Raises ValueError when a row does not sum to ~1.
    """
    p = _as_numpy(probabilities).astype(np.float64)
    if (p < 0).any() or not np.isfinite(p).all():
        raise ValueError("probabilities must be finite and non-negative")
    total = p.sum(axis=-1, keepdims=True)
    if not np.allclose(total, 1.0, atol=1e-4):
        worst = float(np.abs(total - 1.0).max())
        raise ValueError(
            f"probabilities do not sum to 1 over the last axis (worst error {worst:.3g})"
        )
    p = np.maximum(p, floor)
    return np.log(p / p.sum(axis=-1, keepdims=True))


def _gather(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    targets = _as_numpy(targets).astype(np.int64)
    if log_probs.shape[:-1] != targets.shape:
        raise ValueError(
            f"predictions {log_probs.shape[:-1]} (+V) and targets {targets.shape} differ"
        )
    n_bins = log_probs.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= n_bins):
        raise ValueError(
            f"targets outside the {n_bins} bins: range {targets.min()}..{targets.max()}"
        )
    return np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def bits_per_channel_sample(log_probs: Any, targets: Any) -> float:
    """Mean ``-log2 p(target)`` over every element of ``targets``.

    Parameters
    ----------
    log_probs : array, shape (..., V)
        Natural-log predictive probabilities (see :func:`log_softmax`, :func:`log_probabilities`).
    targets : int array, shape (...)
        The codes that occurred.
    """
    lp = _gather(_as_numpy(log_probs).astype(np.float64), targets)
    return float(-lp.mean() / LN2)


def next_step_accuracy(scores: Any, targets: Any) -> float:
    """Fraction of positions where the most probable bin of ``scores (..., V)`` is the target."""
    pred = _as_numpy(scores).argmax(axis=-1)
    targets = _as_numpy(targets)
    if pred.shape != targets.shape:
        raise ValueError(f"predictions {pred.shape} and targets {targets.shape} differ")
    return float((pred == targets).mean())


def expected_value(log_probs: Any, bin_values: np.ndarray) -> np.ndarray:
    """The mean of each predictive distribution in signal space: ``sum_k p_k v_k``, shape (...)."""
    return np.exp(_as_numpy(log_probs).astype(np.float64)) @ np.asarray(bin_values, np.float64)


def forecast_mse(prediction: Any, truth: Any) -> float:
    """Mean squared error between point forecasts and the signal (same shape)."""
    p, y = _as_numpy(prediction).astype(np.float64), _as_numpy(truth).astype(np.float64)
    if p.shape != y.shape:
        raise ValueError(f"prediction {p.shape} and truth {y.shape} differ")
    return float(np.mean((p - y) ** 2))


def r_squared(prediction: Any, truth: Any) -> float:
    """Pooled R² of forecasts ``(B, C, T)``, each channel centred on its own mean (see module doc)."""
    p, y = _as_numpy(prediction).astype(np.float64), _as_numpy(truth).astype(np.float64)
    if p.shape != y.shape or y.ndim != 3:
        raise ValueError(f"expected two (B, C, T) arrays, got {p.shape} and {y.shape}")
    sse = np.sum((p - y) ** 2)
    sst = np.sum((y - y.mean(axis=(0, 2), keepdims=True)) ** 2)
    return float(1.0 - sse / sst) if sst > 0 else float("nan")


def rollout_error(prediction: Any, truth: Any) -> dict[str, list[float]]:
    """Error against horizon of multi-step forecasts.

    Parameters
    ----------
    prediction, truth : array, shape (B, C, H)
        Point forecasts for steps ``1..H`` after the context and the signal there.

    Returns
    -------
    dict
        ``mse`` (H,) mean squared error at each horizon, ``nmse`` (H,) the same divided by the
        variance of ``truth`` over all its samples (1.0 = no better than predicting the mean), and
        ``window_mse`` (B,) each window's error over all its channels and steps (for intervals
        and paired differences over windows).
    """
    p, y = _as_numpy(prediction).astype(np.float64), _as_numpy(truth).astype(np.float64)
    if p.shape != y.shape or y.ndim != 3:
        raise ValueError(f"expected two (B, C, H) arrays, got {p.shape} and {y.shape}")
    squared = (p - y) ** 2
    mse = squared.mean(axis=(0, 1))
    var = float(y.var())
    return {
        "mse": mse.tolist(),
        "nmse": (mse / var if var > 0 else mse * np.nan).tolist(),
        "window_mse": squared.mean(axis=(1, 2)).tolist(),
    }


class ForecastAccumulator:
    """Streaming one-step scores over batches, so that ``(N, C, T, V)`` is never held at once.

    Call :meth:`update` per batch, then :meth:`result` for bits per channel-sample, next-step
    accuracy, MSE and pooled R² (see the module doc). ``n_chans`` fixes the channel axis for R².
    A predictor without a distribution over the code bins (``log_probs`` None) gets no bits or
    accuracy; one without a point forecast (``prediction`` None) no MSE or R².
    """

    def __init__(self, n_chans: int) -> None:
        self.n_chans = int(n_chans)
        self.n = 0
        self.n_coded = 0
        self.n_pointed = 0
        self.nll_nats = 0.0
        self.correct = 0
        self.sse = 0.0
        self.count_c = np.zeros(self.n_chans)
        self.sum_c = np.zeros(self.n_chans)
        self.sumsq_c = np.zeros(self.n_chans)
        self.window_nats: list[np.ndarray] = []

    def update(self, log_probs: Any, targets: Any, prediction: Any, truth: Any) -> None:
        """Add one batch.

        Parameters
        ----------
        log_probs : array, shape (B, C, T, V), or None
            Predictive log-probabilities for the scored positions.
        targets : int array, shape (B, C, T)
            The codes that occurred there.
        prediction : array, shape (B, C, T), or None
            Point forecasts in signal space.
        truth : array, shape (B, C, T)
            The continuous signal.
        """
        targets = _as_numpy(targets)
        y = _as_numpy(truth).astype(np.float64)
        if targets.ndim != 3 or targets.shape[1] != self.n_chans:
            raise ValueError(f"expected targets (B, {self.n_chans}, T), got {targets.shape}")
        p = None if prediction is None else _as_numpy(prediction).astype(np.float64)
        if y.shape != targets.shape or (p is not None and p.shape != targets.shape):
            got = None if p is None else p.shape
            raise ValueError(f"targets {targets.shape}, prediction {got}, truth {y.shape} differ")
        self.n += targets.size
        if log_probs is not None:
            lp = _as_numpy(log_probs).astype(np.float64)
            nats = -_gather(lp, targets).sum(axis=(1, 2))  # (B,) per window
            self.window_nats.append(nats / (targets.shape[1] * targets.shape[2]))
            self.nll_nats += float(nats.sum())
            self.correct += int((lp.argmax(axis=-1) == targets).sum())
            self.n_coded += targets.size
        if p is not None:
            self.sse += float(np.sum((p - y) ** 2))
            self.n_pointed += targets.size
        self.count_c += targets.shape[0] * targets.shape[2]
        self.sum_c += y.sum(axis=(0, 2))
        self.sumsq_c += (y**2).sum(axis=(0, 2))

    def window_bits(self) -> np.ndarray | None:
        """Bits per channel-sample of each window added, in order ``(M,)`` (None without bits)."""
        if self.n_coded != self.n or not self.window_nats:
            return None
        return np.concatenate(self.window_nats) / LN2

    def result(self) -> dict[str, float | None]:
        """``bits_per_channel_sample``, ``next_step_accuracy``, ``mse``, ``r2`` (None where the
        predictor gave no distribution or no point forecast), ``n_scored``."""
        if self.n == 0:
            raise ValueError("no positions were scored")
        coded = self.n_coded == self.n
        pointed = self.n_pointed == self.n
        mean_c = self.sum_c / np.maximum(self.count_c, 1)
        sst = float(np.sum(self.sumsq_c - self.count_c * mean_c**2))
        return {
            "bits_per_channel_sample": self.nll_nats / self.n / LN2 if coded else None,
            "next_step_accuracy": self.correct / self.n if coded else None,
            "mse": self.sse / self.n if pointed else None,
            "r2": (1.0 - self.sse / sst if sst > 0 else float("nan")) if pointed else None,
            "n_scored": int(self.n),
        }
