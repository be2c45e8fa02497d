"""The forecasting leaderboard's table: family rows and reference baselines from the reports of
``neurofm benchmark`` (:mod:`neurofm.workflows.benchmark`), and its Markdown form."""

from __future__ import annotations

from typing import Any


def _scores(one_step: dict[str, Any]) -> dict[str, Any]:
    return {
        "bits": one_step.get("bits_per_channel_sample"),
        "interval": one_step.get("bits_interval"),
        "mse": one_step.get("mse"),
    }


def _flags(realism: dict[str, Any] | None) -> list[str] | None:
    """The realism flags raised (None: no realism suite for this predictor)."""
    if not realism:
        return None
    return sorted(flag for flag, raised in realism["flags"].items() if raised)


def leaderboard(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The table from the family rows of ``run_benchmark``: one row per family and the
    baselines of the first model over codes scored (else of the first family scored) as
    reference rows. A family row names its report folder (``report_dir``), not the report."""
    models, baselines, baselines_from = [], [], None
    scored = [r for r in rows if "report" in r]
    codes = [r for r in scored if r["report"]["task"] == "forecasting"]
    reference = (codes or scored or [None])[0]
    for row in rows:
        report = row.pop("report", None)
        if report is not None:
            one = report["one_step"]
            row.update(_scores(one["model"]))
            row["realism_flags"] = _flags((report.get("realism") or {}).get("generated"))
            row["report_dir"] = report.get("out_dir")
            row["task"] = report["task"]
            if report.get("bits_unavailable"):
                row["reason"] = report["bits_unavailable"]
            if row is reference:
                baselines_from = row["name"]
                realism = report.get("realism") or {}
                for name, scores in one.items():
                    if name == "model" or name.startswith("control_"):
                        continue
                    flags = _flags(realism.get(f"{name}_samples"))
                    baselines.append(
                        {"name": name, "kind": "baseline", "status": "ok", **_scores(scores)}
                        | ({"realism_flags": flags} if flags is not None else {})
                    )
        models.append(row)
    return {"rows": models + baselines, "baselines_from": baselines_from}


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(board: dict[str, Any]) -> str:
    """The leaderboard as a Markdown table (scored rows by bits, lower is better)."""

    def order(row: dict[str, Any]) -> tuple[int, float]:
        return (row["bits"] is None, row["bits"] if row["bits"] is not None else 0.0)

    rows = [r | {"bits": r.get("bits")} for r in board["rows"]]
    settings = board.get("settings", {})
    lines = [
        "# Forecasting leaderboard",
        "",
        f"Held-out bits per channel-sample (lower is better) with 95% block-bootstrap intervals; "
        f"every family trained {settings.get('max_steps', '?')} steps at its "
        f"{settings.get('preset', '?')!r} preset on {settings.get('n_chans', '?')} channels of "
        f"{settings.get('store', '?')}. Baselines from the run of "
        f"{board.get('baselines_from') or 'no family'}.",
        "",
        "| | kind | bits | 95% interval | MSE | realism flags | parameters | train s | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=order):
        interval = row.get("interval")
        flags = row.get("realism_flags")
        cells = [
            row["name"],
            row["kind"] if row["status"] == "ok" else f"{row['kind']} ({row['status']})",
            _number(row.get("bits")),
            f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "",
            _number(row.get("mse"), 4),
            "n/a" if flags is None else (", ".join(flags) or "none"),
            f"{row['parameters']:,}" if "parameters" in row else "",
            _number(row.get("train_s"), 1) if "train_s" in row else "",
            str(row.get("reason", "")).replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
