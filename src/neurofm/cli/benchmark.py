"""``neurofm benchmark``: the forecasting leaderboard."""

from __future__ import annotations

from typing import Literal, Optional


def benchmark(
    output: str = "benchmark_out",
    store: Optional[str] = None,
    max_steps: int = 200,
    preset: Literal["tiny", "small"] = "small",
    families: Optional[list[str]] = None,
    evaluation: Optional[dict] = None,
    seed: int = 0,
) -> None:
    """Train every registered forecasting family on the same data, split and steps, evaluate
    each against the baselines, and write one table (``benchmark.md``, ``benchmark.json``,
    ``benchmark.png``): bits per channel-sample with 95% intervals, MSE, realism flags,
    parameter count and train time. Families are found by their spec (causal, logits over codes
    or a prediction of the signal); one that fails gets a row saying why. Dotted overrides change
    the shared base (``--data.window_length 64``, ``--optim.lr 3e-4``, ``--trainer.accelerator
    cpu``), the evaluation (``--evaluation.forecast_windows 32``) or one family's model
    (``--model.conv_forecaster.predict_variance true``).

    Args:
        output: folder of the runs, reports and the table (and of the prepared sample).
        store: a prepared store with train, val and test splits (default: the shipped EEG
            sample, prepared like the demo's into ``<output>/data``).
        max_steps: optimizer steps of every run.
        preset: model preset of every family.
        families: a subset of the forecasting families (default: all).
        evaluation: evaluation settings ``{preset: tiny|small|base, forecast_windows: ...}``
            (default preset ``tiny``).
        seed: seed of training and evaluation.
    """
    from neurofm.cli._context import take_overrides
    from neurofm.config import apply_overrides
    from neurofm.workflows.benchmark import run_benchmark

    overrides = take_overrides()
    settings = {k: overrides.pop(k) for k in list(overrides) if k.startswith("evaluation.")}
    section = apply_overrides({"evaluation": evaluation or {}}, settings)["evaluation"]
    run_benchmark(
        output,
        store=store,
        max_steps=max_steps,
        preset=preset,
        families=families,
        evaluation=section,
        overrides=overrides,
        seed=seed,
    )
