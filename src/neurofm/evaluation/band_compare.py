"""Side by side: the next-band prototype and the VAR variant on the same held-out windows.

Reads the ``report.json`` of ``neurofm evaluate`` for a ``next_band`` run and for a
``next_band_var`` run scored on the same split and windows, and writes one JSON with, per stage,
the prototype's one-step MSE next to its two baselines (with the 95% block-bootstrap intervals of
the differences), and the rollout MSE from the lowest band of both models next to the baselines'
rollouts (ridge maps stage after stage, the lowest band kept), the prototype's rollout against
those baselines with intervals (``rollout_next_band_intervals``, when the report has them); plus
the realism flags of the generated full-band signals. ``python -m
neurofm.evaluation.band_compare PROTO VAR --output FILE`` also prints the tables as markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _interval(s: dict[str, float]) -> list[float]:
    return [s["mean"], s["low"], s["high"]]


def _intervals(stages: dict[str, Any]) -> dict[str, Any]:
    return {
        stage: {
            "mse": {name: _interval(v) for name, v in s["mse"].items()},
            "model_minus": {name: _interval(v) for name, v in s["model_minus"].items()},
            "model_beats": s["model_beats"],
        }
        for stage, s in stages.items()
    }


def compare_reports(proto: dict[str, Any], var: dict[str, Any] | None) -> dict[str, Any]:
    """The comparison (JSON-safe) of a ``next_band`` report and a ``next_band_var`` report."""
    if proto.get("task") != "next_band":
        raise ValueError(f"first report: task {proto.get('task')!r}, expected 'next_band'")
    if var is not None:
        if var.get("task") != "band_tokens":
            raise ValueError(f"second report: task {var.get('task')!r}, expected 'band_tokens'")
        if var["windows"]["scored"] != proto["windows"]["scored"] or var["split"] != proto["split"]:
            raise ValueError(
                "the reports score different windows: "
                f"{proto['split']}/{proto['windows']['scored']} vs "
                f"{var['split']}/{var['windows']['scored']}"
            )
    one_step = _intervals(proto["one_step"])
    rollout: dict[str, Any] = {}
    for stage, value in proto["rollout"]["per_stage_mse"].items():
        row = {"next_band": value}
        if var is not None:
            row["next_band_var"] = var["rollout"]["per_stage_mse"][stage]
            row["var_tokenizer_reconstruction"] = var["rollout_mse"][stage]["scores"][
                "reconstruction"
            ]["mean"]
        for name, base in proto["rollout_baselines"].items():
            row[f"{name}_rollout"] = base["per_stage_mse"][stage]
        rollout[stage] = row
    realism = {
        f"next_band/{name}": r["flags"] for name, r in proto["realism"].items() if "flags" in r
    }
    if var is not None:
        realism.update(
            {f"next_band_var/{n}": r["flags"] for n, r in var["realism"].items() if "flags" in r}
        )
    table = {
        "split": proto["split"],
        "windows": proto["windows"],
        "bands": proto["bands"],
        "sfreq": proto["sfreq"],
        "one_step_next_band": one_step,
        "rollout_mse_from_lowest_band": rollout,
    }
    if "rollout_intervals" in proto:  # reports written before the intervals lack them
        table["rollout_next_band_intervals"] = _intervals(proto["rollout_intervals"])
    table["realism_flags"] = realism
    return table


def _f(v: float) -> str:
    return f"{v:.4g}"


def _interval_rows(stages: dict[str, Any]) -> list[str]:
    lines = [
        "| stage | prototype | no new band | ridge | prototype - no new band [95%] | "
        "prototype - ridge [95%] |",
        "|---|---|---|---|---|---|",
    ]
    for stage, s in stages.items():
        d = s["model_minus"]
        lines.append(
            f"| {stage} | {_f(s['mse']['model'][0])} | {_f(s['mse']['no_new_band'][0])} | "
            f"{_f(s['mse']['ridge'][0])} | {_f(d['no_new_band'][0])} "
            f"[{_f(d['no_new_band'][1])}, {_f(d['no_new_band'][2])}] | {_f(d['ridge'][0])} "
            f"[{_f(d['ridge'][1])}, {_f(d['ridge'][2])}] |"
        )
    return lines


def markdown(table: dict[str, Any]) -> str:
    """The comparison's tables (one-step; rollout of both models; the prototype's rollout with
    intervals, when the report has them) as markdown."""
    lines = _interval_rows(table["one_step_next_band"])
    names = list(next(iter(table["rollout_mse_from_lowest_band"].values())))
    lines += ["", "| stage | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for stage, row in table["rollout_mse_from_lowest_band"].items():
        lines.append(f"| {stage} | " + " | ".join(_f(row[n]) for n in names) + " |")
    if "rollout_next_band_intervals" in table:
        lines += [""] + _interval_rows(table["rollout_next_band_intervals"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prototype", help="report.json of a next_band run")
    parser.add_argument("var", nargs="?", help="report.json of a next_band_var run")
    parser.add_argument("--output", required=True, help="the comparison JSON to write")
    args = parser.parse_args(argv)
    proto = json.loads(Path(args.prototype).read_text())
    var = json.loads(Path(args.var).read_text()) if args.var else None
    table = compare_reports(proto, var)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(table, indent=1) + "\n")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
