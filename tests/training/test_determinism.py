"""R8: the same seed in fresh processes gives identical losses; so do num_workers 0 and 2."""

from __future__ import annotations

import os

import pytest
import torch
from _runs import final_weights, run_fit_process, step_losses
from _tiny import forecast_config


def test_same_seed_fresh_processes_and_worker_counts_give_identical_losses(tiny_store, tmp_path):
    runs = {}
    for name, workers in (("first", 0), ("second", 0), ("workers", 2)):
        config = forecast_config(tiny_store.root, tmp_path / name, data={"num_workers": workers})
        done = run_fit_process(config, tmp_path / f"{name}.yaml")
        assert done.returncode == 0, done.stderr
        runs[name] = tmp_path / name
    reference = step_losses(runs["first"])
    assert sorted(reference) == list(range(12))
    for name in ("second", "workers"):
        assert step_losses(runs[name]) == reference, name
        for key, value in final_weights(runs["first"]).items():
            assert torch.equal(value, final_weights(runs[name])[key]), (name, key)


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2, reason="two DDP processes need two CPU cores (trainer.devices)"
)
def test_two_process_ddp_on_cpu_matches_single_process(tiny_store, tmp_path):
    """Two gloo ranks with half the batch each follow the single-process run closely (about
    20 s: run by default, so that `make test` and CI exercise the distributed path)."""
    single = forecast_config(
        tiny_store.root,
        tmp_path / "single",
        data={"shuffle": False},
        model={"name": "conv_forecaster", "preset": "tiny"},
    )
    ddp = forecast_config(
        tiny_store.root,
        tmp_path / "ddp",
        data={"shuffle": False, "batch_size": 4},
        model={"name": "conv_forecaster", "preset": "tiny"},
        trainer={"strategy": "ddp", "devices": 2},
    )
    for name, config in (("single", single), ("ddp", ddp)):
        done = run_fit_process(config, tmp_path / f"{name}.yaml")
        assert done.returncode == 0, done.stderr
    # Rank 0 logs the loss of its own half-batch; compare the final weights, which see both.
    ref, got = final_weights(tmp_path / "single"), final_weights(tmp_path / "ddp")
    for key in ref:
        torch.testing.assert_close(got[key], ref[key], rtol=1e-4, atol=1e-5)
