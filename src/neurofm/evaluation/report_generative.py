"""The HTML sections and the steps-quality plot of a denoiser's report (task ``generative``)."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

Table = Callable[[str, list[str], list[tuple[str, list[Any]]]], str]


def _interval_rows(section: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    diffs = section.get("differences", {})
    return [
        (
            name,
            [
                s["mean"],
                s["low"],
                s["high"],
                diffs.get(name, {}).get("mean"),
                diffs.get(name, {}).get("low"),
                diffs.get(name, {}).get("high"),
            ],
        )
        for name, s in section["scores"].items()
    ]


COLUMNS = ["mean", "low", "high", "model - this", "low", "high"]


def steps_quality_png(
    report: dict[str, Any],
    path: Path,
    *,
    title: str | None = None,
    ylabel: str = "forecast MSE by imputation",
) -> None:
    """The forecast MSE against the number of sampling steps, with the baselines as lines."""
    from neurofm.evaluation.plots import _figure, _save

    curve = report["mse_against_steps"]
    mse = report["forecast_by_imputation_mse"]
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([int(k) for k in curve], list(curve.values()), marker="o", label="model")
    for i, name in enumerate(n for n in mse if n != "model"):
        ax.axhline(mse[name], linestyle="--", color=f"C{i + 1}", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("sampling steps (network calls)")
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend()
    _save(fig, path)


def generative_parts(
    report: dict[str, Any], out: Path, table: Table
) -> tuple[list[str], list[str]]:
    """``steps_quality.png`` and the tables (bits, forecast MSE, realism) of ``report``;
    ``table(title, columns, rows)`` renders one HTML table."""
    steps_quality_png(report, out / "steps_quality.png")
    bits = report["bits"]
    sections = [
        table(
            f"Bits per channel-sample of the second half given the first (positions from "
            f"{bits['score_start']}; {bits['n_windows']} windows, 95% block bootstrap)",
            COLUMNS,
            _interval_rows(bits),
        )
    ]
    if report.get("bits_unavailable"):
        sections.append(
            f"<p>Model bits not available: {html.escape(report['bits_unavailable'])}</p>"
        )
    if "whole_window_bound" in bits:
        whole = bits["whole_window_bound"]
        sections.append(
            f"<p>Model bound on the whole window (nothing given): {whole['mean']:.4g} "
            f"[{whole['low']:.4g}, {whole['high']:.4g}] bits per channel-sample</p>"
        )
    forecast = report["forecast"]
    sections.append(
        table(
            f"Forecasting by imputation: MSE of the second half ({forecast['n_windows']} "
            f"windows, model: mean of {forecast['model_samples']} samples)",
            COLUMNS,
            _interval_rows(forecast),
        )
    )
    generated = report["realism"]["generated"]
    flags = ", ".join(f"{k}: {v}" for k, v in generated["flags"].items())
    sections.append(
        f"<p>Realism of unconditional samples ({html.escape(generated['flag_rule'])}): "
        f"{html.escape(flags)}; realistic: {generated['realistic']}</p>"
    )
    return ["steps_quality.png"], sections
