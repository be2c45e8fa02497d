"""Score a continuous forecaster next to its baselines and controls, on the same held-out windows.

For models whose spec reads a float signal and outputs a ``prediction`` of it (``conv_forecaster``):
the prediction at time ``t`` is the forecast of the sample at ``t + 1`` from samples ``<= t``.
:func:`evaluate_continuous` works on arrays and a model; :func:`evaluate_continuous_run` on a run
folder (``neurofm evaluate`` picks it by the model's spec).

What is compared, all on the same windows and the same scored positions (targets
``x[..., score_start:]``, so every predictor has a full context):

- one step ahead, on every non-overlapping held-out window with 95% block-bootstrap intervals:
  the model; the baselines ``last_value`` (the last sample), ``linear_ar`` (per-channel AR) and
  ``ridge_var`` (multichannel ridge VAR), fitted on the train signal with their sizes chosen on
  validation, ``bigram`` and ``unigram`` (train code statistics) and ``uniform`` (every code
  alike, bits only); and the controls, the same model reading another window's real input
  (mismatched context) and only the last ``k`` samples (truncated context), scored against the
  real next samples. Scores: forecast MSE and pooled R²
  (see :mod:`~neurofm.evaluation.metrics`), and bits per channel-sample where the predictor gives
  a distribution;
- rollouts: error against horizon of multi-step mean forecasts from the same contexts: the model
  fed its own mean forecast back (deterministic), next to the AR's iterated mean forecast, the
  last value held and the unigram mean.

Bits per channel-sample on the token models' code bins
------------------------------------------------------
A continuous density has no code length of its own (its differential entropy shifts with the
signal's units), so the model's Gaussian is scored on the **same code bins as the token models**:
a mu-law tokenizer with ``code_levels`` levels (the 256-level ``mulaw`` of the token models'
configs) is fitted on the train windows, and each target sample's code is the one that tokenizer
gives it. Bin ``k`` of channel ``c`` is the interval of signal values the tokenizer encodes as
``k`` (:meth:`~neurofm.evaluation.baselines.CodeBins.from_bin_bounds`; the outer bins reach to
-inf and +inf, as clipped samples take the end codes). The model's predictive distribution over
the codes is its Gaussian ``N(mu, sigma²)`` integrated over each bin in signal space,
``P(k) = Phi((e_{k+1} - mu) / sigma) - Phi((e_k - mu) / sigma)`` with ``sigma² =
exp(log_variance)`` (clamped below at the objective's ``min_log_variance``), floored at 1e-12 and
renormalised; bits per channel-sample are the mean of ``-log2 P(bin containing the target)`` —
a true code length, on the scale of a token model's bits over the same 256 codes (which reads
quantised inputs, where this model reads the continuous past). The linear AR's Gaussian is
discretised on the same bins; last value and unigram are the code-level baselines of
:mod:`~neurofm.evaluation.baselines` on the same codes. A model whose spec has no ``variance``
predicts a mean only: its bits are reported as not available (``bits_unavailable`` says why) and
MSE / R² still are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.evaluation import baselines as bl
from neurofm.evaluation.common import (
    EvaluateConfig,
    EvaluationResult,
    add_intervals,
    control_steps,
    default_start,
    evenly,
    forecast_windows,
    mismatched_partner,
    score_sections,
    split_validation,
    write_run_report,
)
from neurofm.evaluation.linear import RidgeVAR, fit_linear_baselines
from neurofm.evaluation.metrics import ForecastAccumulator, _as_numpy, rollout_error
from neurofm.logging import get_logger
from neurofm.registry import TOKENIZERS, create, model_spec
from neurofm.types import CONTEXT_FIELDS, ModelSpec

log = get_logger("evaluation")

DEFAULT_MIN_LOG_VARIANCE = -12.0
"""Lower clamp of the predicted log-variance (the ``forecast`` objective's default)."""


def _device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return torch.device("cpu") if param is None else param.device


def _model_kwargs(
    spec: ModelSpec, context: dict[str, Any], start: int, stop: int, device: torch.device
) -> dict[str, Any]:
    """The model's context inputs for time steps ``start .. stop - 1``, on ``device``."""
    out = {}
    for name, value in spec.context_of(context, stop=stop).items():
        if CONTEXT_FIELDS[name] == "time":
            value = value[..., start:]
        out[name] = value.to(device) if isinstance(value, torch.Tensor) else value
    return out


@torch.no_grad()
def _forward(
    model: torch.nn.Module, x: np.ndarray, context: dict[str, Any], spec: ModelSpec
) -> Any:
    """``model(x (B, C, T))`` with its context; checks the prediction's shape."""
    device = _device(model)
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    out = model(inputs, **_model_kwargs(spec, context, 0, inputs.shape[-1], device))
    if out.prediction is None or tuple(out.prediction.shape) != tuple(inputs.shape):
        got = None if out.prediction is None else tuple(out.prediction.shape)
        raise ValueError(
            f"the model gives a prediction of shape {got} for inputs {tuple(inputs.shape)}; "
            "a continuous forecaster predicts one value per input sample"
        )
    return out


def model_one_step(
    model: torch.nn.Module,
    x: np.ndarray,
    start: int,
    *,
    context: dict[str, Any] | None = None,
    spec: ModelSpec,
    min_log_variance: float = DEFAULT_MIN_LOG_VARIANCE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's forecasts of ``x[..., start:]`` from ``x (B, C, T)``: means (B, C, T - start)
    and standard deviations (same shape; None when the spec has no variance)."""
    out = _forward(model, x, context or {}, spec)
    mean = out.prediction[..., start - 1 : -1].double().cpu().numpy()
    if not spec.variance:
        return mean, None
    log_variance = out.extras.get("log_variance")
    if log_variance is None:
        raise ValueError("the model's spec has variance=True but it returns no log_variance")
    log_variance = log_variance[..., start - 1 : -1].double().clamp_min(min_log_variance)
    return mean, torch.exp(0.5 * log_variance).cpu().numpy()


@torch.no_grad()
def model_rollout(
    model: torch.nn.Module,
    prompt: np.ndarray,
    horizon: int,
    *,
    context: dict[str, Any] | None = None,
    spec: ModelSpec,
) -> np.ndarray:
    """Deterministic rollout ``(B, C, horizon)``: the mean forecast after ``prompt (B, C, L)``
    appended and fed back, step by step (past ``spec.max_seq_len`` the input window slides)."""
    device = _device(model)
    x = torch.from_numpy(np.ascontiguousarray(prompt, dtype=np.float32)).to(device)
    n_prompt = x.shape[-1]
    for _ in range(horizon):
        stop = x.shape[-1]
        lo = 0 if spec.max_seq_len is None else max(0, stop - spec.max_seq_len)
        out = model(x[..., lo:], **_model_kwargs(spec, context or {}, lo, stop, device))
        x = torch.cat([x, out.prediction[..., -1:].to(x.dtype)], dim=-1)
    return x[..., n_prompt:].double().cpu().numpy()


def truncated_one_step(
    model: torch.nn.Module,
    x: np.ndarray,
    start: int,
    steps: int,
    *,
    context: dict[str, Any],
    spec: ModelSpec,
    min_log_variance: float,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`model_one_step` with each target at ``t`` forecast from ``x[..., t-steps:t]`` only
    (windows of ``steps + 1`` samples; a causal model never reads the last)."""
    b, c, n_times = x.shape
    n_pos = n_times - start
    cut = np.lib.stride_tricks.sliding_window_view(x[..., start - steps :], steps + 1, -1)
    cut = cut.transpose(0, 2, 1, 3).reshape(b * n_pos, c, steps + 1)
    if any(CONTEXT_FIELDS[name] == "time" for name in spec.context_of(context)):
        raise ValueError("truncated-context control: per-time context is not supported here")
    repeated = {k: v.repeat_interleave(n_pos, dim=0) for k, v in spec.context_of(context).items()}
    mean, std = model_one_step(
        model, cut, steps, context=repeated, spec=spec, min_log_variance=min_log_variance
    )
    back = lambda a: a.reshape(b, n_pos, c).transpose(0, 2, 1)  # noqa: E731
    return back(mean), None if std is None else back(std)


def _slice(context: dict[str, Any], index: Any) -> dict[str, Any]:
    return {k: v[index] for k, v in context.items()}


def evaluate_continuous(
    model: torch.nn.Module,
    *,
    train_signal: Any,
    test_signal: Any,
    sfreq: float,
    test_context: dict[str, Any] | None = None,
    val_signal: Any = None,
    config: EvaluateConfig | None = None,
    spec: ModelSpec | None = None,
    min_log_variance: float = DEFAULT_MIN_LOG_VARIANCE,
    windows: dict[str, Any] | None = None,
) -> EvaluationResult:
    """Score a continuous forecaster and its baselines and controls on held-out windows.

    Parameters
    ----------
    model : nn.Module
        ``model(x (B, C, T) float, **context).prediction`` (B, C, T): at ``t`` the forecast of
        ``x[..., t + 1]``; with ``spec.variance``, ``extras["log_variance"]`` as well.
    train_signal : array, shape (N, C, T)
        Train windows, in the units the model reads: the baselines and the code bins are fitted
        on these.
    test_signal : array, shape (M, C, T)
        Held-out windows scored.
    sfreq : float
        Sampling frequency (Hz).
    test_context : dict of str to Tensor, optional
        Per-window model inputs with first axis M.
    config : EvaluateConfig, optional
        ``max_windows`` etc. are applied by the caller; used here: ``batch_size``, ``ar_order``,
        ``score_start``, ``rollout_windows``, ``rollout_context``, ``code_levels``, ``seed``.
    spec : ModelSpec, optional
        The model's spec (default: its registered one).
    min_log_variance : float
        Lower clamp of the predicted log-variance, as in training.
    val_signal : array, shape (K, C, T), optional
        Validation windows the baselines' sizes are chosen on (default: a tail of train).
    windows : dict, optional
        How the windows were chosen (counts, caps), copied into the report.
    """
    cfg = config or EvaluateConfig()
    spec = spec or model_spec(model)
    train = _as_numpy(train_signal).astype(np.float64)
    test = _as_numpy(test_signal).astype(np.float64)
    context = dict(test_context or {})
    n_win, n_chans, n_times = test.shape
    start = default_start(n_times, cfg)
    n_ctx = cfg.rollout_context or n_times // 2

    tokenizer = create(TOKENIZERS, {"name": "mulaw", "n_levels": cfg.code_levels}).fit(train)
    bins = bl.CodeBins.from_bin_bounds(tokenizer, n_chans)
    encode = lambda x: _as_numpy(tokenizer.encode(torch.from_numpy(x)).codes)  # noqa: E731
    train_codes = encode(train)
    encoded_test = tokenizer.encode(torch.from_numpy(test))
    test_codes = _as_numpy(encoded_test.codes)
    val = None if val_signal is None else _as_numpy(val_signal).astype(np.float64)
    (fit_values,), (val_values,), source = split_validation(
        [train], None if val is None else [val], cfg.val_windows
    )
    linear, selection = fit_linear_baselines(
        bins,
        train_values=fit_values,
        val_values=val_values,
        val_codes=encode(val_values),
        start=start,
        ar_orders=cfg.ar_orders,
        var_lags=cfg.var_lags,
        var_ridges=cfg.var_ridges,
    )
    ar, var = linear["linear_ar"], linear["ridge_var"]
    if len(fit_values) != len(train):  # chosen on a tail of train: refit on all of it
        ar = bl.LinearAR(bins, order=ar.order).fit_signal(train)
        var = RidgeVAR(bins, lags=var.lags, ridge=var.ridge).fit_signal(train)
    selection["validation"] = source
    if not max(ar.order, var.lags) <= n_ctx < n_times:
        raise ValueError(
            f"rollout_context={n_ctx} must lie in [the chosen AR order / VAR lags, "
            f"window length {n_times})"
        )
    code_level = {
        "last_value": bl.LastValue(bins).fit(train_codes),
        "bigram": bl.Bigram(bins).fit(train_codes),
        "unigram": bl.Unigram(bins).fit(train_codes),
        "uniform": bl.Uniform(bins),
    }

    log.info("scoring %d held-out windows (%d channels x %d samples)", n_win, n_chans, n_times)
    steps = control_steps(cfg, start)
    controls = ["control_mismatched_context"] if n_win > 1 else []
    controls += [f"control_context_{k}" for k in steps]
    names = ["model", "last_value", "linear_ar", "ridge_var", "bigram", "unigram", "uniform"]
    acc = {n: ForecastAccumulator(n_chans) for n in names + controls}
    partner = mismatched_partner(n_win)
    one = {"spec": spec, "min_log_variance": min_log_variance}
    for lo in range(0, n_win, cfg.batch_size):
        x, codes = test[lo : lo + cfg.batch_size], test_codes[lo : lo + cfg.batch_size]
        hi = lo + len(x)
        part = _slice(context, slice(lo, hi))
        targets, truth = codes[..., start:], x[..., start:]
        forecasts = {"model": model_one_step(model, x, start, context=part, **one)}
        if controls and controls[0] == "control_mismatched_context":
            forecasts["control_mismatched_context"] = model_one_step(
                model, test[partner[lo:hi]], start, context=part, **one
            )
        for k in steps:
            forecasts[f"control_context_{k}"] = truncated_one_step(
                model, x, start, k, context=part, **one
            )
        for name, (mean, std) in forecasts.items():
            log_probs = None if std is None else bins.discretised_gaussian(mean, std)
            point = None if name.startswith("control_context") else mean
            acc[name].update(log_probs, targets, point, truth)
        for name, baseline in {"linear_ar": ar, "ridge_var": var}.items():
            log_probs, point = baseline.predict_signal(x, start)
            acc[name].update(log_probs, targets, point, truth)
        for name, baseline in code_level.items():
            log_probs, point = baseline.predict(codes, start)
            point = x[..., start - 1 : -1] if name == "last_value" else point
            acc[name].update(log_probs, targets, point, truth)
    one_step = {n: a.result() for n, a in acc.items()}
    per_window = {n: a.window_bits() for n, a in acc.items()}
    bootstrap = add_intervals(one_step, per_window, cfg)

    horizon = n_times - n_ctx
    idx = evenly(n_win, cfg.rollout_windows)
    prompts, truth = test[idx, :, :n_ctx], test[idx, :, n_ctx:]
    forecasts = {
        "model": model_rollout(model, prompts, horizon, context=_slice(context, idx), spec=spec),
        "last_value": np.repeat(prompts[..., -1:], horizon, axis=-1),
        "linear_ar": ar.forecast_signal(prompts, horizon),
        "ridge_var": var.forecast_signal(prompts, horizon),
        "bigram": code_level["bigram"].forecast(test_codes[idx, :, :n_ctx], horizon),
        "unigram": code_level["unigram"].forecast(test_codes[idx, :, :n_ctx], horizon),
    }
    curves = {name: rollout_error(f, truth) for name, f in forecasts.items()}

    bits_unavailable = None
    if not spec.variance:
        name = getattr(model, "registry_name", None) or type(model).__name__
        hint = (
            "train it with model.predict_variance: true and objective.loss: gaussian_nll for bits"
            if hasattr(getattr(model, "config", None), "predict_variance")
            else f"{name} has no variance head; a forecaster with one (conv_forecaster with "
            "model.predict_variance: true, objective.loss: gaussian_nll) gives bits"
        )
        bits_unavailable = (
            "the model's spec has variance=False: it predicts a mean only, and without a "
            f"distribution over the next sample there is no code length ({hint})"
        )
    report = {
        "task": "continuous_forecasting",
        "sfreq": float(sfreq),
        "n_windows": int(n_win),
        "n_train_windows": len(train),
        "n_chans": int(n_chans),
        "window_length": int(n_times),
        "score_start": int(start),
        "variance": bool(spec.variance),
        "bits_unavailable": bits_unavailable,
        "code_bins": {
            "tokenizer": "mulaw",
            "n_levels": bins.vocab_size,
            "fitted_on": "the train windows scored by the baselines",
            "n_clipped_test": int(encoded_test.n_clipped),
        },
        **score_sections(
            cfg,
            windows=windows,
            n_scored=n_win,
            n_train=len(train),
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
            "curves": curves,
        },
        "definitions": {
            "bits_per_channel_sample": f"mean -log2 P(code bin of the next sample): the "
            f"predictor's distribution over the bins of a {bins.vocab_size}-level mu-law "
            "tokenizer fitted on train (Gaussians integrated over each bin in signal space)",
            "mse / r2": "one-step mean forecast against the next sample, in the units the model "
            "reads; R² pooled over channels, each centred on its own mean",
            "last_value": "point: the last sample; bits: last code + train histogram of one-step "
            "code jumps (add-one smoothed)",
            "linear_ar": f"per-channel AR({ar.order}) least squares on the train signal (order "
            f"chosen on validation among {cfg.ar_orders}); Gaussian with train residual variance "
            "integrated over the code bins",
            "ridge_var": f"ridge VAR over all channels' last {var.lags} samples (lags and ridge "
            f"{var.ridge:g} chosen on validation); Gaussian with train residual variance",
            "bigram": "p(next code | current code), train pair counts, add-one smoothed",
            "unigram": "train code frequencies, add-one smoothed; point: their mean value",
            "uniform": f"every code alike: log2({bins.vocab_size}) bits; no point forecast",
            "control_mismatched_context": "same model forecasting the real targets of window "
            "i from the input of window (i + M/2) mod M (real signal, another time)",
            **{
                f"control_context_{k}": f"same model reading only the last {k} real sample(s) "
                "before each target"
                for k in steps
            },
            "rollout": "mean forecasts fed back step by step (the model's deterministic), "
            "against the real continuation; NMSE = MSE / variance of the real continuation",
        },
    }
    arrays = {"prompt": prompts, "real": truth, "forecast": forecasts["model"]}
    return EvaluationResult(report=report, arrays=arrays)


def evaluate_continuous_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a run of a continuous forecaster (:func:`evaluate_continuous`) and write the
    report (see :func:`~neurofm.evaluation.common.write_run_report`).

    The windows are read as the model was trained on them (the run's data section: store,
    scaling, window length); the log-variance clamp is the run's ``objective.min_log_variance``.
    """
    from neurofm.data.collate import collate

    cfg = config or EvaluateConfig()
    spec = model_spec(run.model)
    sets = forecast_windows(run, cfg)
    take = lambda name: collate([sets[name][int(i)] for i in sets[f"{name}_index"]])  # noqa: E731
    test, train = take("test"), take("train")
    val = None if sets["val"] is None else take("val").x.float()
    objective = run.config.get("objective") or {}
    result = evaluate_continuous(
        run.model,
        train_signal=train.x.float(),
        test_signal=test.x.float(),
        sfreq=float(run.store.recordings[0].sfreq),
        test_context=spec.context_of(test.context),
        config=cfg,
        spec=spec,
        min_log_variance=float(objective.get("min_log_variance", DEFAULT_MIN_LOG_VARIANCE)),
        val_signal=val,
        windows=sets["info"],
    )
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result
