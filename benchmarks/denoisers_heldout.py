"""The denoisers' comparison on held-out EEG: NTD's bits next to a code model's and the baselines'.

Reads the reports ``neurofm evaluate`` wrote for an NTD run, optionally a code model's run on the
same store, window length and held-out windows (the demo's GPT) and a flow-matching run; pairs
NTD with the code model window by window (:func:`neurofm.evaluation.denoiser_table.
compare_reports`); writes ``docs/results/denoisers_heldout.json``, the steps-vs-quality PNGs in
``docs/img/`` and prints the tables in markdown.

Run: ``python -m benchmarks.denoisers_heldout --ntd RUN/eval-test/report.json --code-model
DEMO/report/report.json --flow RUN/eval-test/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from neurofm.evaluation.denoiser_table import compare_reports

ROOT = Path(__file__).resolve().parents[1]


def _interval(s: dict[str, Any]) -> str:
    return f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"


def _rows(section: dict[str, Any]) -> list[str]:
    diffs = section.get("differences", {})
    rows = []
    for name, s in section["scores"].items():
        d = diffs.get(name)
        rows.append(f"| {name} | {_interval(s)} | {_interval(d) if d else '—'} |")
    return rows


def _steps_png(report: dict[str, Any], title: str, path: Path) -> None:
    from neurofm.evaluation.report_generative import steps_quality_png

    steps_quality_png(report, path, title=title, ylabel="forecast MSE by imputation (second half)")


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    generated = report["realism"]["generated"]
    return {
        "forecast_mse": {k: report["forecast"][k] for k in ("scores", "differences", "n_windows")},
        "mse_against_steps": report["mse_against_steps"],
        "realism": {
            "flags": generated["flags"],
            "realistic": generated["realistic"],
            "flag_rule": generated["flag_rule"],
            "spectrum": generated["spectrum"],
            "settings": generated["settings"],
        },
        "bits_unavailable": report.get("bits_unavailable"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ntd", required=True, help="NTD report.json")
    parser.add_argument("--code-model", help="code model report.json (same windows)")
    parser.add_argument("--code-name", default="gpt2meg_trf (demo)")
    parser.add_argument("--flow", help="flow-matching report.json")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "denoisers_heldout.json"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--commands", nargs="*", default=[], help="commands that made the runs")
    args = parser.parse_args(argv)
    ntd = json.loads(Path(args.ntd).read_text())
    if args.code_model:
        code = json.loads(Path(args.code_model).read_text())
        paired = compare_reports(ntd, code, name=args.code_name)
    else:  # NTD and the baselines alone
        paired = {**ntd["bits"], "code_model_baselines": None}
    out: dict[str, Any] = {
        "what": "bits per channel-sample of the second half of each held-out window given the "
        "first half (NTD: conditional variational bound; code model and baselines: exact code "
        "length) on the same 256-level mu-law bins and windows; 95% moving-block bootstrap "
        "intervals; differences NTD minus each",
        "bits": {k: paired[k] for k in ("scores", "differences", "n_windows", "block_windows")},
        "code_model_report_baselines": paired["code_model_baselines"],
        "ntd_whole_window_bound": ntd["bits"].get("whole_window_bound"),
        "ntd": _summary(ntd),
        "loadavg": list(os.getloadavg()),
        "commands": args.commands,
    }
    img = Path(args.img)
    _steps_png(ntd, "NTD (64 channels)", img / "ntd_steps_quality.png")
    lines = ["| predictor | bits | NTD minus this |", "|---|---|---|", *_rows(paired)]
    lines += ["", "| forecast (NTD) | MSE | NTD minus this |", "|---|---|---|"]
    lines += _rows(ntd["forecast"])
    if args.flow:
        flow = json.loads(Path(args.flow).read_text())
        out["flow_matching"] = {**_summary(flow), "bits_of_baselines": flow["bits"]["scores"]}
        _steps_png(flow, "flow matching (C3, C4)", img / "flow_matching_steps_quality.png")
        lines += ["", "| forecast (flow) | MSE | flow minus this |", "|---|---|---|"]
        lines += _rows(flow["forecast"])
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
