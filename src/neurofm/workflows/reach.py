"""Behaviour decoding on binned spike counts: NeuroFM-X vs ridge / Wiener-filter baselines.

Reads a ``.mat`` file of binned counts with a behaviour variable per bin (``Y<part>`` units,
``X<part>`` velocity: the monkey reach demo data), trains a ``neurofm_x`` model with the
multi-task objective (co-smoothing + behaviour + contrastive) on windows of the train part and
scores hand-velocity R² on every bin of the held-out test part (other trials, recorded later),
next to ridge regressions fitted on the same train bins: on the current bin, and a Wiener filter
on the current and ``n_lags - 1`` previous bins. R² intervals are percentiles of a moving-block
bootstrap over test bins.

Co-smoothing: a fixed random ``held_out_fraction`` of the units is hidden from the model on the
test part and their predicted rates are scored in bits per spike
(:mod:`neurofm.evaluation.cosmoothing`), next to a smoothed-spikes Poisson GLM fitted on the
train part (the model trained with random hidden units, so it saw these units' counts only as
targets, as in NLB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.errors import RecordingError
from neurofm.evaluation.behaviour import block_bootstrap, fit_ridge, lagged, r2_score
from neurofm.evaluation.cosmoothing import bits_per_spike, smoothed_glm_rates
from neurofm.io import read_recordings
from neurofm.models.neurofm_x import NeuroFMX, NeuroFMXConfig
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective
from neurofm.registry import MODELS
from neurofm.types import Batch

SPEC = MODELS.get("neurofm_x").spec


@dataclass
class ReachConfig:
    """What :func:`reach_decoding` trains and how."""

    bin_size: float = 0.05  # s per bin (the file does not state it)
    window: int = 32  # bins per training window
    stride: int = 4  # bins between training window starts
    steps: int = 400  # optimizer steps
    batch_size: int = 16  # windows per step
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    seed: int = 0  # seed of the model, windows and masks
    n_lags: int = 10  # bins of the Wiener filter (current and previous)
    ridges: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)  # ridge penalties tried
    n_bootstrap: int = 500  # bootstrap resamples of the test bins
    block: int = 50  # bins per bootstrap block
    keep: int = 8  # sliding read-out: bins kept from each window (see predict_windows)
    held_out_fraction: float = 0.25  # units held out of the input for the co-smoothing score
    model: dict[str, Any] = field(
        default_factory=lambda: {
            "d_model": 64,
            "n_layers": 2,
            "d_state": 8,
            "rates": (1, 4),
            "n_latents": 16,
            "d_latent": 64,
            "n_fusion_layers": 1,
            "n_heads": 4,
            "popt_layers": 1,
            "d_contrastive": 32,
            "dropout": 0.1,
        }
    )
    objective: dict[str, Any] = field(
        default_factory=lambda: {"encoder_weight": 0.5, "behaviour_weight": 1.0}
    )


def _spike_rows(recording: Any) -> np.ndarray:
    return np.flatnonzero(np.asarray(recording.sensors.types) == "spikes")


def load_reach(path: Path, bin_size: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    parts = {rec.meta["part"]: rec for rec in read_recordings(path, bin_size=bin_size)}
    if not {"tr", "te"} <= set(parts):
        raise RecordingError(
            f"needs parts 'tr' and 'te', the file holds {sorted(parts)}", path=str(path)
        )
    for name, rec in parts.items():
        if "velocity" not in rec.meta:
            raise RecordingError(f"part {name!r} has no velocity variable X{name}", path=str(path))
    counts = {  # (T, U): the spike channels (the velocity channels are the targets)
        k: np.asarray(parts[k].data, dtype=np.float64)[_spike_rows(parts[k])].T
        for k in ("tr", "te")
    }
    velocity = {k: parts[k].meta["velocity"] for k in ("tr", "te")}
    return counts, velocity


def predict_windows(
    model: torch.nn.Module,
    counts: np.ndarray,
    window: int,
    *,
    observed: np.ndarray | None = None,
    keep: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Behaviour (T, K) and log rates (T, U) of every bin, from windows of ``window`` bins.

    ``keep=None``: consecutive windows, every bin of each is written (the first bins of a window
    have no history). ``keep=k``: windows start every ``k`` bins and only their last ``k`` bins
    are written (the first window writes all), so every bin after the first window is read with
    at least ``window - k`` bins of history. The last window ends at T (its values win where it
    overlaps); a recording shorter than ``window`` is one window. ``observed`` (U,) hides units.
    """
    n_bins = counts.shape[0]
    window = min(window, n_bins)
    step = window if keep is None else min(keep, window)
    starts = list(range(0, n_bins - window + 1, step))
    if starts[-1] + window < n_bins:
        starts.append(n_bins - window)
    x = torch.from_numpy(np.stack([counts[s : s + window] for s in starts])).float()
    mask = None if observed is None else torch.from_numpy(np.asarray(observed, dtype=bool))
    with torch.no_grad():
        out = model.eval()(x, observed=mask)
    behaviour = np.zeros((n_bins, model.config.n_behaviour))
    log_rates = np.zeros((n_bins, counts.shape[1]))
    written = 0  # bins [0, written) are final
    for start, b, r in zip(starts, out.extras["behaviour"].numpy(), out.prediction.numpy()):
        first = max(written - start, 0) if keep is not None else 0
        behaviour[start + first : start + window] = b[first:]
        log_rates[start + first : start + window] = r[first:]
        written = start + window
    return behaviour, log_rates


def train_multitask(
    model: torch.nn.Module,
    counts: np.ndarray,
    target: np.ndarray,
    config: ReachConfig,
    *,
    steps: int | None = None,
) -> list[float]:
    """Train the parameters of ``model`` that require a gradient with the multi-task objective
    on windows of ``counts`` (T, U) and ``target`` (T, K); returns the loss of every step.

    Windows of ``config.window`` bins (all of a shorter recording) start every ``stride`` bins;
    AdamW with a cosine decay of the learning rate to 10%.
    """
    steps = config.steps if steps is None else steps
    rng = np.random.default_rng(config.seed)
    window = min(config.window, counts.shape[0])
    starts = np.arange(0, counts.shape[0] - window + 1, config.stride)
    x_all = torch.from_numpy(np.stack([counts[s : s + window] for s in starts])).float()
    y_all = torch.from_numpy(np.stack([target[s : s + window] for s in starts])).float()
    objective = MultitaskObjective(MultitaskConfig(**config.objective))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    losses = []
    model.train()
    for step in range(steps):
        pick = torch.from_numpy(
            rng.choice(len(starts), config.batch_size, replace=len(starts) < config.batch_size)
        )
        for group in optimizer.param_groups:  # cosine decay to 10%
            group["lr"] = config.lr * (0.55 + 0.45 * np.cos(np.pi * step / steps))
        out = objective(model, Batch(x=x_all[pick], target=y_all[pick]), spec=SPEC)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    return losses


def held_out_units(n_units: int, fraction: float, seed: int) -> np.ndarray:
    """(U,) boolean, True for the ``round(fraction * U)`` (>= 1) randomly chosen held-out units."""
    rng = np.random.default_rng(seed)
    held_out = np.zeros(n_units, dtype=bool)
    held_out[rng.permutation(n_units)[: max(1, round(fraction * n_units))]] = True
    return held_out


def reach_decoding(path: str | Path, config: ReachConfig | None = None) -> dict[str, Any]:
    """Train and score NeuroFM-X and the baselines on the file at ``path``; returns the table."""
    config = config or ReachConfig()
    path = Path(path)
    counts, velocity = load_reach(path, config.bin_size)
    if counts["tr"].shape[0] < config.window:
        raise RecordingError(
            f"the train part has {counts['tr'].shape[0]} bins, fewer than window={config.window}",
            path=str(path),
        )
    mean, std = velocity["tr"].mean(axis=0), velocity["tr"].std(axis=0)
    target = {k: (v - mean) / std for k, v in velocity.items()}  # train-standardised

    rows = {}
    for name, n_lags in (("ridge (bin t)", 1), (f"wiener ({config.n_lags} bins)", config.n_lags)):
        weights, ridge = fit_ridge(lagged(counts["tr"], n_lags), target["tr"], config.ridges)
        features = lagged(counts["te"], n_lags)
        prediction = np.concatenate([features, np.ones((features.shape[0], 1))], axis=1) @ weights
        rows[name] = (prediction, {"ridge": ridge})

    torch.manual_seed(config.seed)
    n_units, n_behaviour = counts["tr"].shape[1], target["tr"].shape[1]
    model = NeuroFMX(
        NeuroFMXConfig(n_units=n_units, n_behaviour=n_behaviour, scan="parallel", **config.model)
    )
    losses = train_multitask(model, counts["tr"], target["tr"], config)
    held_out = held_out_units(n_units, config.held_out_fraction, config.seed)
    parameters = {"parameters": model.count_parameters()["total"]}
    behaviour, _ = predict_windows(model, counts["te"], config.window)
    rows["neurofm_x"] = (behaviour, parameters)
    sliding, _ = predict_windows(model, counts["te"], config.window, keep=config.keep)
    rows[f"neurofm_x (sliding, last {config.keep} bins)"] = (sliding, parameters)
    _, log_rates = predict_windows(model, counts["te"], config.window, observed=~held_out)
    glm = smoothed_glm_rates(
        counts["tr"][:, ~held_out], counts["tr"][:, held_out], counts["te"][:, ~held_out]
    )
    cosmoothing = {
        "held_out_units": int(held_out.sum()),
        "neurofm_x": bits_per_spike(np.exp(log_rates[:, held_out]), counts["te"][:, held_out]),
        "smoothed_spikes_glm": bits_per_spike(glm, counts["te"][:, held_out]),
    }

    table = {}
    for name, (prediction, info) in rows.items():
        low, high = block_bootstrap(
            target["te"], prediction, n=config.n_bootstrap, block=config.block, seed=config.seed
        )
        table[name] = {"r2": r2_score(target["te"], prediction), "r2_ci95": [low, high], **info}
    return {
        "file": path.name,
        "train_bins": int(counts["tr"].shape[0]),
        "test_bins": int(counts["te"].shape[0]),
        "n_units": int(n_units),
        "steps": config.steps,
        "loss_first_last": [losses[0], losses[-1]],
        "results": table,
        "cosmoothing_bits_per_spike": cosmoothing,
    }
