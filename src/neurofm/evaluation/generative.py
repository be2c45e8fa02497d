"""Score a denoiser (diffusion over signals, discrete flow over tokens) on held-out windows.

For models whose spec samples by ``diffusion`` or ``flow`` (``ntd``, ``flow_matching``); picked
by :data:`~neurofm.evaluation.evaluate.EVALUATIONS`. On every non-overlapping held-out window
(capped by ``forecast_windows``), each score per window with 95% block-bootstrap intervals and
paired model-minus-baseline differences (:mod:`~neurofm.evaluation.denoiser_table`):

- **bits per channel-sample** on the code bins of a ``code_levels`` mu-law tokenizer fitted on
  train (the bins of the other families' bits), scored on the second half of each window given
  the first: the diffusion model's conditional variational bound
  (:mod:`~neurofm.evaluation.diffusion_bound`) next to the baselines of ``neurofm evaluate``
  (last value, linear AR and ridge VAR sized on validation, bigram, unigram, uniform), fitted
  on the same train windows and scored on the same positions; with the bound of the whole
  window (nothing given) besides, on the ``rollout_windows`` forecast windows. The flow model reports none: no tractable bound is computed
  for it (``bits_unavailable`` says so) and the baselines' bits are listed alone;
- **forecasting by imputation** on ``rollout_windows`` evenly spaced windows: the first half is
  given, the second half generated (``rollout_samples`` samples averaged into the model's mean
  forecast, with the largest of ``denoising_steps``); MSE in signal units next to the last value
  held, the train mean (zero after the store's scaling) and the iterated mean forecasts of the
  linear AR and ridge VAR;
- **realism**: ``realism_windows`` unconditional samples against the held-out windows with the
  calibrated suite of :mod:`~neurofm.evaluation.realism` (flags beyond the real-vs-real spread
  of held-out vs disjoint sets of real train windows), as the code models' continuations are;
- **quality against steps**: the forecast MSE with each number of ``denoising_steps``
  (``steps_quality.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.evaluation import baselines as bl
from neurofm.evaluation import denoiser_table as dt
from neurofm.evaluation import realism
from neurofm.evaluation.code_baselines import code_baselines
from neurofm.evaluation.common import (
    EvaluateConfig,
    EvaluationResult,
    evenly,
    forecast_windows,
    write_run_report,
)
from neurofm.registry import TOKENIZERS, create, model_spec


def _signals(dataset: Any, indices: np.ndarray) -> np.ndarray:
    from neurofm.data.collate import collate

    return collate([dataset[int(i)] for i in indices]).x.float().numpy()


class _Sampler:
    """Generate windows (B, C, T) with a denoiser, conditionally or not, in signal units."""

    def __init__(self, run: Any) -> None:
        self.run, self.model = run, run.model
        self.spec = model_spec(run.model)
        self.objective = run.config.get("objective", {})

    def schedule(self) -> Any:
        from neurofm.objectives.diffusion import DiffusionConfig

        fields = {k: v for k, v in self.objective.items() if k not in ("name", "preset")}
        return DiffusionConfig(**fields).schedule()

    def __call__(self, real: np.ndarray, known_steps: int, n_steps: int, seed: int) -> np.ndarray:
        x = torch.as_tensor(real, dtype=torch.float32)
        if self.spec.sampling == "diffusion":
            from neurofm.generation.diffusion import sample_diffusion

            schedule = self.schedule()
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


def _sections(per_window: dict[str, np.ndarray], cfg: EvaluateConfig) -> dict[str, Any]:
    """Bootstrap table plus the per-window values (JSON-safe)."""
    out = dt.table(per_window, cfg)
    out["per_window"] = {k: v.tolist() for k, v in per_window.items()}
    return out


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
    val = None if sets["val"] is None else _signals(sets["val"], sets["val_index"])
    sfreq = float(run.store.recordings[0].sfreq)
    sampler = _Sampler(run)
    diffusion = sampler.spec.sampling == "diffusion"
    n_times = test.shape[-1]
    half = n_times // 2

    # bits on the code bins, second half given the first, next to the code baselines
    tokenizer = create(TOKENIZERS, {"name": "mulaw", "n_levels": cfg.code_levels}).fit(train)
    bins = bl.CodeBins.from_bin_bounds(tokenizer, test.shape[1])

    def codes(x: np.ndarray) -> np.ndarray:
        return np.asarray(tokenizer.encode(torch.as_tensor(x)).codes)

    test_codes = codes(test)
    fitted, selection = code_baselines(
        bins, codes(train), None if val is None else codes(val), half, cfg
    )
    per_window = dt.baseline_window_bits(fitted, test_codes, test, half, cfg.batch_size)
    bits: dict[str, Any] = {"score_start": half, "windows": sets["info"]}
    if diffusion:
        lower, upper = dt.code_bin_edges(bins, test_codes)
        common = dict(n_bound_steps=cfg.bound_steps, seed=cfg.seed, batch_size=cfg.batch_size)
        args = (run.model, sampler.schedule(), test, lower, upper)
        model_bits = dt.diffusion_window_bits(*args, known_steps=half, **common)
        per_window = {"model": model_bits, **per_window}
        # the whole window, nothing given, on the forecast windows (rollout_windows) only
        sub = evenly(len(test), cfg.rollout_windows)
        args = (run.model, sampler.schedule(), test[sub], lower[sub], upper[sub])
        whole = dt.diffusion_window_bits(*args, known_steps=0, **common)
        bits["whole_window_bound"] = {
            **dt.table({"model": whole}, cfg)["scores"]["model"],
            "n_windows": int(sub.size),
        }
    bits.update(_sections(per_window, cfg))

    # forecasting by imputation on rollout_windows windows, against the number of steps
    idx = evenly(len(test), cfg.rollout_windows)
    truth = test[idx, :, half:]
    steps = sorted(cfg.denoising_steps)
    curve = {}
    for n_steps in steps:
        draws = [
            sampler(test[idx], half, n_steps, cfg.seed + k) for k in range(cfg.rollout_samples)
        ]
        mean = np.mean(draws, axis=0)[..., half:]
        curve[n_steps] = float(np.mean((mean - truth) ** 2))
    forecast = _sections(dt.forecast_window_mse(mean, test[idx, :, :half], truth, fitted), cfg)

    # realism of unconditional samples, flags calibrated on real-vs-real windows
    gen_idx = evenly(len(test), cfg.realism_windows)
    unconditional = sampler(test[gen_idx], 0, steps[-1], cfg.seed)
    enough = len(train) >= 2 * len(gen_idx)
    realism_scores = realism.compare(
        test,
        unconditional,
        sfreq,
        reference=train if enough else None,
        n_reference_splits=cfg.realism_reference_splits,
        n_permutations=cfg.realism_permutations,
        seed=cfg.seed,
    )
    report: dict[str, Any] = {
        "task": "generative",
        "n_windows": int(len(test)),
        "sfreq": sfreq,
        "sampling": sampler.spec.sampling,
        "context_samples": half,
        "bits": bits,
        "selection": selection,
        "forecast_by_imputation_mse": {k: v["mean"] for k, v in forecast["scores"].items()},
        "forecast": {**forecast, "windows": idx.tolist(), "model_samples": cfg.rollout_samples},
        "mse_against_steps": {str(k): v for k, v in curve.items()},
        "realism": {"generated": realism_scores},
        "windows": sets["info"],
        "definitions": DEFINITIONS,
    }
    if diffusion:
        report["bits_per_channel_sample"] = bits["scores"]["model"]["mean"]
    else:
        report["bits_unavailable"] = (
            "discrete flow matching: no tractable likelihood bound is computed; scores are "
            "forecasting by imputation and realism"
        )
    result = EvaluationResult(report=report, arrays={})
    write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    return result


DEFINITIONS = {
    "bits": "bits per channel-sample of the second half of each window given the first half, on "
    "the bins of a mu-law tokenizer fitted on train: model, an upper bound (the conditional "
    "variational bound of the imputation sampler); baselines, their exact one-step code length "
    "on the same positions; whole_window_bound: the model's bound on the whole window, nothing "
    "given; intervals: 95% moving-block bootstrap over windows, differences model minus each",
    "forecast": "MSE per window of the mean forecast of the second half from the first: model, "
    "the mean of model_samples imputations; last_value held; train_mean (zero); linear_ar and "
    "ridge_var iterated mean forecasts (sizes chosen on validation)",
    "realism": "unconditional samples against the held-out windows (calibrated suite: flags "
    "beyond the real-vs-real spread of held-out vs disjoint sets of real train windows)",
}
