import numpy as np
import pytest
from evaluation_signals import ar2_windows, colored_windows, mu_law_values

from neurofm.evaluation import baselines, decoding_baselines, metrics


@pytest.fixture(scope="module")
def ar2():
    train = ar2_windows(40, 2, 128, seed=0)
    test = ar2_windows(10, 2, 128, seed=1)
    return train, test


def test_ar_recovers_known_coefficients(ar2):
    train, _ = ar2
    bins = baselines.CodeBins.from_values(np.linspace(-6, 6, 1024))
    model = baselines.LinearAR(bins, order=2).fit_signal(train)
    np.testing.assert_allclose(model.coef, [[1.5, -0.75]] * 2, atol=0.03)
    np.testing.assert_allclose(model.residual_std, 0.3, rtol=0.05)
    quantized = baselines.LinearAR(bins, order=2).fit(bins.encode(train))
    np.testing.assert_allclose(quantized.coef, [[1.5, -0.75]] * 2, atol=0.03)


def _score(predictor, codes, signal, start):
    lp, point = predictor.predict(codes, start)
    acc = metrics.ForecastAccumulator(codes.shape[1])
    acc.update(lp, codes[..., start:], point, signal[..., start:])
    return acc.result()


def test_ar_beats_last_value_and_unigram_on_ar2(ar2):
    train, test = ar2
    bins = baselines.CodeBins.from_values(mu_law_values(256, scale=6.0))
    train_codes, test_codes = bins.encode(train), bins.encode(test)
    start = 8
    scores = {}
    for model in (
        baselines.LastValue(bins),
        baselines.LinearAR(bins, order=8),
        baselines.Unigram(bins),
    ):
        model.fit(train_codes)
        scores[model.name] = _score(model, test_codes, test, start)
    ar, last, uni = scores["linear_ar"], scores["last_value"], scores["unigram"]
    assert ar["bits_per_channel_sample"] < last["bits_per_channel_sample"] - 0.3
    assert last["bits_per_channel_sample"] < uni["bits_per_channel_sample"]
    assert ar["mse"] < 0.5 * last["mse"]
    # the theoretical one-step R² of this AR(2) is 1 - 0.09 / 0.775 = 0.884
    assert ar["r2"] > 0.85 and uni["r2"] < 0.01
    assert uni["bits_per_channel_sample"] < np.log2(256)


def test_unigram_matches_empirical_entropy():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(16))
    codes = rng.choice(16, size=(50, 2, 400), p=p)
    bins = baselines.CodeBins.from_values(np.arange(16.0))
    uni = baselines.Unigram(bins).fit(codes)
    freq = np.bincount(codes.reshape(-1), minlength=16) / codes.size
    empirical = -np.sum(freq[freq > 0] * np.log2(freq[freq > 0]))
    assert uni.entropy_bits() == pytest.approx(empirical, abs=0.01)
    lp, _ = uni.predict(codes, 1)
    assert metrics.bits_per_channel_sample(lp, codes[..., 1:]) == pytest.approx(empirical, abs=0.01)


def test_last_value_smoothing_is_the_train_jump_histogram():
    bins = baselines.CodeBins.from_values(np.arange(5.0))
    codes = np.array([[[0, 1, 2, 3, 4]]])  # every jump is +1
    lv = baselines.LastValue(bins).fit(codes)
    probs = np.exp(lv.log_transition)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    # from code 2: h(+1) = 4 + 1, the other reachable jumps (-2, -1, 0, +2) have h = 1
    np.testing.assert_allclose(probs[2], np.array([1, 1, 1, 5, 1]) / 9)
    assert lv.forecast(codes, 3).tolist() == [[[4.0, 4.0, 4.0]]]


def test_discretised_gaussian_uses_bin_edges():
    bins = baselines.CodeBins.from_values(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_allclose(bins.edges[0, 1:-1], [-0.5, 0.5])
    p = np.exp(bins.discretised_gaussian(np.zeros((1, 1, 1)), np.ones((1, 1, 1))))[0, 0, 0]
    from scipy.stats import norm

    np.testing.assert_allclose(p, [norm.cdf(-0.5), norm.cdf(0.5) - norm.cdf(-0.5), norm.sf(0.5)])
    with pytest.raises(ValueError, match="increasing"):
        baselines.CodeBins.from_values(np.array([0.0, 0.0, 1.0]))


def test_ar_forecast_and_simulation_shapes(ar2):
    train, test = ar2
    bins = baselines.CodeBins.from_values(np.linspace(-6, 6, 512))
    ar = baselines.LinearAR(bins, order=2).fit(bins.encode(train))
    fc = ar.forecast(bins.encode(test[..., :20]), 30)
    assert fc.shape == (10, 2, 30)
    err = metrics.rollout_error(fc, test[..., 20:50])["nmse"]
    assert err[0] < 0.25 and err[-1] > 3 * err[0]
    sim = ar.simulate(test[..., :20], 200, seed=0)
    assert sim.shape == (10, 2, 200) and 0.5 < sim.std() / test.std() < 2.0


def test_decoding_baselines_beat_chance_on_band_power_difference():
    sfreq = 100.0
    a = colored_windows(30, 3, 200, sfreq, seed=0)
    b = colored_windows(30, 3, 200, sfreq, sine_hz=10.0, sine_amp=1.0, seed=1)
    x = np.concatenate([a, b])
    y = np.repeat([0, 1], 30)
    order = np.random.default_rng(0).permutation(60)
    x, y = x[order], y[order]
    clf = decoding_baselines.BandPowerLDA(sfreq).fit(x[:40], y[:40])
    assert np.mean(clf.predict(x[40:]) == y[40:]) >= 0.9
    log_p = clf.predict_log_proba(x[40:])  # the LDA posterior, one column per train class
    assert log_p.shape == (20, 2) and np.allclose(np.exp(log_p).sum(axis=1), 1.0)
    assert np.array_equal(clf.classes[log_p.argmax(axis=1)], clf.predict(x[40:]))
    assert 0.0 <= clf.shrinkage <= 1.0
    assert decoding_baselines.majority_class(np.array([2, 1, 2, 1, 0])) == 1


def test_per_channel_bins_from_a_mu_law_tokenizer():
    import torch

    from neurofm.registry import TOKENIZERS, create

    rng = np.random.default_rng(0)
    train = rng.standard_normal((6, 3, 200)) * np.array([1.0, 10.0, 0.1])[None, :, None]
    tok = create(TOKENIZERS, {"name": "mulaw", "preset": "tiny"}).fit(train)
    bins = baselines.CodeBins.from_tokenizer(tok, 3)
    assert bins.values.shape == (3, 16)
    assert 50 < np.ptp(bins.values[1]) / np.ptp(bins.values[2]) < 200  # per-channel scales
    codes = tok.encode(torch.from_numpy(train)).codes.numpy()
    np.testing.assert_array_equal(bins.encode(tok.decode(codes)), codes)
    np.testing.assert_allclose(bins.decode(codes), tok.decode(codes), rtol=1e-5)
