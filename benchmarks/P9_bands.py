"""P9: cumulative frequency-band decomposition vs MNE ``filter_data`` called once per band;
and the ``next_band`` training step vs a plain PyTorch loop over the same module (P3 rule).

Decomposition. Input: 64 channels x 1 h at 160 Hz (``full``; ``smoke``: 64 x 2 min) of float64,
a seeded random walk plus white noise per channel. Bands delta 0.5-4, theta 4-8, alpha 8-13,
beta 13-30, gamma 30-50 Hz. Both sides use the **same filters**: the ones MNE designs for each
band with its defaults (``mne.filter.create_filter``: firwin, Hamming window, automatic length
and transition bands), so that the outputs can be compared sample by sample:

- peer: ``mne.filter.filter_data(x, sfreq, lo, hi)`` once per band (zero phase, MNE's
  overlap-add FFT, its default edge padding ``reflect_limited``: an odd reflection), then the
  running sum over bands;
- ours: :func:`neurofm.tokenizers.bands.apply_filter_bank` with the running sums of the same
  filters (filtering is linear, so a level is one filter) and the same odd reflection at the
  ends (``reflect="odd"``): one FFT per channel, one inverse FFT per level. The time of :func:`~neurofm.tokenizers.bands.cumulative_frequency_levels` with
  neurofm's own filter design (``default_n_taps``) is reported too.

Target: ours >= 1.0x the peer, outputs equal within 1e-6 relative (max |difference| over max
|output| per level).

Training step (``train_step``): the registered ``next_band`` model (``small`` preset, 64
channels, 320 samples, 5 stages; batch 8 (``full``) or 2 (``smoke``)) on random band stacks.
Ours: ``NextBandObjective(model, batch)`` (current-band stack, per-stage metrics, auxiliary
losses), ``backward``, AdamW step; peer: the plain loop ``model(current_bands(x)).prediction`` ->
``F.mse_loss`` -> ``backward`` -> AdamW. Interleaved after a warm-up; target >= 0.90x.

Run: ``python -m benchmarks.P9_bands full`` (or ``smoke``); writes ``benchmarks/results/P9.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F
from benchmarks._common import check_size, interleaved, median, speedup, versions, write_result

from neurofm.tokenizers.bands import DEFAULT_BANDS, apply_filter_bank, cumulative_frequency_levels

SFREQ = 160.0
SECONDS = {"smoke": 120, "full": 3600}
N_CHANS = 64
REPS = {"smoke": 5, "full": 5}
STEP_BATCH = {"smoke": 2, "full": 8}
STEP_REPS = {"smoke": 5, "full": 10}
THREADS = 1


def signal(size: str) -> np.ndarray:
    """The seeded test signal (64, seconds x 160) float64."""
    rng = np.random.default_rng(0)
    n = int(SECONDS[size] * SFREQ)
    walk = np.cumsum(rng.standard_normal((N_CHANS, n)), axis=1) * 0.05
    return walk + rng.standard_normal((N_CHANS, n))


def mne_filters() -> np.ndarray:
    """MNE's default zero-phase FIR of each band, centred and zero-padded to one odd length."""
    import mne

    taps = [
        mne.filter.create_filter(None, SFREQ, lo, hi, phase="zero", verbose="error")
        for lo, hi in DEFAULT_BANDS
    ]
    n = max(len(h) for h in taps)
    out = np.zeros((len(taps), n))
    for k, h in enumerate(taps):
        if len(h) % 2 == 0:
            raise ValueError(f"MNE filter of band {DEFAULT_BANDS[k]} has even length {len(h)}")
        lo = (n - len(h)) // 2
        out[k, lo : lo + len(h)] = h
    return out


def mne_levels(x: np.ndarray) -> np.ndarray:
    """The peer: ``filter_data`` once per band, then the running sum (n_bands, C, T)."""
    import mne

    bands = [mne.filter.filter_data(x, SFREQ, lo, hi, verbose="error") for lo, hi in DEFAULT_BANDS]
    return np.cumsum(bands, axis=0)


def decomposition(size: str) -> dict:
    """Time and compare the decomposition on ``size`` data."""
    x = signal(size)
    taps = mne_filters()
    cumulative = np.cumsum(taps, axis=0)
    ours_out, peer_out = apply_filter_bank(x, cumulative, reflect="odd"), mne_levels(x)
    relative = [
        float(np.abs(ours_out[k] - peer_out[k]).max() / np.abs(peer_out[k]).max())
        for k in range(len(taps))
    ]
    del ours_out, peer_out
    times = interleaved(
        {
            "ours": lambda: apply_filter_bank(x, cumulative, reflect="odd"),
            "peer": lambda: mne_levels(x),
            "ours_own_design": lambda: cumulative_frequency_levels(x, SFREQ, DEFAULT_BANDS),
        },
        reps=REPS[size],
    )
    return {
        "ours": median(times["ours"]),
        "peer": median(times["peer"]),
        "ours_own_design": median(times["ours_own_design"]),
        "speedup": speedup(times["ours"], times["peer"]),
        "max_relative_difference_per_level": relative,
        "max_relative_difference": max(relative),
        "tolerance": 1e-6,
        "filter_length": int(taps.shape[1]),
        "shapes": {
            "x": list(x.shape),
            "dtype": "float64",
            "bands": [list(b) for b in DEFAULT_BANDS],
        },
        "raw_times": times,
    }


def train_step(size: str) -> dict:
    """Time the ``next_band`` objective's step against a plain loop over the same module."""
    from neurofm.objectives.next_band import current_bands
    from neurofm.registry import MODELS, OBJECTIVES, create
    from neurofm.types import Batch

    torch.manual_seed(0)
    model = create(
        MODELS,
        {"name": "next_band", "preset": "small", "n_chans": 64, "n_times": 320, "n_stages": 5},
    ).train()
    objective = create(OBJECTIVES, {"name": "next_band"})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(STEP_BATCH[size], 5, 64, 320)
    batch = Batch(x=x)

    def ours() -> None:
        opt.zero_grad(set_to_none=True)
        objective(model, batch).loss.backward()
        opt.step()

    def peer() -> None:
        opt.zero_grad(set_to_none=True)
        F.mse_loss(model(current_bands(x)).prediction, x).backward()
        opt.step()

    times = interleaved({"peer": peer, "ours": ours}, reps=STEP_REPS[size], warmup=2)
    return {
        "ours": median(times["ours"]),
        "peer": median(times["peer"]),
        "speedup": speedup(times["ours"], times["peer"]),
        "target": 0.90,
        "shapes": {"x": list(x.shape), "model": "next_band small (d_model 128, 2 layers)"},
        "raw_times": times,
    }


def run(size: str = "smoke") -> dict:
    """Run both parts on ``size``; write ``benchmarks/results/P9.json``."""
    check_size(size)
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        bands = decomposition(size)
        step = train_step(size)
    finally:
        torch.set_num_threads(threads)
    result = {
        "what": "cumulative 5-band decomposition (64 ch at 160 Hz) vs MNE filter_data once per "
        "band with the same (MNE-designed) filters; next_band training step vs a plain loop",
        "ours": bands["ours"],
        "peer": bands["peer"],
        "unit": "s (median)",
        "speedup": bands["speedup"],
        "target": 1.0,
        "decomposition": bands,
        "train_step": step,
        "shapes": bands["shapes"],
        "threads": {"torch": THREADS},
        "size": size,
        "versions": versions("mne", "scipy"),
    }
    write_result("P9", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size_arg", nargs="?", choices=("smoke", "full"))
    parser.add_argument("--size", default=None, choices=("smoke", "full"))
    args = parser.parse_args()
    out = run(args.size or args.size_arg or "full")
    print(
        {
            "decomposition_speedup": out["speedup"],
            "max_relative_difference": out["decomposition"]["max_relative_difference"],
            "train_step_speedup": out["train_step"]["speedup"],
        }
    )
