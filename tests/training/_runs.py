"""Helpers to run fits in fresh processes and read their results."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent


def run_fit_process(
    config: dict[str, Any], config_path: Path, *extra: str, kill_after_step: int | None = None
) -> subprocess.CompletedProcess:
    """Write ``config`` to ``config_path`` and run ``neurofm fit`` on it in a new process."""
    config_path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, str(HERE / "_fit_process.py")]
    if kill_after_step is not None:
        cmd += ["--kill-after-step", str(kill_after_step)]
    cmd += ["fit", "--config", str(config_path), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def step_losses(run_dir: Path) -> dict[int, float]:
    """``train/loss`` per logged step from a run's metrics.csv."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        return {
            int(row["step"]): float(row["train/loss"])
            for row in csv.DictReader(fh)
            if row.get("train/loss")
        }


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "model" / "model.safetensors")
