"""Next-band evaluation with known answers: a new (residual, zero-initialised) model is exactly
"no new band", the ridge baseline is exact when each level is a linear map of the one below, and
the realism suite runs on the generated full-band signals; then a run on real EEG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurofm.evaluation.band_realism import band_realism, markdown, ridge_rollout, rollout_baselines
from neurofm.evaluation.common import EvaluateConfig
from neurofm.evaluation.next_band import BandRidge, evaluate_next_band
from neurofm.registry import MODELS, create

CFG = EvaluateConfig(
    n_bootstrap=50, realism_windows=4, realism_permutations=20, realism_reference_splits=2
)


def linear_levels(n: int, seed: int, maps: list[np.ndarray]) -> np.ndarray:
    """Levels (n, L, 4, 64): level 0 random, level k = maps[k - 1]^T level k - 1 + 0.1."""
    rng = np.random.default_rng(seed)
    t = np.arange(64) / 32.0
    freqs = rng.uniform(1.0, 6.0, (n, 4, 1))
    first = np.sin(
        2 * np.pi * freqs * t + rng.uniform(0, 6, (n, 4, 1))
    ) + 0.3 * rng.standard_normal((n, 4, 64))
    levels = [first]
    for a in maps:
        levels.append(np.einsum("mct,cd->mdt", levels[-1], a) + 0.1)
    return np.stack(levels, axis=1)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    maps = [np.eye(4) + 0.3 * rng.standard_normal((4, 4)) for _ in range(2)]
    torch.manual_seed(0)
    model = create(MODELS, {"name": "next_band", "preset": "tiny"}).eval()
    return model, linear_levels(12, 1, maps), linear_levels(24, 2, maps)


def test_new_model_is_no_new_band_and_ridge_is_exact(case):
    model, test, train = case
    scores = evaluate_next_band(model, test, train, CFG)
    for k in (1, 2):
        s = scores["one_step"][f"stage{k}"]
        expected = ((test[:, k] - test[:, k - 1]) ** 2).mean()
        assert s["mse"]["no_new_band"]["mean"] == pytest.approx(expected, rel=1e-9)
        # zero-initialised residual output: the model's prediction is its input
        assert s["mse"]["model"]["mean"] == pytest.approx(expected, rel=1e-5)
        assert s["model_minus"]["no_new_band"]["high"] == pytest.approx(0.0, abs=1e-5 * expected)
        assert s["mse"]["ridge"]["mean"] < 1e-4 * expected
        assert s["model_minus"]["ridge"]["low"] > 0 and not s["model_beats"]["ridge"]
    # rollout with intervals: the new model keeps the lowest band, the exact ridge beats it
    roll = scores["rollout_intervals"]
    assert set(roll) == {"stage1", "stage2"}
    for k in (1, 2):
        s = roll[f"stage{k}"]
        kept = ((test[:, k] - test[:, 0]) ** 2).mean()
        assert s["mse"]["no_new_band"]["mean"] == pytest.approx(kept, rel=1e-9)
        assert s["mse"]["model"]["mean"] == pytest.approx(
            scores["rollout"]["per_stage_mse"][f"stage{k}"], rel=1e-9
        )
        assert s["mse"]["model"]["mean"] == pytest.approx(kept, rel=1e-5)
        assert s["mse"]["ridge"]["mean"] < 1e-4 * kept
        assert s["model_minus"]["ridge"]["low"] > 0 and not s["model_beats"]["ridge"]
    ridge = BandRidge().fit(train)
    exact = ridge_rollout(ridge, test[:, 0], 3)
    np.testing.assert_allclose(exact, test, atol=1e-2 * np.abs(test).max())
    base = rollout_baselines(ridge, test)
    assert (
        base["ridge"]["per_stage_mse"]["stage2"]
        < 1e-4 * base["no_new_band"]["per_stage_mse"]["stage2"]
    )
    assert base["no_new_band"]["per_stage_mse"]["stage1"] == pytest.approx(
        ((test[:, 1] - test[:, 0]) ** 2).mean(), rel=1e-9
    )


def test_realism_of_generated_full_band_signals(case):
    model, test, train = case
    rollout = evaluate_next_band(model, test, train, CFG)["_rollout"]
    ridge = BandRidge().fit(train)
    every = EvaluateConfig(**{**CFG.__dict__, "realism_windows": len(test)})
    out = band_realism(model, test, train, rollout, every, sfreq=32.0, ridge=ridge)
    assert set(out) >= {"rollout_from_lowest_band", "unconditional", "ridge_rollout"}
    for name in ("rollout_from_lowest_band", "unconditional", "ridge_rollout"):
        assert set(out[name]["flags"]) == {"spectrum", "channels", "amplitude", "two_sample"}
        assert out[name]["reference"] is not None  # 24 train windows: calibrated flags
    # a deterministic model draws one unconditional signal, and says so
    assert out["unconditional"]["identical_samples"]
    # on every held-out window, the exact ridge rollout reproduces the real signals
    assert out["ridge_rollout"]["spectrum"]["psd_log10_rms"] < 0.01
    assert out["ridge_rollout"]["channels"]["correlation_rms"] < 0.01
    assert not out["ridge_rollout"]["flags"]["spectrum"]


def test_markdown_report_lists_every_stage(case):
    model, test, train = case
    scores = evaluate_next_band(model, test, train, CFG)
    rollout = scores.pop("_rollout")
    ridge = BandRidge().fit(train)
    report = {
        "model": "next_band",
        "split": "test",
        "windows": {"scored": 12, "train": 24},
        **scores,
        "rollout_baselines": rollout_baselines(ridge, test),
        "realism": band_realism(None, test, train, rollout, CFG, 32.0),
        "plot": "x/rollout.png",
    }
    text = markdown(report)
    assert "| stage2 |" in text and "rollout_from_lowest_band" in text and "rollout.png" in text
    assert "model minus each baseline rolled out" in text


def test_run_on_held_out_real_eeg(tmp_path):
    """Prepared shipped EEGBCI sample (runs held out), tiny model, few steps, smoke evaluation."""
    from neurofm.data.recipes import prepare_recipe
    from neurofm.evaluation.evaluate import evaluate_run
    from neurofm.training.fit import fit

    store = prepare_recipe("eegbci_sample", tmp_path / "store")
    channels = store.recordings[0].sensors.names[:4]
    run = fit(
        {
            "data": {
                "store": str(tmp_path / "store"),
                "channels": channels,
                "window_length": 64,
                "stride": 64,
                "normalize": True,
                "bands": [[0.5, 8.0], [8.0, 20.0], [20.0, 50.0]],
                "batch_size": 4,
            },
            "model": {"name": "next_band", "preset": "tiny"},
            "objective": {"name": "next_band"},
            "trainer": {
                "max_steps": 3,
                "val_check_interval": 3,
                "limit_val_batches": 1,
                "accelerator": "cpu",
                "enable_progress_bar": False,
            },
            "output": {"dir": str(tmp_path / "run"), "checkpoint_every_n_steps": 3},
        }
    )
    cfg = EvaluateConfig(
        **{**EvaluateConfig.PRESETS["smoke"], "split": "test", "forecast_windows": 8}
    )
    result = evaluate_run(run, config=cfg, out_dir=tmp_path / "eval")
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["split"] == "test" and report["windows"]["scored"] == 8
    assert set(report["rollout_baselines"]) == {"ridge", "no_new_band"}
    assert "flags" in report["realism"]["unconditional"]
    assert "| stage1 |" in Path(tmp_path / "eval" / "report.md").read_text()
    assert result.arrays["rollout"].shape == (8, 3, 4, 64)
    from neurofm.evaluation.band_compare import compare_reports
    from neurofm.evaluation.band_compare import markdown as compare_markdown

    table = compare_reports(report, None)
    assert set(table["one_step_next_band"]) == {"stage0", "stage1", "stage2"}
    row = table["rollout_mse_from_lowest_band"]["stage2"]
    assert set(row) == {"next_band", "ridge_rollout", "no_new_band_rollout"}
    assert "| stage2 |" in compare_markdown(table)
    assert set(table["rollout_next_band_intervals"]) == {"stage1", "stage2"}
    assert table["rollout_next_band_intervals"]["stage2"]["mse"]["model"][0] == pytest.approx(
        row["next_band"], rel=1e-9
    )
    older = {k: v for k, v in report.items() if k != "rollout_intervals"}
    assert "rollout_next_band_intervals" not in compare_reports(older, None)
    with pytest.raises(ValueError, match="expected 'band_tokens'"):
        compare_reports(report, report)
