"""Synthetic signals with known structure for the evaluation tests."""

from __future__ import annotations

import numpy as np


def ar2_windows(
    n_windows: int, n_chans: int, n_times: int, *, coef=(1.5, -0.75), noise=0.3, seed: int = 0
) -> np.ndarray:
    """Windows ``(N, C, T)`` of a stationary AR(2) process ``x_t = a1 x_{t-1} + a2 x_{t-2} + e``."""
    rng = np.random.default_rng(seed)
    burn = 200
    total = n_windows * n_times + burn
    e = rng.standard_normal((n_chans, total)) * noise
    x = np.zeros((n_chans, total))
    for t in range(2, total):
        x[:, t] = coef[0] * x[:, t - 1] + coef[1] * x[:, t - 2] + e[:, t]
    x = x[:, burn:].reshape(n_chans, n_windows, n_times)
    return np.ascontiguousarray(np.moveaxis(x, 1, 0))


def colored_windows(
    n_windows: int,
    n_chans: int,
    n_times: int,
    sfreq: float,
    *,
    slope: float = 1.0,
    sine_hz: float | None = None,
    sine_amp: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Windows of 1/f^slope noise (unit variance per channel) plus an optional sinusoid."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    amp = np.zeros_like(freqs)
    amp[1:] = freqs[1:] ** (-slope / 2)
    spec = (
        rng.standard_normal((n_windows, n_chans, freqs.size))
        + 1j * rng.standard_normal((n_windows, n_chans, freqs.size))
    ) * amp
    x = np.fft.irfft(spec, n=n_times, axis=-1)
    x /= x.std(axis=-1, keepdims=True).mean()
    if sine_hz is not None:
        t = np.arange(n_times) / sfreq
        phase = rng.uniform(0, 2 * np.pi, (n_windows, n_chans, 1))
        x = x + sine_amp * np.sin(2 * np.pi * sine_hz * t + phase)
    return x


def mu_law_values(vocab_size: int, *, mu: float = 255.0, scale: float = 4.0) -> np.ndarray:
    """Decoded value of each of ``vocab_size`` mu-law codes on ``[-scale, scale]``."""
    y = np.linspace(-1, 1, vocab_size)
    return scale * np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
