"""``neurofm fit`` / ``neurofm evaluate`` of NeuroFM-X on real spike events (the grasshopper
receptor, ``data.format: spike_events``) and a real field potential (human M1 LFP, a prepared
store), with the example configs shrunk to the tiny preset and a few steps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from neurofm.config import load_yaml
from neurofm.errors import ConfigError
from neurofm.evaluation.common import EvaluateConfig
from neurofm.evaluation.evaluate import evaluate_run
from neurofm.training.fit import fit

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TRAINER = {
    "max_steps": 3,
    "accelerator": "cpu",
    "devices": 1,
    "enable_progress_bar": False,
    "log_every_n_steps": 1,
}
EVALUATION = EvaluateConfig(n_bootstrap=50, max_windows=8, max_train_windows=8, batch_size=4)


def _spike_config(shared: Path, out: Path) -> dict:
    config = load_yaml(CONFIGS / "fit" / "neurofm_x" / "neurofm_x_spikes.yaml")
    folder = shared / "spikes_grasshopper"
    config["data"].update(
        store=str(folder / "grasshopper_spike_times1.txt"),
        behaviour_file=str(folder / "grasshopper_stimulus1.txt"),
        window_length=16,
        stride=16,
    )
    model = {k: v for k, v in config["model"].items() if k in ("name", "read_radius", "bin_size")}
    config["model"] = {**model, "preset": "tiny", "n_units": 1, "n_behaviour": 1, "n_bins": 16}
    config["trainer"], config["output"] = dict(TRAINER), {"dir": str(out)}
    return config


def test_spike_event_run_fits_and_evaluates_next_to_ridge(shared_data, tmp_path):
    run = fit(_spike_config(shared_data, tmp_path / "run"))
    report = evaluate_run(run, config=EVALUATION, out_dir=tmp_path / "eval").report
    assert report["task"] == "spike_events" and report["model"] == "neurofm_x_spikes"
    # 2000 bins of 5 ms: train the first 70% less one window, test the last 20%
    assert report["test_bins"] == 400 and report["train_bins"] == 1400 - 16
    assert report["train_spikes"] + report["test_spikes"] < 929
    r2 = report["behaviour_r2"]
    assert {"model", "ridge", "model_minus_ridge"} <= set(r2)
    for row in ("model", "ridge"):
        low, high = r2[row]["r2_ci95"]
        assert math.isfinite(r2[row]["r2"]) and low <= high
    assert r2["ridge"]["r2"] > 0.05  # the counts carry some of the envelope
    assert "bits_per_spike" not in report  # one unit: nothing to co-smooth
    assert (tmp_path / "eval" / "report.html").is_file()


def test_binned_events_with_a_two_sided_read_out_fit_and_evaluate(shared_data, tmp_path):
    """The same spikes binned (data.layout: counts), a counts model whose bin queries read the
    bins within read_radius on both sides: fitted, reloaded and scored like the spike model."""
    from neurofm.training.run import load_run

    config = _spike_config(shared_data, tmp_path / "run")
    config["data"]["layout"] = "counts"
    model = {k: v for k, v in config["model"].items() if k not in ("n_bins", "bin_size")}
    config["model"] = {**model, "name": "neurofm_x", "modality": "counts"}
    run = fit(config)
    loaded = load_run(run).model
    assert loaded.config.read_radius == 2 and loaded.bin_window is not None
    report = evaluate_run(run, config=EVALUATION, out_dir=tmp_path / "eval").report
    assert report["input"] == "counts" and report["test_bins"] == 400
    r2 = report["behaviour_r2"]
    for row in ("model", "ridge"):
        low, high = r2[row]["r2_ci95"]
        assert math.isfinite(r2[row]["r2"]) and low <= high


def test_spike_event_data_errors_name_the_key(shared_data, tmp_path):
    config = _spike_config(shared_data, tmp_path / "run")
    config["model"]["n_bins"] = 32
    with pytest.raises(ConfigError, match=r"model.n_bins: 32, but data.window_length is 16"):
        fit(config)
    config = _spike_config(shared_data, tmp_path / "run2")
    config["data"]["time_splits"] = {"train": 0.7, "test": 0.2}
    with pytest.raises(ConfigError, match=r"time_splits: no block for val_split 'val'"):
        fit(config)
    config = _spike_config(shared_data, tmp_path / "run3")
    config["data"]["layout"] = "channels"
    with pytest.raises(ConfigError, match=r"format spike_events gives layout spikes .* or counts"):
        fit(config)
    config = _spike_config(shared_data, tmp_path / "run4")
    config["data"]["format"] = "store"
    with pytest.raises(ConfigError, match=r"layout spikes goes with format spike_events"):
        fit(config)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def lfp_store(shared_data, tmp_path_factory):
    from neurofm.data.prepare import prepare

    shared = shared_data
    config = load_yaml(CONFIGS / "prepare" / "lfp_human_m1.yaml")
    config["inputs"] = [str(shared / "lfp_human_m1" / "sample_data_1.npy")]
    config["output"] = str(tmp_path_factory.mktemp("lfp") / "store")
    prepare(config)
    return config["output"]


def test_lfp_run_fits_and_evaluates_next_to_the_train_mean(lfp_store, tmp_path):
    config = load_yaml(CONFIGS / "fit" / "neurofm_x" / "neurofm_x_lfp.yaml")
    config["data"].update(store=lfp_store, window_length=200, stride=200)
    config["model"] = {"name": "neurofm_x_lfp", "preset": "tiny", "n_chans": 1, "lfp_pool": 4}
    config["trainer"], config["output"] = dict(TRAINER), {"dir": str(tmp_path / "run")}
    run = fit(config)
    report = evaluate_run(run, config=EVALUATION, out_dir=tmp_path / "eval").report
    assert report["task"] == "band_power" and report["steps_per_window"] == 50
    mse = report["band_power_mse"]
    assert set(mse["scores"]) == {"model", "train_mean"} and "train_mean" in mse["differences"]
    for row in (*mse["scores"].values(), *mse["differences"].values()):
        assert all(math.isfinite(row[k]) for k in ("mean", "low", "high"))
        assert row["low"] <= row["high"]
    config["model"]["lfp_pool"] = 3
    config["output"]["dir"] = str(tmp_path / "run2")
    with pytest.raises(ConfigError, match=r"model.lfp_pool: 3 samples per step does not divide"):
        fit(config)
