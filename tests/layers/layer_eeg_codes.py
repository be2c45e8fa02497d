"""Real EEG as mu-law codes for the cache and attention tests of this folder."""

from __future__ import annotations

import math

import numpy as np
import torch


def real_eeg_codes(
    shared_data, n_times: int, vocab_size: int, *, n_chans: int = 16, start: int = 800
) -> torch.Tensor:
    """(1, n_chans, n_times) mu-law codes of the first ``n_chans`` channels of a real EEGBCI run
    from sample ``start`` (each channel robustly scaled)."""
    import mne

    raw = mne.io.read_raw_edf(
        shared_data / "eegbci_S001" / "S001R04.edf", preload=False, verbose="error"
    )
    x = raw.get_data(picks=list(range(n_chans)), start=start, stop=start + n_times)
    x = x - np.median(x, axis=1, keepdims=True)
    x = np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)
    mu = vocab_size - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return torch.from_numpy(np.rint((y + 1) / 2 * mu).astype(np.int64))[None]
