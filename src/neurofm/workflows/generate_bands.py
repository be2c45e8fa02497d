"""``neurofm generate`` for next-band models: a rollout over the frequency stages of a run.

From the lowest band of a held-out window (or unconditionally from zeros), the model generates
every cumulative band (:func:`~neurofm.generation.next_band.generate_bands`); written are
``rollout.npy`` (num_stages, C, T) float32 with ``rollout.json`` (settings, bands, sfreq),
(the VAR variant: codes drawn stage by stage, decoded by the run's ``band_rvq`` tokenizer),
``rollout.png`` (one channel, every stage, over the real window's bands) and
``rollout_metrics.json`` (per-stage MSE, SNR, cumulative MSE on that channel and on all).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.errors import ConfigError
from neurofm.fileio import atomic_open


def generate_bands_run(
    run: Any,
    *,
    split: str,
    index: int,
    channel: int = 0,
    unconditional: bool = False,
    output: str | Path,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> dict[str, Path]:
    """Roll out the stages of ``run``'s model from window ``index`` of ``split``; write files.

    Band-token models (spec sampling ``band_tokens``) draw the codes of each stage with
    ``seed``, ``temperature`` and ``top_k`` (from the window's stage-0 codes, or from the start
    with ``unconditional``), conditioned on the window's label when the run trains on labels,
    and are decoded by the run's tokenizer.
    """
    import torch

    from neurofm.evaluation.next_band import plot_band_rollout, rollout_metrics
    from neurofm.generation.next_band import generate_bands
    from neurofm.registry import model_spec
    from neurofm.training.data import data_sfreq

    dataset = run.dataset(split)
    if index >= len(dataset):
        raise ConfigError(f"prompt: split {split!r} has {len(dataset)} windows, no window {index}")
    truth = np.asarray(dataset[index]["x"], dtype=np.float32)  # (L, C, T)
    if not 0 <= channel < truth.shape[1]:
        raise ConfigError(f"channel: {channel} is not among the {truth.shape[1]} channels")
    if model_spec(run.model).sampling == "band_tokens":
        item = dataset[index]
        label = None
        if run.config.get("objective", {}).get("use_labels"):
            label = torch.tensor([int(item["label"])])
        rollout = _token_rollout(run, truth, label, unconditional, seed, temperature, top_k)
    elif unconditional:
        rollout = generate_bands(
            run.model, n_stages=truth.shape[0], n_chans=truth.shape[1], n_times=truth.shape[2]
        )[0]
    else:
        rollout = generate_bands(run.model, torch.from_numpy(truth[0]))
    rollout = rollout.float().numpy()
    sfreq = data_sfreq(run.store, dataset)
    bands = run.config["data"].get("bands") or [list(b) for b in getattr(dataset, "bands", [])]
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    first = 0 if unconditional else 1
    metrics = {
        "all_channels": rollout_metrics(truth, rollout, first),
        "channel": channel,
        "channel_metrics": rollout_metrics(
            truth[:, channel : channel + 1], rollout[:, channel : channel + 1], first
        ),
    }
    meta = {
        "run": str(run.run_dir),
        "split": split,
        "index": index,
        "unconditional": unconditional,
        "shape": list(rollout.shape),
        "sfreq": sfreq,
        "bands": bands,
    }
    paths = {"npy": folder / "rollout.npy", "json": folder / "rollout.json"}
    np.save(paths["npy"], rollout)
    for name, content in (("json", meta), ("metrics", metrics)):
        path = paths.get(name, folder / "rollout_metrics.json")
        with atomic_open(path, "w") as fh:
            json.dump(content, fh, indent=2)
        paths[name] = path
    start = "zeros" if unconditional else "the lowest band"
    paths["png"] = plot_band_rollout(
        folder / "rollout.png",
        truth[:, channel],
        rollout[:, channel],
        sfreq=sfreq,
        bands=bands,
        title=f"{split} window {index}, channel {channel}: rollout from {start}",
    )
    return paths


def _token_rollout(
    run: Any,
    truth: np.ndarray,
    label: Any,
    unconditional: bool,
    seed: int,
    temperature: float,
    top_k: int | None,
) -> Any:
    """Levels (L, C, T) decoded from codes drawn stage by stage (from the true stage 0)."""
    import torch

    from neurofm.generation.band_tokens import generate_band_tokens

    tokenizer = run.tokenizer
    if tokenizer is None:
        raise ConfigError(f"{run.run_dir}: a band-token run needs its band_rvq tokenizer")
    codes = torch.as_tensor(tokenizer.encode(torch.from_numpy(truth[None])).codes)
    first = tokenizer.config.stage_tokens[0]
    drawn = generate_band_tokens(
        run.model,
        prompt=None if unconditional else codes[:, :first],
        label=label,
        temperature=temperature,
        top_k=top_k,
        generator=torch.Generator().manual_seed(seed),
    )
    return tokenizer.decode_stages(drawn)[0]
