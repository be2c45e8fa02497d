"""Synthetic recordings with known content for the preprocessing tests (imported by name: the
test folder is on the path, and an installed package may claim the name ``tests``)."""

from __future__ import annotations

import numpy as np

from neurofm.data.recording import Recording
from neurofm.types import SensorInfo


def sines(
    freqs: list[float],
    *,
    sfreq: float = 200.0,
    seconds: float = 20.0,
    n_chans: int = 3,
    types: list[str] | None = None,
) -> Recording:
    """Every channel holds the sum of unit sines at ``freqs`` (Hz)."""
    t = np.arange(int(seconds * sfreq)) / sfreq
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    data = np.tile(signal, (n_chans, 1)).astype(np.float32)
    names = [f"C{i}" for i in range(n_chans)]
    return Recording(
        data=data,
        sfreq=sfreq,
        sensors=SensorInfo(names, types or ["eeg"] * n_chans),
        source={"path": "synthetic.edf"},
    )


def amplitude(x: np.ndarray, sfreq: float, freq: float) -> float:
    """Amplitude of the ``freq`` Hz component of ``x`` (1-D), from a least-squares fit."""
    t = np.arange(x.size) / sfreq
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
    return float(np.hypot(*coef))
