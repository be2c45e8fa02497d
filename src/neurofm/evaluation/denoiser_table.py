"""The scores of a denoiser next to the code models' baselines, on the same windows and bins.

Used by :mod:`~neurofm.evaluation.generative`. Every score is computed per held-out window (in
time order) so that the 95% moving-block bootstrap of :mod:`~neurofm.evaluation.intervals` gives
intervals and paired model-minus-baseline differences:

- **bits per channel-sample of the forecast half**: the denoiser's conditional variational bound
  (:func:`~neurofm.evaluation.diffusion_bound.bound_bits` with the first half known) on the bins
  of a mu-law tokenizer fitted on train, next to the baselines of ``neurofm evaluate`` (last
  value, per-channel linear AR, ridge VAR, bigram, unigram, uniform:
  :func:`~neurofm.evaluation.code_baselines.code_baselines`) scored one step ahead on the same
  positions (the second half of each window) and the same bins. Both are code lengths of the
  second half given the first; the baselines' is exact, the denoiser's an upper bound;
- **forecast MSE by imputation**: per window, the denoiser's mean forecast of the second half
  against the baselines' iterated mean forecasts from the same first half;
- :func:`compare_reports` pairs a denoiser's report with a code model's report on the same
  windows (the same per-window bits), e.g. NTD next to the AR GPT.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neurofm.evaluation import baselines as bl
from neurofm.evaluation.common import EvaluateConfig
from neurofm.evaluation.intervals import bootstrap_intervals
from neurofm.evaluation.metrics import ForecastAccumulator


def table(per_window: dict[str, np.ndarray], cfg: EvaluateConfig) -> dict[str, Any]:
    """Means with 95% block-bootstrap intervals and ``model`` minus each other predictor."""
    return bootstrap_intervals(
        per_window, n_resamples=cfg.n_bootstrap, block=cfg.bootstrap_block, seed=cfg.seed
    )


def baseline_window_bits(
    fitted: dict[str, Any], codes: np.ndarray, signal: np.ndarray, start: int, batch_size: int
) -> dict[str, np.ndarray]:
    """Bits per channel-sample of each fitted baseline on ``codes[..., start:]``, per window.

    Parameters
    ----------
    fitted : dict of name to baseline
        From :func:`~neurofm.evaluation.code_baselines.code_baselines` (``predict(codes,
        start)``).
    codes, signal : arrays, shape (M, C, T)
        Held-out codes and the signal they encode.
    start : int
        First scored position.
    batch_size : int
        Windows per call (bounds the ``(B, C, T, V)`` log-probabilities held at once).
    """
    acc = {name: ForecastAccumulator(codes.shape[1]) for name in fitted}
    for lo in range(0, len(codes), batch_size):
        part = codes[lo : lo + batch_size]
        truth = signal[lo : lo + batch_size, :, start:]
        for name, baseline in fitted.items():
            log_probs, point = baseline.predict(part, start)
            acc[name].update(log_probs, part[..., start:], point, truth)
    return {name: a.window_bits() for name, a in acc.items()}


def code_bin_edges(bins: bl.CodeBins, codes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper edges ``(M, C, T)`` of the bin holding each code (outer bins infinite)."""
    rows = np.arange(codes.shape[1])[None, :, None]
    return torch.as_tensor(bins.edges[rows, codes]), torch.as_tensor(bins.edges[rows, codes + 1])


def diffusion_window_bits(
    model: torch.nn.Module,
    schedule: Any,
    signal: np.ndarray,
    lower: torch.Tensor,
    upper: torch.Tensor,
    *,
    known_steps: int,
    n_bound_steps: int,
    seed: int,
    batch_size: int,
) -> np.ndarray:
    """A diffusion denoiser's bound in bits per channel-sample of each window's unknown samples.

    The first ``known_steps`` samples of every channel are given (0: the whole window is coded,
    unconditionally); returns ``(M,)``: the window's bound summed over its elements divided by its
    unknown elements (see :mod:`~neurofm.evaluation.diffusion_bound`).
    """
    from neurofm.evaluation.diffusion_bound import bound_bits

    model = model.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for lo in range(0, len(signal), batch_size):
        x = torch.as_tensor(signal[lo : lo + batch_size], dtype=torch.float32)
        known = torch.zeros_like(x)
        known[..., :known_steps] = 1.0
        keywords = {"observed": x * known, "mask": known} if known_steps else {}

        def eps(t: torch.Tensor, xt: torch.Tensor, keywords: dict = keywords) -> torch.Tensor:
            return model(t, xt, **keywords).prediction

        bits = bound_bits(
            eps,
            x,
            lower[lo : lo + batch_size],
            upper[lo : lo + batch_size],
            schedule,
            n_bound_steps=n_bound_steps,
            generator=gen,
            known=known if known_steps else None,
        )
        n_unknown = x.shape[1] * (x.shape[2] - known_steps)
        out.append(bits.sum(dim=(1, 2)).numpy() / n_unknown)
    return np.concatenate(out)


def forecast_window_mse(
    model_mean: np.ndarray,
    context: np.ndarray,
    truth: np.ndarray,
    fitted: dict[str, Any],
) -> dict[str, np.ndarray]:
    """MSE per window ``(M,)`` of the model's and the baselines' mean forecasts of ``truth``.

    Parameters
    ----------
    model_mean : array, shape (M, C, H)
        The denoiser's mean forecast (imputation of the unknown part).
    context, truth : arrays, shape (M, C, L) and (M, C, H)
        The given part (signal) and the real continuation.
    fitted : dict
        ``linear_ar`` and ``ridge_var`` of the code baselines (iterated mean forecasts from the
        signal context); ``last_value`` (the last sample held) and ``train_mean`` (zero: the
        store's scaling centres train) need no fit.
    """
    horizon = truth.shape[-1]
    forecasts = {
        "model": model_mean,
        "last_value": np.repeat(context[..., -1:], horizon, axis=-1),
        "train_mean": np.zeros_like(truth),
        "linear_ar": fitted["linear_ar"].forecast_signal(context, horizon),
        "ridge_var": fitted["ridge_var"].forecast_signal(context, horizon),
    }
    return {name: ((f - truth) ** 2).mean(axis=(1, 2)) for name, f in forecasts.items()}


def _same_windows(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[str], np.ndarray | None]:
    """Problems pairing report ``a``'s windows with ``b``'s, and the indices of ``a``'s windows
    among ``b``'s (``b`` may score all of the held-out windows, ``a`` an evenly spaced subset)."""
    from neurofm.evaluation.common import evenly

    problems = []
    wa, wb = a.get("windows", {}), b.get("windows", {})
    for key in ("stride", "test_available"):
        if wa.get(key) != wb.get(key):
            problems.append(f"windows.{key}: {wa.get(key)} vs {wb.get(key)}")
    if a.get("score_start") != b.get("score_start"):
        problems.append(f"score_start: {a.get('score_start')} vs {b.get('score_start')}")
    index = None
    if wa.get("test_used") != wb.get("test_used"):
        if wb.get("test_used") == wb.get("test_available"):
            index = evenly(int(wb["test_used"]), int(wa["test_used"]))
        else:
            problems.append(f"windows.test_used: {wa.get('test_used')} vs {wb.get('test_used')}")
    return problems, index


def compare_reports(
    denoiser: dict[str, Any],
    code_model: dict[str, Any],
    *,
    name: str,
    cfg: EvaluateConfig | None = None,
) -> dict[str, Any]:
    """The denoiser's bits next to a code model's on the same held-out windows.

    Parameters
    ----------
    denoiser : dict
        A diffusion model's report (``neurofm evaluate``, task ``generative``).
    code_model : dict
        A code model's report (task ``forecasting``) on the same store, window length and
        held-out windows, scored from the same position (the second half of each window); when
        it scored all held-out windows and the denoiser an evenly spaced subset
        (``forecast_windows``), the same subset of its windows is taken.
    name : str
        The code model's column name.

    Returns
    -------
    dict
        The bootstrap table (:func:`table`) of the denoiser (``model``), the code model and the
        denoiser report's baselines, and ``code_model_baselines``: the code model's report's own
        baseline means (equal to the denoiser's when both were scored on the same bins).
    """
    cfg = cfg or EvaluateConfig()
    bits = denoiser.get("bits")
    if not isinstance(bits, dict) or "per_window" not in bits:
        raise ValueError("compare_reports: the denoiser report has no per-window bits")
    if code_model.get("task") != "forecasting":
        raise ValueError(
            f"compare_reports: {name!r} is a {code_model.get('task')!r} report, need forecasting"
        )
    problems, index = _same_windows(bits, code_model)
    if problems:
        raise ValueError(
            f"compare_reports: {name!r} was not scored on the denoiser's windows: "
            + "; ".join(problems)
        )
    theirs = {
        k: np.asarray(v)[index] if index is not None else np.asarray(v)
        for k, v in code_model["per_window"]["bits_per_channel_sample"].items()
    }
    per_window = {k: np.asarray(v) for k, v in bits["per_window"].items()}
    per_window[name] = theirs["model"]
    out = table(per_window, cfg)
    out["code_model_baselines"] = {
        k: float(np.mean(v)) for k, v in theirs.items() if k != "model" and k in per_window
    }
    out["code_model_windows"] = "all" if index is None else index.tolist()
    return out
