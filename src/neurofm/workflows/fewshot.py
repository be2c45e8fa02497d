"""Few-shot transfer of NeuroFM-X to new units or a later time block (FALCON-style).

A model is pretrained (multi-task: co-smoothing + behaviour + contrastive) on a *source*; each
method then gets the first 1%, 10%, 100% of the *calibration* bins of the target and is scored
by hand-velocity R² on the same held-out *test* bins (block-bootstrap 95% intervals):

- ``unit_id_adapter``: the pretrained model frozen, a Unit-ID adapter (new count embedding,
  unit identities, rate and behaviour read-outs) trained on the calibration bins;
- ``scratch``: the same architecture trained from its random initialisation on them (same
  steps);
- ``ridge`` (bin t) and ``wiener`` (``n_lags`` bins) fitted on them.

Scenarios (``scenario``), from one reach ``.mat`` file (parts ``tr`` and ``te``):

- ``held_out_units``: the units are split in two random halves; the source is the train part
  of one half, calibration the train part of the other, test its test part;
- ``later_block``: the source is the train part (all units); calibration is the first
  ``calibration_fraction`` of the test part, test the rest (a later block, same units);
- ``new_session``: as ``later_block`` when the two parts hold different units (another
  session's units: e.g. 174 train and 187 test units).

``auto`` picks ``new_session`` when the parts' units differ, else ``held_out_units``.
Calibration subsets are contiguous from the start (the earliest recording), at least
``min_bins`` bins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.errors import RecordingError
from neurofm.evaluation.behaviour import block_bootstrap, fit_ridge, lagged, r2_score
from neurofm.evaluation.plots import few_shot_curve
from neurofm.models.neurofm_x import NeuroFMX, NeuroFMXConfig
from neurofm.models.neurofm_x.adapters import UnitAdaptedNeuroFMX, count_trainable
from neurofm.workflows.reach import (
    ReachConfig,
    held_out_units,
    load_reach,
    predict_windows,
    train_multitask,
)

SCENARIOS = ("auto", "held_out_units", "later_block", "new_session")


@dataclass
class FewShotConfig:
    """What :func:`few_shot_transfer` runs; training settings come from ``reach``."""

    scenario: str = "auto"  # one of SCENARIOS
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)  # parts of the calibration bins used
    pretrain_steps: int = 300  # steps of the source model
    adapt_steps: int = 150  # steps of the adapter and of the model from scratch
    adapt_lr: float = 5e-3  # learning rate of the adapter and of the model from scratch
    calibration_fraction: float = 0.5  # later_block / new_session: test part used to calibrate
    min_bins: int = 10  # fewest calibration bins of a subset
    reach: ReachConfig = field(default_factory=ReachConfig)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario={self.scenario!r}; allowed: {', '.join(SCENARIOS)}")
        self.fractions = tuple(float(f) for f in self.fractions)
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(
                f"calibration_fraction must lie in (0, 1), got {self.calibration_fraction}"
            )


def _split(config: FewShotConfig, path: Path) -> tuple[str, dict[str, tuple]]:
    """The scenario and its (counts, standardised velocity) of source, calibration and test."""
    counts, velocity = load_reach(path, config.reach.bin_size)
    same_units = counts["tr"].shape[1] == counts["te"].shape[1]
    scenario = config.scenario
    if scenario == "auto":
        scenario = "held_out_units" if same_units else "new_session"
    if scenario != "new_session" and not same_units:
        raise RecordingError(
            f"scenario {scenario!r} needs the same units in both parts, the file has "
            f"{counts['tr'].shape[1]} and {counts['te'].shape[1]}",
            path=str(path),
        )
    if scenario == "held_out_units":
        second = held_out_units(counts["tr"].shape[1], 0.5, config.reach.seed)
        parts = {
            "source": (counts["tr"][:, ~second], velocity["tr"]),
            "calibration": (counts["tr"][:, second], velocity["tr"]),
            "test": (counts["te"][:, second], velocity["te"]),
        }
    else:
        cut = int(config.calibration_fraction * counts["te"].shape[0])
        parts = {
            "source": (counts["tr"], velocity["tr"]),
            "calibration": (counts["te"][:cut], velocity["te"][:cut]),
            "test": (counts["te"][cut:], velocity["te"][cut:]),
        }
    mean, std = velocity["tr"].mean(axis=0), velocity["tr"].std(axis=0)  # train-standardised
    return scenario, {k: (c, (v - mean) / std) for k, (c, v) in parts.items()}


def _score(config: FewShotConfig, y: np.ndarray, prediction: np.ndarray) -> dict[str, Any]:
    reach = config.reach
    low, high = block_bootstrap(y, prediction, n=reach.n_bootstrap, block=reach.block, seed=0)
    return {"r2": r2_score(y, prediction), "r2_ci95": [low, high]}


def few_shot_transfer(
    path: str | Path, config: FewShotConfig | None = None, *, output: str | Path | None = None
) -> dict[str, Any]:
    """Run the few-shot comparison on the reach file at ``path``; returns the report.

    With ``output``, writes ``fewshot.json`` and ``fewshot.png`` (the curve) there.
    """
    config = config or FewShotConfig()
    path = Path(path)
    scenario, parts = _split(config, path)
    reach = config.reach
    (x_src, y_src), (x_cal, y_cal), (x_test, y_test) = (
        parts[k] for k in ("source", "calibration", "test")
    )
    torch.manual_seed(reach.seed)
    model_config = {"n_behaviour": y_src.shape[1], "scan": "parallel", **reach.model}
    source = NeuroFMX(NeuroFMXConfig(n_units=x_src.shape[1], **model_config))
    pretrain_losses = train_multitask(source, x_src, y_src, reach, steps=config.pretrain_steps)
    adapt = replace(reach, lr=config.adapt_lr)
    rows: dict[str, list[dict[str, Any]]] = {}
    for fraction in config.fractions:
        n_bins = min(x_cal.shape[0], max(config.min_bins, round(fraction * x_cal.shape[0])))
        cal_x, cal_y = x_cal[:n_bins], y_cal[:n_bins]
        predictions = {}
        for name, n_lags in (("ridge (bin t)", 1), (f"wiener ({reach.n_lags} bins)", reach.n_lags)):
            weights, _ = fit_ridge(lagged(cal_x, n_lags), cal_y, reach.ridges)
            features = lagged(x_test, n_lags)
            predictions[name] = (
                np.concatenate([features, np.ones((features.shape[0], 1))], axis=1) @ weights,
                {},
            )
        torch.manual_seed(reach.seed)
        adapted = UnitAdaptedNeuroFMX.create(source, x_cal.shape[1], behaviour_head=True)
        train_multitask(adapted, cal_x, cal_y, adapt, steps=config.adapt_steps)
        predictions["unit_id_adapter"] = (
            predict_windows(adapted, x_test, reach.window)[0],
            {"trained_parameters": count_trainable(adapted)},
        )
        torch.manual_seed(reach.seed)
        scratch = NeuroFMX(NeuroFMXConfig(n_units=x_cal.shape[1], **model_config))
        train_multitask(scratch, cal_x, cal_y, adapt, steps=config.adapt_steps)
        predictions["scratch"] = (
            predict_windows(scratch, x_test, reach.window)[0],
            {"trained_parameters": count_trainable(scratch)},
        )
        for name, (prediction, info) in predictions.items():
            rows.setdefault(name, []).append(
                {
                    "fraction": fraction,
                    "calibration_bins": n_bins,
                    **_score(config, y_test, prediction),
                    **info,
                }
            )
    report = {
        "file": path.name,
        "scenario": scenario,
        "units": {k: int(v[0].shape[1]) for k, v in parts.items()},
        "bins": {k: int(v[0].shape[0]) for k, v in parts.items()},
        "pretrain_steps": config.pretrain_steps,
        "adapt_steps": config.adapt_steps,
        "pretrain_loss_first_last": [pretrain_losses[0], pretrain_losses[-1]],
        "results": rows,
    }
    if output is not None:
        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        (output / "fewshot.json").write_text(json.dumps(report, indent=2))
        curves = {
            name: [(r["fraction"], r["r2"], *r["r2_ci95"]) for r in points]
            for name, points in rows.items()
        }
        title = f"{path.name}: {scenario}, test {report['bins']['test']} bins"
        few_shot_curve(curves, title, output / "fewshot.png")
    return report
