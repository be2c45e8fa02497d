"""``neurofm evaluate`` / ``neurofm generate`` work on the run of an example fit config trained a
few steps on the prepared shipped sample (that every example fit config trains and evaluates,
each on the data it reads, is tests/workflows/test_every_fit_config_evaluates.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurofm.cli.main import main
from neurofm.config import load_yaml
from neurofm.registry import TOKENIZERS, create

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
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
    "--trainer.accumulate_grad_batches": "1",
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from neurofm.data.recipes import prepare_recipe

    root = tmp_path_factory.mktemp("prepared") / "eegbci_sample"
    prepare_recipe("eegbci_sample", root)
    return root


def _tiny(config: Path) -> dict[str, str]:
    """The file's model at its ``tiny`` preset; the vocabulary still fits the file's tokenizer."""
    data = load_yaml(config)
    extra = {"--model.preset": "tiny"}
    if data.get("tokenizer") is not None and "vocab_size" not in data["model"]:
        vocab_size = create(TOKENIZERS, data["tokenizer"], key="tokenizer").vocab_size
        extra["--model.vocab_size"] = str(vocab_size)
    return extra


def _fit(config: Path, store: Path, run: Path, extra: dict[str, str]) -> int:
    args = ["fit", "--config", str(config), "--data.store", str(store), "--output.dir", str(run)]
    for key, value in {**SMALL, **extra}.items():
        args += [key, value]
    return main(args)


def test_evaluate_and_generate_on_an_example_run(prepared, tmp_path):
    config = CONFIGS / "fit" / "gpt2meg" / "gpt2meg_trf_gpu.yaml"
    run = tmp_path / "run"
    assert _fit(config, prepared, run, _tiny(config)) == 0
    quick = ["--config", str(CONFIGS / "evaluate" / "quick.yaml"), "--evaluation.preset", "smoke"]
    assert main(["evaluate", str(run), *quick]) == 0
    report = json.loads((run / "eval-test" / "report.json").read_text())
    assert {"model", "last_value", "linear_ar", "unigram"} <= set(report["one_step"])
    out = tmp_path / "generated"
    assert main(["generate", str(run), "--seconds", "0.5", "--output", str(out)]) == 0
    generated = np.load(out / "generated.npy")
    assert generated.shape[0] == 64 and np.isfinite(generated).all()
    assert (out / "generated_raw.fif").is_file()
