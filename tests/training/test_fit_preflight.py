"""R18: trainer, hardware and cross-section settings are validated with the rest of the config,
every problem at once with its key path, exit 2, no traceback, nothing written (R12 rules)."""

from __future__ import annotations

import os

import pytest
import torch
import yaml
from _tiny import forecast_config

from neurofm.cli.main import main
from neurofm.errors import ConfigError
from neurofm.training.config import TrainerConfig
from neurofm.training.fit import fit
from neurofm.training.preflight import hardware_problems


def _cli(tmp_path, config, capsys):
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["fit", "--config", str(path)])
    return code, capsys.readouterr().err


def test_every_trainer_and_cross_section_problem_at_once(tiny_store, tmp_path, capsys):
    config = forecast_config(
        tiny_store.root,
        tmp_path / "run",
        tokenizer={"name": "mulaw", "preset": "tiny"},  # forecast takes no tokenizer
        trainer={"accelerator": "gpux", "val_check_interval": 2.5},
    )
    config["modle"] = config.pop("model")
    code, err = _cli(tmp_path, config, capsys)
    assert code == 2 and "Traceback" not in err
    assert "modle: unknown section" in err and "did you mean 'model'" in err
    assert "trainer.accelerator: unknown accelerator 'gpux'" in err and "'gpu'" in err
    assert "trainer.val_check_interval: 2.5" in err
    assert not (tmp_path / "run").exists()

    config = forecast_config(
        tiny_store.root,
        tmp_path / "run",
        tokenizer={"name": "mulaw", "preset": "tiny"},
        trainer={"devices": (os.cpu_count() or 1) + 5},
    )
    code, err = _cli(tmp_path, config, capsys)
    assert code == 2 and "Traceback" not in err
    assert "trainer.devices:" in err and "CPU cores" in err
    assert "tokenizer: objective 'forecast' trains on the float signal" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a GPU config on a CPU machine")
def test_gpu_config_on_a_cpu_machine():
    problems = hardware_problems(TrainerConfig(accelerator="gpu", devices=1))
    assert len(problems) == 1 and problems[0].startswith("trainer.accelerator: 'gpu' is not")
    problems = hardware_problems(TrainerConfig(accelerator="cpu", precision="16-mixed"))
    assert problems and problems[0].startswith("trainer.precision: '16-mixed'")


def test_window_longer_than_max_seq_len_and_objective_kinds(tiny_store, tmp_path):
    config = forecast_config(
        tiny_store.root,
        tmp_path / "run",
        tokenizer={"name": "mulaw", "preset": "tiny"},
        model={
            "name": "gpt2meg",
            "preset": "tiny",
            "n_chans": 4,
            "vocab_size": 16,
            "max_seq_len": 16,
        },
        objective={"name": "forecast"},
    )
    with pytest.raises(ConfigError) as info:
        fit(config)
    text = str(info.value)
    assert "data.window_length: 32 samples exceed the model's max_seq_len=16" in text
    assert "objective.name: objective 'forecast' trains models over signal" in text
    assert not (tmp_path / "run").exists()


def test_validation_interval_past_the_whole_run(tiny_store, tmp_path):
    config = forecast_config(
        tiny_store.root, tmp_path / "run", trainer={"max_steps": 4, "val_check_interval": 50}
    )
    with pytest.raises(ConfigError, match=r"val_check_interval: 50 training batches.* 4 batches"):
        fit(config)
    assert not (tmp_path / "run").exists()


def test_epoch_counter_of_a_step_bounded_run_with_a_batch_interval(tmp_path):
    """The epoch count shown (``Epoch k/n``) is right, not ``k/-2``, when val_check_interval
    counts batches across epochs of a run bounded by max_steps."""
    import csv

    import lightning.pytorch as pl
    from _tiny import make_store

    from neurofm.training.callbacks import epoch_description

    assert (
        epoch_description(1, -1, 2) == "Epoch 1/1" and epoch_description(0, -1, None) == "Epoch 0"
    )
    store = make_store(tmp_path / "store", n_times=600)  # 53 train windows: 7 batches of 8
    seen = []

    class Spy(pl.Callback):
        def on_validation_end(self, trainer, pl_module):
            bar = trainer.progress_bar_callback
            text = bar._get_train_description(trainer.current_epoch).strip()
            seen.append((trainer.current_epoch, trainer.global_step, text))

    config = forecast_config(
        store.root,
        tmp_path / "run",
        trainer={"max_steps": 9, "val_check_interval": 4, "enable_progress_bar": True},
    )
    run_dir = fit(config, callbacks=[Spy()])
    assert seen == [(0, 4, "Epoch 0/1"), (1, 8, "Epoch 1/1")]
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == list(range(9))
    assert [int(r["epoch"]) for r in rows] == [s // 7 for s in range(9)]
