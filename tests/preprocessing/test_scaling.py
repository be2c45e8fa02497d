"""RobustScaler: statistics, round trip, manifest form, bounded sampling, torch inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.errors import RecordingError
from neurofm.preprocessing import RobustScaler


def _data(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = np.array([[1.0], [10.0], [0.1]])
    return [(rng.normal(size=(3, 5000)) * scale + 5).astype(np.float32) for _ in range(2)]


def test_fit_median_iqr_and_round_trip():
    arrays = _data()
    scaler = RobustScaler().fit(arrays, channels=["a", "b", "c"])
    joined = np.concatenate(arrays, axis=1).astype(np.float64)
    q25, q50, q75 = np.percentile(joined, [25, 50, 75], axis=1)
    np.testing.assert_allclose(scaler.center, q50)
    np.testing.assert_allclose(scaler.scale, q75 - q25)
    y = scaler.transform(arrays[0])
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.median(y, axis=1), 0, atol=0.05)
    np.testing.assert_allclose(scaler.inverse_transform(y), arrays[0], rtol=1e-5, atol=1e-5)


def test_manifest_form_round_trip_and_validation():
    scaler = RobustScaler().fit(_data(), channels=["a", "b", "c"], fitted_on="train")
    d = scaler.to_dict()
    assert d["kind"] == "robust" and d["fitted_on"] == "train" and d["channels"] == ["a", "b", "c"]
    again = RobustScaler.from_dict(d)
    np.testing.assert_array_equal(again.center, scaler.center)
    with pytest.raises(ValueError, match="scaler.kind"):
        RobustScaler.from_dict({**d, "kind": "zscore"})
    with pytest.raises(ValueError, match="3 channels but 2 centers"):
        RobustScaler.from_dict({**d, "center": d["center"][:2]})


def test_max_samples_bounds_the_sample_and_flat_channels_raise():
    scaler = RobustScaler().fit(_data(), max_samples=1000)
    assert scaler.n_samples <= 1000
    flat = _data()
    flat[0][2] = 1.0
    flat[1][2] = 1.0
    with pytest.raises(RecordingError, match=r"zero interquartile range.*\['c'\]"):
        RobustScaler().fit(flat, channels=["a", "b", "c"])


def test_torch_tensors_keep_dtype():
    scaler = RobustScaler().fit(_data())
    x = torch.from_numpy(_data(1)[0])[None]  # (1, C, T)
    y = scaler.transform(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    torch.testing.assert_close(scaler.inverse_transform(y), x, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="input has 2 channels"):
        scaler.transform(x[:, :2])
