"""Evaluate any run folder by its model's spec (:func:`evaluate_run`), and the run-folder side of
code forecasting (:func:`evaluate_code_forecasting_run`).

:func:`evaluate_run` loads a training run folder, reads its held-out split, picks the evaluation
from the model's :class:`~neurofm.types.ModelSpec` (see :data:`EVALUATIONS`) and writes the report.
Forecasting models over codes are scored by
:func:`~neurofm.evaluation.forecasting.evaluate_forecasting` (re-exported here), next to their
baselines and controls on the same held-out windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.errors import ConfigError
from neurofm.evaluation import baselines as bl
from neurofm.evaluation.band_tokens import evaluate_band_tokens_run
from neurofm.evaluation.code_baselines import code_baselines
from neurofm.evaluation.code_decoding import evaluate_code_decoding_run
from neurofm.evaluation.common import (
    EvaluateConfig,
    EvaluationResult,
    evenly,
    forecast_windows,
    write_run_report,
)
from neurofm.evaluation.continuous import evaluate_continuous_run
from neurofm.evaluation.counts import evaluate_counts_run
from neurofm.evaluation.decoding import evaluate_decoding_run
from neurofm.evaluation.forecasting import DEFINITIONS, evaluate_forecasting
from neurofm.evaluation.generative import evaluate_generative_run
from neurofm.evaluation.meg_text import evaluate_meg_text_run
from neurofm.evaluation.metrics import _as_numpy
from neurofm.evaluation.neural_x import evaluate_lfp_run, evaluate_spikes_run
from neurofm.evaluation.next_band import evaluate_next_band_run
from neurofm.evaluation.rollout import model_context
from neurofm.registry import model_spec
from neurofm.types import ModelSpec

__all__ = [
    "DEFINITIONS",
    "EVALUATIONS",
    "EvaluateConfig",
    "code_baselines",
    "evaluate_code_forecasting_run",
    "evaluate_forecasting",
    "evaluate_run",
    "evaluation_for",
    "windows_of",
]


def windows_of(dataset: Any, indices: np.ndarray, tokenizer: Any) -> dict[str, Any]:
    """Signal, codes and model context of ``dataset[indices]`` (collated with ``neurofm.data``)."""
    from neurofm.data.collate import collate

    batch = collate([dataset[int(i)] for i in indices])
    signal = batch.x.float()
    codes = _as_numpy(tokenizer.encode(signal).codes)
    if codes.shape != tuple(signal.shape):
        raise ValueError(
            f"the tokenizer gives codes of shape {codes.shape} for windows "
            f"{tuple(signal.shape)}; evaluation needs one code per channel-sample"
        )
    return {"signal": signal.numpy(), "codes": codes, "batch": batch}


def evaluate_code_forecasting_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a run of a model over codes (:func:`evaluate_forecasting`) and write the report
    (see :func:`~neurofm.evaluation.common.write_run_report`).

    Every non-overlapping window of the held-out split is scored (unless ``forecast_windows``
    caps them); the baselines fit on non-overlapping train windows and choose their sizes on the
    run's validation split. A model over one flat token sequence (spec inputs
    ``token_sequence``) is scored on the per-channel codes of its flat tokenizer's amplitude
    quantizer, its predictions laid back onto ``(channel, time)`` by the tokenizer's
    ``positions``.
    """
    from neurofm.training.data import build_dataset

    cfg = config or EvaluateConfig()
    if run.tokenizer is None:
        raise ConfigError(
            f"{run.run_dir}: the run has no tokenizer; a model over codes is scored on "
            "the codes of the run's tokenizer"
        )
    spec = model_spec(run.model)
    layout, per_sample = None, run.tokenizer
    if spec.inputs == "token_sequence":
        if not hasattr(run.tokenizer, "positions"):
            raise ConfigError(
                f"{run.run_dir}: a model over token sequences is scored through a flat "
                f"tokenizer's layout (flat, block_causal); the run's is "
                f"{run.config['tokenizer'].get('name')!r}"
            )
        layout, per_sample = run.tokenizer, run.tokenizer.amplitude
    sets = forecast_windows(run, cfg)
    test = windows_of(sets["test"], sets["test_index"], per_sample)
    train = windows_of(sets["train"], sets["train_index"], per_sample)
    val = None if sets["val"] is None else windows_of(sets["val"], sets["val_index"], per_sample)
    bins = bl.CodeBins.from_tokenizer(per_sample, test["codes"].shape[1])
    sfreq = float(run.store.recordings[0].sfreq)
    # the realism suite compares windows of realism_seconds (longer than training windows)
    long = replace(
        run.data_config, window_length=round(cfg.realism_seconds * sfreq), stride=None, horizon=None
    )
    long_test = build_dataset(run.store, long, cfg.split)
    long_train = build_dataset(run.store, long, "train")
    real_long = windows_of(long_test, evenly(len(long_test), cfg.max_windows), per_sample)
    train_long = windows_of(long_train, evenly(len(long_train), cfg.max_train_windows), per_sample)
    result = evaluate_forecasting(
        run.model,
        bins,
        train_codes=train["codes"],
        train_signal=train["signal"],
        test_codes=test["codes"],
        test_signal=test["signal"],
        val_codes=None if val is None else val["codes"],
        sfreq=sfreq,
        test_context=model_context(run.model, test["batch"]),
        config=cfg,
        spec=spec,
        layout=layout,
        windows=sets["info"],
        realism_codes=real_long["codes"],
        realism_signal=real_long["signal"],
        realism_train_signal=train_long["signal"],
    )
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result


EVALUATIONS: dict[tuple[str, ...], Callable[..., EvaluationResult]] = {
    ("channel_codes", "logits"): evaluate_code_forecasting_run,
    ("token_sequence", "logits"): evaluate_code_forecasting_run,
    ("signal", "prediction"): evaluate_continuous_run,
    ("signal", "class_logits"): evaluate_decoding_run,
    ("band_stack", "prediction"): evaluate_next_band_run,
    ("band_codes", "logits"): evaluate_band_tokens_run,
    ("channel_codes", "class_logits"): evaluate_code_decoding_run,
    ("token_sequence", "logits", "flow"): evaluate_generative_run,
    ("signal", "noise", "diffusion"): evaluate_generative_run,
    ("binned_counts", "prediction"): evaluate_counts_run,
    ("spike_events", "prediction"): evaluate_spikes_run,
    ("field_potentials", "prediction"): evaluate_lfp_run,
    ("signal_text", "text"): evaluate_meg_text_run,
}
"""The evaluation of a run by its model spec's ``(inputs, outputs, sampling)``, else its
``(inputs, outputs)``: each takes the loaded run and ``config``, ``out_dir``, ``checkpoint``
keywords, and writes the report. Denoisers (sampling ``flow`` / ``diffusion``) are scored by
generation, whatever their output kind."""


def evaluation_for(spec: ModelSpec) -> Callable[..., EvaluationResult] | None:
    """The evaluation of :data:`EVALUATIONS` for ``spec`` (the most specific key first)."""
    found = EVALUATIONS.get((spec.inputs, spec.outputs, spec.sampling))
    return found if found is not None else EVALUATIONS.get((spec.inputs, spec.outputs))


def evaluate_run(
    run_dir: str | Path,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a training run folder on its held-out split and write the report.

    The evaluation is chosen by the model's spec (:data:`EVALUATIONS`): logits over channel
    codes are scored by :func:`evaluate_forecasting`, a continuous prediction of the signal by
    :func:`~neurofm.evaluation.continuous.evaluate_continuous`, class logits by
    :func:`~neurofm.evaluation.decoding.evaluate_decoding`. The report goes to ``out_dir``
    (default ``<run_dir>/eval-<split>``): ``report.json``, ``report.html``, PNG plots and the
    resolved ``evaluate.yaml``. ``checkpoint`` is passed to
    :func:`~neurofm.training.run.load_run` (default: the final model).
    """
    from neurofm.fileio import check_writable
    from neurofm.training.run import load_run

    cfg = config or EvaluateConfig()
    # before the scoring pass: a report folder that cannot be written fails now, not at the end
    check_writable(
        Path(out_dir) if out_dir is not None else Path(run_dir) / f"eval-{cfg.split}",
        what="report folder",
    )
    run = load_run(run_dir, checkpoint=checkpoint)
    spec = model_spec(run.model)
    evaluation = evaluation_for(spec)
    if evaluation is None:
        name = run.config.get("model", {}).get("name", type(run.model).__name__)
        known = "; ".join(
            ", ".join(f"{k}={v!r}" for k, v in zip(("inputs", "outputs", "sampling"), key))
            for key in EVALUATIONS
        )
        raise ConfigError(
            f"{run_dir}: no evaluation for model {name!r} with spec {spec}; "
            f"neurofm evaluate scores models with {known}"
        )
    return evaluation(run, config=cfg, out_dir=out_dir, checkpoint=checkpoint)
