"""``neurofm stimulus`` and ``neurofm lfp``: NeuroFM-X on spike events (stimulus decoding against
a ridge baseline) and on field potentials (training with the contrastive term)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional


def _write(report: dict, output: Optional[str], name: str) -> None:
    text = json.dumps(report, indent=2)
    if output is None:
        print(text)
        return
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(text)
    print(f"report: {out / name}")


def stimulus(
    folder: str,
    steps: int = 300,
    lr: float = 1e-2,
    read_radius: int = 2,
    seed: int = 0,
    threads: Optional[int] = None,
    output: Optional[str] = None,
) -> None:
    """Stimulus-envelope R² of a spike-event model on a held-out time block vs ridge.

    Trains a ``neurofm_x`` model with ``modality: spikes`` on the first 80% of a recording of
    one unit's spike times with its stimulus (the grasshopper files), and scores the envelope R²
    per 5 ms bin on the last 20% (block-bootstrap 95% intervals) next to a ridge regression on
    the binned counts of the bins around each bin. Writes ``stimulus.json`` to ``output``.

    Args:
        folder: folder with ``grasshopper_spike_times1.txt`` and ``grasshopper_stimulus1.txt``.
        steps: optimizer steps.
        lr: AdamW learning rate.
        read_radius: bins around each bin whose spikes its query reads (0: all).
        seed: seed of the model and the windows.
        threads: torch CPU threads.
        output: folder for ``stimulus.json``.
    """
    import torch

    from neurofm.workflows.spikes_lfp import StimulusConfig, stimulus_decoding

    if threads is not None:
        torch.set_num_threads(threads)
    cfg = StimulusConfig(steps=steps, lr=lr, seed=seed)
    cfg.model["read_radius"] = read_radius
    report = stimulus_decoding(folder, cfg)
    report["model_config"] = cfg.model
    report["lr"] = lr
    _write(report, output, "stimulus.json")


def lfp(
    file: str,
    steps: int = 60,
    seed: int = 0,
    threads: Optional[int] = None,
    output: Optional[str] = None,
) -> None:
    """Train a field-potential model (``modality: lfp``) on the first 80% of an LFP ``.npy``.

    Scales the channels with the ``lfp_tokens`` statistics fitted on the train part, trains with
    the band-power read-out and the contrastive term, and reports the loss on the train windows
    and on held-out windows of the last 20% before and after training. Writes ``lfp.json``.

    Args:
        file: ``.npy`` of one or more channels at 1000 Hz.
        steps: optimizer steps.
        seed: seed of the model and the windows.
        threads: torch CPU threads.
        output: folder for ``lfp.json``.
    """
    import torch

    from neurofm.workflows.spikes_lfp import LFPConfig, lfp_training

    if threads is not None:
        torch.set_num_threads(threads)
    _write(lfp_training(file, LFPConfig(steps=steps, seed=seed)), output, "lfp.json")
