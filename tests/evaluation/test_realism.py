import numpy as np
import pytest
from evaluation_signals import colored_windows

from neurofm.evaluation import realism

SFREQ = 100.0


@pytest.fixture(scope="module")
def real():
    return colored_windows(40, 4, 256, SFREQ, slope=1.0, seed=0)


def test_identical_sets_are_perfect(real):
    out = realism.compare(real, real, SFREQ, n_permutations=100)
    assert out["spectrum"]["max_abs_band_log10_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert out["spectrum"]["psd_log10_rms"] == pytest.approx(0.0, abs=1e-12)
    assert out["channels"]["correlation_rms"] == pytest.approx(0.0, abs=1e-12)
    assert out["amplitude"]["ks_mean"] == 0.0
    assert out["two_sample"]["p_value"] > 0.5
    assert out["realistic"] and not any(out["flags"].values())


def test_independent_draws_of_the_same_process_pass(real):
    other = colored_windows(40, 4, 256, SFREQ, slope=1.0, seed=7)
    out = realism.compare(real, other, SFREQ, n_permutations=200)
    assert out["realistic"], out["flags"]


def test_other_one_over_f_slope_is_flagged(real):
    steeper = colored_windows(40, 4, 256, SFREQ, slope=2.0, seed=3)
    out = realism.compare(real, steeper, SFREQ, n_permutations=200)
    assert out["flags"]["spectrum"] and out["flags"]["two_sample"]
    assert out["spectrum"]["band_log10_ratio"]["gamma"] < -0.5  # same variance, less fast power
    assert not out["realistic"]


def test_added_alpha_rhythm_is_flagged_in_the_alpha_band(real):
    alpha = colored_windows(40, 4, 256, SFREQ, slope=1.0, sine_hz=10.0, sine_amp=1.0, seed=4)
    out = realism.compare(real, alpha, SFREQ, n_permutations=200)
    bands = out["spectrum"]["band_log10_ratio"]
    assert bands["alpha"] > 0.5 and abs(bands["delta"]) < 0.3
    assert out["flags"]["spectrum"] and out["two_sample"]["p_value"] < 0.05


def test_amplitude_and_channel_mismatch_flagged(real):
    mixed = real.copy()
    mixed[:, 1] = 0.7 * real[:, 0] + 0.3 * real[:, 1]  # strong correlation that real lacks
    out = realism.compare_channels(real, mixed)
    assert out["correlation_rms"] > 0.2
    amp = realism.compare_amplitudes(real, 3.0 * real + 1.0)
    assert amp["ks_mean"] > 0.3 and amp["wasserstein_over_std_mean"] > 1.0


def test_band_power_skips_bands_above_nyquist():
    x = colored_windows(2, 1, 128, 40.0, seed=0)
    power, names = realism.band_power(x, 40.0)
    assert names == ["delta", "theta", "alpha", "beta"] and power.shape == (2, 1, 4)


def test_drift_detects_growing_variance(real):
    growth = np.linspace(1, 4, 4 * 256)
    long = np.concatenate(list(colored_windows(4, 4, 256, SFREQ, seed=9)), axis=-1)[None] * growth
    out = realism.drift(long, real, SFREQ)
    assert len(out["log10_variance_ratio"]) == 4
    assert out["variance_slope_per_segment"] > 0.2
    stable = colored_windows(8, 4, 4 * 256, SFREQ, seed=9)
    assert abs(realism.drift(stable, real, SFREQ)["variance_slope_per_segment"]) < 0.05


def test_bad_shapes_raise(real):
    with pytest.raises(ValueError, match="channels"):
        realism.compare_spectra(real, real[:, :2], SFREQ)
    with pytest.raises(ValueError, match=r"\(N, C, T\)"):
        realism.psd(real[0], SFREQ)


@pytest.fixture(scope="module")
def train():
    """Real train windows of the same process: 3 disjoint sets of 16 for the reference."""
    return colored_windows(48, 4, 256, SFREQ, slope=1.0, seed=11)


def test_calibrated_flags_pass_a_same_process_draw_and_report_the_spread(real, train):
    other = colored_windows(16, 4, 256, SFREQ, slope=1.0, seed=12)
    out = realism.compare(
        real, other, SFREQ, reference=train, n_reference_splits=3, n_permutations=200
    )
    assert out["settings"] == {
        "n_real_windows": 40,
        "n_generated_windows": 16,
        "seconds": 2.56,
        "psd_resolution_hz": 0.5,
        "n_permutations": 200,
    }
    ref = out["reference"]
    assert ref["n_splits"] == 3 and ref["n_windows"] == 16
    spread = ref["statistics"]["spectrum.max_abs_band_log10_ratio"]
    assert len(spread["values"]) == 3 and spread["max"] == max(spread["values"]) > 0
    assert set(ref["statistics"]) == {
        "spectrum.max_abs_band_log10_ratio",
        "spectrum.psd_log10_rms",
        "channels.correlation_rms",
        "amplitude.ks_mean",
        "two_sample.mmd2",
    }
    assert "max of its real-vs-real" in out["flag_rule"]
    assert not out["flags"]["two_sample"] and not out["flags"]["amplitude"]


def test_calibrated_flags_catch_another_slope_and_mixed_channels(real, train):
    steeper = colored_windows(16, 4, 256, SFREQ, slope=2.0, seed=3)
    out = realism.compare(real, steeper, SFREQ, reference=train, n_reference_splits=3)
    assert out["flags"]["spectrum"] and out["flags"]["two_sample"] and not out["realistic"]
    assert out["two_sample"]["p_value"] == pytest.approx(1 / 1001)  # 1000 permutations
    mixed = colored_windows(16, 4, 256, SFREQ, slope=1.0, seed=13)
    mixed[:, 1] = 0.7 * mixed[:, 0] + 0.3 * mixed[:, 1]
    out = realism.compare(real, mixed, SFREQ, reference=train, n_reference_splits=3)
    assert out["flags"]["channels"]


def test_reference_needs_two_disjoint_sets(real, train):
    with pytest.raises(ValueError, match="fewer than 2 disjoint sets of 30"):
        realism.reference_spread(real, train, 30, SFREQ)
