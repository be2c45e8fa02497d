"""The VAR variant of next band through the Lightning engine on CPU: bf16 mixed precision, and
two DDP processes (gloo) on two CPU cores; a GPU run (bf16 on CUDA, NCCL) is not tested here."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _runs import HERE, final_weights, step_losses

from neurofm.tokenizers.band_data import synthetic_band_folder

BANDS = [[1.0, 8.0], [8.0, 20.0], [20.0, 40.0]]


def var_config(data: Path, run: Path, **trainer) -> dict:
    return {
        "data": {"store": str(data), "format": "band_npz", "batch_size": 4, "shuffle": False},
        "tokenizer": {"name": "band_rvq", "preset": "tiny", "bands": BANDS},
        "model": {"name": "next_band_var", "preset": "tiny", "n_classes": 0},
        "objective": {"name": "band_tokens", "progressive_steps": 2},
        "trainer": {
            "max_steps": 4,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "seed": 1,
            **trainer,
        },
        "output": {"dir": str(run), "checkpoint_every_n_steps": 4},
    }


@pytest.fixture(scope="module")
def band_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bands") / "data"
    synthetic_band_folder(root, n_train=16, n_val=4, n_times=32, bands=BANDS)
    return root


def test_bf16_mixed_precision_on_cpu(band_folder, tmp_path):
    from neurofm.training.fit import fit

    run = fit(var_config(band_folder, tmp_path / "run", precision="bf16-mixed"))
    losses = step_losses(run)
    assert sorted(losses) == [0, 1, 2, 3] and all(math.isfinite(v) for v in losses.values())
    weights = final_weights(run)
    assert weights and all(str(w.dtype) == "torch.float32" for w in weights.values())


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2, reason="two DDP processes need two CPU cores (trainer.devices)"
)
def test_two_process_ddp_on_cpu(band_folder, tmp_path):
    config = var_config(band_folder, tmp_path / "ddp", strategy="ddp", devices=2)
    config["data"]["batch_size"] = 2  # per process: the same 4 windows per step as one process
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(config))
    # each rank starts a fresh interpreter and fits the (seeded, so identical) tokenizer: on a
    # loaded machine that takes minutes, hence the long timeout
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "_fit_process.py"),
            "fit",
            "--config",
            str(tmp_path / "ddp.yaml"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    losses = step_losses(tmp_path / "ddp")
    assert sorted(losses) == [0, 1, 2, 3] and all(math.isfinite(v) for v in losses.values())
    assert (tmp_path / "ddp" / "tokenizer" / "tokenizer.json").is_file()
    assert final_weights(tmp_path / "ddp")
