"""Next-band (VAR-style) pieces: band datasets (store windows, the .npz folder format, the
synthetic dataset, limits), generation over stages, and a run through fit / evaluate / generate
on the synthetic folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurofm.data.synthetic import synthetic_store
from neurofm.data.windows import WindowDataset
from neurofm.errors import ConfigError, RecordingError
from neurofm.generation import generate_bands
from neurofm.registry import MODELS, create
from neurofm.tokenizers.band_data import (
    BandFolder,
    BandWindowDataset,
    LimitedDataset,
    synthetic_band_folder,
    write_band_folder,
)
from neurofm.tokenizers.bands import cumulative_frequency_levels

BANDS = [[1.0, 8.0], [8.0, 20.0], [20.0, 40.0]]


def test_store_windows_become_cumulative_bands_at_the_store_rate(tmp_path):
    store = synthetic_store(tmp_path / "store", n_subjects=1, duration=4.0, n_events=2)
    windows = WindowDataset(store, window_length=100)
    bands = BandWindowDataset(windows, sfreq=100.0, bands=BANDS, n_taps=51)
    item = bands[1]
    assert item["x"].shape == (3, 4, 100) and item["x"].dtype == torch.float32
    expected = cumulative_frequency_levels(windows[1]["x"].numpy(), 100.0, BANDS, 51)
    np.testing.assert_allclose(item["x"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert item["start"] == windows[1]["start"]
    with pytest.raises(ConfigError, match=r"data\.bands.*Nyquist \(50\.0 Hz"):
        BandWindowDataset(windows, sfreq=100.0, bands=[[1.0, 8.0], [30.0, 60.0]])


def test_synthetic_folder_is_deterministic_and_round_trips(tmp_path):
    counts = synthetic_band_folder(tmp_path / "a", n_train=3, n_val=2, n_times=200)
    synthetic_band_folder(tmp_path / "b", n_train=3, n_val=2, n_times=200)
    assert counts == {"train": 3, "val": 2}
    a, b = BandFolder(tmp_path / "a").dataset("train"), BandFolder(tmp_path / "b").dataset("train")
    assert torch.equal(a[2]["x"], b[2]["x"]) and a[0]["x"].shape == (5, 4, 200)
    assert a.sfreq == 100.0 and len(a.bands) == 5
    # written again from the datasets: same levels, read back unchanged
    write_band_folder(tmp_path / "c", {"train": a}, sfreq=a.sfreq, bands=a.bands)
    assert torch.equal(BandFolder(tmp_path / "c").dataset("train")[1]["x"], a[1]["x"])
    assert len(LimitedDataset(a, 2)) == 2 and len(LimitedDataset(a, 10)) == 3
    with pytest.raises(ConfigError, match="no split folder 'test'"):
        BandFolder(tmp_path / "a").dataset("test")
    np.savez(tmp_path / "a" / "val" / "sample_00009.npz", signal=np.zeros((4, 200)))
    with pytest.raises(RecordingError, match="sample_00009.npz.*missing field 'cumulative_bands'"):
        BandFolder(tmp_path / "a").dataset("val")


def test_generation_over_stages_from_the_lowest_band_and_from_zeros():
    torch.manual_seed(0)
    model = create(MODELS, {"name": "next_band", "preset": "tiny"}).eval()
    first = torch.randn(2, 4, 32)
    levels = generate_bands(model, first)
    assert levels.shape == (2, 3, 4, 32) and torch.equal(levels[:, 0], first)
    with torch.no_grad():  # stage k is the model's map of the generated stage k - 1
        stack = torch.zeros(2, 3, 4, 32)
        stack[:, 2] = levels[:, 1]
        assert torch.allclose(model(stack).prediction[:, 2], levels[:, 2], atol=1e-6)
    single = generate_bands(model, first[0])
    assert single.shape == (3, 4, 32)
    free = generate_bands(model)
    assert free.shape == (1, 3, 4, 64) and torch.isfinite(free).all()


def test_fit_evaluate_generate_on_the_band_folder(tmp_path):
    from neurofm.evaluation.common import EvaluateConfig
    from neurofm.evaluation.evaluate import evaluate_run
    from neurofm.training.fit import fit
    from neurofm.workflows.generate import generate_run

    synthetic_band_folder(tmp_path / "data", n_train=6, n_val=3, n_times=64, bands=BANDS)
    run = fit(
        {
            "data": {
                "store": str(tmp_path / "data"),
                "format": "band_npz",
                "batch_size": 2,
                "max_train_windows": 4,
            },
            "model": {"name": "next_band", "preset": "tiny"},
            "objective": {"name": "next_band"},
            "trainer": {
                "max_steps": 4,
                "val_check_interval": 2,
                "accelerator": "cpu",
                "log_every_n_steps": 1,
                "enable_progress_bar": False,
            },
            "output": {"dir": str(tmp_path / "run"), "checkpoint_every_n_steps": 4},
        }
    )
    assert json.loads((run / "best" / "best.json").read_text())["val/loss"] > 0
    curves = json.loads((run / "metrics.json").read_text())
    assert {"train/loss", "val/loss", "train/grad_norm"} <= set(curves)

    cfg = EvaluateConfig(split="val", n_bootstrap=20, plot_channel=1)
    result = evaluate_run(run, config=cfg, out_dir=tmp_path / "eval", checkpoint="best")
    report = result.report
    assert report["task"] == "next_band" and set(report["one_step"]) == {
        "stage0",
        "stage1",
        "stage2",
    }
    assert set(report["one_step"]["stage1"]["mse"]) == {"model", "no_new_band", "ridge"}
    assert (tmp_path / "eval" / "rollout.png").is_file()
    sample = json.loads((tmp_path / "eval" / "rollout_metrics.json").read_text())
    assert sample["channel"] == 1 and set(sample["per_stage_mse"]) == {"stage1", "stage2"}

    paths = generate_run(run, prompt="val:2", output=tmp_path / "gen", unconditional=True)
    assert np.load(paths["npy"]).shape == (3, 4, 64)
    assert (
        paths["png"].is_file()
        and "cumulative_mse" in json.loads(paths["metrics"].read_text())["all_channels"]
    )
