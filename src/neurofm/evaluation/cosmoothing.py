"""Co-smoothing of spiking data: the Neural Latents Benchmark's bits per spike and a
smoothed-spikes Poisson GLM baseline.

Co-smoothing scores predicted rates of *held-out* units (never seen at the input) from the
*held-in* units of the same bins. Bits per spike (Pei et al. 2021, NLB) compares the Poisson
log-likelihood of the predicted rates with that of a null model predicting each unit's mean
count, per spike::

    nll(r, y) = sum over bins and units of r - y log r + log(y!)
    bits/spike = (nll(null, y) - nll(rates, y)) / (sum(y) * ln 2),  null_u = mean_t y[t, u]

so 0 is the mean-rate model and higher is better (a negative score predicts worse than the
mean). The null rates are the means of the scored data, as NLB computes them.

The baseline (:func:`smoothed_glm_rates`): the held-in counts are smoothed with a Gaussian
kernel and one Poisson GLM per held-out unit maps them to its rate (L2 penalty chosen per unit on
the last 20% of the training bins; fitted by Newton steps on the objective of ``sklearn``'s
``PoissonRegressor``), NLB's "smoothed spikes" baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.special import gammaln


def poisson_nll(rates: np.ndarray, counts: np.ndarray) -> float:
    """Summed Poisson negative log-likelihood (nats) of ``counts`` under ``rates`` (same shape)."""
    rates = np.asarray(rates, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if rates.shape != counts.shape:
        raise ValueError(f"poisson_nll: rates {rates.shape} and counts {counts.shape} differ")
    if (rates <= 0).any() and (counts[rates <= 0] > 0).any():
        raise ValueError("poisson_nll: a rate <= 0 where spikes were counted")
    safe = np.where(rates > 0, rates, 1.0)
    return float(np.sum(rates - counts * np.log(safe) + gammaln(counts + 1.0)))


def bits_per_spike(rates: np.ndarray, counts: np.ndarray) -> float:
    """NLB bits per spike of predicted ``rates`` (N, U) (counts per bin) for ``counts`` (N, U)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"bits_per_spike: counts must be (bins, units), got {counts.shape}")
    n_spikes = counts.sum()
    if n_spikes <= 0:
        raise ValueError("bits_per_spike: the scored counts hold no spike")
    null = np.broadcast_to(counts.mean(axis=0, keepdims=True), counts.shape)
    return (poisson_nll(null, counts) - poisson_nll(rates, counts)) / (n_spikes * np.log(2))


def fit_poisson_glm(
    x: np.ndarray, y: np.ndarray, alpha: float, *, n_iter: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (D, U) and intercepts (U,) of one Poisson GLM per column of ``y`` (N, U).

    Minimises ``mean_n(exp(eta) - y * eta) + alpha / 2 * |w|^2`` (``eta = x w + b``, the
    intercept unpenalised, as ``sklearn``'s ``PoissonRegressor``) by Newton steps, all units at
    once; ``x`` (N, D) should be standardised.
    """
    # torch (float64) for the batched Hessians: it follows the caller's torch thread setting
    x1 = torch.from_numpy(np.concatenate([x, np.ones((x.shape[0], 1))], axis=1))  # (N, D + 1)
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float64))  # (N, U)
    n, d1 = x1.shape
    coef = torch.zeros(d1, y_t.shape[1], dtype=torch.float64)
    coef[-1] = torch.log(torch.clamp(y_t.mean(dim=0), min=1e-6))
    penalty = alpha * torch.eye(d1, dtype=torch.float64)
    penalty[-1, -1] = 0.0
    for _ in range(n_iter):
        mu = torch.exp(torch.clamp(x1 @ coef, -20.0, 20.0))  # (N, U)
        grad = x1.T @ (mu - y_t) / n + penalty @ coef  # (D + 1, U)
        hessian = (x1.T[None] * mu.T[:, None, :]) @ x1 / n + penalty  # (U, D + 1, D + 1)
        step = torch.linalg.solve(hessian + 1e-8 * torch.eye(d1, dtype=torch.float64), grad.T)
        coef = coef - step.T
        if step.abs().max() < 1e-6:
            break
    coef = coef.numpy()
    return coef[:-1], coef[-1]


def smoothed_glm_rates(
    held_in_train: np.ndarray,
    held_out_train: np.ndarray,
    held_in_test: np.ndarray,
    *,
    sigma_bins: float = 1.0,
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0),
) -> np.ndarray:
    """Rates (N_test, U_out) of the held-out units from smoothed held-in counts, one GLM a unit.

    Parameters
    ----------
    held_in_train, held_out_train : ndarray, shapes (N, U_in) and (N, U_out)
        Counts of the training bins.
    held_in_test : ndarray, shape (N_test, U_in)
        Held-in counts of the scored bins.
    sigma_bins : float
        Standard deviation (bins) of the Gaussian smoothing kernel.
    alphas : tuple of float
        L2 penalties tried (the best on the last 20% of training bins, per unit).
    """

    def smooth(x: np.ndarray) -> np.ndarray:
        return gaussian_filter1d(np.asarray(x, dtype=np.float64), sigma_bins, axis=0)

    x_train, x_test = smooth(held_in_train), smooth(held_in_test)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y = np.asarray(held_out_train, dtype=np.float64)
    split = int(0.8 * x_train.shape[0])

    def rates(x: np.ndarray, fitted: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return np.exp(np.clip(x @ fitted[0] + fitted[1], -20.0, 20.0))

    scores = []  # (n_alphas, U): validation NLL per unit
    for alpha in alphas:
        predicted = rates(x_train[split:], fit_poisson_glm(x_train[:split], y[:split], alpha))
        scores.append(predicted - y[split:] * np.log(predicted))
    best = np.asarray(alphas)[np.argmin(np.sum(scores, axis=1), axis=0)]  # (U,)
    out = np.zeros((x_test.shape[0], y.shape[1]))
    for alpha in np.unique(best):
        units = best == alpha
        out[:, units] = rates(x_test, fit_poisson_glm(x_train, y[:, units], float(alpha)))
    return out
