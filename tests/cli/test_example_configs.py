"""Every example fit config in configs/ trains (a few steps) on the prepared shipped sample, and
``neurofm evaluate`` / ``neurofm generate`` work on the run it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurofm.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FIT_CONFIGS = sorted(CONFIGS.glob("fit_*.yaml"))
# Shrink each run to seconds on a CPU; everything else comes from the example file.
SMALL = {
    "--trainer.max_steps": "2",
    "--trainer.max_epochs": "1",
    "--trainer.accelerator": "cpu",
    "--trainer.devices": "1",
    "--trainer.strategy": "auto",
    "--trainer.precision": "32-true",
    "--trainer.enable_progress_bar": "false",
    "--data.num_workers": "0",
    "--data.batch_size": "2",
    "--output.checkpoint_every_n_steps": "2",
    "--trainer.val_check_interval": "2",
    "--trainer.limit_val_batches": "2",
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from neurofm.data.recipes import prepare_recipe

    root = tmp_path_factory.mktemp("prepared") / "eegbci_sample"
    prepare_recipe("eegbci_sample", root)
    return root


def _fit(config: Path, store: Path, run: Path, extra: dict[str, str]) -> int:
    args = ["fit", "--config", str(config), "--data.store", str(store), "--output.dir", str(run)]
    for key, value in {**SMALL, **extra}.items():
        args += [key, value]
    return main(args)


@pytest.mark.parametrize("config", FIT_CONFIGS, ids=[c.stem for c in FIT_CONFIGS])
def test_example_fit_config_trains(config, prepared, tmp_path):
    extra = {"--model.preset": "tiny"}
    if "next_token" in config.stem:
        extra.update(
            {
                "--model.max_seq_len": "256",
                "--model.n_chans": "64",
                "--model.vocab_size": "256",
                "--trainer.accumulate_grad_batches": "1",
            }
        )
    run = tmp_path / "run"
    assert _fit(config, prepared, run, extra) == 0
    assert (run / "model" / "model.safetensors").is_file()
    assert (run / "config.yaml").is_file()


def test_evaluate_and_generate_on_an_example_run(prepared, tmp_path):
    config = CONFIGS / "fit_next_token_gpu.yaml"
    run = tmp_path / "run"
    extra = {
        "--model.preset": "tiny",
        "--model.max_seq_len": "256",
        "--model.n_chans": "64",
        "--model.vocab_size": "256",
        "--trainer.accumulate_grad_batches": "1",
    }
    assert _fit(config, prepared, run, extra) == 0
    assert main(["evaluate", str(run), "--config", str(CONFIGS / "evaluate_quick.yaml")]) == 0
    report = json.loads((run / "eval-test" / "report.json").read_text())
    assert {"model", "last_value", "linear_ar", "unigram"} <= set(report["one_step"])
    out = tmp_path / "generated"
    assert main(["generate", str(run), "--seconds", "0.5", "--output", str(out)]) == 0
    generated = np.load(out / "generated.npy")
    assert generated.shape[0] == 64 and np.isfinite(generated).all()
    assert (out / "generated_raw.fif").is_file()
