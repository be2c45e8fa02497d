"""Block-bootstrap intervals, the ridge VAR, the bigram and sizes chosen on validation."""

import numpy as np
import pytest
import torch
from evaluation_signals import ar2_windows, mu_law_values
from torch import nn

from neurofm.evaluation import baselines
from neurofm.evaluation.intervals import block_resamples, bootstrap_intervals
from neurofm.evaluation.linear import RidgeVAR, bits_on, fit_linear_baselines
from neurofm.evaluation.rollout import FlatPredictor
from neurofm.registry import TOKENIZERS, create
from neurofm.types import ModelOutput, ModelSpec

BINS = baselines.CodeBins.from_values(mu_law_values(64, scale=6.0))


def var1_windows(n_windows: int, n_times: int, seed: int) -> np.ndarray:
    """Two coupled channels: ``x1_t = 0.9 x2_{t-1} + e``, ``x2_t = -0.9 x1_{t-1} + e``."""
    rng = np.random.default_rng(seed)
    a = np.array([[0.0, 0.9], [-0.9, 0.0]])
    x = np.zeros((2, n_windows * n_times + 50))
    for t in range(1, x.shape[1]):
        x[:, t] = a @ x[:, t - 1] + 0.5 * rng.standard_normal(2)
    return np.ascontiguousarray(x[:, 50:].reshape(2, n_windows, n_times).transpose(1, 0, 2))


def test_block_bootstrap_interval_covers_a_known_mean():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(40):
        # correlated windows: an AR(1) series around 2.0
        e = rng.standard_normal(120)
        x = np.empty(120)
        x[0] = e[0]
        for t in range(1, 120):
            x[t] = 0.6 * x[t - 1] + e[t]
        boot = bootstrap_intervals({"model": 2.0 + x}, n_resamples=300, seed=trial)
        interval = boot["scores"]["model"]
        covered += interval["low"] < 2.0 < interval["high"]
    assert covered >= 32  # nominal 95%, a short series under-covers a little
    assert block_resamples(10, 5, 3, seed=0).shape == (5, 10)


def test_paired_difference_is_below_zero_when_the_model_is_always_better():
    rng = np.random.default_rng(1)
    base = 5.0 + rng.standard_normal(60)  # large window-to-window spread, shared
    boot = bootstrap_intervals(
        {
            "model": base - 0.1,
            "baseline": base,
            "same": base - 0.1 + 1e-3 * rng.standard_normal(60),
        },
        n_resamples=200,
    )
    assert boot["differences"]["baseline"]["below_zero"]
    assert not boot["differences"]["same"]["below_zero"]


def test_ridge_var_recovers_a_var1_and_beats_per_channel_ar():
    train, test = var1_windows(40, 64, seed=0), var1_windows(10, 64, seed=1)
    var = RidgeVAR(BINS, lags=1, ridge=1e-6).fit_signal(train)
    np.testing.assert_allclose(var.coef.T, [[0.0, 0.9], [-0.9, 0.0]], atol=0.05)
    np.testing.assert_allclose(var.residual_std, 0.5, atol=0.05)
    ar = baselines.LinearAR(BINS, order=4).fit_signal(train)
    codes = BINS.encode(test)
    assert bits_on(var, test, codes, 4) < bits_on(ar, test, codes, 4) - 0.3
    # the candidates' cheap score (targets' bins alone) is the full distribution's bits
    for predictor in (var, ar):
        log_probs, _ = predictor.predict_signal(test, 4)
        full = -np.take_along_axis(log_probs, codes[..., 4:, None], -1).mean() / np.log(2)
        assert bits_on(predictor, test, codes, 4) == pytest.approx(full, abs=1e-9)
    forecast = var.forecast_signal(test[..., :4], 2)
    np.testing.assert_allclose(forecast[..., 0], var.predict_signal(test[..., :5], 4)[1][..., 0])


def test_sizes_are_chosen_on_validation():
    # an AR(2) process: order 1 is too short, so validation picks 2 or 4
    train, val = ar2_windows(30, 2, 64, seed=0), ar2_windows(10, 2, 64, seed=2)
    fitted, selection = fit_linear_baselines(
        BINS,
        train_values=train,
        val_values=val,
        val_codes=BINS.encode(val),
        start=8,
        ar_orders=[1, 2, 4, 16],
        var_lags=[1, 2],
        var_ridges=[1e-4, 10.0],
    )
    ar = selection["linear_ar"]
    assert set(ar["val_bits"]) == {"1", "2", "4"}  # 16 > start is left out
    assert ar["order"] in (2, 4) and ar["val_bits"]["1"] > ar["val_bits"][str(ar["order"])]
    assert fitted["ridge_var"].ridge == pytest.approx(1e-4)
    assert fitted["ridge_var"].lags == 2


def test_bigram_learns_level_dependent_transitions():
    codes = np.tile(np.array([0, 5, 9, 5]), (20, 2, 8))  # (20, 2, 32): 5 -> 9 or 0 alternating
    bigram = baselines.Bigram(BINS).fit(codes)
    unigram = baselines.Unigram(BINS).fit(codes)
    lp_b, point = bigram.predict(codes[:2], 4)
    lp_u, _ = unigram.predict(codes[:2], 4)
    targets = codes[:2, :, 4:]
    gather = lambda lp: -np.take_along_axis(lp, targets[..., None], -1).mean()  # noqa: E731
    assert gather(lp_b) < gather(lp_u) - 0.5
    assert point.shape == targets.shape
    assert bigram.forecast(codes[:1, :, :4], 3).shape == (1, 2, 3)


FLAT_SPEC = ModelSpec(inputs="token_sequence", outputs="logits", causal=True)


class NextTokenCheat(nn.Module):
    """Logits at flat position j put all mass on token j + 1 (reads ahead: tests the layout)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        nxt = torch.cat([tokens[:, 1:], tokens[:, :1]], dim=1)
        return ModelOutput(logits=20.0 * nn.functional.one_hot(nxt, self.vocab_size).float())


@pytest.mark.parametrize("order", ["time", "channel"])
def test_flat_predictions_are_laid_back_onto_channel_and_time(order):
    tok = create(TOKENIZERS, {"name": "flat", "preset": "tiny", "order": order})
    signal = np.random.default_rng(0).standard_normal((2, 3, 10))
    tok.fit(signal)
    codes = tok.amplitude.encode(torch.from_numpy(signal)).codes.numpy()
    bins = baselines.CodeBins.from_tokenizer(tok.amplitude, 3)
    predictor = FlatPredictor(NextTokenCheat(16), bins, layout=tok, spec=FLAT_SPEC)
    log_probs = predictor.log_probs(codes, 4)  # (B, C, 6, V)
    taken = np.take_along_axis(log_probs, codes[..., 4:, None], -1)
    assert taken.max() <= 0 and taken.min() > -1e-6  # every scored code predicted exactly
    truncated = predictor.truncated_log_probs(codes, 4, 2)
    assert truncated.shape == log_probs.shape


def test_flat_sampling_continues_time_steps():
    from neurofm.registry import MODELS

    tok = create(TOKENIZERS, {"name": "flat", "preset": "tiny"})
    signal = np.random.default_rng(0).standard_normal((2, 3, 8))
    tok.fit(signal)
    codes = tok.amplitude.encode(torch.from_numpy(signal)).codes.numpy()
    model = create(MODELS, {"name": "gpt_causal", "preset": "tiny", "vocab_size": 16}).eval()
    bins = baselines.CodeBins.from_tokenizer(tok.amplitude, 3)
    predictor = FlatPredictor(model, bins, layout=tok, n_samples=2)
    out = predictor.sample(codes[..., :4], 3)
    assert out.shape == (2, 3, 3) and out.min() >= 0 and out.max() < 16
    assert predictor.forecast(codes[..., :4], 3).shape == (2, 3, 3)
