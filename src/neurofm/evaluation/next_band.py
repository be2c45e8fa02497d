"""Evaluation of next-band (coarse-to-fine over frequency bands) models on held-out windows.

For every stage ``k`` (level ``k`` = bands ``0..k``), on the same held-out windows:

- one step, teacher-forced: the model's prediction of level ``k`` from the true level ``k - 1``
  (from zeros at ``k = 0``), next to two baselines fitted on train: ``no_new_band`` (level
  ``k - 1`` itself, zeros at ``k = 0``) and ``ridge`` (per stage, a ridge regression from the
  C channels of level ``k - 1`` to those of level ``k`` at each sample, with an intercept; at
  ``k = 0`` the train mean). MSE per window, with 95% block-bootstrap intervals over windows of
  each score and of model minus each baseline;
- rollout: the model's stage-by-stage generation from the true lowest band
  (:func:`~neurofm.generation.next_band.generate_bands`), scored per stage against the truth
  (MSE, SNR in dB) with the cumulative MSE over generated stages, and (``rollout_intervals``)
  its MSE per window next to the baselines rolled out the same way (ridge maps stage after stage,
  the lowest band kept), with 95% block-bootstrap intervals of model minus each.

The rollouts of the baselines and the realism of the generated full-band signals are added by
:mod:`neurofm.evaluation.band_realism`. Writes ``report.json``, ``report.html``, ``report.md``,
``rollout_metrics.json`` and ``rollout.png`` (one channel of one window:
truth and rollout per stage) and the resolved ``evaluate.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.evaluation.band_realism import (
    RIDGE,
    BandRidge,
    band_realism,
    markdown,
    ridge_rollout,
    rollout_baselines,
    rollout_metrics,
)
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly
from neurofm.evaluation.intervals import bootstrap_intervals
from neurofm.fileio import atomic_open


def stack(dataset: Any, index: np.ndarray) -> np.ndarray:
    """The band stacks ``x`` of items ``index`` as (M, L, C, T) float64."""
    return np.stack([np.asarray(dataset[int(i)]["x"], dtype=np.float64) for i in index])


def model_predictions(model: torch.nn.Module, levels: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's teacher-forced predictions (M, L, C, T) of every level."""
    from neurofm.objectives.next_band import current_bands

    out = []
    with torch.no_grad():
        for lo in range(0, len(levels), batch_size):
            part = torch.from_numpy(levels[lo : lo + batch_size]).float()
            out.append(model(current_bands(part)).prediction.double().numpy())
    return np.concatenate(out)


def plot_band_rollout(
    path: str | Path,
    truth: np.ndarray | None,
    rollout: np.ndarray,
    *,
    sfreq: float,
    bands: list | None = None,
    title: str = "",
) -> Path:
    """One row per stage: the rollout (L, T) of one channel, over the truth (L, T) when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_stages, n_times = rollout.shape
    t = np.arange(n_times) / sfreq
    fig, axes = plt.subplots(n_stages, 1, figsize=(9, 1.6 * n_stages + 0.6), sharex=True)
    for k, ax in enumerate(np.atleast_1d(axes)):
        if truth is not None:
            ax.plot(t, truth[k], color="0.3", lw=1.0, label="real")
        ax.plot(t, rollout[k], color="C1", lw=1.0, label="rollout")
        top = f"<= {bands[k][1]:g} Hz" if bands else ""
        ax.set_ylabel(f"stage {k}\n{top}", fontsize=8)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _sfreq_and_bands(run: Any, dataset: Any) -> tuple[float, list | None]:
    from neurofm.training.data import data_sfreq

    bands = run.config["data"].get("bands") or getattr(dataset, "bands", None)
    return data_sfreq(run.store, dataset), None if bands is None else [list(b) for b in bands]


def evaluate_next_band(
    model: torch.nn.Module,
    test: np.ndarray,
    train: np.ndarray,
    cfg: EvaluateConfig,
) -> dict[str, Any]:
    """Scores of a next-band model on test levels (M, L, C, T), baselines fitted on train."""
    from neurofm.generation.next_band import generate_bands

    ridge = BandRidge().fit(train)
    predictions = model_predictions(model, test, cfg.batch_size)
    n_stages = test.shape[1]
    stages: dict[str, Any] = {}
    for k in range(n_stages):
        current = np.zeros_like(test[:, k]) if k == 0 else test[:, k - 1]
        guesses = {"model": predictions[:, k], "no_new_band": current}
        guesses["ridge"] = ridge.predict(current, k)
        stages[f"stage{k}"] = _stage_scores(guesses, test[:, k], cfg)
    rollouts = []
    with torch.no_grad():
        for lo in range(0, len(test), cfg.batch_size):
            first = torch.from_numpy(test[lo : lo + cfg.batch_size, 0]).float()
            rollouts.append(generate_bands(model, first).double().numpy())
    rollout = np.concatenate(rollouts)
    return {
        "one_step": stages,
        "rollout": rollout_metrics(test, rollout),
        "rollout_intervals": rollout_intervals(test, rollout, ridge, cfg),
        "_rollout": rollout,
    }


def rollout_intervals(
    test: np.ndarray, rollout: np.ndarray, ridge: BandRidge, cfg: EvaluateConfig
) -> dict[str, Any]:
    """Per generated stage, the rollout MSE per window of the model and of the baselines rolled
    out from the same true lowest band (``ridge``: the ridge maps stage after stage;
    ``no_new_band``: the lowest band kept), with 95% block-bootstrap intervals of each and of
    model minus each baseline (the same layout as ``one_step``)."""
    n_stages = test.shape[1]
    ridge_levels = ridge_rollout(ridge, test[:, 0], n_stages)
    out: dict[str, Any] = {}
    for k in range(1, n_stages):
        guesses = {"model": rollout[:, k], "no_new_band": test[:, 0], "ridge": ridge_levels[:, k]}
        out[f"stage{k}"] = _stage_scores(guesses, test[:, k], cfg)
    return out


def _stage_scores(
    guesses: dict[str, np.ndarray], truth: np.ndarray, cfg: EvaluateConfig
) -> dict[str, Any]:
    """MSE per window of each guess (N, C, T) of ``truth``, with 95% block-bootstrap intervals
    of each and of ``model`` minus each other, and whether the model beats each."""
    per_window = {name: ((g - truth) ** 2).mean(axis=(1, 2)) for name, g in guesses.items()}
    boot = bootstrap_intervals(
        per_window, n_resamples=cfg.n_bootstrap, block=cfg.bootstrap_block, seed=cfg.seed
    )
    return {
        "mse": boot["scores"],
        "model_minus": boot["differences"],
        "model_beats": {
            name: bool(diff["below_zero"]) for name, diff in boot["differences"].items()
        },
    }


def rollout_sample(
    run: Any,
    test: np.ndarray,
    rollout: np.ndarray,
    test_index: np.ndarray,
    config: Any,
    out_dir: str | Path | None,
    sfreq: float,
    bands: list | None,
    what: str,
) -> tuple[Path, dict[str, Any], Path]:
    """The report folder (created), the rollout metrics of the configured window and channel
    (``plot_window``, ``plot_channel``) and the path of its ``rollout.png``; ``what`` names the
    rollout in the plot's title."""
    window, channel = min(config.plot_window, len(test) - 1), config.plot_channel
    if not 0 <= channel < test.shape[2]:
        raise ValueError(f"plot_channel: {channel} is not among the {test.shape[2]} channels")
    out = Path(out_dir) if out_dir is not None else Path(run.run_dir) / f"eval-{config.split}"
    out.mkdir(parents=True, exist_ok=True)
    sample = rollout_metrics(
        test[window, :, channel : channel + 1], rollout[window, :, channel : channel + 1]
    )
    sample.update(channel=channel, window=int(test_index[window]), split=config.split)
    png = plot_band_rollout(
        out / "rollout.png",
        test[window, :, channel],
        rollout[window, :, channel],
        sfreq=sfreq,
        bands=bands,
        title=f"{config.split} window {int(test_index[window])}, channel {channel}: {what}",
    )
    return out, sample, png


def evaluate_next_band_run(
    run: Any,
    *,
    config: EvaluateConfig,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a next-band run on ``config.split`` and write its report folder."""
    import json

    from neurofm.config import save_yaml

    test_set, train_set = run.dataset(config.split), run.dataset(run.data_config.train_split)
    test_index = evenly(len(test_set), config.forecast_windows)
    train_index = evenly(len(train_set), config.baseline_train_windows)
    test, train = stack(test_set, test_index), stack(train_set, train_index)
    scores = evaluate_next_band(run.model, test, train, config)
    rollout = scores.pop("_rollout")
    sfreq, bands = _sfreq_and_bands(run, test_set)
    ridge = BandRidge().fit(train)
    scores["rollout_baselines"] = rollout_baselines(ridge, test)
    scores["realism"] = band_realism(run.model, test, train, rollout, config, sfreq, ridge)
    out, sample, png = rollout_sample(
        run,
        test,
        rollout,
        test_index,
        config,
        out_dir,
        sfreq,
        bands,
        "rollout from the lowest band",
    )
    report = {
        "task": "next_band",
        "run_dir": str(run.run_dir),
        "split": config.split,
        "out_dir": str(out),
        "checkpoint": checkpoint or "final",
        "model": run.config.get("model", {}).get("name"),
        "windows": {"scored": int(len(test)), "train": int(len(train))},
        "sfreq": sfreq,
        "bands": bands,
        "ridge_penalty": RIDGE,
        **scores,
        "rollout_sample": sample,
        "plot": str(png),
        "settings": asdict(config),
    }
    with atomic_open(out / "report.json", "w") as fh:
        json.dump(report, fh, indent=2)
    with atomic_open(out / "rollout_metrics.json", "w") as fh:
        json.dump(sample, fh, indent=2)
    save_yaml(asdict(config), out / "evaluate.yaml")
    write_html(report, out / "report.html")
    (out / "report.md").write_text(markdown(report))
    return EvaluationResult(report=report, arrays={"rollout": rollout, "real": test})


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """A one-page HTML summary: per-stage one-step MSE (model, baselines) and the rollout plot."""
    import html

    rows = []
    for stage, scores in report["one_step"].items():
        cells = []
        for name in ("model", "no_new_band", "ridge"):
            s = scores["mse"][name]
            cells.append(f"<td>{s['mean']:.4g} [{s['low']:.4g}, {s['high']:.4g}]</td>")
        beats = ", ".join(n for n, ok in scores["model_beats"].items() if ok) or "none"
        rows.append(f"<tr><td>{stage}</td>{''.join(cells)}<td>{html.escape(beats)}</td></tr>")
    roll = report["rollout"]
    page = (
        "<html><head><meta charset='utf-8'><title>next-band evaluation</title></head><body>"
        f"<h1>Next-band evaluation: {html.escape(str(report['model']))}, "
        f"split {html.escape(report['split'])} ({report['windows']['scored']} windows)</h1>"
        "<h2>One-step MSE per stage (95% block-bootstrap interval)</h2><table border='1'>"
        "<tr><th>stage</th><th>model</th><th>no new band</th><th>ridge</th>"
        "<th>model beats (interval below 0)</th></tr>" + "".join(rows) + "</table>"
        f"<h2>Rollout from the lowest band</h2><p>cumulative MSE {roll['cumulative_mse']:.4g}; "
        f"per stage {html.escape(str(roll['per_stage_mse']))}; SNR (dB) "
        f"{html.escape(str(roll['per_stage_snr_db']))}</p><img src='rollout.png'></body></html>"
    )
    path = Path(path)
    path.write_text(page)
    return path
