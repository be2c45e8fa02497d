"""Learning curve of a training run: held-out bits per channel-sample of each checkpoint, with the
linear baselines as flat lines.

Every checkpoint ``step-N`` of the run folder (and the final model) is scored on the same
non-overlapping held-out windows as ``neurofm evaluate`` (one-step bits from ``score_start`` on,
95% block-bootstrap intervals over windows); the baselines (per-channel linear AR and ridge VAR,
sizes chosen on the validation split; bigram, uniform) are fitted once on train and scored on the
same windows. The difference between each checkpoint and the best linear baseline gets a paired
interval; ``wins_from_step`` is the first step from which every later checkpoint's interval lies
below zero (None when none does). Written as ``learning_curve.json`` and ``learning_curve.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurofm.errors import ConfigError
from neurofm.evaluation.common import EvaluateConfig, default_start, forecast_windows
from neurofm.evaluation.intervals import bootstrap_intervals
from neurofm.evaluation.metrics import ForecastAccumulator
from neurofm.logging import get_logger

log = get_logger("evaluation")

LINEAR = ("linear_ar", "ridge_var")
"""The linear baselines a model must beat; the better of them on the held-out windows is "best"."""

REFERENCES = (*LINEAR, "bigram", "uniform")
"""The baselines drawn as flat lines."""


def checkpoints_of(run_dir: str | Path) -> list[tuple[int, str]]:
    """``(step, name)`` of every checkpoint folder ``step-N`` of a run, by step."""
    from neurofm.training.run_folder import CHECKPOINTS_DIR, checkpoint_step

    folder = Path(run_dir) / CHECKPOINTS_DIR
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            step = checkpoint_step(path.name)
            if step is not None and path.is_dir():
                found.append((step, path.name))
    return sorted(found)


def _window_bits(predictor: Any, codes: np.ndarray, signal: np.ndarray, start: int, batch: int):
    """Bits per channel-sample of each window; ``predictor`` is a fitted baseline, or a function
    of a slice of the windows giving the model's predictor for them (its context sliced)."""
    acc = ForecastAccumulator(codes.shape[1])
    for lo in range(0, len(codes), batch):
        part = codes[lo : lo + batch]
        if callable(predictor):  # the model: its log-probabilities only (no point forecast)
            log_probs = predictor(slice(lo, lo + len(part))).log_probs(part, start)
        else:
            log_probs, _ = predictor.predict(part, start)
        acc.update(log_probs, part[..., start:], None, signal[lo : lo + batch, :, start:])
    return acc.window_bits()


def _reference_bits(
    report: dict[str, Any], n_windows: int, start: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The baselines' per-window bits and selection from an evaluation report of the same
    windows (checked: window count and first scored position)."""
    bits = (report.get("per_window") or {}).get("bits_per_channel_sample") or {}
    if report.get("n_windows") != n_windows or report.get("score_start") != start:
        raise ValueError(
            f"learning curve: the reference report scored {report.get('n_windows')} windows "
            f"from position {report.get('score_start')}, the curve {n_windows} from {start}"
        )
    missing = [name for name in REFERENCES if name not in bits]
    if missing:
        raise ValueError(
            f"learning curve: the reference report has no per-window bits of {missing}"
        )
    return {name: np.asarray(bits[name], dtype=np.float64) for name in REFERENCES}, dict(
        report.get("selection") or {}
    )


def _final_model_bits(report: dict[str, Any] | None, run_dir: Path) -> np.ndarray | None:
    """The final model's per-window bits from an evaluation report of this run's final model
    (None otherwise)."""
    if report is None or report.get("checkpoint", "final") != "final":
        return None
    if Path(report.get("run_dir", run_dir)).resolve() != Path(run_dir).resolve():
        return None
    bits = (report.get("per_window") or {}).get("bits_per_channel_sample") or {}
    return None if "model" not in bits else np.asarray(bits["model"], dtype=np.float64)


def same_weights(a: Any, b: Any) -> bool:
    """Whether two models hold identical parameters and buffers (same names, exactly equal)."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def learning_curve(
    run_dir: str | Path,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every checkpoint of a run of a model over channel codes; write the curve.

    Parameters
    ----------
    run_dir : path
        A run folder of ``neurofm fit`` whose model reads and predicts channel codes (spec
        ``channel_codes`` -> ``logits``) and that kept checkpoints (``checkpoint_every_n_steps``).
    config : EvaluateConfig, optional
        Split, window caps, baselines' size grids, bootstrap settings (as ``neurofm evaluate``).
    out_dir : path, optional
        Folder for ``learning_curve.json`` and ``.png`` (default ``<run_dir>/learning-curve``).
    reference : dict, optional
        The report of ``neurofm evaluate`` on the same split and settings: its baselines'
        per-window bits and their selection are reused instead of fitting them again (the
        windows must match: same count and first scored position); a checkpoint whose weights
        equal the final model's takes the report's model bits (the report of the final model).

    Returns
    -------
    dict
        ``points`` (step, bits, interval, difference to the best linear baseline with its
        interval), ``baselines`` (bits and interval), ``best_linear``, ``wins_from_step``.
    """
    from neurofm.evaluation.baselines import CodeBins
    from neurofm.evaluation.evaluate import code_baselines, windows_of
    from neurofm.evaluation.rollout import ModelPredictor, model_context
    from neurofm.fileio import write_json_atomic
    from neurofm.registry import model_spec
    from neurofm.training.run import load_run

    cfg = config or EvaluateConfig()
    run = load_run(run_dir)
    spec = model_spec(run.model)
    if (spec.inputs, spec.outputs) != ("channel_codes", "logits") or run.tokenizer is None:
        raise ConfigError(
            f"{run_dir}: a learning curve scores models over channel codes (spec inputs "
            f"'channel_codes', outputs 'logits'); this run's model has {spec.inputs!r} -> "
            f"{spec.outputs!r}"
        )
    steps = checkpoints_of(run_dir)
    if not steps:
        raise ConfigError(
            f"{run_dir}: no checkpoints (step-N) to draw a curve from; train with "
            "output.checkpoint_every_n_steps smaller than trainer.max_steps"
        )
    sets = forecast_windows(run, cfg)
    test = windows_of(sets["test"], sets["test_index"], run.tokenizer)
    codes, signal = test["codes"], test["signal"].astype(np.float64)
    start = default_start(codes.shape[-1], cfg)
    bins = CodeBins.from_tokenizer(run.tokenizer, codes.shape[1])
    if reference is not None:
        per_window, selection = _reference_bits(reference, len(codes), start)
    else:
        train = windows_of(sets["train"], sets["train_index"], run.tokenizer)
        val = (
            None
            if sets["val"] is None
            else windows_of(sets["val"], sets["val_index"], run.tokenizer)
        )
        fitted, selection = code_baselines(
            bins, train["codes"], None if val is None else val["codes"], start, cfg
        )
        per_window = {
            name: _window_bits(fitted[name], codes, signal, start, cfg.batch_size)
            for name in REFERENCES
        }
    context = model_context(run.model, test["batch"])
    final_bits = _final_model_bits(reference, Path(run_dir))
    for _, name in steps:
        model = load_run(run_dir, checkpoint=name).model
        if final_bits is not None and same_weights(model, run.model):
            log.info("learning curve: %s is the final model; its bits from the report", name)
            per_window[name] = final_bits
            continue
        log.info("learning curve: scoring %s on %d held-out windows", name, len(codes))

        def predictor(part: slice, model: Any = model) -> ModelPredictor:
            window_context = {k: v[part] for k, v in context.items()}
            return ModelPredictor(model, bins, context=window_context, spec=spec)

        per_window[name] = _window_bits(predictor, codes, signal, start, cfg.batch_size)
    means = {name: float(np.mean(v)) for name, v in per_window.items()}
    best = min(LINEAR, key=lambda n: means[n])
    points = []
    for step, name in steps:
        boot = bootstrap_intervals(
            {"model": per_window[name], best: per_window[best]},
            n_resamples=cfg.n_bootstrap,
            block=cfg.bootstrap_block,
            seed=cfg.seed,
        )
        score, diff = boot["scores"]["model"], boot["differences"][best]
        points.append(
            {
                "step": step,
                "checkpoint": name,
                "bits": score["mean"],
                "interval": [score["low"], score["high"]],
                "minus_best_linear": diff["mean"],
                "minus_best_linear_interval": [diff["low"], diff["high"]],
                "below_zero": diff["below_zero"],
            }
        )
    refs = bootstrap_intervals(
        {n: per_window[n] for n in REFERENCES},
        reference="",
        n_resamples=cfg.n_bootstrap,
        block=cfg.bootstrap_block,
        seed=cfg.seed,
    )["scores"]
    wins_from = None
    for point in reversed(points):
        if not point["below_zero"]:
            break
        wins_from = point["step"]
    curve = {
        "run_dir": str(run_dir),
        "split": cfg.split,
        "n_windows": int(len(codes)),
        "score_start": int(start),
        "points": points,
        "baselines": {
            n: {"bits": s["mean"], "interval": [s["low"], s["high"]]} for n, s in refs.items()
        },
        "best_linear": best,
        "selection": selection,
        "wins_from_step": wins_from,
        "definition": "held-out bits per channel-sample of each checkpoint on every scored "
        "non-overlapping window; intervals: 95% block bootstrap over windows; "
        "minus_best_linear: paired difference to the better linear baseline (negative: the "
        "model is better); wins_from_step: first step from which every later checkpoint's "
        "interval of that difference lies below zero",
    }
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "learning-curve"
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "learning_curve.json", curve)
    plot_learning_curve(curve, out / "learning_curve.png")
    return curve


def plot_learning_curve(curve: dict[str, Any], path: str | Path) -> Path:
    """Bits against training steps with 95% intervals, the baselines as flat bands."""
    from neurofm.evaluation.plots import _figure, _save

    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    steps = [p["step"] for p in curve["points"]]
    bits = [p["bits"] for p in curve["points"]]
    low = [p["interval"][0] for p in curve["points"]]
    high = [p["interval"][1] for p in curve["points"]]
    ax.plot(steps, bits, "o-", color="tab:red", label="model")
    ax.fill_between(steps, low, high, color="tab:red", alpha=0.2)
    colors = {"linear_ar": "tab:blue", "ridge_var": "tab:green", "bigram": "tab:gray"}
    for name, color in colors.items():
        ref = curve["baselines"].get(name)
        if ref is None:
            continue
        ax.axhline(ref["bits"], color=color, ls="--", label=name)
        ax.axhspan(*ref["interval"], color=color, alpha=0.1)
    top = max(max(high), *(curve["baselines"][n]["bits"] for n in colors)) + 0.1
    ax.set_ylim(min(min(low), *(curve["baselines"][n]["bits"] for n in colors)) - 0.1, top)
    ax.set(
        xlabel="training steps",
        ylabel="held-out bits per channel-sample",
        title=f"Learning curve ({curve['split']}, {curve['n_windows']} windows, 95% intervals)",
    )
    ax.legend(loc="upper right")
    return _save(fig, path)
