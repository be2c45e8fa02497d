"""What every evaluation shares: its settings, its result and writing a run's report folder.

The evaluations themselves (:mod:`~neurofm.evaluation.evaluate` for models over codes,
:mod:`~neurofm.evaluation.continuous` for continuous forecasters,
:mod:`~neurofm.evaluation.decoding` for classifiers) import from here and never from each other;
:func:`~neurofm.evaluation.evaluate.evaluate_run` picks one by the model's spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass
class EvaluateConfig:
    """Settings of ``neurofm evaluate``."""

    split: str = "test"  # held-out split scored
    max_windows: int = 64  # held-out windows scored (evenly spaced over the split)
    max_train_windows: int = 256  # train windows the baselines are fitted on (evenly spaced)
    batch_size: int = 8  # windows per model call
    ar_order: int = 8  # order p of the linear autoregressive baseline
    score_start: int | None = None  # first scored target position (default: ar_order)
    rollout_windows: int = 16  # windows whose rollouts are scored
    rollout_context: int | None = None  # context of rollouts in samples (default: half a window)
    rollout_samples: int = 8  # sampled continuations averaged into a model forecast
    n_generate: int = 8  # held-out prompts continued for the realism suite
    drift_prompts: int = 2  # prompts continued far for the drift check
    drift_segments: int = 4  # segments (of the continuation length) in a drift rollout
    temperature: float = 1.0  # sampling temperature of generated continuations
    top_k: int | None = None  # sample among the top_k codes only
    top_p: float | None = None  # nucleus sampling mass
    n_permutations: int = 500  # permutations of the MMD two-sample test
    code_levels: int = 256  # mu-law levels of the code bins a continuous model's bits are on
    seed: int = 0  # seed of controls, sampling and tests
    # realism suite: calibrated against real-vs-real comparisons (see neurofm.evaluation.realism)
    realism_windows: int = 32  # held-out prompts continued for the realism suite
    realism_seconds: float = 2.0  # length of compared windows; >= 2 s gives 0.5 Hz PSD bins
    realism_permutations: int = 1000  # permutations of each MMD two-sample test
    realism_reference_splits: int = 8  # disjoint real train sets: the real-vs-real spread

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "max_windows": 8,
            "max_train_windows": 32,
            "rollout_windows": 4,
            "rollout_samples": 2,
            "n_generate": 4,
            "drift_prompts": 1,
            "drift_segments": 2,
            "n_permutations": 50,
            "realism_windows": 4,
            "realism_permutations": 200,
            "realism_reference_splits": 3,
        },
        "small": {},
        "base": {
            "max_windows": 512,
            "max_train_windows": 2048,
            "rollout_windows": 64,
            "n_generate": 32,
            "drift_prompts": 8,
        },
    }

    def __post_init__(self) -> None:
        for name in (
            "max_windows",
            "max_train_windows",
            "batch_size",
            "ar_order",
            "rollout_windows",
            "rollout_samples",
            "n_generate",
            "drift_prompts",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
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


def evenly(n_total: int, n_max: int) -> np.ndarray:
    """Up to ``n_max`` indices spread evenly over ``0 .. n_total - 1`` (sorted, unique)."""
    return np.unique(np.linspace(0, n_total - 1, min(n_total, n_max)).round().astype(int))


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
        checkpoint=checkpoint or "final",
        model=run.config.get("model", {}).get("name"),
        filter_phase=filter_phase(run.store.manifest.get("preprocessing", {}).get("steps", [])),
        **(details or {}),
    )
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(asdict(config), out / "evaluate.yaml")
    write_report(result.report, result.arrays, out)
    return out
