"""``fit`` end to end on a tiny store: three objectives, run folder, load_run, errors (R4, R12)."""

from __future__ import annotations

import csv

import lightning.pytorch as pl
import pytest
import torch
import yaml
from _tiny import forecast_config

from neurofm.errors import ConfigError, TrainingError
from neurofm.training.checkpoint import latest_checkpoint, list_checkpoints
from neurofm.training.fit import fit
from neurofm.training.run import load_run


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_forecast_run_folder_and_load_run(tiny_store, tmp_path):
    run_dir = fit(forecast_config(tiny_store.root, tmp_path / "run"))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert set(saved) == {
        "data",
        "tokenizer",
        "model",
        "objective",
        "optim",
        "trainer",
        "output",
        "channels",
        "neurofm_version",
    }
    assert saved["channels"] == ["C0", "C1", "C2", "C3"]
    assert saved["model"]["d_model"] == 8  # the preset is resolved
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["step-8", "step-12"]
    assert latest_checkpoint(run_dir / "checkpoints").name == "step-12"
    losses = [float(r["train/loss"]) for r in _rows(run_dir) if r.get("train/loss")]
    assert len(losses) == 12 and all(torch.isfinite(torch.tensor(losses)))
    run = load_run(run_dir)
    assert not run.model.training and run.tokenizer is None
    assert run.config["objective"]["name"] == "forecast"
    val = run.dataset("val")
    assert val.window_length == 32 and val[0]["x"].shape == (4, 32)
    last = load_run(run_dir, checkpoint="last").model
    for key, value in run.model.state_dict().items():
        assert torch.equal(value, last.state_dict()[key])


def test_gaussian_forecast_reports_bits(tiny_store, tmp_path):
    config = forecast_config(
        tiny_store.root,
        tmp_path / "run",
        model={"name": "conv_forecaster", "preset": "tiny", "predict_variance": True},
        objective={"name": "forecast", "loss": "gaussian_nll", "bin_width": 0.01},
        trainer={"max_steps": 4, "val_check_interval": 2},
    )
    run_dir = fit(config)
    rows = _rows(run_dir)
    val = [r for r in rows if r.get("val/bits_per_channel_sample")]
    assert len(val) == 2 and all(float(r["val/bits_per_channel_sample"]) > 0 for r in val)
    assert any(r.get("train/nll") for r in rows)


def test_classification_run(tiny_store, tmp_path):
    config = forecast_config(
        tiny_store.root,
        tmp_path / "run",
        data={"labels": {"T1": 0, "T2": 1}},
        model={"name": "classifier_continuous", "preset": "tiny", "n_classes": 2, "dropout": 0.1},
        objective={"name": "classification"},
        trainer={
            "max_steps": 6,
            "val_check_interval": 3,
            "accumulate_grad_batches": 2,
            "gradient_clip_val": 1.0,
        },
    )
    run_dir = fit(config)
    val = [r for r in _rows(run_dir) if r.get("val/accuracy")]
    assert val and all(0 <= float(r["val/balanced_accuracy"]) <= 1 for r in val)
    assert load_run(run_dir).dataset("train").labels.min() >= 0


def test_tokenized_next_token_run(tiny_store, tmp_path):
    config = forecast_config(
        tiny_store.root,
        tmp_path / "run",
        tokenizer={"name": "mulaw", "preset": "tiny"},
        model={"name": "gpt2meg", "preset": "tiny", "n_chans": 4, "vocab_size": 16},
        objective={"name": "next_token"},
        trainer={"max_steps": 3},
    )
    seen = []

    class Spy(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch.x.dtype)

    run_dir = fit(config, callbacks=[Spy()])
    assert seen == [torch.int64] * 3
    run = load_run(run_dir)
    assert run.tokenizer is not None and run.tokenizer.is_fitted
    assert run.tokenizer.fitted_on.endswith(":train")


class _CorruptWeights(pl.Callback):
    """Fill the weights with NaN after ``step`` optimizer steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_store, tmp_path):
    """R4: a NaN loss raises TrainingError; the last complete checkpoint stays the newest."""
    config = forecast_config(tiny_store.root, tmp_path / "run")
    with pytest.raises(TrainingError, match="non-finite training loss .* step 5"):
        fit(config, callbacks=[_CorruptWeights(5)])
    run_dir = tmp_path / "run"
    assert latest_checkpoint(run_dir / "checkpoints").name == "step-4"
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["step-4"]
    assert not (run_dir / "model").exists()


def test_every_config_problem_reported_before_anything_is_written(tiny_store, tmp_path):
    """R12: one ConfigError listing each problem with its key path; nothing is created."""
    config = forecast_config(tiny_store.root, tmp_path / "run")
    config["model"]["n_layer"] = 3
    config["optim"]["lr"] = "fast"
    config["trainer"]["precision"] = "bf16"
    config["objective"]["loss"] = "mae"
    config["optimizer"] = {}
    with pytest.raises(ConfigError) as info:
        fit(config)
    text = str(info.value)
    assert len(info.value.problems) == 5, text
    assert "model.n_layer: unknown key" in text and "did you mean 'n_layers'" in text
    assert "optim.lr: expected float" in text
    assert "trainer.precision: invalid value 'bf16'" in text and "'bf16-mixed'" in text
    assert "objective.loss: invalid value 'mae'" in text
    assert "optimizer: unknown section" in text and "did you mean 'optim'" in text
    assert not (tmp_path / "run").exists()


def test_data_model_mismatch_and_existing_run_are_refused(tiny_store, tmp_path):
    model = {"name": "conv_forecaster", "preset": "tiny", "n_chans": 6}
    config = forecast_config(
        tiny_store.root, tmp_path / "run", model=model, trainer={"max_steps": 2}
    )
    with pytest.raises(ConfigError, match="model.n_chans: 6, but the windows .* have 4 channels"):
        fit(config)
    config["model"]["n_chans"] = 4
    fit(config)
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(config)
    config["model"]["d_model"] = 16
    with pytest.raises(ConfigError, match="model: differs from the run being resumed"):
        fit(config, resume=True)
