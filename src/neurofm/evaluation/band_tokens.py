"""Evaluation of band-stage token models (the VAR variant of next band) on held-out windows.

On the same held-out windows, encoded by the run's ``band_rvq`` tokenizer:

- one step, teacher-forced: the cross-entropy (nats per token) of each stage's codes given the
  true earlier stages, next to a per-stage unigram baseline (code frequencies on train, add-one
  smoothing), with 95% block-bootstrap intervals of each and of model minus unigram;
- rollout: from the true stage-0 codes, the later stages drawn stage by stage
  (:func:`~neurofm.generation.band_tokens.generate_band_tokens`, ``temperature`` and ``seed`` of
  the evaluation config, the window's label when the run conditions on labels), decoded to
  cumulative levels and scored per stage against the true levels (MSE, SNR dB; the numbers the
  continuous ``next_band`` evaluation reports for its rollout), next to the tokenizer's own
  reconstruction (the floor of any model over these codes) and "no new band" (the true level
  ``k - 1`` as level ``k``), with intervals of rollout minus each; the rollouts of the continuous
  model's baselines on the same windows (:func:`~neurofm.evaluation.band_realism.rollout_baselines`:
  ridge maps stage after stage, the lowest band kept) and the realism suite on the full-band level
  of the rollouts and of the ridge rollout (:func:`~neurofm.evaluation.band_realism.band_realism`).

Writes ``report.json``, ``report.html``, ``rollout_metrics.json``, ``rollout.png`` and
``evaluate.yaml``.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from neurofm.evaluation.band_realism import band_realism, rollout_baselines
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly
from neurofm.evaluation.intervals import bootstrap_intervals
from neurofm.evaluation.next_band import (
    BandRidge,
    _sfreq_and_bands,
    rollout_metrics,
    rollout_sample,
    stack,
)
from neurofm.fileio import atomic_open


def _encode(tokenizer: Any, levels: np.ndarray, batch_size: int) -> torch.Tensor:
    parts = [
        torch.as_tensor(
            tokenizer.encode(torch.from_numpy(levels[i : i + batch_size]).float()).codes
        )
        for i in range(0, len(levels), batch_size)
    ]
    return torch.cat(parts)


def _interval_entry(per_window: dict[str, np.ndarray], cfg: EvaluateConfig, ref: str) -> dict:
    boot = bootstrap_intervals(
        per_window,
        reference=ref,
        n_resamples=cfg.n_bootstrap,
        block=cfg.bootstrap_block,
        seed=cfg.seed,
    )
    return {
        "scores": boot["scores"],
        "differences": boot["differences"],
        "beats": {name: bool(d["below_zero"]) for name, d in boot["differences"].items()},
    }


def evaluate_band_tokens(
    model: torch.nn.Module,
    tokenizer: Any,
    test: np.ndarray,
    train: np.ndarray,
    cfg: EvaluateConfig,
    labels: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Scores of a band-token model on test levels (M, L, C, T); the unigram fitted on train."""
    from neurofm.generation.band_tokens import generate_band_tokens

    stage_tokens = list(model.config.stage_tokens)
    vocab = model.config.vocab_size
    codes, train_codes = _encode(tokenizer, test, cfg.batch_size), _encode(tokenizer, train, 64)
    bounds = np.cumsum([0, *stage_tokens])
    parts = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    ce = []
    with torch.no_grad():
        for lo in range(0, len(codes), cfg.batch_size):
            part = codes[lo : lo + cfg.batch_size]
            label = None if labels is None else labels[lo : lo + cfg.batch_size]
            logits = model(part, label=label).logits.float()
            ce.append(F.cross_entropy(logits.transpose(1, 2), part, reduction="none"))
    ce_model = torch.cat(ce).double().numpy()  # (M, N)
    one_step = {}
    for k, part in enumerate(parts):
        counts = torch.bincount(train_codes[:, part].flatten(), minlength=vocab).double() + 1.0
        log_p = (counts / counts.sum()).log()
        unigram = -log_p[codes[:, part]].numpy()  # (M, n_k)
        per_window = {"model": ce_model[:, part].mean(1), "unigram": unigram.mean(1)}
        one_step[f"stage{k}"] = _interval_entry(per_window, cfg, "model")

    generator = torch.Generator().manual_seed(cfg.seed)
    drawn = []
    for lo in range(0, len(codes), cfg.batch_size):
        label = None if labels is None else labels[lo : lo + cfg.batch_size]
        drawn.append(
            generate_band_tokens(
                model,
                prompt=codes[lo : lo + cfg.batch_size, parts[0]],
                label=label,
                temperature=cfg.temperature,
                generator=generator,
            )
        )
    with torch.no_grad():
        rollout = tokenizer.decode_stages(torch.cat(drawn)).double().numpy()
        recon = tokenizer.decode_stages(codes).double().numpy()
    per_stage = {}
    for k in range(1, test.shape[1]):
        per_window = {
            "rollout": ((rollout[:, k] - test[:, k]) ** 2).mean(axis=(1, 2)),
            "reconstruction": ((recon[:, k] - test[:, k]) ** 2).mean(axis=(1, 2)),
            "no_new_band": ((test[:, k - 1] - test[:, k]) ** 2).mean(axis=(1, 2)),
        }
        per_stage[f"stage{k}"] = _interval_entry(per_window, cfg, "rollout")
    return {
        "one_step_ce": one_step,
        "rollout_mse": per_stage,
        "rollout": rollout_metrics(test, rollout),
        "reconstruction": rollout_metrics(test, recon, first_stage=0),
        "_rollout": rollout,
    }


def _labels(run: Any, dataset: Any, index: np.ndarray) -> torch.Tensor | None:
    if not run.config.get("objective", {}).get("use_labels"):
        return None
    return torch.tensor([int(dataset[int(i)]["label"]) for i in index])


def evaluate_band_tokens_run(
    run: Any,
    *,
    config: EvaluateConfig,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a band-token run on ``config.split`` and write its report folder."""
    from neurofm.config import save_yaml

    if run.tokenizer is None:
        raise ValueError(f"{run.run_dir}: a band-token run needs its band_rvq tokenizer")
    test_set, train_set = run.dataset(config.split), run.dataset(run.data_config.train_split)
    test_index = evenly(len(test_set), config.forecast_windows)
    train_index = evenly(len(train_set), config.baseline_train_windows)
    test, train = stack(test_set, test_index), stack(train_set, train_index)
    labels = _labels(run, test_set, test_index)
    scores = evaluate_band_tokens(run.model, run.tokenizer, test, train, config, labels)
    rollout = scores.pop("_rollout")
    sfreq, bands = _sfreq_and_bands(run, test_set)
    # the continuous model's baselines on the same windows, and the realism of the rollouts
    ridge = BandRidge().fit(train)
    scores["rollout_baselines"] = rollout_baselines(ridge, test)
    scores["realism"] = band_realism(None, test, train, rollout, config, sfreq, ridge)
    out, sample, png = rollout_sample(
        run,
        test,
        rollout,
        test_index,
        config,
        out_dir,
        sfreq,
        bands,
        "token rollout from the lowest stage",
    )
    report = {
        "task": "band_tokens",
        "run_dir": str(run.run_dir),
        "split": config.split,
        "out_dir": str(out),
        "checkpoint": checkpoint or "final",
        "model": run.config.get("model", {}).get("name"),
        "windows": {"scored": int(len(test)), "train": int(len(train))},
        "conditioned_on_labels": labels is not None,
        "sfreq": sfreq,
        "bands": bands,
        **scores,
        "rollout_sample": sample,
        "plot": str(png),
        "settings": asdict(config),
    }
    with atomic_open(out / "report.json", "w") as fh:
        json.dump(report, fh, indent=2)
    with atomic_open(out / "rollout_metrics.json", "w") as fh:
        json.dump(sample, fh, indent=2)
    save_yaml(asdict(config), out / "evaluate.yaml")
    _write_html(report, out / "report.html")
    return EvaluationResult(report=report, arrays={"rollout": rollout, "real": test})


def _cell(s: dict) -> str:
    return f"<td>{s['mean']:.4g} [{s['low']:.4g}, {s['high']:.4g}]</td>"


def _write_html(report: dict[str, Any], path: Path) -> Path:
    rows = [
        f"<tr><td>{k}</td>{_cell(v['scores']['model'])}{_cell(v['scores']['unigram'])}</tr>"
        for k, v in report["one_step_ce"].items()
    ]
    mse_rows = [
        f"<tr><td>{k}</td>"
        + "".join(_cell(v["scores"][n]) for n in ("rollout", "reconstruction", "no_new_band"))
        + "</tr>"
        for k, v in report["rollout_mse"].items()
    ]
    page = (
        "<html><head><meta charset='utf-8'><title>band-token evaluation</title></head><body>"
        f"<h1>Band-token evaluation: {html.escape(str(report['model']))}, split "
        f"{html.escape(report['split'])} ({report['windows']['scored']} windows)</h1>"
        "<h2>Teacher-forced cross-entropy per stage (nats/token, 95% interval)</h2>"
        "<table border='1'><tr><th>stage</th><th>model</th><th>unigram</th></tr>"
        + "".join(rows)
        + "</table><h2>Rollout MSE per stage</h2><table border='1'><tr><th>stage</th>"
        "<th>rollout</th><th>tokenizer reconstruction</th><th>no new band</th></tr>"
        + "".join(mse_rows)
        + "</table><img src='rollout.png'></body></html>"
    )
    path.write_text(page)
    return path
