"""Score a forecasting model over codes next to its baselines and controls, on the same held-out
windows (arrays and a model: no run folder needed; :mod:`neurofm.evaluation.evaluate` runs it on a
run folder).

What is compared, all on the same windows and the same scored positions (targets
``codes[..., score_start:]``, so every predictor has a full context), on every non-overlapping
held-out window, with 95% block-bootstrap intervals over windows (paired for differences):

- one step ahead: the model; the baselines fitted on train (last value, per-channel linear AR and
  multichannel ridge VAR with their sizes chosen on validation, bigram, unigram, uniform); and
  the controls: the same model reading another window's real input (mismatched context) and
  reading only the last ``k`` real codes before each target (truncated context), scored against
  the real codes (see ``docs/evaluation.md`` for what each rules out);
- rollouts: error against horizon of multi-step mean forecasts from the same contexts;
- realism: continuations of held-out prompts compared with the real continuations, next to the
  linear AR's sampled continuations, the tokenizer round trip of the real signal, and real train
  windows (the real-vs-real reference); drift of long rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from neurofm.evaluation import baselines as bl
from neurofm.evaluation import realism
from neurofm.evaluation.code_baselines import code_baselines
from neurofm.evaluation.common import (
    EvaluateConfig,
    EvaluationResult,
    add_intervals,
    control_steps,
    default_start,
    evenly,
    mismatched_partner,
    score_sections,
)
from neurofm.evaluation.metrics import ForecastAccumulator, _as_numpy
from neurofm.evaluation.rollout import FlatPredictor, ModelPredictor, rollout_curves
from neurofm.logging import get_logger
from neurofm.registry import model_spec
from neurofm.types import CONTEXT_FIELDS, ModelSpec

log = get_logger("evaluation")


def _slice(context: dict[str, Any], index: np.ndarray | slice) -> dict[str, Any]:
    return {k: v[index] for k, v in context.items()}


def _one_step(
    make_predictor: Callable[..., ModelPredictor],
    fitted: dict[str, Any],
    codes: np.ndarray,
    signal: np.ndarray,
    context: dict[str, Any],
    cfg: EvaluateConfig,
    start: int,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    steps = control_steps(cfg, start)
    controls = ["control_mismatched_context"] if len(codes) > 1 else []
    controls += [f"control_context_{k}" for k in steps]
    names = ["model", *fitted, *controls]
    acc = {n: ForecastAccumulator(codes.shape[1]) for n in names}
    partner = mismatched_partner(len(codes))
    for lo in range(0, len(codes), cfg.batch_size):
        part, truth = codes[lo : lo + cfg.batch_size], signal[lo : lo + cfg.batch_size, :, start:]
        hi = lo + len(part)
        predictor = make_predictor(context=_slice(context, slice(lo, hi)))
        targets = part[..., start:]
        predictions = {"model": predictor.predict(part, start)}
        for name, baseline in fitted.items():
            predictions[name] = baseline.predict(part, start)
        if "control_mismatched_context" in acc:
            other = codes[partner[lo:hi]]
            predictions["control_mismatched_context"] = predictor.predict(part, start, inputs=other)
        for name, (log_probs, point) in predictions.items():
            acc[name].update(log_probs, targets, point, truth)
        every = cfg.control_stride
        for k in steps:
            acc[f"control_context_{k}"].update(
                predictor.truncated_log_probs(part, start, k, stride=every),
                part[..., start::every],
                None,
                truth[..., ::every],
            )
    per_window = {n: a.window_bits() for n, a in acc.items()}
    return {n: a.result() for n, a in acc.items()}, per_window


def evaluate_forecasting(
    model: torch.nn.Module,
    bins: bl.CodeBins,
    *,
    train_codes: Any,
    train_signal: Any,
    test_codes: Any,
    test_signal: Any,
    sfreq: float,
    val_codes: Any = None,
    test_context: dict[str, Any] | None = None,
    config: EvaluateConfig | None = None,
    spec: ModelSpec | None = None,
    layout: Any = None,
    windows: dict[str, Any] | None = None,
    realism_codes: Any = None,
    realism_signal: Any = None,
    realism_train_signal: Any = None,
) -> EvaluationResult:
    """Score ``model`` and its baselines and controls on held-out windows.

    Parameters
    ----------
    model : nn.Module
        Autoregressive over codes: ``model(x (B, C, T), **context).logits`` (B, C, T, V); or,
        with ``layout``, over one flat token sequence ``model(tokens (B, C * T)).logits``.
    bins : CodeBins
        The code values of the tokenizer (``CodeBins.from_tokenizer``).
    train_codes, train_signal : arrays, shape (N, C, T)
        Train windows (codes and the signal they encode): the baselines are fitted on these.
    test_codes, test_signal : arrays, shape (M, C, T)
        Held-out windows scored, in time order (the bootstrap resamples blocks of neighbours).
    sfreq : float
        Sampling frequency (Hz).
    val_codes : array, shape (K, C, T), optional
        Validation windows the baselines' sizes are chosen on (default: a tail of train).
    test_context : dict of str to Tensor, optional
        Per-window model inputs with first axis M (``channel_ids``, ``subject``, ``condition``).
    config : EvaluateConfig, optional
    spec : ModelSpec, optional
        The model's spec (default: its registered one).
    layout : flat tokenizer, optional
        For a model over a flat token sequence: the tokenizer whose ``positions`` lay the
        sequence onto ``(channel, time)`` (:class:`~neurofm.evaluation.rollout.FlatPredictor`).
    windows : dict, optional
        How the windows were chosen (counts, caps), copied into the report.
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
    val_codes = None if val_codes is None else _as_numpy(val_codes)
    context = dict(test_context or {})
    n_win, n_chans, n_times = test_codes.shape
    start = default_start(n_times, cfg)

    def make_predictor(**kwargs: Any) -> ModelPredictor:
        kwargs.setdefault("spec", spec)
        if layout is None:
            return ModelPredictor(model, bins, **kwargs)
        return FlatPredictor(model, bins, layout=layout, **kwargs)

    fitted, selection = code_baselines(bins, train_codes, val_codes, start, cfg)
    log.info("scoring %d held-out windows (%d channels x %d samples)", n_win, n_chans, n_times)
    one_step, per_window = _one_step(
        make_predictor, fitted, test_codes, test_signal, context, cfg, start
    )
    bootstrap = add_intervals(one_step, per_window, cfg)

    # rollouts from the same contexts
    n_ctx = cfg.rollout_context or n_times // 2
    horizon = n_times - n_ctx
    ar = fitted["linear_ar"]
    longest = max(ar.order, fitted["ridge_var"].lags)
    if not longest <= n_ctx < n_times:
        raise ValueError(
            f"rollout_context={n_ctx} must lie in [{longest} (the chosen AR order / VAR lags), "
            f"window length {n_times})"
        )
    idx = evenly(n_win, cfg.rollout_windows)
    sampling = {"temperature": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p}
    if cfg.channel_copula:  # innovations of the train signal, in the units the bins decode to
        from neurofm.generation.copula import ChannelCopula

        sampling["copula"] = ChannelCopula.fit(list(train_signal))
    sampler = make_predictor(
        context=_slice(context, idx), n_samples=cfg.rollout_samples, seed=cfg.seed, **sampling
    )
    forecasters = {name: f for name, f in fitted.items() if name != "uniform"}
    curves = rollout_curves(
        {"model": sampler, **forecasters},
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
    # per-time context (condition) is known over the window only: continuations of n_real
    # samples past the prompt cannot be generated for a model that reads it
    per_time = [name for name in spec.context if CONTEXT_FIELDS[name] == "time"]
    needs_future = any(name in context for name in per_time) and n_ctx + n_real > n_times
    generated = None
    if not needs_future:
        gen = make_predictor(context=_slice(context, gen_idx), seed=cfg.seed, **sampling)
        generated = bins.decode(gen.sample(test_codes[gen_idx, :, :n_ctx], n_real))
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
        "generated": {
            "skipped": f"the model reads per-time context ({', '.join(per_time)}), known "
            "over the window only; continuations would run past its end"
        }
        if generated is None
        else realism.compare(real_long, generated, sfreq, **compare),
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
        long_gen = make_predictor(context=_slice(context, d_idx), seed=cfg.seed + 1, **sampling)
        prompts = test_codes[d_idx, :, :n_ctx]
        long_model = bins.decode(long_gen.sample(prompts, n_long))
        long_ar = ar.simulate(bins.decode(prompts), n_long, seed=cfg.seed + 1)
        drift = {
            "model": realism.drift(long_model, real_test, sfreq),
            "linear_ar": realism.drift(long_ar, real_test, sfreq),
        }

    steps = control_steps(cfg, start)
    var = fitted["ridge_var"]
    report = {
        "task": "forecasting",
        "sfreq": float(sfreq),
        "n_windows": int(n_win),
        "n_train_windows": len(train_codes),
        "n_chans": int(n_chans),
        "window_length": int(n_times),
        "vocab_size": bins.vocab_size,
        "score_start": int(start),
        **score_sections(
            cfg,
            windows=windows,
            n_scored=n_win,
            n_train=len(train_codes),
            one_step=one_step,
            bootstrap=bootstrap,
            selection=selection,
            per_window=per_window,
        ),
        "rollout": {
            "context": int(n_ctx),
            "horizon": int(horizon),
            "seconds": (np.arange(1, horizon + 1) / sfreq).tolist(),
            "n_windows": int(idx.size),
            "model_samples": int(cfg.rollout_samples),
            "curves": curves,
        },
        "realism": realism_scores,
        "realism_windows": {"held_out": len(real_long), "generated": int(gen_idx.size)},
        "drift": drift,
        "definitions": {
            **DEFINITIONS,
            "linear_ar": f"per-channel AR({ar.order}) least squares on train decoded codes (order "
            f"chosen on validation among {cfg.ar_orders}); Gaussian with train residual variance "
            "integrated over the code bins",
            "ridge_var": f"ridge VAR over all {n_chans} channels' last {var.lags} decoded code "
            f"values (lags and ridge {var.ridge:g} chosen on validation); Gaussian with train "
            "residual variance per channel integrated over the code bins",
            **{
                f"control_context_{k}": f"same model reading only the last {k} real code(s) "
                f"before each target (a window of k + 1 codes); every {cfg.control_stride}"
                "th target position of each window is scored"
                for k in steps
            },
            "flat layout": None
            if layout is None
            else "the model reads one flat token sequence; each code is predicted from every "
            "code before it in the tokenizer's order (order='time': the earlier time steps and "
            "the channels before it at the same time step)",
            "rollout": f"model: exact mean of its predictive distribution at step 1, then the "
            f"mean of {cfg.rollout_samples} sampled continuations; baselines: exact iterated "
            "means; NMSE = MSE / variance of the real continuation",
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


DEFINITIONS = {
    "bits_per_channel_sample": "mean -log2 p(next code) over scored channel-samples (every "
    "window from score_start on); bits_interval: 95% block-bootstrap interval over windows",
    "last_value": "last code + train histogram of one-step code jumps (add-one smoothed)",
    "bigram": "p(next code | current code) from train pair counts over all channels, add-one "
    "smoothed",
    "unigram": "train code frequencies, add-one smoothed",
    "uniform": "every code alike: log2 V bits (chance)",
    "control_mismatched_context": "same model scoring the real targets of window i from the "
    "input of window (i + M/2) mod M: real signal from another time (how much the model uses "
    "the actual history rather than generic statistics)",
    "realism columns": "generated / AR-sampled continuations, tokenizer round trip and "
    "real train windows, each against the real held-out continuations",
}
