"""The evaluation report: ``report.json``, PNG plots and ``report.html`` embedding them.

Every score in the HTML sits in a table row next to the baselines and controls of the same run:
one-step scores (model | last value | linear AR | unigram | shuffled-input control | noise-input
control), rollout error at a few horizons, realism (generated | AR samples | tokenizer round trip |
real train windows) and drift; for continuous forecasting, the one-step and rollout tables with
the uniform baseline added (bits only); for decoding, accuracy next to chance, the classical pipeline and
the controls. Images are referenced by relative paths, so the folder can be moved as a whole.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from neurofm.evaluation import plots
from neurofm.evaluation.report_neural import cosmoothing_sections, report_sections
from neurofm.fileio import atomic_open, write_json_atomic

TASKS = (
    "forecasting",
    "continuous_forecasting",
    "decoding",
    "generative",
    "cosmoothing",
    "text",
    "spike_events",
    "band_power",
)
"""The kinds of report :func:`write_report` writes."""

ONE_STEP_ROWS = [
    ("bits_per_channel_sample", "bits / channel-sample (lower is better)"),
    ("next_step_accuracy", "next-step accuracy"),
    ("mse", "forecast MSE (signal units²)"),
    ("r2", "forecast R²"),
]
REALISM_ROWS = [
    (("spectrum", "max_abs_band_log10_ratio"), "max |band log10 power ratio|"),
    (("spectrum", "psd_log10_rms"), "PSD log10 ratio, RMS over frequencies"),
    (("channels", "correlation_rms"), "channel correlation RMS difference"),
    (("amplitude", "ks_mean"), "amplitude KS statistic (channel mean)"),
    (("amplitude", "wasserstein_over_std_mean"), "amplitude Wasserstein / std"),
    (("two_sample", "p_value"), "MMD two-sample p-value"),
    (("realistic",), "no realism flag raised"),
]
DECODING_ROWS = [
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("p_value", "permutation p-value (balanced accuracy)"),
    ("null_mean", "permuted-label balanced accuracy, mean"),
    ("null_q95", "permuted-label balanced accuracy, 95th percentile"),
    ("bits", "cross-entropy (bits / window, lower is better)"),
]


def json_safe(value: Any) -> Any:
    """``value`` with NaN / inf as None and numpy scalars as Python numbers (for strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def bits_summary(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each predictor's held-out bits per channel-sample with its 95% interval and the model
    minus it (``model_minus``: mean, low, high, ``below_zero``), from a forecasting report."""
    differences = (report.get("bootstrap") or {}).get("differences", {})
    out = {}
    for name, scores in report.get("one_step", {}).items():
        if not isinstance(scores, dict) or scores.get("bits_per_channel_sample") is None:
            continue
        out[name] = {
            "bits": float(scores["bits_per_channel_sample"]),
            "interval": scores.get("bits_interval"),
            "model_minus": differences.get(name),
        }
    return out


def bits_lines(summary: dict[str, dict[str, Any]]) -> list[str]:
    """Lines of a bits table (sorted, lower is better) from :func:`bits_summary`: bits, 95%
    interval, model minus the row with its interval and whether it lies below zero."""
    width = max((len(name) for name in summary), default=10)
    lines = [
        f"  {'':<{width}}  {'bits':>7}  {'95% interval':>17}  {'model - this [95%]':>26}",
    ]
    for name, row in sorted(summary.items(), key=lambda kv: kv[1]["bits"]):
        low_high = row.get("interval")
        interval = f"[{low_high[0]:6.3f}, {low_high[1]:6.3f}]" if low_high else ""
        diff = row.get("model_minus")
        versus = ""
        if diff:
            verdict = (
                "model better"
                if diff["below_zero"]
                else ("model worse" if diff["low"] > 0 else "no clear difference")
            )
            versus = f"{diff['mean']:+7.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}] {verdict}"
        lines.append(f"  {name:<{width}}  {row['bits']:7.3f}  {interval:>17}  {versus}")
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(title: str, columns: list[str], rows: list[tuple[str, list[Any]]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{_fmt(v)}</td>" for v in values)
        + "</tr>"
        for label, values in rows
    )
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _get(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        d = d.get(key, {}) if isinstance(d, dict) else {}
    return None if d == {} else d


def _one_step_and_rollout(report: dict[str, Any]) -> list[str]:
    one = report["one_step"]
    cols = list(one)
    out = [
        _table(
            "One step ahead (same held-out windows and positions)",
            cols,
            [(label, [one[c].get(key) for c in cols]) for key, label in ONE_STEP_ROWS],
        )
    ]
    boot = report.get("bootstrap") or {}
    if boot.get("scores"):
        diffs = boot.get("differences", {})
        rows = [
            (
                name,
                [
                    interval["mean"],
                    interval["low"],
                    interval["high"],
                    diffs.get(name, {}).get("mean"),
                    diffs.get(name, {}).get("low"),
                    diffs.get(name, {}).get("high"),
                    diffs.get(name, {}).get("below_zero"),
                ],
            )
            for name, interval in boot["scores"].items()
        ]
        out.append(
            _table(
                f"Bits per channel-sample with 95% block-bootstrap intervals "
                f"({boot['n_windows']} windows, blocks of {boot['block_windows']}, "
                f"{boot['n_resamples']} resamples)",
                ["bits", "low", "high", "model - this", "low", "high", "interval below 0"],
                rows,
            )
        )
    windows = report.get("windows")
    if windows:
        out.append(
            "<p>Windows: "
            + html.escape(", ".join(f"{k}: {_fmt(v)}" for k, v in windows.items()))
            + "</p>"
        )
    selection = report.get("selection") or {}
    if selection:
        ar, var = selection.get("linear_ar", {}), selection.get("ridge_var", {})
        out.append(
            "<p>Baseline sizes chosen on "
            + html.escape(str(selection.get("validation")))
            + f": AR order {ar.get('order')} (validation bits {html.escape(str(ar.get('val_bits')))});"
            f" VAR lags {var.get('lags')}, ridge {var.get('ridge')}"
            f" (validation bits {html.escape(str(var.get('val_bits')))})</p>"
        )
    if report.get("bits_unavailable"):
        out.append(f"<p>Model bits not available: {html.escape(report['bits_unavailable'])}</p>")
    roll = report["rollout"]
    horizon = roll["horizon"]
    steps = sorted({1, max(1, horizon // 4), max(1, horizon // 2), horizon})
    curves = roll["curves"]
    rows = [
        (
            f"NMSE at {s} samples ({s / report['sfreq']:.3g} s)",
            [curves[c]["nmse"][s - 1] for c in curves],
        )
        for s in steps
    ]
    out.append(
        _table(
            f"Rollout from {roll['context']}-sample contexts ({roll['n_windows']} windows"
            + (
                f"; model: exact mean at step 1, then mean of {roll['model_samples']} samples)"
                if "model_samples" in roll
                else ")"
            ),
            list(curves),
            rows,
        )
    )
    return out


def _forecasting_sections(report: dict[str, Any]) -> list[str]:
    out = _one_step_and_rollout(report)
    real = report["realism"]
    cols = list(real)
    out.append(
        _table(
            "Realism against the real held-out continuations",
            cols,
            [(label, [_get(real[c], path) for c in cols]) for path, label in REALISM_ROWS],
        )
    )
    drift = report.get("drift", {})
    if "skipped" in drift:
        out.append(f"<h2>Drift</h2><p>{html.escape(drift['skipped'])}</p>")
    elif drift:
        cols = list(drift)
        out.append(
            _table(
                "Drift of long rollouts",
                cols,
                [
                    (
                        "log10 variance ratio, first segment",
                        [drift[c]["log10_variance_ratio"][0] for c in cols],
                    ),
                    (
                        "log10 variance ratio, last segment",
                        [drift[c]["log10_variance_ratio"][-1] for c in cols],
                    ),
                    (
                        "variance slope per segment",
                        [drift[c]["variance_slope_per_segment"] for c in cols],
                    ),
                ],
            )
        )
    return out


def _decoding_sections(report: dict[str, Any]) -> list[str]:
    dec = report["decoding"]
    cols = list(dec)
    out = [
        _table(
            f"Decoding (same {report['n_windows']} held-out windows)",
            cols,
            [(label, [dec[c].get(key) for c in cols]) for key, label in DECODING_ROWS],
        )
    ]
    model = dec.get("model", {})
    if "confusion" not in model:
        return out
    names = report.get("class_names") or [str(c) for c in range(len(model["confusion"]))]
    train_counts = report.get("n_train_per_class") or [None] * len(names)
    out.append(
        _table(
            "Windows per class",
            ["train", "held-out", "predicted by the model", "model recall"],
            [
                (
                    name,
                    [
                        train_counts[c],
                        model["n_true"][c],
                        model["n_predicted"][c],
                        model["recall"][c],
                    ],
                )
                for c, name in enumerate(names)
            ],
        )
    )
    confusion = model["confusion"]
    out.append(
        _table(
            "Model confusion matrix (rows: true class, columns: predicted class)",
            names,
            [(name, confusion[c]) for c, name in enumerate(names)],
        )
    )
    return out


def _forecasting_plots(report: dict[str, Any], arrays: dict[str, Any], out: Path) -> list[str]:
    sfreq = report["sfreq"]
    names = []
    if report["task"] == "forecasting":
        sets = {
            "real": arrays["real_reference"],
            "generated": arrays["generated"],
            "linear_ar_samples": arrays["linear_ar_samples"],
        }
        # no generated continuations when the model reads per-time context (see the report)
        shown = (
            arrays["generated"] if arrays["generated"] is not None else arrays["linear_ar_samples"]
        )
        sets = {name: value for name, value in sets.items() if value is not None}
        names.append(plots.psd_overlay(sets, sfreq, out / "psd.png").name)
        names.append(
            plots.traces(arrays["prompt"], arrays["real"], shown, sfreq, out / "traces.png").name
        )
    else:
        names.append(
            plots.traces(
                arrays["prompt"],
                arrays["real"],
                arrays["forecast"],
                sfreq,
                out / "traces.png",
                label="mean forecast",
            ).name
        )
    names.append(
        plots.score_bars(
            report["one_step"], ["bits_per_channel_sample", "r2"], out / "scores.png"
        ).name
    )
    names.append(
        plots.rollout_error(
            report["rollout"]["curves"], report["rollout"]["seconds"], out / "rollout.png"
        ).name
    )
    return names


def _decoding_plots(report: dict[str, Any], out: Path) -> list[str]:
    dec = report["decoding"]
    names = [plots.score_bars(dec, ["accuracy", "balanced_accuracy"], out / "scores.png").name]
    confusion = dec.get("model", {}).get("confusion")
    if confusion is not None:
        labels = report.get("class_names") or [str(c) for c in range(len(confusion))]
        names.append(plots.confusion_matrix(confusion, labels, out / "confusion.png").name)
    return names


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
    "margin-bottom:1em}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
    "th:first-child{text-align:left}img{max-width:100%;margin:0.5em 0}"
)


def write_report(
    report: dict[str, Any], arrays: dict[str, Any], out_dir: str | Path
) -> dict[str, Path]:
    """Write ``report.json``, the PNG plots and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    report : dict
        Scores with their ``task`` (:data:`TASKS`): from
        :func:`~neurofm.evaluation.forecasting.evaluate_forecasting` ("forecasting"),
        :func:`~neurofm.evaluation.continuous.evaluate_continuous` ("continuous_forecasting") or
        :func:`~neurofm.evaluation.decoding.evaluate_decoding` ("decoding").
    arrays : dict
        Signals for the plots (forecasting: ``real``, ``generated``, ``linear_ar_samples``,
        ``prompt``, ``real_reference``; continuous forecasting: ``prompt``, ``real``,
        ``forecast``; decoding: none, its plots come from ``report``).

    Returns
    -------
    dict
        Paths of ``json``, ``html`` and each plot by file name.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task = report["task"]
    if task not in TASKS:
        raise ValueError(f"unknown report task {task!r}; allowed: {', '.join(TASKS)}")
    if task == "decoding":
        images = _decoding_plots(report, out)
        sections = _decoding_sections(report)
    elif task == "generative":
        from neurofm.evaluation.report_generative import generative_parts

        images, sections = generative_parts(report, out, _table)
    elif task == "cosmoothing":
        images, sections = [], cosmoothing_sections(report, _table)
    elif task in ("spike_events", "band_power"):
        images, sections = [], report_sections(report, _table)
    elif task == "text":
        images = []
        sections = [
            "<h2>Text scores with controls (free-running)</h2>"
            f"<pre>{html.escape(report['markdown'])}</pre>"
        ]
    else:
        images = _forecasting_plots(report, arrays, out)
        sections = (
            _forecasting_sections(report)
            if task == "forecasting"
            else _one_step_and_rollout(report)
        )
    report = {**report, "plots": images}
    write_json_atomic(out / "report.json", json_safe(report))
    what = ", ".join(
        f"{k}: {_fmt(report[k])}"
        for k in ("model", "checkpoint", "split", "n_windows", "sfreq")
        if k in report
    )
    what += "".join(
        f"</p><p><b>warning</b>: {html.escape(str(w))}" for w in report.get("warnings", [])
    )
    defs = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
        for k, v in report.get("definitions", {}).items()
    )
    figures = "".join(
        f'<img src="{html.escape(name)}" alt="{html.escape(name)}">' for name in images
    )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>neurofm evaluation</title>"
        f"<style>{STYLE}</style></head><body><h1>neurofm evaluation</h1><p>{what}</p>"
        + "".join(sections)
        + f"<h2>Plots</h2>{figures}<h2>Definitions</h2><ul>{defs}</ul>"
        "</body></html>"
    )
    with atomic_open(out / "report.html", "w") as fh:
        fh.write(page)
    return {
        "json": out / "report.json",
        "html": out / "report.html",
        **{name: out / name for name in images},
    }
