"""Frequency-band levels (zero-phase FIR, .npz samples) and the patch tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.errors import RecordingError
from neurofm.registry import TOKENIZERS, create
from neurofm.tokenizers.bands import (
    DEFAULT_BANDS,
    band_filter,
    cumulative_frequency_levels,
    default_n_taps,
    load_band_sample,
    save_band_sample,
)


def test_cumulative_levels_shape_and_union_of_bands():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1600))
    levels = cumulative_frequency_levels(x, 160.0)
    assert levels.shape == (5, 3, 1600)
    union = band_filter(x, 160.0, 0.5, 50.0, default_n_taps(160.0, DEFAULT_BANDS))
    assert np.allclose(levels[-1], union, atol=1e-10)  # adjacent bands add up exactly


def test_band_filter_is_zero_phase_and_selective():
    sfreq = 200.0
    t = np.arange(2000) / sfreq
    alpha, beta = np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 20 * t)
    out = band_filter((alpha + beta)[None], sfreq, 8.0, 13.0)[0]
    middle = slice(500, 1500)
    assert np.abs(out[middle] - alpha[middle]).max() < 0.05  # no phase shift, beta removed
    with pytest.raises(ValueError, match="Nyquist"):
        cumulative_frequency_levels(alpha[None], 80.0)


def test_band_sample_file_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((4, 500)).astype(np.float32)
    path = save_band_sample(tmp_path / "sample_001.npz", signal, 100.0)
    sample = load_band_sample(path)
    assert sample.cumulative_bands.shape == (5, 4, 500) and sample.sfreq == 100.0
    assert np.array_equal(sample.signal, signal)
    assert np.allclose(sample.bands, np.array(DEFAULT_BANDS))
    np.savez(tmp_path / "bad.npz", signal=signal, bands=sample.bands, sfreq=100.0)
    with pytest.raises(RecordingError, match="bad.npz.*cumulative_bands"):
        load_band_sample(tmp_path / "bad.npz")


def test_bands_tokenizer_decodes_exactly_with_residual():
    tok = create(TOKENIZERS, {"name": "bands", "sfreq": 160.0})
    x = np.random.default_rng(2).standard_normal((2, 3, 800)).astype(np.float32)
    out = tok.encode(x)
    assert out.codes is None and out.embeddings.shape == (2, 6, 3, 800)
    assert np.array_equal(tok.decode(out), x)
    lossy = create(TOKENIZERS, {"name": "bands", "sfreq": 160.0, "include_residual": False})
    assert lossy.encode(x).embeddings.shape == (2, 5, 3, 800)


@pytest.mark.parametrize("policy,n_patches,n_out", [("drop", 12, 96), ("pad", 13, 100)])
def test_patch_remainder_policies(policy, n_patches, n_out):
    tok = create(TOKENIZERS, {"name": "patch", "patch_len": 8, "remainder": policy})
    x = torch.randn(2, 3, 100)
    out = tok.encode(x)
    assert out.embeddings.shape == (2, 3, n_patches, 8)
    assert torch.equal(tok.decode(out), x[..., :n_out])
    assert out.info["n_dropped" if policy == "drop" else "n_padded"] == 4


def test_patch_length_not_divisible_raises():
    tok = create(TOKENIZERS, {"name": "patch", "patch_len": 8})
    with pytest.raises(ValueError, match="not a multiple of patch_len 8"):
        tok.encode(np.zeros((3, 100), np.float32))
    x = np.random.default_rng(3).standard_normal((3, 96)).astype(np.float32)
    assert np.array_equal(tok.decode(tok.encode(x)), x)
