"""Evaluation of a run of a binned-count model (spec inputs ``binned_counts``): co-smoothing
bits per spike and behaviour decoding R² on held-out windows, next to baselines fitted on train.

- co-smoothing: a fixed random quarter of the units (seeded) is hidden from the model; their
  predicted rates are scored in NLB bits per spike (:mod:`neurofm.evaluation.cosmoothing`) next
  to the smoothed-spikes Poisson GLM fitted on the train windows' bins;
- behaviour (when the run's data name ``behaviour`` channels): R² of the decoded behaviour per
  bin with a 95% moving-block bootstrap interval (blocks of one window), next to a ridge
  regression on the current bin and a Wiener filter on the current and previous bins of each
  window, fitted on the train windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.evaluation.behaviour import block_bootstrap, fit_ridge, lagged, r2_score
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly, write_run_report
from neurofm.evaluation.cosmoothing import bits_per_spike, smoothed_glm_rates

RIDGES = (0.1, 1.0, 10.0, 100.0, 1000.0)
N_LAGS = 5


def _windows(dataset: Any, n_max: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Counts (N, T, U) and behaviour (N, T, K) or None of up to ``n_max`` evenly spaced windows."""
    from neurofm.data.collate import collate

    batch = collate([dataset[int(i)] for i in evenly(len(dataset), n_max)])
    target = None if batch.target is None else batch.target.float().numpy()
    return batch.x.float().numpy(), target


def _model_outputs(
    model: torch.nn.Module, x: np.ndarray, observed: np.ndarray | None, batch_size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    rates, behaviour = [], []
    mask = None if observed is None else torch.from_numpy(observed)
    model.eval()
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            out = model(torch.from_numpy(x[start : start + batch_size]), observed=mask)
            rates.append(out.prediction.float().exp().numpy())
            if "behaviour" in out.extras:
                behaviour.append(out.extras["behaviour"].float().numpy())
    return np.concatenate(rates), np.concatenate(behaviour) if behaviour else None


def _lagged_windows(x: np.ndarray, n_lags: int) -> np.ndarray:
    """(N * T, U * n_lags): lags within each window (zeros before its first bin)."""
    return np.concatenate([lagged(w, n_lags) for w in x])


def evaluate_counts(
    model: torch.nn.Module,
    *,
    train: tuple[np.ndarray, np.ndarray | None],
    test: tuple[np.ndarray, np.ndarray | None],
    config: EvaluateConfig,
) -> EvaluationResult:
    """Score ``model`` on the ``test`` windows (counts (N, T, U), behaviour or None)."""
    (train_x, train_y), (test_x, test_y) = train, test
    n_units = test_x.shape[-1]
    rng = np.random.default_rng(config.seed)
    held_out = np.zeros(n_units, dtype=bool)
    held_out[rng.permutation(n_units)[: max(1, round(0.25 * n_units))]] = True
    rates, _ = _model_outputs(model, test_x, ~held_out, config.batch_size)
    flat = {k: v.reshape(-1, n_units) for k, v in (("train", train_x), ("test", test_x))}
    glm = smoothed_glm_rates(
        flat["train"][:, ~held_out], flat["train"][:, held_out], flat["test"][:, ~held_out]
    )
    truth = flat["test"][:, held_out]
    cosmoothing = {
        "model": bits_per_spike(rates.reshape(-1, n_units)[:, held_out], truth),
        "smoothed_spikes_glm": bits_per_spike(glm, truth),
    }
    report: dict[str, Any] = {
        "task": "cosmoothing",
        "n_windows": int(test_x.shape[0]),
        "n_train_windows": int(train_x.shape[0]),
        "window_length": int(test_x.shape[1]),
        "n_units": int(n_units),
        "held_out_units": np.flatnonzero(held_out).tolist(),
        "bits_per_spike": cosmoothing,
        "definitions": {
            "bits_per_spike": "NLB co-smoothing: (Poisson NLL of each held-out unit's mean "
            "count - NLL of the predicted rates) / (spikes x ln 2), held-out units hidden from "
            "the model's input",
            "smoothed_spikes_glm": "Gaussian-smoothed (1 bin) held-in counts -> one Poisson GLM "
            "per held-out unit, L2 penalty chosen on the last 20% of the train bins",
        },
    }
    if test_y is not None and train_y is not None:
        _, behaviour = _model_outputs(model, test_x, None, config.batch_size)
        y_train, y_test = (
            train_y.reshape(-1, train_y.shape[-1]),
            test_y.reshape(-1, test_y.shape[-1]),
        )
        predictions = {} if behaviour is None else {"model": behaviour.reshape(y_test.shape)}
        for name, n_lags in (("ridge (bin t)", 1), (f"wiener ({N_LAGS} bins)", N_LAGS)):
            weights, _ = fit_ridge(_lagged_windows(train_x, n_lags), y_train, RIDGES)
            features = _lagged_windows(test_x, n_lags)
            predictions[name] = np.c_[features, np.ones(len(features))] @ weights
        report["behaviour_r2"] = {
            name: {
                "r2": r2_score(y_test, p),
                "r2_ci95": list(
                    block_bootstrap(
                        y_test,
                        p,
                        n=config.n_bootstrap,
                        block=test_x.shape[1],
                        seed=config.seed,
                    )
                ),
            }
            for name, p in predictions.items()
        }
        report["definitions"]["behaviour_r2"] = (
            "R² per behaviour variable over the held-out bins, averaged; 95% interval: "
            "percentiles of a moving-block bootstrap (blocks of one window)"
        )
    return EvaluationResult(report=report, arrays={})


def evaluate_counts_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a run of a binned-count model and write the report (``report.json``, html).

    A run on the binned events of a spike-times file (``data.format: spike_events``) is scored
    on its held-out time block as spike-event runs are (:mod:`neurofm.evaluation.neural_x`)."""
    from neurofm.data.event_source import SpikeEventSource

    if isinstance(run.store, SpikeEventSource):
        from neurofm.evaluation.neural_x import evaluate_spikes_run

        return evaluate_spikes_run(run, config=config, out_dir=out_dir, checkpoint=checkpoint)
    cfg = config or EvaluateConfig()
    result = evaluate_counts(
        run.model,
        train=_windows(run.dataset(run.data_config.train_split), cfg.max_train_windows),
        test=_windows(run.dataset(cfg.split), cfg.max_windows),
        config=cfg,
    )
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result
