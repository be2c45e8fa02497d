"""Evaluation of runs of spike-event and field-potential models (NeuroFM-X ``modality: spikes``
and ``lfp``) on their held-out time block, next to baselines fitted on the train block.

- spike events (spec inputs ``spike_events``, data ``format: spike_events``): the test block is
  covered by consecutive windows (the last one ends at the block's last bin; where it overlaps
  the one before, its values win) and the decoded behaviour of every bin is scored by R² next to
  a ridge regression on the binned counts of bins ``t - n_lags .. t + n_lags`` (the model reads
  whole windows, so the baseline reads both sides too; lags stay inside each block), fitted on
  the train block with the penalty chosen on its last 20% (the baseline of ``neurofm
  stimulus``). Intervals: moving-block bootstrap over test bins (blocks of one window), the
  model-minus-ridge difference paired on the same resamples. With two units or more, also
  co-smoothing (a seeded quarter of the units hidden from the model) in bits per spike next to
  the smoothed-spikes Poisson GLM, as for binned counts.
- field potentials (spec inputs ``field_potentials``): non-overlapping test windows; the MSE of
  the model's log band powers per pooled step against those of the input, next to predicting
  every step by the train mean of each band (the baseline of ``neurofm lfp``); intervals:
  moving-block bootstrap over the steps in time order, the difference paired.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data.collate import collate
from neurofm.data.event_source import EventWindows
from neurofm.evaluation.behaviour import fit_ridge, r2_score, two_sided_lags
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly, write_run_report
from neurofm.evaluation.cosmoothing import bits_per_spike, smoothed_glm_rates
from neurofm.evaluation.intervals import block_resamples, bootstrap_intervals

RIDGES = (0.1, 1.0, 10.0, 100.0, 1000.0)
N_LAGS = 5  # bins on each side of the ridge baseline's bin
LFP_BLOCK_STEPS = 25  # pooled steps per bootstrap block of the field-potential scores


def r2_intervals(
    y: np.ndarray, predictions: dict[str, np.ndarray], *, n: int, block: int, seed: int
) -> dict[str, Any]:
    """R² (averaged over the columns of ``y`` (N, K)) of each prediction with its 95% interval
    and, for every name but ``model``, ``model`` minus it, paired on the same resamples of
    the rows (moving blocks of ``block`` rows, in time order)."""
    index = block_resamples(len(y), n, block, seed)
    samples = {
        name: np.array([r2_score(y[i], p[i]) for i in index]) for name, p in predictions.items()
    }
    out: dict[str, Any] = {
        name: {
            "r2": r2_score(y, p),
            "r2_ci95": [float(v) for v in np.percentile(samples[name], [2.5, 97.5])],
        }
        for name, p in predictions.items()
    }
    if "model" in predictions:
        for name in predictions:
            if name != "model":
                diff = samples["model"] - samples[name]
                out[f"model_minus_{name}"] = {
                    "mean": out["model"]["r2"] - out[name]["r2"],
                    "ci95": [float(v) for v in np.percentile(diff, [2.5, 97.5])],
                }
    return out


def block_outputs(
    model: torch.nn.Module, source: Any, split: str, batch_size: int, observed: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log rates (n_bins, U) and behaviour (n_bins, K) or None of every bin of ``split``'s
    block, from the consecutive windows that cover it."""
    starts, block = source.windows_covering(split)
    windows = EventWindows(source, starts)
    rates = np.zeros((block.n_bins, source.n_units))
    behaviour = None
    mask = None if observed is None else torch.from_numpy(observed)
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(starts), batch_size):
            items = [windows[i] for i in range(lo, min(lo + batch_size, len(starts)))]
            batch = source.collate()(items)
            out = model(batch.x, observed=mask)
            if "behaviour" in out.extras and behaviour is None:
                behaviour = np.zeros((block.n_bins, out.extras["behaviour"].shape[-1]))
            for k, start in enumerate(starts[lo : lo + batch_size]):
                at = slice(start - block.first, start - block.first + windows.window)
                rates[at] = out.prediction[k].float().numpy()
                if behaviour is not None:
                    behaviour[at] = out.extras["behaviour"][k].float().numpy()
    return rates, behaviour


def _block_counts(source: Any, split: str) -> np.ndarray:
    block = source.block(split)
    return source.counts[block.first : block.first + block.n_bins]


def evaluate_spikes(
    model: torch.nn.Module, source: Any, *, split: str, train_split: str, config: EvaluateConfig
) -> EvaluationResult:
    """Score a spike-event model on the block of ``split`` (see the module docstring)."""
    train_counts, test_counts = _block_counts(source, train_split), _block_counts(source, split)
    window = int(source.data.window_length)
    report: dict[str, Any] = {
        "task": "spike_events",
        "input": source.data.layout,  # spikes (events) or counts (binned events)
        "bin_size_s": source.bin_size,
        "n_units": source.n_units,
        "train_bins": int(len(train_counts)),
        "test_bins": int(len(test_counts)),
        "train_spikes": int(train_counts.sum()),
        "test_spikes": int(test_counts.sum()),
        "window_bins": window,
        "definitions": {},
    }
    log_rates, behaviour = block_outputs(model, source, split, config.batch_size)
    if source.behaviour is not None and behaviour is not None:
        train_block, test_block = source.block(train_split), source.block(split)
        y_train = source.behaviour[train_block.first : train_block.first + train_block.n_bins]
        y_test = source.behaviour[test_block.first : test_block.first + test_block.n_bins]
        weights, ridge = fit_ridge(two_sided_lags(train_counts, N_LAGS), y_train, RIDGES)
        features = two_sided_lags(test_counts, N_LAGS)
        baseline = np.c_[features, np.ones(len(features))] @ weights
        report["behaviour_r2"] = r2_intervals(
            y_test,
            {"model": behaviour, "ridge": baseline},
            n=config.n_bootstrap,
            block=window,
            seed=config.seed,
        )
        report["ridge_penalty"] = ridge
        report["definitions"]["behaviour_r2"] = (
            "R² per behaviour variable over every bin of the held-out block, averaged; ridge: "
            f"binned counts of bins t-{N_LAGS} .. t+{N_LAGS}, fitted on the train block; 95% "
            "intervals: moving-block bootstrap over bins (blocks of one window), the "
            "difference paired on the same resamples"
        )
    if source.n_units >= 2:
        report["bits_per_spike"] = _cosmoothing(model, source, split, train_counts, config)
        report["definitions"]["bits_per_spike"] = (
            "NLB co-smoothing of a seeded quarter of the units hidden from the model's input, "
            "next to the smoothed-spikes Poisson GLM fitted on the train block"
        )
    return EvaluationResult(report=report, arrays={})


def _cosmoothing(
    model: torch.nn.Module, source: Any, split: str, train_counts: np.ndarray, config: Any
) -> dict[str, Any]:
    n_units = source.n_units
    held_out = np.zeros(n_units, dtype=bool)
    rng = np.random.default_rng(config.seed)
    held_out[rng.permutation(n_units)[: max(1, round(0.25 * n_units))]] = True
    log_rates, _ = block_outputs(model, source, split, config.batch_size, observed=~held_out)
    test_counts = _block_counts(source, split)
    glm = smoothed_glm_rates(
        train_counts[:, ~held_out], train_counts[:, held_out], test_counts[:, ~held_out]
    )
    truth = test_counts[:, held_out]
    return {
        "held_out_units": np.flatnonzero(held_out).tolist(),
        "model": bits_per_spike(np.exp(log_rates[:, held_out]), truth),
        "smoothed_spikes_glm": bits_per_spike(glm, truth),
    }


def _band_powers(
    model: torch.nn.Module, dataset: Any, indices: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and input log band powers (N, steps, C * 5) of the windows ``indices``."""
    predicted, actual = [], []
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(indices), batch_size):
            batch = collate([dataset[int(i)] for i in indices[lo : lo + batch_size]])
            out = model(batch.x.float())
            predicted.append(out.prediction.float().numpy())
            actual.append(out.extras["band_power"].float().numpy())
    return np.concatenate(predicted), np.concatenate(actual)


def evaluate_lfp(
    model: torch.nn.Module, *, train: Any, test: Any, config: EvaluateConfig
) -> EvaluationResult:
    """Score a field-potential model's band-power read-out on the windows of ``test``."""
    test_index = evenly(len(test), config.max_windows)
    train_index = evenly(len(train), config.max_train_windows)
    predicted, actual = _band_powers(model, test, test_index, config.batch_size)
    _, train_actual = _band_powers(model, train, train_index, config.batch_size)
    train_mean = train_actual.mean(axis=(0, 1))  # (C * 5,)
    per_step = {  # (N * steps,): windows in time order, steps within them
        "model": ((predicted - actual) ** 2).mean(axis=2).reshape(-1),
        "train_mean": ((train_mean - actual) ** 2).mean(axis=2).reshape(-1),
    }
    intervals = bootstrap_intervals(
        per_step,
        reference="model",
        n_resamples=config.n_bootstrap,
        block=LFP_BLOCK_STEPS,
        seed=config.seed,
    )
    report = {
        "task": "band_power",
        "n_windows": int(len(test_index)),
        "n_train_windows": int(len(train_index)),
        "window_samples": int(collate([test[0]]).x.shape[-1]),
        "steps_per_window": int(predicted.shape[1]),
        "band_power_mse": intervals,
        "definitions": {
            "band_power_mse": "MSE of the log band powers (delta .. gamma per channel) of each "
            "pooled step against those of the input; train_mean: every step predicted by the "
            "train windows' mean of each band; 95% intervals: moving-block bootstrap over the "
            f"steps in time order (blocks of {LFP_BLOCK_STEPS}); differences: model minus "
            "baseline (below_zero: the model is better throughout the interval)",
        },
    }
    return EvaluationResult(report=report, arrays={})


def summary_lines(report: dict[str, Any], split: str) -> list[str]:
    """The report's scores, one line each, for the terminal."""
    lines = []
    for name, row in report.get("behaviour_r2", {}).items():
        value, (low, high) = row.get("r2", row.get("mean")), row.get("r2_ci95", row.get("ci95"))
        lines.append(f"{split}: behaviour R² {name}: {value:.3f} [{low:.3f}, {high:.3f}]")
    bps = report.get("bits_per_spike")
    if bps:
        table = ", ".join(f"{k} {v:.4g}" for k, v in bps.items() if k != "held_out_units")
        lines.append(f"{split}: co-smoothing bits per spike (higher is better): {table}")
    mse = report.get("band_power_mse")
    if mse:
        rows = [*mse["scores"].items()]
        rows += [(f"model - {name}", v) for name, v in mse["differences"].items()]
        for label, v in rows:
            lines.append(
                f"{split}: log band-power MSE {label}: {v['mean']:.4g} [{v['low']:.4g}, "
                f"{v['high']:.4g}]"
            )
    lines.append(f"report: {report['out_dir']}/report.html")
    return lines


def evaluate_spikes_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a run of a spike-event model and write the report (``report.json``, html)."""
    cfg = config or EvaluateConfig()
    result = evaluate_spikes(
        run.model,
        run.store,
        split=cfg.split,
        train_split=run.data_config.train_split,
        config=cfg,
    )
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result


def evaluate_lfp_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a run of a field-potential model on non-overlapping windows of the test split."""
    from neurofm.training.data import build_dataset

    cfg = config or EvaluateConfig()
    data = run.data_config
    tiled = dataclasses.replace(data, stride=data.window_length)
    result = evaluate_lfp(
        run.model,
        train=run.dataset(data.train_split),
        test=build_dataset(run.store, tiled, cfg.split),
        config=cfg,
    )
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result
