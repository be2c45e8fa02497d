"""The AR code model's forecast of the second half of held-out windows, next to NTD's imputation.

NTD forecasts by imputation: the first half of a window given, the second half generated, the
mean of ``rollout_samples`` samples scored by MSE against the real signal
(``neurofm evaluate`` on a diffusion run, section ``forecast``). A code model's ``neurofm
evaluate`` report holds the same kind of forecast in its ``rollout`` section: from a context of
the first half, the mean of ``rollout_samples`` sampled continuations (its exact predictive mean
at the first step), with each window's MSE over all channels and steps (``window_mse``). Run with
``forecast_windows`` and ``rollout_windows`` equal to the NTD evaluation's, the windows are the
same (evenly spaced the same way over the same held-out windows); this script checks the context
and the window count, computes the code model's intervals and its differences with the baselines
of its own report (last value, linear AR, ridge VAR, bigram, unigram: iterated mean forecasts from
the decoded context), and sets them next to NTD's forecast from a summary written by
:mod:`benchmarks.denoisers_heldout` (unpaired: that summary keeps no per-window errors).

Run: ``python -m benchmarks.gpt_forecast_heldout --code-model DEMO/eval/report.json
--ntd-summary docs/results/ntd_heldout_exact.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks.denoisers_heldout import _interval

from neurofm.evaluation.intervals import bootstrap_intervals

ROOT = Path(__file__).resolve().parents[1]


def code_model_forecast(report: dict[str, Any], *, context: int, n_windows: int) -> dict[str, Any]:
    """Intervals of each predictor's second-half MSE in a code model's rollout section, and the
    model minus each baseline; refuses a report made with another context or window count."""
    rollout = report.get("rollout")
    if report.get("task") != "forecasting" or not isinstance(rollout, dict):
        raise ValueError("the code model report has no rollout section (task 'forecasting')")
    if rollout["context"] != context or rollout["n_windows"] != n_windows:
        raise ValueError(
            f"the code model's rollout has context {rollout['context']} and "
            f"{rollout['n_windows']} windows; NTD's forecast has context {context} and "
            f"{n_windows} windows (evaluate with rollout_context / rollout_windows to match)"
        )
    per_window = {}
    for name, curve in rollout["curves"].items():
        if "window_mse" not in curve:
            raise ValueError(f"rollout curve {name!r} has no window_mse (report too old)")
        per_window[name] = np.asarray(curve["window_mse"], dtype=np.float64)
    return {
        **bootstrap_intervals(per_window, n_resamples=1000, seed=0),
        "model_samples": rollout["model_samples"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-model", required=True, help="code model report.json")
    parser.add_argument("--code-name", default="gpt2meg_trf (demo)")
    parser.add_argument(
        "--ntd-summary", default=str(ROOT / "docs" / "results" / "ntd_heldout_exact.json")
    )
    parser.add_argument(
        "--out", default=str(ROOT / "docs" / "results" / "gpt_forecast_heldout.json")
    )
    parser.add_argument("--commands", nargs="*", default=[], help="commands that made the runs")
    args = parser.parse_args(argv)
    code = json.loads(Path(args.code_model).read_text())
    ntd = json.loads(Path(args.ntd_summary).read_text())["ntd"]["forecast_mse"]
    context = code["rollout"]["context"]
    table = code_model_forecast(code, context=context, n_windows=int(ntd["n_windows"]))
    out = {
        "what": "MSE of the mean forecast of the second half of held-out windows given the first "
        f"half: {args.code_name} (mean of {table['model_samples']} sampled continuations) and the "
        "baselines of its report (iterated mean forecasts from the decoded context) with 95% "
        "moving-block bootstrap intervals and model-minus-baseline differences; NTD's imputation "
        "(mean of 2 samples) and its baselines (forecasts from the signal context) from the NTD "
        "report on the same windows, unpaired",
        "context": context,
        "code_model": {"name": args.code_name, **table},
        "ntd": ntd,
        "commands": args.commands,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    lines = [f"| forecast ({args.code_name}) | MSE | model minus this |", "|---|---|---|"]
    for name, s in table["scores"].items():
        d = table["differences"].get(name)
        lines.append(f"| {name} | {_interval(s)} | {_interval(d) if d else '-'} |")
    lines += ["", "| forecast (NTD, same windows) | MSE |", "|---|---|"]
    lines += [f"| {name} | {_interval(s)} |" for name, s in ntd["scores"].items()]
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
