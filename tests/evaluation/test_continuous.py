"""Continuous forecasting evaluation: bits on the mu-law code bins, MSE / R², baselines, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from evaluation_signals import ar2_windows
from torch import nn

from neurofm.evaluation import baselines
from neurofm.evaluation.common import EvaluateConfig
from neurofm.evaluation.continuous import evaluate_continuous, model_rollout
from neurofm.evaluation.report import write_report
from neurofm.registry import TOKENIZERS, create
from neurofm.types import ModelOutput, ModelSpec

TINY = EvaluateConfig(
    max_windows=8,
    rollout_windows=4,
    ar_orders=[4],
    var_lags=[2, 4],
    context_steps=[4],
    n_bootstrap=200,
    code_levels=32,
)
GAUSSIAN = ModelSpec(inputs="signal", outputs="prediction", causal=True, variance=True)
MEAN_ONLY = ModelSpec(inputs="signal", outputs="prediction", causal=True)


class AROracle(nn.Module):
    """A continuous 'model' predicting the fitted linear AR's mean and residual variance."""

    def __init__(self, ar: baselines.LinearAR) -> None:
        super().__init__()
        self.ar = ar
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        v = x.double().numpy()
        mean = self.ar._mean_next(v)  # (B, C, T - order + 1), at t >= order - 1
        pad = np.zeros((*v.shape[:2], self.ar.order - 1))
        prediction = torch.from_numpy(np.concatenate([pad, mean], axis=-1)).float()
        log_var = torch.from_numpy(2 * np.log(self.ar.residual_std))[None, :, None]
        return ModelOutput(
            prediction=prediction, extras={"log_variance": log_var.expand_as(prediction).float()}
        )


@pytest.fixture(scope="module")
def data():
    return {"train": ar2_windows(32, 3, 64, seed=0), "test": ar2_windows(8, 3, 64, seed=1)}


def _oracle(train: np.ndarray) -> AROracle:
    tok = create(TOKENIZERS, {"name": "mulaw", "n_levels": TINY.code_levels}).fit(train)
    bins = baselines.CodeBins.from_bin_bounds(tok, train.shape[1])
    return AROracle(baselines.LinearAR(bins, order=4).fit_signal(train)).eval()


def test_code_bins_from_bin_bounds_are_the_tokenizer_bins(data):
    tok = create(TOKENIZERS, {"name": "mulaw", "n_levels": 16}).fit(data["train"])
    bins = baselines.CodeBins.from_bin_bounds(tok, 3)
    x = data["test"] * 3  # values outside the fitted range too (clipped to the end codes)
    codes = tok.encode(torch.from_numpy(x)).codes.numpy()
    assert (bins.encode(x) == codes).mean() > 0.999  # float rounding exactly at an edge aside
    assert np.isinf(bins.edges[:, [0, -1]]).all()


def test_gaussian_on_code_bins_scores_the_ar_oracle_like_the_ar(data, tmp_path):
    res = evaluate_continuous(
        _oracle(data["train"]),
        train_signal=data["train"],
        test_signal=data["test"],
        sfreq=100.0,
        config=TINY,
        spec=GAUSSIAN,
    )
    report = res.report
    one = report["one_step"]
    assert report["task"] == "continuous_forecasting" and report["bits_unavailable"] is None
    assert set(one) == {
        "model",
        "last_value",
        "linear_ar",
        "ridge_var",
        "bigram",
        "unigram",
        "uniform",
        "control_mismatched_context",
        "control_context_4",
    }
    model, ar = one["model"], one["linear_ar"]
    assert model["bits_per_channel_sample"] == pytest.approx(ar["bits_per_channel_sample"], 1e-3)
    assert model["mse"] == pytest.approx(ar["mse"], rel=1e-4)
    assert one["uniform"]["bits_per_channel_sample"] == pytest.approx(np.log2(32))
    assert one["uniform"]["mse"] is None
    assert model["bits_per_channel_sample"] < one["unigram"]["bits_per_channel_sample"]
    assert model["r2"] > 0.5 > one["control_mismatched_context"]["r2"]
    mismatched = one["control_mismatched_context"]["bits_per_channel_sample"]
    assert mismatched > model["bits_per_channel_sample"] + 0.5
    assert report["bootstrap"]["differences"]["control_mismatched_context"]["below_zero"]
    assert one["control_context_4"]["bits_per_channel_sample"] == pytest.approx(
        model["bits_per_channel_sample"], abs=1e-3
    )
    curves = report["rollout"]["curves"]
    np.testing.assert_allclose(curves["model"]["mse"], curves["linear_ar"]["mse"], rtol=1e-3)
    paths = write_report(report, res.arrays, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["one_step"]["uniform"]["r2"] is None
    assert all((tmp_path / name).is_file() for name in saved["plots"])


def test_mean_only_model_has_no_bits_but_mse_and_r2(data, tmp_path):
    res = evaluate_continuous(
        _oracle(data["train"]),
        train_signal=data["train"],
        test_signal=data["test"],
        sfreq=100.0,
        config=TINY,
        spec=MEAN_ONLY,
    )
    one = res.report["one_step"]
    assert one["model"]["bits_per_channel_sample"] is None and one["model"]["r2"] > 0.5
    assert one["linear_ar"]["bits_per_channel_sample"] is not None
    assert "variance=False" in res.report["bits_unavailable"]
    # the hint names what to do for this model: it has no variance head to switch on
    assert "AROracle has no variance head" in res.report["bits_unavailable"]
    write_report(res.report, res.arrays, tmp_path)
    assert "not available" in (tmp_path / "report.html").read_text()


def test_model_rollout_feeds_the_mean_back():
    class Doubler(nn.Module):  # predicts twice the last sample
        def forward(self, x):
            return ModelOutput(prediction=2 * x)

    out = model_rollout(Doubler(), np.ones((1, 2, 3)), 4, spec=MEAN_ONLY)
    np.testing.assert_allclose(out, np.broadcast_to([2.0, 4.0, 8.0, 16.0], (1, 2, 4)))
