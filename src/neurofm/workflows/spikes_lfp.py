"""NeuroFM-X on spike events and on field potentials of real recordings.

:func:`stimulus_decoding`: a spike-event model (``modality: spikes``) of one auditory receptor
unit decodes the stimulus envelope per bin (its behaviour head) from the unit's spike times
(the grasshopper recording: spike times and a 20 kHz amplitude envelope). The recording is cut
in time: the first ``1 - test_fraction`` is the train part, the last block the held-out test
part. The model trains with the multi-task objective (Poisson deviance of its rates against the
binned events, envelope MSE, time-contrastive InfoNCE; no unit masking: there is one unit), and
is scored by the envelope R² over every test bin next to a ridge regression on the binned counts
of the same bins and ``n_lags`` bins before and after (the model reads whole windows, so the
baseline reads both sides too), fitted on the train part. Intervals: moving-block bootstrap over
test bins, the model-minus-ridge difference paired on the same resamples.

:func:`lfp_training`: a field-potential model (``modality: lfp``) trained on windows of one LFP
channel (the human M1 recording), scaled by the ``lfp_tokens`` tokenizer fitted on the train
part only; the loss (band-power read-out MSE + contrastive InfoNCE) on the train windows and on
held-out windows of the last block, before and after training, next to the band-power MSE of
predicting every step by the train mean of each band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data.spike_events import event_windows, pack_events
from neurofm.evaluation.behaviour import block_bootstrap, fit_ridge, r2_score, two_sided_lags
from neurofm.evaluation.intervals import block_resamples
from neurofm.io import read_recording
from neurofm.models.neurofm_x import NeuroFMX, NeuroFMXConfig
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective
from neurofm.types import Batch


@dataclass
class StimulusConfig:
    """What :func:`stimulus_decoding` trains and how."""

    bin_size: float = 0.005  # s per bin (the envelope decorrelates within ~5 ms)
    window: int = 64  # bins per window
    stride: int = 8  # bins between training window starts
    test_fraction: float = 0.2  # the last part of the recording, held out
    steps: int = 300  # optimizer steps
    batch_size: int = 16  # windows per step
    lr: float = 1e-2  # AdamW learning rate
    seed: int = 0  # seed of the model and the windows
    n_lags: int = 5  # ridge baseline: bins before and after each bin
    ridges: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
    n_bootstrap: int = 500  # bootstrap resamples of the test bins
    block: int = 40  # bins per bootstrap block
    model: dict[str, Any] = field(
        default_factory=lambda: {
            "d_model": 32,
            "n_layers": 1,
            "d_state": 8,
            "rates": (1, 4),
            "n_latents": 8,
            "d_latent": 32,
            "n_fusion_layers": 1,
            "n_heads": 4,
            "popt_layers": 0,
            "d_contrastive": 16,
            "read_radius": 2,
        }
    )
    objective: dict[str, Any] = field(
        default_factory=lambda: {"encoder_weight": 0.5, "behaviour_weight": 1.0}
    )


def load_grasshopper(folder: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Spike times (s) of the unit, the stimulus envelope (n,) and its sampling rate (Hz)."""
    folder = Path(folder)
    spikes = read_recording(folder / "grasshopper_spike_times1.txt", bin_size=0.001, time_unit="us")
    stimulus = read_recording(folder / "grasshopper_stimulus1.txt", time_unit="us")
    return spikes.meta["spike_times"][0], np.asarray(stimulus.data[0]), float(stimulus.sfreq)


def bin_means(signal: np.ndarray, sfreq: float, bin_size: float) -> np.ndarray:
    """Mean of ``signal`` over consecutive bins of ``bin_size`` s (a whole number of samples)."""
    per_bin = bin_size * sfreq
    if abs(per_bin - round(per_bin)) > 1e-9 or per_bin < 1:
        raise ValueError(f"bin_size={bin_size} s is not a whole number of samples at {sfreq} Hz")
    per_bin = round(per_bin)
    n_bins = len(signal) // per_bin
    return signal[: n_bins * per_bin].reshape(n_bins, per_bin).mean(axis=1)


def _spike_windows(spikes: np.ndarray, starts: np.ndarray, cfg: StimulusConfig) -> torch.Tensor:
    return pack_events(event_windows([spikes], starts * cfg.bin_size, cfg.window * cfg.bin_size))


def _predict(model: NeuroFMX, spikes: np.ndarray, first: int, n_bins: int, cfg: StimulusConfig):
    """Behaviour of bins ``[first, first + n_bins)`` from consecutive windows (the last one
    ends at the last bin; where it overlaps the one before, its values win)."""
    starts = list(range(first, first + n_bins - cfg.window + 1, cfg.window))
    if starts[-1] + cfg.window < first + n_bins:
        starts.append(first + n_bins - cfg.window)
    with torch.no_grad():
        out = model.eval()(_spike_windows(spikes, np.asarray(starts), cfg))
    prediction = np.zeros(n_bins)
    for start, b in zip(starts, out.extras["behaviour"][..., 0].numpy()):
        prediction[start - first : start - first + cfg.window] = b
    return prediction


def stimulus_decoding(folder: str | Path, config: StimulusConfig | None = None) -> dict[str, Any]:
    """Train a spike-event model and the ridge baseline; the envelope R² on the test block."""
    cfg = config or StimulusConfig()
    spikes, stimulus, sfreq = load_grasshopper(folder)
    envelope = bin_means(stimulus, sfreq, cfg.bin_size)
    n_bins = len(envelope)
    counts = np.histogram(spikes, bins=n_bins, range=(0.0, n_bins * cfg.bin_size))[0]
    if counts.sum() != len(spikes):
        raise ValueError(f"{folder}: spikes after the stimulus ends ({n_bins * cfg.bin_size} s)")
    split = int(round((1 - cfg.test_fraction) * n_bins))
    mean, std = envelope[:split].mean(), envelope[:split].std()
    target = (envelope - mean) / std  # standardised on the train part

    features = two_sided_lags(counts[:, None].astype(np.float64), cfg.n_lags)
    weights, ridge = fit_ridge(features[:split], target[:split, None], cfg.ridges)
    with_bias = np.concatenate([features[split:], np.ones((n_bins - split, 1))], axis=1)
    baseline = (with_bias @ weights)[:, 0]

    torch.manual_seed(cfg.seed)
    model = NeuroFMX(
        NeuroFMXConfig(
            modality="spikes",
            n_units=1,
            n_behaviour=1,
            n_bins=cfg.window,
            bin_size=cfg.bin_size,
            scan="parallel",
            **cfg.model,
        )
    )
    starts = np.arange(0, split - cfg.window + 1, cfg.stride)
    x_all = _spike_windows(spikes, starts, cfg)
    y_all = torch.from_numpy(np.stack([target[s : s + cfg.window] for s in starts])).float()
    losses = train_events(model, x_all, y_all[..., None], cfg)
    prediction = _predict(model, spikes, split, n_bins - split, cfg)

    y = target[split:, None]
    rows = {
        "neurofm_x (spike events)": prediction[:, None],
        "ridge (binned counts)": baseline[:, None],
    }
    table = {}
    for name, pred in rows.items():
        low, high = block_bootstrap(y, pred, n=cfg.n_bootstrap, block=cfg.block, seed=cfg.seed)
        table[name] = {"r2": r2_score(y, pred), "r2_ci95": [low, high]}
    table["ridge (binned counts)"]["ridge"] = ridge
    table["neurofm_x (spike events)"]["parameters"] = model.count_parameters()["total"]
    index = block_resamples(len(y), cfg.n_bootstrap, cfg.block, cfg.seed)
    diffs = [
        r2_score(y[i], rows["neurofm_x (spike events)"][i]) - r2_score(y[i], baseline[i, None])
        for i in index
    ]
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {
        "bin_size_s": cfg.bin_size,
        "train_bins": int(split),
        "test_bins": int(n_bins - split),
        "train_spikes": int(counts[:split].sum()),
        "test_spikes": int(counts[split:].sum()),
        "steps": cfg.steps,
        "loss_first_last": [losses[0], losses[-1]],
        "results": table,
        "model_minus_ridge_r2": {
            "mean": table["neurofm_x (spike events)"]["r2"] - table["ridge (binned counts)"]["r2"],
            "ci95": [float(low), float(high)],
        },
    }


def train_events(
    model: torch.nn.Module,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    cfg: Any,
    *,
    steps: int | None = None,
) -> list[float]:
    """Train ``model`` with the multi-task objective (no unit masking) on random batches of the
    windows ``x_all`` (events or signals) and behaviour ``y_all``; the loss of every step."""
    steps = cfg.steps if steps is None else steps
    rng = np.random.default_rng(cfg.seed)
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.0, **cfg.objective))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    losses = []
    model.train()
    for step in range(steps):
        pick = torch.from_numpy(
            rng.choice(len(x_all), cfg.batch_size, replace=len(x_all) < cfg.batch_size)
        )
        for group in optimizer.param_groups:  # cosine decay to 10%
            group["lr"] = cfg.lr * (0.55 + 0.45 * np.cos(np.pi * step / steps))
        target = None if y_all is None else y_all[pick]
        out = objective(model, Batch(x=x_all[pick], target=target))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    return losses


@dataclass
class LFPConfig:
    """What :func:`lfp_training` trains and how."""

    sfreq: float = 1000.0  # Hz (the .npy file does not state it)
    window: int = 1000  # samples per window (1 s)
    stride: int = 250  # samples between training window starts
    test_fraction: float = 0.2  # the last part of the recording, held out
    steps: int = 60  # optimizer steps
    batch_size: int = 8  # windows per step
    lr: float = 2e-3  # AdamW learning rate
    seed: int = 0
    model: dict[str, Any] = field(
        default_factory=lambda: {
            "d_model": 24,
            "n_layers": 1,
            "d_state": 8,
            "rates": (1, 4),
            "n_latents": 8,
            "d_latent": 32,
            "n_fusion_layers": 1,
            "n_heads": 4,
            "d_contrastive": 16,
            "contrastive_weight": 0.5,
            "lfp_pool": 4,
        }
    )
    objective: dict[str, Any] = field(default_factory=lambda: {"encoder_weight": 1.0})


def _windows(signal: np.ndarray, window: int, stride: int) -> torch.Tensor:
    starts = range(0, signal.shape[-1] - window + 1, stride)
    return torch.from_numpy(np.stack([signal[:, s : s + window] for s in starts])).float()


def lfp_training(path: str | Path, config: LFPConfig | None = None) -> dict[str, Any]:
    """Train a field-potential model on the first part of the recording at ``path`` (one or more
    channels, ``.npy``); its losses on train and held-out windows before and after training."""
    from neurofm.registry import TOKENIZERS, create

    cfg = config or LFPConfig()
    rec = read_recording(path, sfreq=cfg.sfreq, ch_types="ecog")
    data = np.asarray(rec.data, dtype=np.float64)  # (C, T)
    split = int(round((1 - cfg.test_fraction) * data.shape[1]))
    n_chans = data.shape[0]
    tokenizer = create(
        TOKENIZERS, {"name": "lfp_tokens", "n_chans": n_chans, "d_model": 3, "sfreq": cfg.sfreq}
    )
    tokenizer.fit(data[:, :split], fitted_on=f"{Path(path).name}:train")
    scaled = tokenizer.normalize(data)
    train = _windows(scaled[:, :split], cfg.window, cfg.stride)
    test = _windows(scaled[:, split:], cfg.window, cfg.window)

    torch.manual_seed(cfg.seed)
    model = NeuroFMX(
        NeuroFMXConfig(
            modality="lfp", n_chans=n_chans, sfreq=cfg.sfreq, scan="parallel", **cfg.model
        )
    )
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.0, **cfg.objective))

    def held_out() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            out = objective(model, Batch(x=test))
        return {"loss": float(out.loss), **{k: float(v) for k, v in out.metrics.items()}}

    before = held_out()
    losses = train_events(model, train, None, cfg)
    after = held_out()
    # baseline of the band-power read-out: every step predicted by the train mean of its feature
    band_train, band_test = model.embed.band_power(train), model.embed.band_power(test)
    mean_mse = float((band_test - band_train.mean(dim=(0, 1))).square().mean())
    with torch.no_grad():
        out = model.eval()(test)
    return {
        "channels": n_chans,
        "sfreq": cfg.sfreq,
        "train_windows": int(train.shape[0]),
        "test_windows": int(test.shape[0]),
        "window_samples": cfg.window,
        "scale_fitted_on_train": {
            "center": tokenizer.center.tolist(),
            "scale": tokenizer.scale.tolist(),
        },
        "shapes": {
            "input": list(test.shape),
            "prediction": list(out.prediction.shape),
            "latents": list(out.extras["latents"].shape),
        },
        "steps": cfg.steps,
        "train_loss_first_last": [losses[0], losses[-1]],
        "held_out_before": before,
        "held_out_after": after,
        "held_out_band_power_mse_of_the_train_mean": mean_mse,
        "parameters": model.count_parameters()["total"],
    }
