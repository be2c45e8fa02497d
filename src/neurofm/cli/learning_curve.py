"""``neurofm learning-curve``: held-out bits of every checkpoint of a run, next to the linear
baselines."""

from __future__ import annotations

from typing import Optional


def learning_curve(
    run: str,
    split: Optional[str] = None,
    evaluation: Optional[dict] = None,
    output: Optional[str] = None,
) -> None:
    """Score every checkpoint (``step-N``) of a run on the held-out windows and draw the curve.

    Each checkpoint's one-step bits per channel-sample on every non-overlapping held-out window
    (95% block-bootstrap interval), the per-channel linear AR and the ridge VAR (sizes chosen on
    the validation split), bigram and uniform as flat lines, the paired difference to the better
    linear baseline, and the first step from which the model stays better (interval below 0).
    Writes ``learning_curve.json`` and ``learning_curve.png``. The run needs checkpoints: train
    with ``--output.checkpoint_every_n_steps`` below ``--trainer.max_steps``.

    Args:
        run: the run folder written by ``neurofm fit`` (a model over channel codes).
        split: held-out split to score (default ``test``).
        evaluation: settings as for ``neurofm evaluate`` (``{preset: tiny, forecast_windows: null}``).
        output: folder of the curve (default ``<run>/learning-curve``).
    """
    from neurofm.cli._context import take_overrides
    from neurofm.config import apply_overrides, build_config
    from neurofm.evaluation.common import EvaluateConfig
    from neurofm.evaluation.learning_curve import learning_curve as draw

    section = apply_overrides({"evaluation": evaluation or {}}, take_overrides())["evaluation"]
    if split is not None:
        section["split"] = split
    config = build_config(EvaluateConfig, section, prefix="evaluation")
    curve = draw(run, config=config, out_dir=output)
    best = curve["best_linear"]
    ref = curve["baselines"][best]
    print(f"{curve['split']}: {curve['n_windows']} windows; {best} {ref['bits']:.3f} bits")
    for point in curve["points"]:
        low, high = point["minus_best_linear_interval"]
        print(
            f"  step {point['step']:>6}: {point['bits']:.3f} bits, minus {best} "
            f"{point['minus_best_linear']:+.3f} [{low:+.3f}, {high:+.3f}]"
        )
    print(f"wins from step: {curve['wins_from_step']}")
