"""What every evaluation shares: its settings, its result and writing a run's report folder.

The evaluations themselves (:mod:`~neurofm.evaluation.evaluate` for models over codes,
:mod:`~neurofm.evaluation.continuous` for continuous forecasters,
:mod:`~neurofm.evaluation.decoding` for classifiers) import from here and never from each other;
:func:`~neurofm.evaluation.evaluate.evaluate_run` picks one by the model's spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from neurofm.evaluation.intervals import bootstrap_intervals


@dataclass
class EvaluateConfig:
    """Settings of ``neurofm evaluate``."""

    split: str = "test"  # held-out split scored
    max_windows: int = 64  # held-out windows scored (evenly spaced over the split)
    max_train_windows: int = 256  # train windows the baselines are fitted on (evenly spaced)
    batch_size: int = 8  # windows per model call
    score_start: int | None = (
        None  # first scored target position (default: half the window, at most 64)
    )
    rollout_windows: int = 16  # windows whose rollouts are scored
    rollout_context: int | None = None  # context of rollouts in samples (default: half a window)
    rollout_samples: int = 16  # sampled continuations averaged into a model's mean forecast
    drift_prompts: int = 2  # prompts continued far for the drift check
    drift_segments: int = 4  # segments (of the continuation length) in a drift rollout
    temperature: float = 1.0  # sampling temperature of generated continuations
    top_k: int | None = None  # sample among the top_k codes only
    top_p: float | None = None  # nucleus sampling mass
    channel_copula: bool = False  # draw the channels of each generated step jointly through a
    # Gaussian copula fitted on the train signal (models over channel codes; see ChannelCopula)
    n_permutations: int = 1000  # label permutations of the decoding p-value
    code_levels: int = 256  # mu-law levels of the code bins a continuous model's bits are on
    seed: int = 0  # seed of controls, sampling and tests
    plot_channel: int = 0  # channel of the next-band rollout plot
    plot_window: int = 0  # scored held-out window of the next-band rollout plot
    # forecasting (evaluate.py, continuous.py): max_windows / max_train_windows above size only
    # the realism suite there; these size the scores, their intervals and the baselines
    forecast_windows: int | None = None  # non-overlapping held-out windows scored (None: all)
    baseline_train_windows: int | None = None  # non-overlapping train windows fitted on (None: all)
    val_windows: int | None = 64  # validation windows the baselines' sizes are chosen on
    ar_orders: list[int] = field(default_factory=lambda: [8, 16, 32, 64])  # per-channel AR p
    var_lags: list[int] = field(default_factory=lambda: [4, 8, 16, 24, 32])  # ridge VAR lags
    var_ridges: list[float] = field(  # ridge strengths (relative to the mean feature variance)
        default_factory=lambda: [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    )
    context_steps: list[int] = field(default_factory=lambda: [1, 8])  # truncated-context controls
    # truncated-context controls score every control_stride-th target of each window (each target
    # needs its own short model call: k + 1 codes; the stride bounds that cost)
    control_stride: int = 4
    n_bootstrap: int = 1000  # block-bootstrap resamples of the held-out windows
    bootstrap_block: int | None = None  # windows per bootstrap block (None: ceil(sqrt(M)))
    # realism suite: calibrated against real-vs-real comparisons (see neurofm.evaluation.realism)
    realism_windows: int = 32  # held-out prompts continued for the realism suite
    realism_seconds: float = 2.0  # length of compared windows; >= 2 s gives 0.5 Hz PSD bins
    realism_permutations: int = 1000  # permutations of each MMD two-sample test
    realism_reference_splits: int = 8  # disjoint real train sets: the real-vs-real spread
    # denoisers (generative.py): sampling steps of the steps-quality curve; bound steps (diffusion)
    denoising_steps: list[int] = field(default_factory=lambda: [10, 50, 200])
    bound_steps: int = 100  # diffusion steps evaluated per window in the variational bound
    # MEG-to-text (meg_text.py): free-running decoding of the model and its controls
    text_max_new_tokens: int = 32  # most generated text tokens per segment
    text_num_beams: int = 1  # 1: greedy with the KV cache; > 1: beam search

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "max_windows": 8,
            "max_train_windows": 32,
            "rollout_windows": 4,
            "drift_prompts": 1,
            "drift_segments": 2,
            "n_permutations": 200,
            "realism_windows": 4,
            "realism_permutations": 200,
            "realism_reference_splits": 3,
            "denoising_steps": [5, 20],
            "bound_steps": 20,
        },
        # seconds rather than minutes: a few windows, for tests and smoke runs (not for results)
        "smoke": {
            "max_windows": 4,
            "max_train_windows": 16,
            "forecast_windows": 12,
            "baseline_train_windows": 48,
            "val_windows": 8,
            "ar_orders": [8, 16],
            "var_lags": [4, 8],
            "context_steps": [1],
            "n_bootstrap": 200,
            "rollout_windows": 2,
            "rollout_samples": 4,
            "drift_prompts": 1,
            "drift_segments": 2,
            "n_permutations": 100,
            "realism_windows": 2,
            "realism_permutations": 50,
            "realism_reference_splits": 2,
        },
        "small": {},
        "base": {
            "max_windows": 512,
            "max_train_windows": 2048,
            "rollout_windows": 64,
            "realism_windows": 64,
            "drift_prompts": 8,
        },
    }

    def __post_init__(self) -> None:
        for name in (
            "max_windows",
            "max_train_windows",
            "batch_size",
            "control_stride",
            "n_bootstrap",
            "rollout_windows",
            "rollout_samples",
            "drift_prompts",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "forecast_windows",
            "baseline_train_windows",
            "val_windows",
            "bootstrap_block",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or null, got {getattr(self, name)}")
        for name in ("ar_orders", "var_lags", "context_steps"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ValueError(f"{name} must list integers >= 1, got {values}")
        if not self.var_ridges or min(self.var_ridges) < 0:
            raise ValueError(f"var_ridges must list values >= 0, got {self.var_ridges}")
        if self.score_start is not None and self.score_start < 1:
            raise ValueError(f"score_start must be >= 1 or null, got {self.score_start}")
        if self.code_levels < 2:
            raise ValueError(f"code_levels must be >= 2, got {self.code_levels}")
        if self.drift_segments < 2:
            raise ValueError(f"drift_segments must be >= 2, got {self.drift_segments}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        for name in ("realism_windows", "realism_permutations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.realism_seconds <= 0:
            raise ValueError(f"realism_seconds must be > 0, got {self.realism_seconds}")
        if self.realism_reference_splits < 2:
            raise ValueError(
                f"realism_reference_splits must be >= 2, got {self.realism_reference_splits}"
            )


@dataclass
class EvaluationResult:
    """``report``: the JSON-safe scores; ``arrays``: signals for the plots (not in the JSON)."""

    report: dict[str, Any]
    arrays: dict[str, Any]


def evenly(n_total: int, n_max: int | None) -> np.ndarray:
    """Up to ``n_max`` indices spread evenly over ``0 .. n_total - 1`` (sorted, unique; all of
    them when ``n_max`` is None)."""
    if n_max is None or n_max >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, min(n_total, n_max)).round().astype(int))


def forecast_windows(run: Any, config: EvaluateConfig) -> dict[str, Any]:
    """Non-overlapping windows (stride = window length) of a run's held-out, train and
    validation splits, as datasets: ``test``, ``train``, ``val`` (None when the run has no
    validation split in its store) with the indices taken (``*_index``, evenly spaced when a
    cap applies) and ``info`` for the report (windows available, scored, caps)."""
    from dataclasses import replace

    from neurofm.training.data import build_dataset

    data = run.data_config
    data = replace(data, stride=data.window_length)
    splits = run.store.manifest.get("splits") or {}
    out: dict[str, Any] = {
        "test": build_dataset(run.store, data, config.split),
        "train": build_dataset(run.store, data, data.train_split),
        "val": None,
    }
    if data.val_split is not None and data.val_split in splits:
        out["val"] = build_dataset(run.store, data, data.val_split)
    caps = {
        "test": config.forecast_windows,
        "train": config.baseline_train_windows,
        "val": config.val_windows,
    }
    info: dict[str, Any] = {"stride": int(data.window_length)}
    for name, cap in caps.items():
        n = 0 if out[name] is None else len(out[name])
        out[f"{name}_index"] = evenly(n, cap)
        info[f"{name}_available"] = n
        info[f"{name}_used"] = int(out[f"{name}_index"].size)
    info["capped"] = info["test_used"] < info["test_available"]
    info["validation_split"] = data.val_split if out["val"] is not None else None
    out["info"] = info
    return out


def default_start(n_times: int, config: EvaluateConfig) -> int:
    """First scored target position: ``score_start``, else half the window (at most 64)."""
    start = config.score_start if config.score_start is not None else min(64, n_times // 2)
    if not 1 <= start < n_times:
        raise ValueError(f"score_start={start} must lie in [1, window length {n_times})")
    return start


def split_validation(
    train: list[np.ndarray], val: list[np.ndarray] | None, n_val: int | None
) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Arrays to fit on, arrays to choose on, and where the validation windows come from: the
    run's validation split, else the last fifth of the train windows (held out from fitting)."""
    if val is not None and len(val[0]):
        idx = evenly(len(val[0]), n_val)
        return train, [v[idx] for v in val], f"validation split ({idx.size} windows)"
    n_tail = max(1, len(train[0]) // 5)
    if len(train[0]) <= n_tail:
        raise ValueError("choosing the baselines' sizes needs at least 2 train windows")
    head, tail = [t[:-n_tail] for t in train], [t[-n_tail:] for t in train]
    idx = evenly(n_tail, n_val)
    return (
        head,
        [t[idx] for t in tail],
        (
            f"no validation split: the last {n_tail} train windows, held out from fitting while "
            f"choosing ({idx.size} used), then the chosen sizes refitted on all train windows"
        ),
    )


def mismatched_partner(n_windows: int) -> np.ndarray:
    """For each window ``i`` the window ``(i + M // 2) mod M`` whose input replaces its own in
    the mismatched-context control (real signal, far in time; none when ``M < 2``)."""
    return (np.arange(n_windows) + n_windows // 2) % n_windows


def control_steps(cfg: EvaluateConfig, start: int) -> list[int]:
    """Context lengths of the truncated-context controls that are shorter than ``start``."""
    return sorted({k for k in cfg.context_steps if k < start})


def add_intervals(
    one_step: dict[str, dict[str, Any]],
    per_window: dict[str, np.ndarray | None],
    cfg: EvaluateConfig,
) -> dict[str, Any]:
    """Block-bootstrap intervals of each predictor's bits (added to ``one_step[name]`` as
    ``bits_interval``) and of the model minus each other predictor; returns the bootstrap
    report."""
    scores = {n: v for n, v in per_window.items() if v is not None}
    if not scores:
        return {"skipped": "no predictor gives a distribution over the code bins"}
    boot = bootstrap_intervals(
        scores, n_resamples=cfg.n_bootstrap, block=cfg.bootstrap_block, seed=cfg.seed
    )
    for name, interval in boot["scores"].items():
        one_step[name]["bits_interval"] = [interval["low"], interval["high"]]
    return boot


def write_run_report(
    result: EvaluationResult,
    run: Any,
    config: EvaluateConfig,
    *,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
    details: dict[str, Any] | None = None,
) -> Path:
    """Record where ``result`` comes from and write its report folder.

    The folder (default ``<run_dir>/eval-<split>``) gets ``report.json``, ``report.html``, the PNG
    plots and the resolved ``evaluate.yaml``; ``details`` are added to the report, and
    ``filter_phase`` says whether the prepared data were filtered zero-phase (samples carry
    information from the future) or causally (read from the store's manifest). Returns the
    folder.
    """
    from neurofm.config import save_yaml
    from neurofm.evaluation.report import write_report
    from neurofm.preprocessing import filter_phase

    out = Path(out_dir) if out_dir is not None else Path(run.run_dir) / f"eval-{config.split}"
    result.report.update(
        run_dir=str(run.run_dir),
        split=config.split,
        out_dir=str(out),
        checkpoint=getattr(run, "checkpoint", None) or checkpoint or "final",
        checkpoint_requested=checkpoint or "final",
        model=run.config.get("model", {}).get("name"),
        filter_phase=filter_phase(run.store.manifest.get("preprocessing", {}).get("steps", [])),
        **(details or {}),
    )
    run_warnings = list(getattr(run, "warnings", []) or [])
    if run_warnings:
        result.report["warnings"] = [*result.report.get("warnings", []), *run_warnings]
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(asdict(config), out / "evaluate.yaml")
    write_report(result.report, result.arrays, out)
    return out


def score_sections(
    cfg: EvaluateConfig,
    *,
    windows: dict[str, Any] | None,
    n_scored: int,
    n_train: int,
    one_step: dict[str, Any],
    bootstrap: dict[str, Any],
    selection: dict[str, Any],
    per_window: dict[str, Any],
) -> dict[str, Any]:
    """The report sections every forecasting evaluation shares: window counts, settings,
    one-step scores with their intervals, the baselines' selection and per-window bits."""
    return {
        "windows": {**(windows or {}), "scored": int(n_scored), "train": int(n_train)},
        "settings": asdict(cfg),
        "one_step": one_step,
        "bootstrap": bootstrap,
        "selection": selection,
        "per_window": {
            "bits_per_channel_sample": {
                n: v.tolist() for n, v in per_window.items() if v is not None
            }
        },
    }
