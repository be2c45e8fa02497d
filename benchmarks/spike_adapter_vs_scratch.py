"""The spike Unit-ID adapter against training from scratch, on pseudo-units of real spikes.

The grasshopper receptor is one unit. Its spike train is split into two pseudo-units by
alternating spikes (spike k goes to unit k mod 2): real spike times, but not two neurons.

- ``adapter``: a NeuroFM-X spike model (the sizes of
  ``configs/fit/neurofm_x/neurofm_x_spikes.yaml``, 40-bin windows of 5 ms) is pretrained
  ``steps`` steps on the one-unit train on the train block, frozen, and a Unit-ID adapter (new
  unit identities, rate and behaviour heads) is trained ``steps`` steps on the pseudo-units;
- ``scratch``: the same model with two units, every parameter trained from its initialisation
  for the same ``steps`` steps on the same pseudo-unit windows, batches and objective;
- ``scratch, 2x steps``: the same for ``2 * steps`` steps, as many as pretraining and adapter
  together;
- ``adapter, untrained``: the adapter before its steps;
- ``train mean rate``: each pseudo-unit's mean count per bin on the train block.

Objective: the multi-task loss with co-smoothing (one of the two units hidden from each window,
Poisson deviance on it) and the envelope. Score: co-smoothed Poisson deviance per bin on the
held-out block (the last 400 bins, 10 consecutive windows; each unit hidden in turn, its rates
predicted from the other's spikes; mean over the two), 95% moving-block bootstrap intervals
(blocks of one window) and paired differences on the same resamples. The train block is the
first 80% less one window. The pretraining saw the same train-block spikes as one unit: this
measures whether the frozen trunk carries over to new unit ids of the same recording, not
transfer across recordings. Writes ``docs/results/spike_adapter_vs_scratch_grasshopper.json``.
Run: ``python -m benchmarks.spike_adapter_vs_scratch [--steps 300] [--seeds 0 1]``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks._common import machine_info, seeded_runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "spikes_grasshopper"
CONFIG = ROOT / "configs" / "fit" / "neurofm_x" / "neurofm_x_spikes.yaml"
OUT = ROOT / "docs" / "results" / "spike_adapter_vs_scratch_grasshopper.json"
BIN, WINDOW, STRIDE, BATCH, TEST_BINS = 0.005, 40, 8, 16, 400


def model_spec(n_units: int) -> dict[str, Any]:
    """The model section of the example config, for ``n_units`` units and 40-bin windows."""
    from neurofm.config import load_yaml

    model = dict(load_yaml(CONFIG)["model"])
    return {**model, "n_units": n_units, "n_bins": WINDOW, "bin_size": BIN}


def windows(trains: list[np.ndarray], starts: np.ndarray, z: np.ndarray) -> Any:
    """The events and envelope of the windows starting at bins ``starts``."""
    from neurofm.data.spike_events import event_windows, pack_events
    from neurofm.types import Batch

    x = pack_events(event_windows(trains, starts * BIN, WINDOW * BIN))
    y = torch.from_numpy(np.stack([z[s : s + WINDOW] for s in starts])).float()[..., None]
    return Batch(x=x, target=y)


def train(model: torch.nn.Module, data: Any, steps: int, mask: float, seed: int) -> None:
    """``steps`` AdamW steps (lr 1e-2) of the multi-task loss on random batches of ``data``."""
    from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective
    from neurofm.registry import model_spec as spec_of
    from neurofm.types import Batch

    objective = MultitaskObjective(MultitaskConfig(mask_fraction=mask, encoder_weight=0.5))
    spec = spec_of(model.base if hasattr(model, "base") else model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        pick = torch.randint(len(data.x), (BATCH,), generator=generator)
        loss = objective(model, Batch(x=data.x[pick], target=data.target[pick]), spec=spec).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def cosmoothed(model: torch.nn.Module, data: Any) -> np.ndarray:
    """Per-bin Poisson deviance (n_windows * WINDOW,) of each unit predicted while hidden,
    averaged over the units."""
    from neurofm.objectives.multitask import poisson_deviance

    model.eval()
    per_unit = []
    with torch.no_grad():
        for unit in range(2):
            observed = torch.ones(2, dtype=torch.bool)
            observed[unit] = False
            out = model(data.x, observed=observed)
            dev = poisson_deviance(out.prediction[..., unit], out.extras["counts"][..., unit])
            per_unit.append(dev.reshape(-1).numpy())
    return np.mean(per_unit, axis=0)


def intervals(deviance: dict[str, np.ndarray], n: int, seed: int) -> dict[str, Any]:
    """Mean deviance with 95% intervals and paired differences, moving blocks of a window."""
    from neurofm.evaluation.intervals import block_resamples

    index = block_resamples(TEST_BINS, n, WINDOW, seed)
    samples = {k: v[index].mean(axis=1) for k, v in deviance.items()}

    def ci(values: np.ndarray) -> list[float]:
        return [float(v) for v in np.percentile(values, [2.5, 97.5])]

    rows = {k: {"deviance": float(v.mean()), "ci95": ci(samples[k])} for k, v in deviance.items()}
    pairs = [("adapter", "scratch"), ("adapter", "scratch, 2x steps")]
    pairs += [("adapter", "train mean rate"), ("scratch", "train mean rate")]
    pairs += [("scratch, 2x steps", "train mean rate"), ("adapter", "adapter, untrained")]
    diffs = {
        f"{a} - {b}": {
            "mean": float(deviance[a].mean() - deviance[b].mean()),
            "ci95": ci(samples[a] - samples[b]),
        }
        for a, b in pairs
    }
    return {"deviance": rows, "differences": diffs}


def run_seed(seed: int, steps: int, n_bootstrap: int) -> dict[str, Any]:
    """Pretrain + adapter and scratch with ``seed``; their held-out co-smoothed deviance."""
    from neurofm.models.neurofm_x.adapters import UnitAdaptedNeuroFMX, count_trainable
    from neurofm.objectives.multitask import poisson_deviance
    from neurofm.registry import MODELS, create
    from neurofm.workflows.spikes_lfp import bin_means, load_grasshopper

    spikes, stimulus, sfreq = load_grasshopper(DATA)
    envelope = bin_means(stimulus, sfreq, BIN)
    first_test = len(envelope) - TEST_BINS
    train_end = first_test - WINDOW  # one window left out between the blocks
    z = (envelope - envelope[:train_end].mean()) / envelope[:train_end].std()
    train_starts = np.arange(0, train_end - WINDOW + 1, STRIDE)
    test_starts = np.arange(first_test, len(envelope) - WINDOW + 1, WINDOW)
    pseudo = [spikes[0::2], spikes[1::2]]
    pseudo_train, test = windows(pseudo, train_starts, z), windows(pseudo, test_starts, z)
    seconds = {}

    torch.manual_seed(seed)
    base = create(MODELS, model_spec(1))
    start = time.perf_counter()
    train(base, windows([spikes], train_starts, z), steps, 0.0, seed)
    seconds["pretrain"] = round(time.perf_counter() - start, 1)
    torch.manual_seed(seed)
    adapter = UnitAdaptedNeuroFMX.create(base, n_units=2, behaviour_head=True)
    deviance = {"adapter, untrained": cosmoothed(adapter, test)}
    start = time.perf_counter()
    train(adapter, pseudo_train, steps, 0.5, seed + 1)
    seconds["adapter"] = round(time.perf_counter() - start, 1)
    deviance["adapter"] = cosmoothed(adapter, test)

    for name, n_steps in (("scratch", steps), ("scratch, 2x steps", 2 * steps)):
        torch.manual_seed(seed)
        scratch = create(MODELS, model_spec(2))
        start = time.perf_counter()
        train(scratch, pseudo_train, n_steps, 0.5, seed + 1)
        seconds[name] = round(time.perf_counter() - start, 1)
        deviance[name] = cosmoothed(scratch, test)

    with torch.no_grad():
        counts = scratch.eval()(test.x).extras["counts"]  # (windows, WINDOW, 2)
        train_counts = scratch(pseudo_train.x).extras["counts"]
    rate = train_counts.reshape(-1, 2).mean(dim=0)  # per unit, over the train windows
    log_rate = rate.log().expand_as(counts)
    deviance["train mean rate"] = poisson_deviance(log_rate, counts).reshape(-1, 2).mean(-1).numpy()
    return {
        "seed": seed,
        **intervals(deviance, n_bootstrap, seed),
        "trained_parameters": {
            "adapter": count_trainable(adapter),
            "scratch": int(sum(p.numel() for p in scratch.parameters())),
        },
        "train_windows": len(train_starts),
        "test_windows": len(test_starts),
        "mean_spikes_per_bin_per_unit": [float(v) for v in rate],
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    runs = seeded_runs(__doc__, OUT, DATA, run_seed, argv)
    if runs is None:
        return 1
    args, results = runs
    report = {
        "benchmark": "spike_adapter_vs_scratch",
        "data": "grasshopper_spike_times1.txt split into two pseudo-units by alternating spikes "
        "(not distinct neurons) + grasshopper_stimulus1.txt",
        "config": str(CONFIG.relative_to(ROOT)) + " (model sizes; 40-bin windows)",
        "steps": args.steps,
        "bin_size_s": BIN,
        "split": f"train: bins before the last {TEST_BINS} less one {WINDOW}-bin window "
        f"(windows every {STRIDE} bins); test: the last {TEST_BINS} bins, consecutive windows",
        "score": "co-smoothed Poisson deviance per bin (each pseudo-unit hidden in turn), "
        "mean over units and bins; lower is better",
        "intervals": f"95% moving-block bootstrap over test bins, blocks of {WINDOW} bins; "
        "differences paired on the same resamples",
        "seeds": results,
        "machine": machine_info(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({r["seed"]: r["deviance"] for r in results}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
