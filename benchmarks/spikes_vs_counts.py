"""Spike events vs binned counts on the same real spike data (the grasshopper receptor).

Two NeuroFM-X models are trained with ``neurofm fit`` on the same recording, time blocks,
windows, sizes, objective, steps and seed; they differ only in their input:

- ``spikes``: ``configs/fit/neurofm_x/neurofm_x_spikes.yaml`` as it is (one token per spike,
  each 5 ms bin's query reads the spikes within 2 bins);
- ``counts``: the same config with ``data.layout: counts`` and ``model.modality: counts``: the
  binned counts of the same 5 ms bins, one token per bin.

Both are scored on every bin of the held-out block (the last 20%, 400 bins) together with the
ridge regression on the binned counts of bins t-5 .. t+5 (fitted on the train block): envelope
R² with 95% moving-block bootstrap intervals (blocks of one window, 64 bins) and the paired
differences spikes - counts and spikes - ridge on the same resamples, for each seed. Two more
ridge rows read only the bins before (t-5 .. t) or after (t .. t+5) each bin: they show where
the decodable information sits. Writes
``docs/results/spikes_vs_counts_grasshopper.json``. Run: ``python -m benchmarks.spikes_vs_counts
[--steps 300] [--seeds 0 1]`` (one torch thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks._common import machine_info

from neurofm.evaluation.behaviour import lagged, two_sided_lags

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "spikes_grasshopper"
CONFIG = ROOT / "configs" / "fit" / "neurofm_x" / "neurofm_x_spikes.yaml"
OUT = ROOT / "docs" / "results" / "spikes_vs_counts_grasshopper.json"
LAGS = {  # ridge baselines: the binned counts of which bins around bin t
    "ridge": lambda c: two_sided_lags(c, 5),
    "ridge_past": lambda c: lagged(c, 6),  # t, t-1, .., t-5
    "ridge_later": lambda c: lagged(c[::-1], 6)[::-1],  # t, t+1, .., t+5
}
SPIKE_ONLY = ("n_bins", "bin_size", "read_radius", "n_waveform_features", "time_scale")


def config_for(kind: str, steps: int, seed: int, out: Path) -> dict[str, Any]:
    """The fit config of the ``spikes`` or ``counts`` model."""
    from neurofm.config import load_yaml

    config = load_yaml(CONFIG)
    config["data"].update(
        store=str(DATA / "grasshopper_spike_times1.txt"),
        behaviour_file=str(DATA / "grasshopper_stimulus1.txt"),
    )
    config["trainer"].update(
        max_steps=steps, seed=seed, accelerator="cpu", devices=1, enable_progress_bar=False
    )
    config["output"] = {"dir": str(out), "checkpoint_every_n_steps": steps}
    if kind == "counts":
        config["data"]["layout"] = "counts"
        model = {k: v for k, v in config["model"].items() if k not in SPIKE_ONLY}
        config["model"] = {**model, "name": "neurofm_x", "modality": "counts"}
    return config


def run_seed(seed: int, steps: int, n_bootstrap: int) -> dict[str, Any]:
    """Fit both models with ``seed``; their R² and the ridge's on the test block."""
    from neurofm.evaluation.behaviour import fit_ridge
    from neurofm.evaluation.neural_x import RIDGES, block_outputs, r2_intervals
    from neurofm.training.fit import fit
    from neurofm.training.run import load_run

    predictions, sizes, seconds = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("spikes", "counts"):
            start = time.perf_counter()
            run_dir = fit(config_for(kind, steps, seed, Path(tmp) / kind))
            seconds[kind] = round(time.perf_counter() - start, 1)
            run = load_run(run_dir)
            source = run.store
            _, predictions[kind] = block_outputs(run.model, source, "test", batch_size=16)
            sizes[kind] = int(sum(p.numel() for p in run.model.parameters()))
    train, test = source.block("train"), source.block("test")
    counts = source.counts
    y_train = source.behaviour[train.first : train.first + train.n_bins]
    y_test = source.behaviour[test.first : test.first + test.n_bins]
    penalties = {}
    for name, lags in LAGS.items():
        weights, penalties[name] = fit_ridge(
            lags(counts[train.first : train.first + train.n_bins]), y_train, RIDGES
        )
        features = lags(counts[test.first : test.first + test.n_bins])
        predictions[name] = np.c_[features, np.ones(len(features))] @ weights
    rows = {"model": predictions["spikes"], "counts": predictions["counts"]}
    rows.update({name: predictions[name] for name in LAGS})
    scores = r2_intervals(y_test, rows, n=n_bootstrap, block=64, seed=seed)
    counts_vs_ridge = r2_intervals(
        y_test,
        {"model": predictions["counts"], "ridge": predictions["ridge"]},
        n=n_bootstrap,
        block=64,
        seed=seed,
    )
    return {
        "seed": seed,
        "r2": {
            "neurofm_x spike events": scores["model"],
            "neurofm_x binned counts": scores["counts"],
            "ridge (binned counts, +-5 bins)": scores["ridge"],
            "ridge, past bins only (t-5 .. t)": scores["ridge_past"],
            "ridge, later bins only (t .. t+5)": scores["ridge_later"],
        },
        "differences": {
            "spikes - counts": scores["model_minus_counts"],
            "spikes - ridge": scores["model_minus_ridge"],
            "counts - ridge": counts_vs_ridge["model_minus_ridge"],
        },
        "ridge_penalties": penalties,
        "parameters": sizes,
        "fit_seconds": seconds,
        "train_bins": int(train.n_bins),
        "test_bins": int(test.n_bins),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n_bootstrap", type=int, default=500)
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"the grasshopper recording is absent ({DATA})", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    results = [run_seed(seed, args.steps, args.n_bootstrap) for seed in args.seeds]
    report = {
        "benchmark": "spikes_vs_counts",
        "data": "grasshopper_spike_times1.txt + grasshopper_stimulus1.txt (one unit, 10 s)",
        "config": str(CONFIG.relative_to(ROOT)),
        "steps": args.steps,
        "bin_size_s": 0.005,
        "split": "time blocks train 0.7 (less one 64-bin window), val 0.1 (less one window), "
        "test the last 0.2",
        "intervals": "95% moving-block bootstrap over test bins, blocks of 64 bins; "
        "differences paired on the same resamples",
        "seeds": results,
        "machine": machine_info(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({r["seed"]: {k: v["r2"] for k, v in r["r2"].items()} for r in results}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
