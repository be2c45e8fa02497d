"""The denoiser's table: the code baselines' bits on the forecast half, forecast MSE per window,
intervals and paired differences, pairing with a code model's report, and a run on the sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurofm.evaluation import baselines as bl
from neurofm.evaluation import denoiser_table as dt
from neurofm.evaluation.code_baselines import code_baselines
from neurofm.evaluation.common import EvaluateConfig
from neurofm.registry import TOKENIZERS, create

CFG = EvaluateConfig(
    ar_orders=[2, 4], var_lags=[2], var_ridges=[1e-3], n_bootstrap=100, val_windows=8
)


def _ar2(n: int, seed: int) -> np.ndarray:
    """Windows (n, 2, 64) of a smooth AR(2) process (strongly predictable from its past)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 2, 64))
    e = rng.standard_normal(x.shape)
    for t in range(2, 64):
        x[..., t] = 1.6 * x[..., t - 1] - 0.8 * x[..., t - 2] + 0.3 * e[..., t]
    return x


@pytest.fixture(scope="module")
def fitted():
    train, test = _ar2(40, 0), _ar2(12, 1)
    tok = create(TOKENIZERS, {"name": "mulaw", "n_levels": 64}).fit(train)
    bins = bl.CodeBins.from_bin_bounds(tok, 2)

    def codes(x):
        return np.asarray(tok.encode(torch.as_tensor(x, dtype=torch.float32)).codes)

    baselines, _ = code_baselines(bins, codes(train), None, 32, CFG)
    return baselines, bins, codes(test), test


def test_baseline_bits_rank_as_the_process_predicts(fitted):
    baselines, bins, codes, signal = fitted
    bits = dt.baseline_window_bits(baselines, codes, signal, 32, batch_size=5)
    assert set(bits) == {"last_value", "linear_ar", "ridge_var", "bigram", "unigram", "uniform"}
    assert all(v.shape == (12,) for v in bits.values())
    np.testing.assert_allclose(bits["uniform"], np.log2(bins.vocab_size))  # known answer
    means = {k: v.mean() for k, v in bits.items()}
    assert means["linear_ar"] < means["last_value"] < means["unigram"] < means["uniform"]


def test_table_pairs_differences_and_knows_a_zero_difference(fitted):
    baselines, _, codes, signal = fitted
    bits = dt.baseline_window_bits(baselines, codes, signal, 32, batch_size=12)
    out = dt.table({"model": bits["linear_ar"] + 0.0, **bits}, CFG)
    assert out["differences"]["linear_ar"]["mean"] == 0.0
    assert out["differences"]["linear_ar"]["low"] == out["differences"]["linear_ar"]["high"] == 0
    uniform = out["differences"]["uniform"]
    assert uniform["below_zero"] and uniform["high"] < 0
    for s in out["scores"].values():
        assert s["low"] <= s["mean"] <= s["high"]


def test_forecast_mse_known_answers(fitted):
    baselines, *_ = fitted
    context = np.ones((3, 2, 16))
    truth = np.ones((3, 2, 8))
    mse = dt.forecast_window_mse(truth.copy(), context, truth, baselines)
    assert set(mse) == {"model", "last_value", "train_mean", "linear_ar", "ridge_var"}
    np.testing.assert_allclose(mse["model"], 0.0)
    np.testing.assert_allclose(mse["last_value"], 0.0)  # the held value is the continuation
    np.testing.assert_allclose(mse["train_mean"], 1.0)  # zero against ones


def _reports(n: int = 10):
    rng = np.random.default_rng(0)
    windows = {"stride": 64, "test_available": n, "test_used": n}
    per = {k: rng.normal(5, 0.1, n).tolist() for k in ("model", "linear_ar", "uniform")}
    denoiser = {
        "task": "generative",
        "bits": {"score_start": 32, "windows": windows, "per_window": per},
    }
    code = {
        "task": "forecasting",
        "score_start": 32,
        "windows": dict(windows),
        "per_window": {
            "bits_per_channel_sample": {
                "model": (np.array(per["model"]) + 0.5).tolist(),
                "uniform": per["uniform"],
            }
        },
    }
    return denoiser, code


def test_compare_reports_pairs_the_same_windows_and_refuses_others():
    denoiser, code = _reports()
    out = dt.compare_reports(denoiser, code, name="gpt", cfg=CFG)
    assert out["differences"]["gpt"]["mean"] == pytest.approx(-0.5)
    assert out["differences"]["gpt"]["below_zero"]
    assert out["code_model_baselines"]["uniform"] == pytest.approx(
        np.mean(code["per_window"]["bits_per_channel_sample"]["uniform"])
    )
    # the denoiser scored an evenly spaced subset of the windows the code model scored
    code_all = {**code, "windows": {"stride": 64, "test_available": 19, "test_used": 19}}
    per = code["per_window"]["bits_per_channel_sample"]
    code_all["per_window"] = {
        "bits_per_channel_sample": {k: np.repeat(v, 2)[:19].tolist() for k, v in per.items()}
    }
    denoiser["bits"]["windows"].update(test_available=19, test_used=10)
    out = dt.compare_reports(denoiser, code_all, name="gpt", cfg=CFG)
    assert out["code_model_windows"] == list(range(0, 19, 2))  # windows 2i: entry i
    assert out["differences"]["gpt"]["mean"] == pytest.approx(-0.5)
    code_all["windows"]["test_used"] = 18
    with pytest.raises(ValueError, match="test_used"):
        dt.compare_reports(denoiser, code_all, name="gpt", cfg=CFG)


def test_ntd_run_on_the_sample_reports_the_same_table(tmp_path, sample_dir):
    """Fit a tiny NTD for two steps on four channels of the shipped sample; evaluate."""
    pytest.importorskip("diffusers")
    from neurofm.cli.main import main
    from neurofm.data.recipes import prepare_recipe

    store = prepare_recipe("eegbci_sample", tmp_path / "store")
    channels = store.recordings[0].sensors.names[:4]
    run = tmp_path / "run"
    args = [
        "fit",
        "--config",
        "configs/fit/ntd/ntd.yaml",
        "--data.store",
        str(tmp_path / "store"),
        "--output.dir",
        str(run),
        "--data.channels",
        json.dumps(channels),
        "--model.n_chans",
        "4",
        "--model.preset",
        "tiny",
        "--data.window_length",
        "32",
        "--data.stride",
        "32",
        "--data.batch_size",
        "2",
        "--trainer.max_steps",
        "2",
        "--trainer.val_check_interval",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--objective.n_train_steps",
        "50",
        "--output.checkpoint_every_n_steps",
        "2",
    ]
    assert main(args) == 0
    settings = {
        "preset": "tiny",
        "forecast_windows": "10",
        "baseline_train_windows": "24",
        "val_windows": "4",
        "ar_orders": "[4]",
        "var_lags": "[2]",
        "n_bootstrap": "50",
        "rollout_windows": "2",
        "rollout_samples": "2",
        "realism_windows": "3",
        "realism_permutations": "20",
        "realism_reference_splits": "2",
        "denoising_steps": "[2, 4]",
        "bound_steps": "4",
    }
    out = tmp_path / "eval"
    evaluation = [a for k, v in settings.items() for a in (f"--evaluation.{k}", v)]
    assert main(["evaluate", str(run), "--output", str(out), *evaluation]) == 0
    report = json.loads((out / "report.json").read_text())
    bits = report["bits"]
    names = {"model", "last_value", "linear_ar", "ridge_var", "bigram", "unigram", "uniform"}
    assert set(bits["scores"]) == names and set(bits["differences"]) == names - {"model"}
    assert bits["score_start"] == 16 and bits["n_windows"] == 10
    assert all(len(v) == 10 for v in bits["per_window"].values())
    assert bits["whole_window_bound"]["low"] <= bits["whole_window_bound"]["high"]
    assert report["bits_per_channel_sample"] == bits["scores"]["model"]["mean"]
    forecast = report["forecast"]
    assert set(forecast["differences"]) == {"last_value", "train_mean", "linear_ar", "ridge_var"}
    realism = report["realism"]["generated"]
    assert realism["reference"] is not None and set(realism["flags"]) >= {"spectrum", "channels"}
    assert (out / "steps_quality.png").is_file()
