"""Filters, resampling and clipping on synthetic signals with known answers and on real EEG."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from preprocessing_signals import amplitude, sines

from neurofm.errors import RecordingError
from neurofm.preprocessing import bandpass, clip, notch, resample

MIDDLE = slice(1000, -1000)  # away from the filter's edge effects


def test_bandpass_removes_out_of_band_sine_and_keeps_in_band():
    rec = sines([10.0, 60.0])
    out = bandpass(rec, 1.0, 30.0)
    x = out.data[0, MIDDLE]
    assert out.data.dtype == np.float32 and out.data.shape == rec.data.shape
    assert amplitude(x, rec.sfreq, 10.0) == pytest.approx(1.0, abs=0.01)
    assert amplitude(x, rec.sfreq, 60.0) < 0.01
    assert out.meta["preprocessing"][-1]["step"] == "bandpass"
    assert rec.data[0, 1234] == sines([10.0, 60.0]).data[0, 1234]  # input untouched


def test_highpass_and_lowpass_edges():
    rec = sines([0.2, 10.0, 70.0])
    high = bandpass(rec, 2.0, None).data[0, MIDDLE]
    low = bandpass(rec, None, 30.0).data[0, MIDDLE]
    assert amplitude(high, rec.sfreq, 0.2) < 0.02 and amplitude(high, rec.sfreq, 70.0) > 0.98
    assert amplitude(low, rec.sfreq, 70.0) < 0.01 and amplitude(low, rec.sfreq, 10.0) > 0.98


def test_notch_removes_60_hz_only():
    rec = sines([13.0, 60.0])
    x = notch(rec, [60.0]).data[0, MIDDLE]
    assert amplitude(x, rec.sfreq, 60.0) < 0.02
    assert amplitude(x, rec.sfreq, 13.0) == pytest.approx(1.0, abs=0.01)


def test_resample_keeps_duration_and_in_band_content():
    rec = sines([7.0], sfreq=250.0, seconds=12.0)
    out = resample(rec, 100.0)
    assert out.sfreq == 100.0
    assert out.n_times == 1200 and out.duration == pytest.approx(rec.duration)
    assert amplitude(out.data[0, 200:-200], 100.0, 7.0) == pytest.approx(1.0, abs=0.01)
    assert out.meta["preprocessing"][-1] == {
        "step": "resample",
        "from_sfreq": 250.0,
        "sfreq": 100.0,
    }


def test_resample_takes_nearest_sample_for_stim_channels():
    rec = sines([5.0], sfreq=200.0, seconds=2.0, n_chans=2, types=["eeg", "stim"])
    rec.data[1] = 0
    rec.data[1, 100:110] = 3
    out = resample(rec, 100.0)
    assert set(np.unique(out.data[1])) == {0.0, 3.0}
    assert np.flatnonzero(out.data[1]).tolist() == list(range(50, 55))


def test_nan_is_reported_before_filtering_with_channel_and_sample():
    rec = sines([10.0])
    rec.data[2, 777] = np.nan
    for fn in (
        lambda r: bandpass(r, 1.0, 30.0),
        lambda r: notch(r, [60.0]),
        lambda r: resample(r, 100.0),
    ):
        with pytest.raises(RecordingError) as info:
            fn(rec)
        err = info.value
        assert (err.path, err.channel, err.sample) == ("synthetic.edf", "C2", 777)
        assert "before" in str(err)


def test_clip_counts_every_clipped_sample():
    rec = sines([3.0], n_chans=2)
    rec.data[1, [10, 20, 30]] = 1e3
    out = clip(rec, 5.0)
    entry = out.meta["preprocessing"][-1]
    assert entry["n_clipped"] == 3 and entry["clipped_per_channel"] == {"C1": 3}
    assert out.data[1].max() < 20 and np.array_equal(out.data[0], rec.data[0])
    absolute = clip(rec, 2.0, mode="absolute").meta["preprocessing"][-1]
    assert absolute["clipped_per_channel"]["C1"] == 3


def test_filter_edges_are_checked():
    with pytest.raises(RecordingError, match="Nyquist"):
        bandpass(sines([10.0]), 1.0, 150.0)
    with pytest.raises(RecordingError, match="Nyquist"):
        notch(sines([10.0]), [120.0])


def test_bandpass_on_real_eeg_matches_mne(real_run):
    import mne

    out = bandpass(real_run, 1.0, 40.0)
    ref = mne.filter.filter_data(
        np.asarray(real_run.data, dtype=np.float64), real_run.sfreq, 1.0, 40.0, verbose="error"
    )
    np.testing.assert_allclose(out.data, ref, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(
    ("sfreq", "l_freq", "h_freq"), [(160.0, 0.5, 40.0), (250.0, 1.0, None), (250.0, None, 30.0)]
)
@pytest.mark.parametrize("n_times", [1, 7, 400, 2000, 5001])
def test_bandpass_equals_mne_filter_data_to_rounding(sfreq, l_freq, h_freq, n_times):
    import mne

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, n_times)).cumsum(axis=1)
    rec = replace(sines([1.0], sfreq=sfreq, n_chans=3), data=x.astype(np.float32))
    ref = mne.filter.filter_data(
        rec.data.astype(np.float64), sfreq, l_freq, h_freq, verbose="error"
    ).astype(np.float32)
    scale = max(float(np.abs(ref).max()), 1e-30)
    for overwrite in (False, True):
        data = rec.data.copy()
        out = bandpass(replace(rec, data=data), l_freq, h_freq, overwrite=overwrite)
        assert (out.data is data) == overwrite
        assert np.abs(out.data - ref).max() <= 4e-7 * scale


@pytest.mark.parametrize(("sfreq", "new"), [(160.0, 100.0), (250.0, 100.0), (100.0, 250.0)])
@pytest.mark.parametrize("n_times", [3, 16, 801, 4000])
def test_resample_equals_mne_resample(sfreq, new, n_times):
    import mne

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, n_times)).cumsum(axis=1).astype(np.float32)
    rec = replace(sines([1.0], sfreq=sfreq, n_chans=5), data=x)
    ref = mne.filter.resample(
        x.astype(np.float64), up=new, down=sfreq, npad="auto", verbose="error"
    ).astype(np.float32)
    out = resample(rec, new)
    assert out.data.shape == ref.shape and np.array_equal(out.data, ref)


@pytest.mark.parametrize("step", ["bandpass", "notch"])
def test_causal_filter_output_ignores_later_input(step):
    rec = sines([10.0, 60.0], seconds=10.0)
    noisy = rec.data.copy()
    t = 1200
    noisy[:, t + 1 :] = np.random.default_rng(0).standard_normal(noisy[:, t + 1 :].shape)
    other = replace(rec, data=noisy.astype(np.float32))
    if step == "bandpass":
        a, b = (bandpass(r, 1.0, 30.0, phase="causal") for r in (rec, other))
    else:
        a, b = (notch(r, [60.0], phase="causal") for r in (rec, other))
    # equal up to FFT rounding (the later input is noise of unit size)
    np.testing.assert_allclose(a.data[:, : t + 1], b.data[:, : t + 1], atol=1e-5)
    assert not np.allclose(a.data[:, t + 1 :], b.data[:, t + 1 :])
    assert a.meta["preprocessing"][-1]["phase"] == "causal"
    # the zero-phase filter does look ahead
    zero_a, zero_b = bandpass(rec, 1.0, 30.0), bandpass(other, 1.0, 30.0)
    assert not np.allclose(zero_a.data[:, t - 50 : t + 1], zero_b.data[:, t - 50 : t + 1])


def test_causal_filters_keep_the_pass_band_and_remove_the_stop_band():
    rec = sines([10.0, 60.0])
    band = bandpass(rec, 1.0, 30.0, phase="causal").data[0, MIDDLE]
    assert amplitude(band, rec.sfreq, 10.0) == pytest.approx(1.0, abs=0.02)
    assert amplitude(band, rec.sfreq, 60.0) < 0.02
    rec = sines([13.0, 60.0])
    line = notch(rec, [60.0], phase="causal").data[0, MIDDLE]
    assert amplitude(line, rec.sfreq, 60.0) < 0.05
    assert amplitude(line, rec.sfreq, 13.0) == pytest.approx(1.0, abs=0.02)


def test_zero_phase_default_is_mne_filter_data():
    import mne

    rec = sines([3.0, 10.0, 60.0], seconds=8.0)
    expected = mne.filter.filter_data(
        rec.data.astype(np.float64), rec.sfreq, 1.0, 30.0, verbose="error"
    )
    np.testing.assert_allclose(bandpass(rec, 1.0, 30.0).data, expected, atol=1e-5)
    with pytest.raises(RecordingError, match="phase"):
        bandpass(rec, 1.0, 30.0, phase="acausal")
