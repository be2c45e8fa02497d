"""The one-FFT filter bank of the band decomposition: equal to direct zero-phase convolution,
even or odd reflection at the ends, and equal to MNE ``filter_data`` with MNE's own filters."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurofm.tokenizers.bands import (
    apply_filter_bank,
    band_filter,
    cumulative_frequency_levels,
    default_n_taps,
)

BANDS = [(0.5, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 50.0)]


def direct(x: np.ndarray, taps: np.ndarray, mode: str) -> np.ndarray:
    half = taps.shape[1] // 2
    out = []
    for h in taps:
        rows = []
        for row in x:
            padded = np.pad(row, half, mode="reflect", reflect_type=mode)
            rows.append(np.convolve(padded, h, mode="valid"))
        out.append(rows)
    return np.asarray(out)


@pytest.mark.parametrize("mode", ["even", "odd"])
def test_filter_bank_equals_direct_convolution(mode):
    rng = np.random.default_rng(0)
    x, taps = rng.standard_normal((3, 200)), rng.standard_normal((2, 31))
    got = apply_filter_bank(x, taps, chunk=2, reflect=mode)
    np.testing.assert_allclose(got, direct(x, taps, mode), rtol=0, atol=1e-12)
    assert apply_filter_bank(x[0], taps).shape == (2, 200)
    with pytest.raises(ValueError, match="N odd"):
        apply_filter_bank(x, taps[:, :30])
    with pytest.raises(ValueError, match="reflect must be"):
        apply_filter_bank(x, taps, reflect="zero")


def test_levels_are_running_sums_of_the_bands():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 640))
    n = default_n_taps(160.0, BANDS)
    bands = np.stack([band_filter(x, 160.0, lo, hi, n) for lo, hi in BANDS])
    levels = cumulative_frequency_levels(x, 160.0, BANDS)
    np.testing.assert_allclose(levels, np.cumsum(bands, axis=0), rtol=0, atol=1e-12)


def test_same_output_as_mne_filter_data_per_band():
    pytest.importorskip("mne")
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root))
    try:
        from benchmarks import P9_bands
    finally:
        sys.path.remove(str(root))
    x = np.random.default_rng(2).standard_normal((2, 4000))
    ours = apply_filter_bank(x, np.cumsum(P9_bands.mne_filters(), axis=0), reflect="odd")
    peer = P9_bands.mne_levels(x)
    for k in range(len(BANDS)):
        assert np.abs(ours[k] - peer[k]).max() <= 1e-6 * np.abs(peer[k]).max()
