"""Score a denoiser (diffusion over signals, discrete flow over tokens) on held-out windows.

For models whose spec samples by ``diffusion`` or ``flow`` (``ntd``, ``flow_matching``); picked
by :data:`~neurofm.evaluation.evaluate.EVALUATIONS`. On every non-overlapping held-out window
(capped by ``forecast_windows``):

- **forecasting by imputation**: the first half of the window is given, the second half is
  generated (``rollout_samples`` samples averaged into the model's mean forecast, with the
  largest of ``denoising_steps``); its MSE in signal units next to the linear baselines' mean
  forecasts from the same context: last value held, train mean (zero after the store's scaling),
  per-channel AR of the first order of ``ar_orders`` fitted on train by least squares and
  iterated;
- **bits per channel-sample** (diffusion only): the variational bound of
  :mod:`~neurofm.evaluation.diffusion_bound` on the code bins of a ``code_levels`` mu-law
  tokenizer fitted on train, the bins of the other families' bits. The flow model reports none:
  no tractable bound is computed for it (``bits_unavailable`` says so);
- **realism**: mean absolute difference of log10 Welch PSDs between unconditional samples and the
  held-out windows, next to the same distance between real train and held-out windows;
- **quality against steps**: the forecast MSE with each number of ``denoising_steps``
  (``steps_quality.png``).
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
    forecast_windows,
    write_run_report,
)
from neurofm.evaluation.diffusion_bound import bound_bits
from neurofm.registry import TOKENIZERS, create, model_spec


def _signals(dataset: Any, indices: np.ndarray) -> np.ndarray:
    from neurofm.data.collate import collate

    return collate([dataset[int(i)] for i in indices]).x.float().numpy()


def _ar_forecast(train: np.ndarray, context: np.ndarray, horizon: int, order: int) -> np.ndarray:
    """Per-channel AR(order) fitted on train windows (B, C, T) by least squares, iterated."""
    n_chans = train.shape[1]
    out = np.empty((*context.shape[:2], horizon))
    for c in range(n_chans):
        series = train[:, c, :]
        rows = np.lib.stride_tricks.sliding_window_view(series, order + 1, axis=-1)
        rows = rows.reshape(-1, order + 1)
        coef, *_ = np.linalg.lstsq(rows[:, :order], rows[:, order], rcond=None)
        history = context[:, c, -order:].copy()
        for h in range(horizon):
            nxt = history[:, -order:] @ coef
            out[:, c, h] = nxt
            history = np.concatenate([history, nxt[:, None]], axis=1)
    return out


def _log_psd(x: np.ndarray, sfreq: float) -> np.ndarray:
    from scipy.signal import welch

    _, power = welch(x, fs=sfreq, nperseg=min(64, x.shape[-1]), axis=-1)
    return np.log10(power.mean(axis=0) + 1e-20)  # (C, F)


class _Sampler:
    """Generate windows (B, C, T) with a denoiser, conditionally or not, in signal units."""

    def __init__(self, run: Any) -> None:
        self.run, self.model = run, run.model
        self.spec = model_spec(run.model)
        self.objective = run.config.get("objective", {})

    def __call__(self, real: np.ndarray, known_steps: int, n_steps: int, seed: int) -> np.ndarray:
        x = torch.as_tensor(real, dtype=torch.float32)
        if self.spec.sampling == "diffusion":
            from neurofm.generation.diffusion import sample_diffusion
            from neurofm.objectives.diffusion import DiffusionConfig

            fields = {k: v for k, v in self.objective.items() if k not in ("name", "preset")}
            schedule = DiffusionConfig(**fields).schedule()
            mask = torch.zeros_like(x)
            mask[..., :known_steps] = 1.0
            conditional = {"observed": x, "mask": mask} if known_steps else {}
            out = sample_diffusion(
                self.model,
                tuple(x.shape),
                n_steps=min(n_steps, schedule.n_train_steps),
                schedule=schedule,
                seed=seed,
                **conditional,
            )
            return out.numpy()
        from neurofm.generation.flow import sample_flow

        tokenizer = self.run.tokenizer
        codes = torch.as_tensor(tokenizer.encode(x).codes)  # (B, L)
        _, time = tokenizer.positions(int(x.shape[1]), int(x.shape[2]))  # (L,) time of each token
        known = (time < known_steps)[None].expand_as(codes)
        out = sample_flow(
            self.model,
            tuple(codes.shape),
            n_steps=n_steps,
            vocab_size=self.model.config.vocab_size,
            scheduler_power=float(self.objective.get("scheduler_power", 1.0)),
            codes=codes if known_steps else None,
            known=known.clone() if known_steps else None,
            seed=seed,
        )
        signal = tokenizer.decode(out)
        signal = signal.numpy() if isinstance(signal, torch.Tensor) else np.asarray(signal)
        return signal.reshape(real.shape)


def evaluate_generative_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a denoiser's run (see the module docstring) and write the report."""
    cfg = config or EvaluateConfig()
    sets = forecast_windows(run, cfg)
    test = _signals(sets["test"], sets["test_index"])
    train = _signals(sets["train"], sets["train_index"])
    sfreq = float(run.store.recordings[0].sfreq)
    sampler = _Sampler(run)
    n_times = test.shape[-1]
    half = n_times // 2
    truth = test[..., half:]
    steps = sorted(cfg.denoising_steps)
    curve = {}
    for n_steps in steps:
        draws = [sampler(test, half, n_steps, cfg.seed + k) for k in range(cfg.rollout_samples)]
        mean = np.mean(draws, axis=0)[..., half:]
        curve[n_steps] = float(np.mean((mean - truth) ** 2))
    order = min(cfg.ar_orders[0], half - 1)
    forecasts = {
        "last_value": np.repeat(test[..., half - 1 : half], n_times - half, axis=-1),
        "train_mean": np.zeros_like(truth),
        "linear_ar": _ar_forecast(train, test[..., :half], n_times - half, order),
    }
    mse = {"model": curve[steps[-1]]}
    mse.update({name: float(np.mean((f - truth) ** 2)) for name, f in forecasts.items()})
    unconditional = sampler(test, 0, steps[-1], cfg.seed)
    real_psd = _log_psd(test, sfreq)
    realism = {
        "model_samples": float(np.abs(_log_psd(unconditional, sfreq) - real_psd).mean()),
        "real_train": float(np.abs(_log_psd(train, sfreq) - real_psd).mean()),
    }
    report: dict[str, Any] = {
        "task": "generative",
        "n_windows": int(len(test)),
        "sfreq": sfreq,
        "sampling": sampler.spec.sampling,
        "forecast_by_imputation_mse": mse,
        "context_samples": half,
        "mse_against_steps": {str(k): v for k, v in curve.items()},
        "realism_log_psd_distance": realism,
        "windows": sets["info"],
    }
    if sampler.spec.sampling == "diffusion":
        report["bits_per_channel_sample"] = _diffusion_bits(run, sampler, test, train, cfg)
    else:
        report["bits_unavailable"] = (
            "discrete flow matching: no tractable likelihood bound is computed; scores are "
            "forecasting by imputation and realism"
        )
    result = EvaluationResult(report=report, arrays={})
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result


def _diffusion_bits(
    run: Any, sampler: _Sampler, test: np.ndarray, train: np.ndarray, cfg: EvaluateConfig
) -> float:
    from neurofm.objectives.diffusion import DiffusionConfig

    fields = {k: v for k, v in sampler.objective.items() if k not in ("name", "preset")}
    schedule = DiffusionConfig(**fields).schedule()
    tokenizer = create(TOKENIZERS, {"name": "mulaw", "n_levels": cfg.code_levels}).fit(train)
    bins = bl.CodeBins.from_bin_bounds(tokenizer, test.shape[1])
    codes = np.asarray(tokenizer.encode(torch.as_tensor(test)).codes)
    rows = np.arange(test.shape[1])[None, :, None]
    lower = torch.as_tensor(bins.edges[rows, codes])
    upper = torch.as_tensor(bins.edges[rows, codes + 1])
    model = run.model.eval()
    gen = torch.Generator().manual_seed(cfg.seed)
    bits = bound_bits(
        lambda t, xt: model(t, xt).prediction,
        torch.as_tensor(test),
        lower,
        upper,
        schedule,
        n_bound_steps=cfg.bound_steps,
        generator=gen,
    )
    return float(bits.mean())
