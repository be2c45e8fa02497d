"""Spike events vs binned counts on the same real spike data (the grasshopper receptor).

Three NeuroFM-X models are trained with ``neurofm fit`` on the same recording, time blocks,
windows, sizes, objective, steps and seed; they differ in their input and per-bin read-out:

- ``spikes``: ``configs/fit/neurofm_x/neurofm_x_spikes.yaml`` as it is (one token per spike,
  each 5 ms bin's query reads the spikes within 2 bins);
- ``counts``: the same config with ``data.layout: counts`` and ``model.modality: counts``: the
  binned counts of the same 5 ms bins, one token per bin; each bin's query is the backbone
  feature of that bin (the default read-out: the bins up to the end of the bin's pooled block);
- ``counts_window``: as ``counts`` with ``read_radius: 2`` kept: each bin's query also attends
  to the backbone features of the bins within 2 bins on both sides, the window the spike
  model's bin query reads.

All three are scored on every bin of the held-out block (the last 20%, 400 bins) together with the
ridge regression on the binned counts of bins t-5 .. t+5 (fitted on the train block): envelope
R² with 95% moving-block bootstrap intervals (blocks of one window, 64 bins) and the paired
differences (spikes and the two count read-outs against each other and the ridge) on the same
resamples, for each seed; the same on the train block shows what each model fits. Two more
ridge rows read only the bins before (t-5 .. t) or after (t .. t+5) each bin: they show where
the decodable information sits. Writes
``docs/results/spikes_vs_counts_grasshopper.json``. Run: ``python -m benchmarks.spikes_vs_counts
[--steps 300] [--seeds 0 1]`` (one torch thread).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks._common import machine_info, seeded_runs

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
SPIKE_ONLY = ("n_bins", "bin_size", "n_waveform_features", "time_scale")
KINDS = ("spikes", "counts", "counts_window")
ROWS = {  # row of the report: prediction key
    "neurofm_x spike events": "spikes",
    "neurofm_x binned counts (per-bin read-out)": "counts",
    "neurofm_x binned counts (read-out of bins t-2 .. t+2)": "counts_window",
    "ridge (binned counts, +-5 bins)": "ridge",
    "ridge, past bins only (t-5 .. t)": "ridge_past",
    "ridge, later bins only (t .. t+5)": "ridge_later",
}
DIFFERENCES = (  # paired: first - second
    ("spikes", "counts"),
    ("spikes", "counts_window"),
    ("counts_window", "counts"),
    ("spikes", "ridge"),
    ("counts", "ridge"),
    ("counts_window", "ridge"),
)


def config_for(kind: str, steps: int, seed: int, out: Path) -> dict[str, Any]:
    """The fit config of the ``spikes``, ``counts`` or ``counts_window`` model."""
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
    if kind.startswith("counts"):
        config["data"]["layout"] = "counts"
        drop = SPIKE_ONLY + (("read_radius",) if kind == "counts" else ())
        model = {k: v for k, v in config["model"].items() if k not in drop}
        config["model"] = {**model, "name": "neurofm_x", "modality": "counts"}
    return config


def paired(
    y: np.ndarray, predictions: dict[str, np.ndarray], n: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """R² with intervals of every row of :data:`ROWS` and the :data:`DIFFERENCES`, all on the
    same block resamples of ``y``."""
    from neurofm.evaluation.neural_x import r2_intervals

    def scores(name: str) -> dict[str, Any]:
        rows = {"model": predictions[name], **{k: p for k, p in predictions.items() if k != name}}
        return r2_intervals(y, rows, n=n, block=64, seed=seed)

    by_first = {first: scores(first) for first, _ in DIFFERENCES}
    r2 = {row: by_first["spikes"][key if key != "spikes" else "model"] for row, key in ROWS.items()}
    differences = {
        f"{first} - {second}": by_first[first][f"model_minus_{second}"]
        for first, second in DIFFERENCES
    }
    return r2, differences


def run_seed(seed: int, steps: int, n_bootstrap: int) -> dict[str, Any]:
    """Fit the three models with ``seed``; their R² and the ridges' on the test block (and on
    the train block)."""
    from neurofm.evaluation.behaviour import fit_ridge
    from neurofm.evaluation.neural_x import RIDGES, block_outputs
    from neurofm.training.fit import fit
    from neurofm.training.run import load_run

    test, train, sizes, seconds = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            start = time.perf_counter()
            run_dir = fit(config_for(kind, steps, seed, Path(tmp) / kind))
            seconds[kind] = round(time.perf_counter() - start, 1)
            run = load_run(run_dir)
            source = run.store
            _, test[kind] = block_outputs(run.model, source, "test", batch_size=16)
            _, train[kind] = block_outputs(run.model, source, "train", batch_size=16)
            sizes[kind] = int(sum(p.numel() for p in run.model.parameters()))
    blocks = {"train": source.block("train"), "test": source.block("test")}
    counts = {k: source.counts[b.first : b.first + b.n_bins] for k, b in blocks.items()}
    y = {k: source.behaviour[b.first : b.first + b.n_bins] for k, b in blocks.items()}
    penalties = {}
    for name, lags in LAGS.items():
        weights, penalties[name] = fit_ridge(lags(counts["train"]), y["train"], RIDGES)
        for split, predictions in (("train", train), ("test", test)):
            features = lags(counts[split])
            predictions[name] = np.c_[features, np.ones(len(features))] @ weights
    r2, differences = paired(y["test"], test, n_bootstrap, seed)
    train_r2, train_differences = paired(y["train"], train, n_bootstrap, seed)
    return {
        "seed": seed,
        "r2": r2,
        "differences": differences,
        "train_block": {"r2": train_r2, "differences": train_differences},
        "ridge_penalties": penalties,
        "parameters": sizes,
        "fit_seconds": seconds,
        "train_bins": int(blocks["train"].n_bins),
        "test_bins": int(blocks["test"].n_bins),
    }


def main(argv: list[str] | None = None) -> int:
    runs = seeded_runs(__doc__, OUT, DATA, run_seed, argv)
    if runs is None:
        return 1
    args, results = runs
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
