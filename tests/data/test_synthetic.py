"""Synthetic recordings reproduce their ground truth: spectral peaks, evoked responses, tuning."""

from __future__ import annotations

import numpy as np
from scipy.signal import welch

from neurofm.data.synthetic import synthetic_eeg, synthetic_spikes, synthetic_store


def test_eeg_psd_peaks_at_the_oscillations_over_a_1_over_f_background():
    rec = synthetic_eeg(
        n_chans=4,
        sfreq=250.0,
        duration=60.0,
        oscillations=((10.0, 5e-6), (23.0, 4e-6)),
        n_events=0,
        evoked={},
        seed=3,
    )
    freqs, psd = welch(rec.data, fs=rec.sfreq, nperseg=1000)
    mean = psd.mean(axis=0)
    for freq in (10.0, 23.0):
        near = (freqs > freq - 4) & (freqs < freq + 4)
        assert abs(freqs[near][np.argmax(mean[near])] - freq) <= 0.25
        assert mean[np.argmin(abs(freqs - freq))] > 5 * np.median(mean[near])
    band = (freqs >= 2) & (freqs <= 40) & (abs(freqs - 10) > 2) & (abs(freqs - 23) > 2)
    slope = np.polyfit(np.log(freqs[band]), np.log(mean[band]), 1)[0]
    assert -1.4 < slope < -0.6  # the 1/f background (exponent 1)
    truth = rec.meta["ground_truth"]
    assert [o["frequency_hz"] for o in truth["oscillations"]] == [10.0, 23.0]
    again = synthetic_eeg(
        n_chans=4,
        sfreq=250.0,
        duration=60.0,
        oscillations=((10.0, 5e-6), (23.0, 4e-6)),
        n_events=0,
        evoked={},
        seed=3,
    )
    assert np.array_equal(rec.data, again.data)


def test_eeg_evoked_response_sits_at_the_recorded_onsets():
    amplitude, latency = 2e-5, 0.1
    rec = synthetic_eeg(
        n_chans=3,
        sfreq=200.0,
        duration=120.0,
        oscillations=(),
        evoked={"A": amplitude, "B": -amplitude},
        n_events=60,
        background_amplitude=2e-6,
        evoked_latency=latency,
        seed=1,
    )
    onsets = np.round(rec.events.onset * rec.sfreq).astype(int)
    desc = np.array(rec.events.description)
    assert set(desc) == {"A", "B"} and len(desc) == 60
    epochs = np.stack([rec.data[:, o : o + 60] for o in onsets])  # (n, C, 0.3 s)
    gains = np.array(rec.meta["ground_truth"]["channel_gains"])
    for name, sign in (("A", 1), ("B", -1)):
        average = epochs[desc == name].mean(axis=0)  # (C, 60)
        peak = np.argmax(sign * average, axis=1)
        assert np.all(np.abs(peak - latency * rec.sfreq) <= 1)
        np.testing.assert_allclose(
            sign * average.max(axis=1) if sign > 0 else -average.min(axis=1),
            amplitude * gains,
            rtol=0.2,
        )


def test_spike_rates_follow_the_cosine_tuning():
    rec = synthetic_spikes(n_units=12, n_bins=40000, bin_size=0.01, seed=5)
    truth = rec.meta["ground_truth"]
    direction = np.array(truth["direction_rad"])
    assert rec.sensors.types == ["spikes"] * 12 and rec.sfreq == 100.0
    assert np.all(rec.data >= 0) and np.all(rec.data == np.round(rec.data))
    design = np.column_stack([np.ones_like(direction), np.cos(direction), np.sin(direction)])
    coef, *_ = np.linalg.lstsq(design, rec.data.T / 0.01, rcond=None)  # rates in Hz
    np.testing.assert_allclose(coef[0], truth["baseline_rate_hz"], rtol=0.1)
    np.testing.assert_allclose(
        np.hypot(coef[1], coef[2]), truth["modulation_hz"], rtol=0.2, atol=0.5
    )
    preferred = np.arctan2(coef[2], coef[1])
    error = np.angle(np.exp(1j * (preferred - np.array(truth["preferred_direction_rad"]))))
    assert np.all(np.abs(error) < 0.3)
    assert rec.events.payload[0]["direction_rad"] == direction[0]


def test_synthetic_store_holds_every_subject_session_and_run(tmp_path):
    store = synthetic_store(
        tmp_path, n_subjects=2, n_sessions=2, n_runs=2, duration=6.0, n_events=3
    )
    assert len(store) == 8
    assert {(r.subject, r.session, r.run) for r in store.recordings} == {
        (f"{a:02d}", f"{b:02d}", f"{c:02d}") for a in range(2) for b in range(2) for c in range(2)
    }
    assert store[0].array.shape == (600, 4)
