"""Channel steps: pick, mark / drop / interpolate bads, montage, re-reference."""

from __future__ import annotations

import mne
import numpy as np
import pytest
from preprocessing_signals import sines

from neurofm.errors import RecordingError
from neurofm.preprocessing import (
    drop_bads,
    interpolate_bads,
    mark_bads,
    pick_types,
    rereference,
    set_montage,
)

MONTAGE = (
    "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
)


def test_pick_types_keeps_order_and_logs_dropped():
    rec = sines([5.0], n_chans=4, types=["eeg", "eog", "eeg", "stim"])
    out = pick_types(rec, ["eeg"])
    assert out.ch_names == ["C0", "C2"] and out.data.dtype == np.float32
    assert out.meta["preprocessing"][-1]["dropped"] == ["C1", "C3"]
    with pytest.raises(RecordingError, match="no channel of types"):
        pick_types(rec, ["mag"])
    with pytest.raises(RecordingError, match="unknown channel types"):
        pick_types(rec, ["eegg"])


def test_mark_and_drop_bads():
    rec = sines([5.0], n_chans=6)
    rng = np.random.default_rng(0)
    rec.data[:] = rng.normal(size=rec.data.shape) * rng.uniform(0.8, 1.2, (6, 1))
    rec.data[1] = 0.0
    rec.data[4] *= 50.0
    marked = mark_bads(rec, channels=["C5"], flat=1e-9, z_threshold=3.0)
    assert marked.meta["preprocessing"][-1]["marked"] == {
        "C1": "flat",
        "C4": "outlier",
        "C5": "listed",
    }
    dropped = drop_bads(marked)
    assert dropped.ch_names == ["C0", "C2", "C3"]
    assert dropped.meta["preprocessing"][-1]["dropped"] == ["C1", "C4", "C5"]
    with pytest.raises(RecordingError, match="not in the recording"):
        mark_bads(rec, channels=["Cz"])


def test_interpolation_of_a_bad_real_eeg_channel_is_close_to_the_original(real_run):
    from neurofm.preprocessing import bandpass

    rec = bandpass(set_montage(real_run, MONTAGE), 1.0, 30.0)
    assert np.isfinite(rec.sensors.positions).all()
    name = "C3.."
    i = rec.ch_names.index(name)
    original = rec.data[i].copy()
    broken = rec.data.copy()
    broken[i] = np.random.default_rng(0).normal(0, 1e-4, rec.n_times)
    damaged = mark_bads(type(rec)(**{**rec.__dict__, "data": broken}), channels=[name])
    out = interpolate_bads(damaged)
    assert out.sensors.bads == [] and out.meta["preprocessing"][-1]["interpolated"] == [name]
    r = np.corrcoef(out.data[i], original)[0, 1]
    assert r > 0.8, r
    others = np.delete(np.arange(rec.n_chans), i)
    np.testing.assert_array_equal(out.data[others], broken[others])


def test_interpolation_needs_positions():
    rec = mark_bads(sines([5.0], n_chans=4), channels=["C1"])
    with pytest.raises(RecordingError, match="set_montage"):
        interpolate_bads(rec)


def test_average_reference_zeroes_the_channel_mean_and_skips_bads():
    rng = np.random.default_rng(1)
    rec = sines([5.0], n_chans=4)
    rec.data[:] = rng.normal(size=rec.data.shape).astype(np.float32)
    out = rereference(mark_bads(rec, channels=["C3"]), "average")
    np.testing.assert_allclose(out.data[:3].mean(axis=0), 0, atol=1e-6)
    single = rereference(rec, "C0")
    assert single.ch_names == ["C1", "C2", "C3"]
    np.testing.assert_allclose(single.data[0], rec.data[1] - rec.data[0], atol=1e-6)
