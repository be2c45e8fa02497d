"""``neurofm benchmark``: every forecasting family found by its spec trains a few steps on a
tiny synthetic store, is evaluated, and lands in one table next to the baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurofm.cli.main import main
from neurofm.data.synthetic import synthetic_store
from neurofm.registry import MODELS
from neurofm.workflows.benchmark import (
    Skipped,
    base_config,
    family_config,
    forecasting_families,
)

N_CHANS, WINDOW = 3, 64
EVALUATION = {
    "forecast_windows": "4",
    "baseline_train_windows": "8",
    "val_windows": "2",
    "ar_orders": "[4]",
    "var_lags": "[2]",
    "var_ridges": "[0.01]",
    "n_bootstrap": "20",
    "rollout_windows": "2",
    "rollout_samples": "2",
    "realism_windows": "2",
    "realism_permutations": "10",
    "realism_reference_splits": "2",
    "realism_seconds": "0.64",
    "max_windows": "4",
    "max_train_windows": "8",
}
BASELINES = {"last_value", "linear_ar", "ridge_var", "bigram", "unigram", "uniform"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three synthetic recordings split train / val / test, with a robust scaler."""
    root = tmp_path_factory.mktemp("bench") / "store"
    store = synthetic_store(root, n_subjects=3, n_chans=N_CHANS, sfreq=100.0, duration=8.0)
    ids = [rec.id for rec in store.recordings]
    n = store.recordings[0].n_times
    store.manifest["splits"] = {
        split: [{"recording": rec, "start": 0, "stop": n}]
        for split, rec in zip(("train", "val", "test"), ids)
    }
    train = np.asarray(store.recordings[0].array, dtype=np.float64)
    q75, q25 = np.percentile(train, [75, 25], axis=0)
    store.manifest["scaler"] = {
        "kind": "robust",
        "fitted_on": "train",
        "channels": store.recordings[0].sensors.names,
        "center": np.median(train, axis=0).tolist(),
        "scale": (q75 - q25).tolist(),
    }
    store.save_manifest()
    return root


def test_families_are_found_by_spec():
    families = forecasting_families()
    assert {"gpt2meg_trf", "gpt_causal", "conv_forecaster"} <= set(families)
    assert "classifier_continuous" not in families  # class logits: not a forecaster
    assert not [name for name in families if MODELS.get(name).alias_of]


def test_family_config_follows_the_spec(tmp_path):
    base = base_config(tmp_path / "store", tmp_path, max_steps=2, seed=0)
    codes = family_config(
        "gpt2meg_trf", base, sizes={"n_chans": 64, "n_subjects": 1}, preset="small"
    )
    assert codes["tokenizer"]["name"] == "mulaw"
    assert codes["model"] | {"vocab_size": 256, "n_chans": 64, "max_seq_len": 128} == codes["model"]
    assert codes["objective"] == {"name": "next_token"}
    flat = family_config("gpt_causal", base, sizes={"n_chans": 4, "n_subjects": 1}, preset="tiny")
    assert flat["tokenizer"]["name"] == "flat" and flat["model"]["max_seq_len"] == 4 * 128
    signal = family_config(
        "conv_forecaster",
        base,
        sizes={"n_chans": 4, "n_subjects": 1},
        preset="tiny",
        model_overrides={"predict_variance": True},
    )
    assert "tokenizer" not in signal
    assert signal["objective"] == {"name": "forecast", "loss": "gaussian_nll"}
    with pytest.raises(Skipped, match="max_seq_len"):  # 64 x 128 tokens: over the budget
        family_config("gpt_causal", base, sizes={"n_chans": 64, "n_subjects": 1}, preset="tiny")


def test_benchmark_writes_one_table(store, tmp_path, capsys):
    out = tmp_path / "bench"
    evaluation = [arg for k, v in EVALUATION.items() for arg in (f"--evaluation.{k}", v)]
    args = ["benchmark", "--store", str(store), "--output", str(out), "--max_steps", "2"]
    args += ["--preset", "tiny", "--data.window_length", str(WINDOW), "--data.stride", "32"]
    args += ["--trainer.accelerator", "cpu", "--model.gpt2meg_mix.n_heads", "3", *evaluation]
    assert main(args) == 0, capsys.readouterr().err
    board = json.loads((out / "benchmark.json").read_text())
    rows = {row["name"]: row for row in board["rows"]}
    families = forecasting_families()
    assert set(rows) == set(families) | BASELINES
    assert rows["gpt2meg_mix"]["status"] == "failed"  # d_model 32 with 3 heads
    assert "n_heads" in rows["gpt2meg_mix"]["reason"]
    for name in set(families) - {"gpt2meg_mix"}:
        assert rows[name]["status"] == "ok", rows[name]
        assert rows[name]["parameters"] > 0 and rows[name]["train_s"] > 0
    assert rows["gpt2meg_trf"]["bits"] > 0 and len(rows["gpt2meg_trf"]["interval"]) == 2
    assert rows["conv_forecaster"]["mse"] is not None
    assert all(rows[name]["kind"] == "baseline" for name in BASELINES)
    table = (out / "benchmark.md").read_text()
    assert all(f"| {name} |" in table for name in rows)
    assert (out / "benchmark.png").stat().st_size > 0
