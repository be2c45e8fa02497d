"""Score a forecasting model over codes next to its baselines and controls, on the same held-out
windows; and :func:`evaluate_run`, which evaluates any run folder by its model's spec.

:func:`evaluate_forecasting` works on arrays and a model (no run folder needed);
:func:`evaluate_run` loads a training run folder, reads its held-out split, picks the evaluation
from the model's :class:`~neurofm.types.ModelSpec` (see :data:`EVALUATIONS`) and writes the report.

What is compared, all on the same windows and the same scored positions (targets
``codes[..., score_start:]``, so every predictor has a full context):

- one step ahead: the model, the baselines (last value, linear AR, unigram; fitted on train only),
  and two controls: the same model fed time-shuffled input (one random permutation of the time
  axis per window, all channels alike) and fed uniformly random codes, both scored against the
  real next codes;
- rollouts: error against horizon of multi-step forecasts from the same contexts;
- realism: continuations of held-out prompts compared with the real continuations, next to the
  linear AR's sampled continuations, the tokenizer round trip of the real signal, and real train
  windows (the real-vs-real reference); drift of long rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.errors import ConfigError
from neurofm.evaluation import baselines as bl
from neurofm.evaluation import realism
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly, write_run_report
from neurofm.evaluation.continuous import evaluate_continuous_run
from neurofm.evaluation.decoding import evaluate_decoding_run
from neurofm.evaluation.metrics import ForecastAccumulator, _as_numpy
from neurofm.evaluation.rollout import ModelPredictor, model_context, rollout_curves
from neurofm.logging import get_logger
from neurofm.registry import model_spec
from neurofm.types import CONTEXT_FIELDS, ModelSpec

log = get_logger("evaluation")


def _slice(context: dict[str, Any], index: np.ndarray | slice) -> dict[str, Any]:
    return {k: v[index] for k, v in context.items()}


def _controls(
    codes: np.ndarray, vocab_size: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    shuffled = np.stack([w[:, rng.permutation(w.shape[-1])] for w in codes])
    noise = rng.integers(0, vocab_size, codes.shape)
    return {"control_shuffled_input": shuffled, "control_noise_input": noise}


def _one_step(
    model: Any,
    bins: bl.CodeBins,
    fitted: dict[str, Any],
    codes: np.ndarray,
    signal: np.ndarray,
    context: dict[str, Any],
    cfg: EvaluateConfig,
    start: int,
    spec: ModelSpec,
) -> dict[str, dict[str, float]]:
    names = ["model", *fitted, "control_shuffled_input", "control_noise_input"]
    acc = {n: ForecastAccumulator(codes.shape[1]) for n in names}
    rng = np.random.default_rng(cfg.seed)
    for lo in range(0, len(codes), cfg.batch_size):
        part, truth = codes[lo : lo + cfg.batch_size], signal[lo : lo + cfg.batch_size, :, start:]
        predictor = ModelPredictor(
            model, bins, context=_slice(context, slice(lo, lo + len(part))), spec=spec
        )
        targets = part[..., start:]
        predictions = {"model": predictor.predict(part, start)}
        for name, inputs in _controls(part, bins.vocab_size, rng).items():
            predictions[name] = predictor.predict(part, start, inputs=inputs)
        for name, baseline in fitted.items():
            predictions[name] = baseline.predict(part, start)
        for name, (log_probs, point) in predictions.items():
            acc[name].update(log_probs, targets, point, truth)
    return {n: a.result() for n, a in acc.items()}


def evaluate_forecasting(
    model: torch.nn.Module,
    bins: bl.CodeBins,
    *,
    train_codes: Any,
    train_signal: Any,
    test_codes: Any,
    test_signal: Any,
    sfreq: float,
    test_context: dict[str, Any] | None = None,
    config: EvaluateConfig | None = None,
    spec: ModelSpec | None = None,
    realism_codes: Any = None,
    realism_signal: Any = None,
    realism_train_signal: Any = None,
) -> EvaluationResult:
    """Score ``model`` and its baselines and controls on held-out windows.

    Parameters
    ----------
    model : nn.Module
        Autoregressive over codes: ``model(x (B, C, T), **context).logits`` (B, C, T, V).
    bins : CodeBins
        The code values of the tokenizer (``CodeBins.from_tokenizer``).
    train_codes, train_signal : arrays, shape (N, C, T)
        Train windows (codes and the signal they encode): the baselines are fitted on these.
    test_codes, test_signal : arrays, shape (M, C, T)
        Held-out windows scored.
    sfreq : float
        Sampling frequency (Hz).
    test_context : dict of str to Tensor, optional
        Per-window model inputs with first axis M (``channel_ids``, ``subject``, ``condition``).
    config : EvaluateConfig, optional
    spec : ModelSpec, optional
        The model's spec (default: its registered one).
    realism_codes, realism_signal : arrays, shape (M', C, L), optional
        Held-out real windows of ``L`` samples (``config.realism_seconds``) the realism suite
        compares continuations of ``L`` samples with (default: ``test_codes`` / ``test_signal``).
    realism_train_signal : array, shape (N', C, L), optional
        Real train windows of ``L`` samples: the real-vs-real reference (default:
        ``train_signal``).
    """
    cfg = config or EvaluateConfig()
    spec = spec or model_spec(model)
    train_codes, test_codes = _as_numpy(train_codes), _as_numpy(test_codes)
    train_signal = _as_numpy(train_signal).astype(np.float64)
    test_signal = _as_numpy(test_signal).astype(np.float64)
    context = dict(test_context or {})
    n_win, n_chans, n_times = test_codes.shape
    start = cfg.score_start if cfg.score_start is not None else cfg.ar_order
    if not cfg.ar_order <= start < n_times:
        raise ValueError(f"score_start={start} must lie in [ar_order={cfg.ar_order}, {n_times})")
    fitted = {
        "last_value": bl.LastValue(bins).fit(train_codes),
        "linear_ar": bl.LinearAR(bins, order=cfg.ar_order).fit(train_codes),
        "unigram": bl.Unigram(bins).fit(train_codes),
    }
    log.info("scoring %d held-out windows (%d channels x %d samples)", n_win, n_chans, n_times)
    one_step = _one_step(model, bins, fitted, test_codes, test_signal, context, cfg, start, spec)

    # rollouts from the same contexts
    n_ctx = cfg.rollout_context or n_times // 2
    horizon = n_times - n_ctx
    if not cfg.ar_order <= n_ctx < n_times:
        raise ValueError(f"rollout_context={n_ctx} must lie in [ar_order, window length {n_times})")
    idx = np.arange(min(cfg.rollout_windows, n_win))
    sampler = ModelPredictor(
        model,
        bins,
        context=_slice(context, idx),
        n_samples=cfg.rollout_samples,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        seed=cfg.seed,
        spec=spec,
    )
    curves = rollout_curves(
        {"model": sampler, **fitted},
        test_codes[idx],
        test_signal[idx],
        context=n_ctx,
        horizon=horizon,
    )

    # continuations of held-out prompts for the realism suite, as long as the real windows they
    # are compared with; flags are calibrated on real held-out vs real train windows
    real_long = test_signal if realism_signal is None else _as_numpy(realism_signal)
    real_long = real_long.astype(np.float64)
    codes_long = test_codes if realism_codes is None else _as_numpy(realism_codes)
    train_long = train_signal if realism_train_signal is None else _as_numpy(realism_train_signal)
    n_real = real_long.shape[-1]
    gen_idx = evenly(n_win, cfg.realism_windows)
    gen = ModelPredictor(
        model,
        bins,
        context=_slice(context, gen_idx),
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        seed=cfg.seed,
        spec=spec,
    )
    generated = bins.decode(gen.sample(test_codes[gen_idx, :, :n_ctx], n_real))
    ar = fitted["linear_ar"]
    ar_cont = ar.simulate(bins.decode(test_codes[gen_idx, :, :n_ctx]), n_real, seed=cfg.seed)
    real_test = test_signal[..., n_ctx:]
    # too few train windows for two disjoint reference sets: fixed thresholds (the report says so)
    enough = len(train_long) >= 2 * len(gen_idx)
    compare = {
        "reference": train_long.astype(np.float64) if enough else None,
        "n_reference_splits": cfg.realism_reference_splits,
        "n_permutations": cfg.realism_permutations,
        "seed": cfg.seed,
    }
    realism_scores = {
        "generated": realism.compare(real_long, generated, sfreq, **compare),
        "linear_ar_samples": realism.compare(real_long, ar_cont, sfreq, **compare),
        "tokenizer_roundtrip": realism.compare(
            real_long, bins.decode(codes_long)[: len(gen_idx)], sfreq, **compare
        ),
    }

    # drift of long rollouts (past the model's max_seq_len the generation context slides);
    # per-time context (condition) is known over the window only, not past its end
    per_time = [name for name in spec.context if CONTEXT_FIELDS[name] == "time"]
    if any(name in context for name in per_time):
        drift: dict[str, Any] = {
            "skipped": f"no drift check: the model reads per-time context "
            f"({', '.join(per_time)}), known over the window only, and drift rollouts run "
            f"{cfg.drift_segments} continuations past its end"
        }
    else:
        n_long = cfg.drift_segments * horizon
        d_idx = gen_idx[: cfg.drift_prompts]
        long_gen = ModelPredictor(
            model,
            bins,
            context=_slice(context, d_idx),
            temperature=cfg.temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            seed=cfg.seed + 1,
            spec=spec,
        )
        prompts = test_codes[d_idx, :, :n_ctx]
        long_model = bins.decode(long_gen.sample(prompts, n_long))
        long_ar = ar.simulate(bins.decode(prompts), n_long, seed=cfg.seed + 1)
        drift = {
            "model": realism.drift(long_model, real_test, sfreq),
            "linear_ar": realism.drift(long_ar, real_test, sfreq),
        }

    report = {
        "task": "forecasting",
        "sfreq": float(sfreq),
        "n_windows": int(n_win),
        "n_train_windows": len(train_codes),
        "n_chans": int(n_chans),
        "window_length": int(n_times),
        "vocab_size": bins.vocab_size,
        "score_start": int(start),
        "settings": asdict(cfg),
        "one_step": one_step,
        "rollout": {
            "context": int(n_ctx),
            "horizon": int(horizon),
            "seconds": (np.arange(1, horizon + 1) / sfreq).tolist(),
            "n_windows": int(idx.size),
            "curves": curves,
        },
        "realism": realism_scores,
        "drift": drift,
        "definitions": {
            "bits_per_channel_sample": "mean -log2 p(next code) over scored channel-samples",
            "last_value": "last code + train histogram of one-step code jumps (add-one smoothed)",
            "linear_ar": f"per-channel AR({cfg.ar_order}) least squares on train decoded codes; "
            "Gaussian with train residual variance integrated over the code bins",
            "unigram": "train code frequencies, add-one smoothed",
            "control_shuffled_input": "same model, input time-shuffled per window, real targets",
            "control_noise_input": "same model, input uniformly random codes, real targets",
            "realism columns": "generated / AR-sampled continuations of held-out prompts and "
            "the tokenizer round trip of real held-out windows, each against real held-out "
            "windows of the same length, flagged beyond the real-vs-real spread (real held-out "
            "vs disjoint sets of real train windows of the same size)",
        },
    }
    arrays = {
        "real": real_long[: len(gen_idx)],
        "generated": generated,
        "linear_ar_samples": ar_cont,
        "prompt": test_signal[gen_idx, :, :n_ctx],
        "real_reference": real_test,
        "sfreq": float(sfreq),
    }
    return EvaluationResult(report=report, arrays=arrays)


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
    """Evaluate a run of a model over channel codes (:func:`evaluate_forecasting`) and write the
    report (see :func:`~neurofm.evaluation.common.write_run_report`)."""
    from neurofm.training.data import build_dataset

    cfg = config or EvaluateConfig()
    if run.tokenizer is None:
        raise ConfigError(
            f"{run.run_dir}: the run has no tokenizer; a model over channel codes is scored on "
            "the codes of the run's tokenizer"
        )
    test_set, train_set = run.dataset(cfg.split), run.dataset("train")
    test = windows_of(test_set, evenly(len(test_set), cfg.max_windows), run.tokenizer)
    train = windows_of(train_set, evenly(len(train_set), cfg.max_train_windows), run.tokenizer)
    bins = bl.CodeBins.from_tokenizer(run.tokenizer, test["codes"].shape[1])
    sfreq = float(run.store.recordings[0].sfreq)
    # the realism suite compares windows of realism_seconds (longer than training windows)
    long = replace(
        run.data_config, window_length=round(cfg.realism_seconds * sfreq), stride=None, horizon=None
    )
    long_test = build_dataset(run.store, long, cfg.split)
    long_train = build_dataset(run.store, long, "train")
    real_long = windows_of(long_test, evenly(len(long_test), cfg.max_windows), run.tokenizer)
    train_long = windows_of(
        long_train, evenly(len(long_train), cfg.max_train_windows), run.tokenizer
    )
    result = evaluate_forecasting(
        run.model,
        bins,
        train_codes=train["codes"],
        train_signal=train["signal"],
        test_codes=test["codes"],
        test_signal=test["signal"],
        sfreq=sfreq,
        test_context=model_context(run.model, test["batch"]),
        config=cfg,
        realism_codes=real_long["codes"],
        realism_signal=real_long["signal"],
        realism_train_signal=train_long["signal"],
    )
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result


EVALUATIONS: dict[tuple[str, str], Callable[..., EvaluationResult]] = {
    ("channel_codes", "logits"): evaluate_code_forecasting_run,
    ("signal", "prediction"): evaluate_continuous_run,
    ("signal", "class_logits"): evaluate_decoding_run,
}
"""The evaluation of a run by its model spec's ``(inputs, outputs)``: each takes the loaded run
and ``config``, ``out_dir``, ``checkpoint`` keywords, and writes the report."""


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
    from neurofm.training.run import load_run

    cfg = config or EvaluateConfig()
    run = load_run(run_dir, checkpoint=checkpoint)
    spec = model_spec(run.model)
    evaluation = EVALUATIONS.get((spec.inputs, spec.outputs))
    if evaluation is None:
        name = run.config.get("model", {}).get("name", type(run.model).__name__)
        known = "; ".join(f"inputs={i!r}, outputs={o!r}" for i, o in EVALUATIONS)
        raise ConfigError(
            f"{run_dir}: no evaluation for model {name!r} with spec {spec}; "
            f"neurofm evaluate scores models with {known}"
        )
    return evaluation(run, config=cfg, out_dir=out_dir, checkpoint=checkpoint)
