"""PNG plots of an evaluation: PSD overlay, traces, scores against baselines, rollout error,
confusion matrix, and the leaderboard of ``neurofm benchmark``.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot state, no display needed).
Each function writes one PNG and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurofm.evaluation.realism import BANDS, psd

COLORS = {
    "real": "black",
    "model": "tab:red",
    "generated": "tab:red",
    "last_value": "tab:gray",
    "linear_ar": "tab:blue",
    "linear_ar_samples": "tab:blue",
    "unigram": "tab:olive",
    "control_shuffled_input": "tab:purple",
    "control_noise_input": "tab:brown",
    "chance": "tab:gray",
    "band_power_lda": "tab:blue",
}


def _figure(width: float = 7.0, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path)
    return path


def psd_overlay(sets: dict[str, np.ndarray], sfreq: float, path: str | Path) -> Path:
    """Channel- and window-mean Welch PSD of each set of windows ``(N, C, T)`` on log axes."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, x in sets.items():
        freqs, power = psd(x, sfreq)
        keep = freqs > 0
        ax.loglog(
            freqs[keep],
            power.mean(axis=(0, 1))[keep],
            label=name,
            color=COLORS.get(name),
            lw=2 if name == "real" else 1.2,
        )
    for low, _ in BANDS.values():
        if 0 < low < sfreq / 2:
            ax.axvline(low, color="0.85", lw=0.8, zorder=0)
    ax.set(
        xlabel="frequency (Hz)",
        ylabel="power spectral density (unit²/Hz)",
        title="PSD: real vs generated continuations",
    )
    ax.legend()
    return _save(fig, path)


def traces(
    prompt: np.ndarray,
    real: np.ndarray,
    generated: np.ndarray,
    sfreq: float,
    path: str | Path,
    *,
    n_chans: int = 4,
    label: str = "generated",
) -> Path:
    """First window: prompt, then the real and the ``label`` continuation, a few channels."""
    n_chans = min(n_chans, prompt.shape[1])
    fig = _figure(8.0, 1.6 * n_chans + 0.6)
    axes = fig.subplots(n_chans, 1, sharex=True, squeeze=False)[:, 0]
    n_p = prompt.shape[-1]
    t_p = np.arange(n_p) / sfreq
    t_c = (n_p + np.arange(real.shape[-1])) / sfreq
    for ch, ax in enumerate(axes):
        ax.plot(t_p, prompt[0, ch], color="0.4", lw=0.8, label="prompt")
        ax.plot(t_c, real[0, ch], color="black", lw=0.8, label="real")
        ax.plot(t_c, generated[0, ch], color="tab:red", lw=0.8, label=label)
        ax.set_ylabel(f"ch {ch}")
    axes[0].legend(loc="upper left", ncols=3, fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"real vs {label} continuation of a held-out prompt")
    return _save(fig, path)


def score_bars(scores: dict[str, dict[str, float]], metrics: list[str], path: str | Path) -> Path:
    """One bar panel per metric, one bar per predictor (model, baselines, controls)."""
    fig = _figure(3.2 * len(metrics) + 1.0, 4.0)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    names = list(scores)
    for ax, metric in zip(axes, metrics):
        values = [scores[n].get(metric) for n in names]
        values = [np.nan if v is None else v for v in values]  # not available: no bar
        ax.bar(range(len(names)), values, color=[COLORS.get(n, "tab:green") for n in names])
        ax.set_xticks(
            range(len(names)),
            [n.replace("control_", "ctl ") for n in names],
            rotation=45,
            ha="right",
            fontsize=8,
        )
        ax.set_title(metric.replace("_", " "))
    fig.suptitle("model vs baselines and controls (same held-out windows)")
    return _save(fig, path)


def rollout_error(
    curves: dict[str, dict[str, list[float]]], seconds: list[float], path: str | Path
) -> Path:
    """Normalised MSE against forecast horizon for each forecaster."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot(seconds, curve["nmse"], label=name, color=COLORS.get(name))
    ax.axhline(1.0, color="0.6", ls="--", lw=0.8)
    ax.set(xlabel="horizon (s)", ylabel="MSE / signal variance", title="rollout error vs horizon")
    ax.legend()
    return _save(fig, path)


def confusion_matrix(confusion: list[list[int]], class_names: list[str], path: str | Path) -> Path:
    """Counts of held-out windows per (true class, predicted class), with row-normalised shading."""
    counts = np.asarray(confusion, dtype=np.int64)
    k = counts.shape[0]
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig = _figure(1.2 * k + 2.4, 1.0 * k + 1.8)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted class", ylabel="true class", title="model confusion matrix")
    fig.colorbar(image, ax=ax, label="share of the true class")
    return _save(fig, path)


def plot_leaderboard(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Bits per channel-sample of every scored leaderboard row (``name``, ``kind``, ``bits``,
    ``interval``) with its 95% interval: horizontal bars, families in red, baselines in grey,
    best at the top (``neurofm benchmark``)."""
    scored = sorted((r for r in rows if r.get("bits") is not None), key=lambda r: -r["bits"])
    fig = _figure(7.0, 1.0 + 0.35 * max(1, len(scored)))
    ax = fig.add_subplot()
    for i, row in enumerate(scored):
        low, high = row.get("interval") or (row["bits"], row["bits"])
        color = "tab:red" if row["kind"] == "model" else "tab:gray"
        ax.barh(i, row["bits"], color=color, alpha=0.6)
        ax.errorbar(
            row["bits"],
            i,
            xerr=[[row["bits"] - low], [high - row["bits"]]],
            color="black",
            capsize=3,
        )
    ax.set_yticks(range(len(scored)), [r["name"] for r in scored])
    ax.set_xlabel("held-out bits per channel-sample (lower is better), 95% interval")
    ax.set_title("Forecasting leaderboard")
    return _save(fig, path)


def few_shot_curve(
    curves: dict[str, list[tuple[float, float, float, float]]], title: str, path: str | Path
) -> Path:
    """Score against the calibration fraction (log axis), one line per method.

    ``curves[method]`` lists ``(fraction, score, low, high)``: the point and its interval.
    """
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for name, points in curves.items():
        x, y, low, high = (np.asarray(v, dtype=float) for v in zip(*points))
        # a percentile interval need not contain the point estimate: bars clipped at it
        bars = [np.maximum(y - low, 0.0), np.maximum(high - y, 0.0)]
        ax.errorbar(x, y, yerr=bars, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of the calibration data")
    ax.set_ylabel("behaviour R² (held-out test bins)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
