"""Score a forecasting model next to its baselines and controls, on the same held-out windows.

:func:`evaluate_forecasting` works on arrays and a model (no run folder needed);
:func:`evaluate_run` loads a training run folder, reads its held-out split and writes the report.

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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from neurofm.errors import ConfigError
from neurofm.evaluation import baselines as bl
from neurofm.evaluation import realism
from neurofm.evaluation.metrics import ForecastAccumulator, _as_numpy
from neurofm.evaluation.rollout import ModelPredictor, model_context, rollout_curves
from neurofm.logging import get_logger
from neurofm.registry import model_spec
from neurofm.types import ModelSpec

log = get_logger("evaluation")


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
    seed: int = 0  # seed of controls, sampling and tests

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
        if self.drift_segments < 2:
            raise ValueError(f"drift_segments must be >= 2, got {self.drift_segments}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


@dataclass
class EvaluationResult:
    """``report``: the JSON-safe scores; ``arrays``: signals for the plots (not in the JSON)."""

    report: dict[str, Any]
    arrays: dict[str, Any]


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

    # continuations of held-out prompts for the realism suite
    gen_idx = np.linspace(0, n_win - 1, min(cfg.n_generate, n_win)).round().astype(int)
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
    generated = bins.decode(gen.sample(test_codes[gen_idx, :, :n_ctx], horizon))
    real_cont = test_signal[gen_idx, :, n_ctx:]
    ar = fitted["linear_ar"]
    ar_cont = ar.simulate(bins.decode(test_codes[gen_idx, :, :n_ctx]), horizon, seed=cfg.seed)
    real_test = test_signal[..., n_ctx:]
    train_ref = train_signal[..., n_ctx:]
    compare = {"n_permutations": cfg.n_permutations, "seed": cfg.seed}
    realism_scores = {
        "generated": realism.compare(real_test, generated, sfreq, **compare),
        "linear_ar_samples": realism.compare(real_test, ar_cont, sfreq, **compare),
        "tokenizer_roundtrip": realism.compare(
            real_test, bins.decode(test_codes[..., n_ctx:]), sfreq, **compare
        ),
        "real_train_windows": realism.compare(real_test, train_ref, sfreq, **compare),
    }

    # drift of long rollouts (past the model's max_seq_len the generation context slides)
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
            "realism columns": "generated / AR-sampled continuations, tokenizer round trip and "
            "real train windows, each against the real held-out continuations",
        },
    }
    arrays = {
        "real": real_cont,
        "generated": generated,
        "linear_ar_samples": ar_cont,
        "prompt": test_signal[gen_idx, :, :n_ctx],
        "real_reference": real_test,
        "sfreq": float(sfreq),
    }
    return EvaluationResult(report=report, arrays=arrays)


def _evenly(n_total: int, n_max: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_total - 1, min(n_total, n_max)).round().astype(int))


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


def evaluate_run(
    run_dir: str | Path,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a training run folder on its held-out split and write the report.

    The report goes to ``out_dir`` (default ``<run_dir>/eval-<split>``): ``report.json``,
    ``report.html``, PNG plots and the resolved ``evaluate.yaml``. ``checkpoint`` is passed to
    :func:`~neurofm.training.run.load_run` (default: the final model). A run trained with the
    ``classification`` objective is scored by
    :func:`~neurofm.evaluation.decoding.evaluate_decoding_run` instead.
    """
    from neurofm.config import save_yaml
    from neurofm.evaluation.report import write_report
    from neurofm.training.run import load_run

    cfg = config or EvaluateConfig()
    run = load_run(run_dir, checkpoint=checkpoint)
    if run.config.get("objective", {}).get("name") == "classification":
        from neurofm.evaluation.decoding import evaluate_decoding_run

        return evaluate_decoding_run(run, config=cfg, out_dir=out_dir, checkpoint=checkpoint)
    if run.tokenizer is None:
        raise ConfigError(
            f"{run_dir}: the run has no tokenizer; forecasting evaluation scores models over codes"
        )
    test_set, train_set = run.dataset(cfg.split), run.dataset("train")
    test = windows_of(test_set, _evenly(len(test_set), cfg.max_windows), run.tokenizer)
    train = windows_of(train_set, _evenly(len(train_set), cfg.max_train_windows), run.tokenizer)
    bins = bl.CodeBins.from_tokenizer(run.tokenizer, test["codes"].shape[1])
    sfreq = float(run.store.recordings[0].sfreq)
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
    )
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / f"eval-{cfg.split}"
    result.report.update(
        run_dir=str(run_dir),
        split=cfg.split,
        out_dir=str(out),
        checkpoint=checkpoint or "final",
        model=run.config.get("model", {}).get("name"),
    )
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(asdict(cfg), out / "evaluate.yaml")
    write_report(result.report, result.arrays, out)
    return result
