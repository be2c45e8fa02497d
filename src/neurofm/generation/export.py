"""Write generated signals: ``.npy`` (+ a JSON sidecar), ``.fif`` (MNE) and a PNG plot.

Signals are written in physical units (V, T, T/m, ...): when the model was trained on windows
normalised by the store's robust scaler, :func:`to_physical` undoes it per channel first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.errors import ConfigError
from neurofm.fileio import atomic_open, write_json_atomic
from neurofm.types import SensorInfo

# neurofm channel types MNE has no type of its own for, and the MNE type written instead
MNE_TYPE = {"lfp": "seeg", "spikes": "misc"}


def to_physical(
    signal: np.ndarray, names: list[str], scaler: Mapping[str, Any] | None
) -> np.ndarray:
    """``signal * scale + center`` per channel (by name) from a manifest ``scaler``; a copy.

    Parameters
    ----------
    signal : ndarray, shape (C, T)
    names : list of str
        The channel of each row.
    scaler : dict or None
        ``manifest["scaler"]`` (``channels``, ``center``, ``scale``); None returns a copy.
    """
    out = np.array(signal, dtype=np.float64)
    if scaler is None:
        return out
    index = {name: i for i, name in enumerate(scaler["channels"])}
    missing = [n for n in names if n not in index]
    if missing:
        raise ConfigError(f"manifest scaler has no statistics for channels {missing}")
    rows = [index[n] for n in names]
    center = np.asarray(scaler["center"], dtype=np.float64)[rows]
    scale = np.asarray(scaler["scale"], dtype=np.float64)[rows]
    return out * scale[:, None] + center[:, None]


def _check(signal: np.ndarray, sensors: SensorInfo) -> np.ndarray:
    signal = np.asarray(signal)
    if signal.ndim != 2 or signal.shape[0] != sensors.n_chans:
        raise ValueError(f"signal must be (C={sensors.n_chans}, T), got shape {signal.shape}")
    if not np.isfinite(signal).all():
        raise ValueError("signal holds non-finite values")
    return signal


def write_npy(
    path: str | Path,
    signal: np.ndarray,
    *,
    sfreq: float,
    sensors: SensorInfo,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``signal (C, T)`` as float32 ``.npy`` and ``<path>.json`` (channels, units, sfreq, meta)."""
    signal = _check(signal, sensors)
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        np.save(fh, signal.astype(np.float32))
    sidecar = {
        "shape": list(signal.shape),
        "layout": "channels x times",
        "sfreq": float(sfreq),
        "channels": sensors.names,
        "types": sensors.types,
        "units": sensors.units,
        **dict(meta or {}),
    }
    write_json_atomic(path.with_suffix(".json"), json.loads(json.dumps(sidecar, default=str)))
    return path


def write_fif(path: str | Path, signal: np.ndarray, *, sfreq: float, sensors: SensorInfo) -> Path:
    """Write ``signal (C, T)`` in physical units as an MNE raw FIF file (``*_raw.fif``).

    Channel names, types and sampling frequency come from ``sensors``; sensor positions are set
    where known. Types MNE lacks are mapped by ``MNE_TYPE`` (lfp -> seeg, spikes -> misc).
    """
    import mne

    signal = _check(signal, sensors)
    path = Path(path)
    if not path.name.endswith(("_raw.fif", "-raw.fif", "_raw.fif.gz", "-raw.fif.gz")):
        raise ValueError(f"{path}: MNE raw files are named *_raw.fif")
    types = [MNE_TYPE.get(t, t) for t in sensors.types]
    info = mne.create_info(list(sensors.names), float(sfreq), types, verbose="error")
    if sensors.positions is not None:
        for ch, pos in zip(info["chs"], sensors.positions):
            if np.isfinite(pos).all():
                ch["loc"][:3] = pos
    raw = mne.io.RawArray(signal.astype(np.float64), info, verbose="error")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.save(path, overwrite=True, verbose="error")
    return path


def plot_generated(
    path: str | Path,
    signal: np.ndarray,
    *,
    sfreq: float,
    n_prompt: int,
    names: list[str],
    max_chans: int = 6,
) -> Path:
    """PNG of the first ``max_chans`` channels: the prompt in grey, the generated part in red."""
    from matplotlib.figure import Figure

    n = min(max_chans, signal.shape[0])
    fig = Figure(figsize=(9, 1.4 * n + 0.6), dpi=100, layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    t = np.arange(signal.shape[1]) / sfreq
    for ch, ax in enumerate(axes):
        ax.plot(t[: n_prompt + 1], signal[ch, : n_prompt + 1], color="0.45", lw=0.8)
        ax.plot(t[n_prompt:], signal[ch, n_prompt:], color="tab:red", lw=0.8)
        ax.set_ylabel(names[ch], fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"prompt ({n_prompt / sfreq:.2f} s, grey) and generated continuation (red)")
    path = Path(path)
    fig.savefig(path)
    return path


def parse_prompt(prompt: str) -> tuple[str, int, float | None]:
    """``"split:index"`` -> (split, index, None); ``"S"`` (seconds) -> ("test", 0, S)."""
    text = str(prompt).strip()
    if ":" in text:
        split, _, index = text.partition(":")
        if not split or not index.lstrip("-").isdigit() or int(index) < 0:
            raise ConfigError(f"prompt: {prompt!r} is not 'split:index' (e.g. 'test:3') or seconds")
        return split, int(index), None
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(
            f"prompt: {prompt!r} is not 'split:index' (e.g. 'test:3') or seconds (e.g. '1.5')"
        ) from None
    if not seconds > 0:
        raise ConfigError(f"prompt: seconds must be > 0, got {seconds}")
    return "test", 0, seconds


def generate_run(
    run_dir: str | Path,
    *,
    prompt: str = "test:0",
    seconds: float = 2.0,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    output: str | Path | None = None,
    checkpoint: str | None = None,
) -> dict[str, Path]:
    """Continue a held-out window of a run by ``seconds`` and write ``.npy``, ``.fif`` and PNG.

    Parameters
    ----------
    run_dir : path
        A run folder of ``neurofm fit`` (model over codes + tokenizer).
    prompt : str
        ``"split:index"``: the whole window ``index`` of that split; or a number of seconds: the
        first seconds of window 0 of the test split.
    seconds : float
        Length of the generated continuation (s), of any length: past the model's
        ``max_seq_len`` the context slides (see :mod:`neurofm.generation.autoregressive`).
    seed, temperature, top_k, top_p
        Sampling settings (see :func:`neurofm.generation.generate`).
    output : path, optional
        Output folder (default ``<run_dir>/generated``).
    checkpoint : str, optional
        As in :func:`neurofm.training.run.load_run` (default: the final model).

    Returns
    -------
    dict
        Paths of ``npy``, ``json``, ``fif`` and ``png``.
    """
    import torch

    from neurofm.data.collate import collate
    from neurofm.evaluation.rollout import model_context
    from neurofm.generation import generate
    from neurofm.training.run import load_run

    run = load_run(run_dir, checkpoint=checkpoint)
    if run.tokenizer is None:
        raise ConfigError(f"{run_dir}: the run has no tokenizer; generation continues codes")
    split, index, prompt_seconds = parse_prompt(prompt)
    dataset = run.dataset(split)
    if index >= len(dataset):
        raise ConfigError(f"prompt: split {split!r} has {len(dataset)} windows, no window {index}")
    item = dataset[index]
    rec = run.store.recordings[int(item["recording"])]
    sfreq = float(rec.sfreq)
    n_prompt = item["x"].shape[-1]
    if prompt_seconds is not None:
        n_prompt = round(prompt_seconds * sfreq)
        if not 1 <= n_prompt <= item["x"].shape[-1]:
            raise ConfigError(
                f"prompt: {prompt_seconds} s is {n_prompt} samples; a window holds "
                f"1..{item['x'].shape[-1]}"
            )
    n_new = round(seconds * sfreq)
    if n_new < 1:
        raise ConfigError(f"seconds: {seconds} s is {n_new} samples; at least 1 is needed")
    max_len = getattr(run.model, "max_seq_len", None)
    if max_len is not None and n_prompt > max_len:
        raise ConfigError(
            f"prompt: {n_prompt} samples exceed the model's max_seq_len={max_len}; "
            f"give a prompt in seconds of at most {max_len / sfreq:.3f} s"
        )
    batch = collate([item])
    x = batch.x[..., :n_prompt]
    codes = torch.as_tensor(run.tokenizer.encode(x).codes).long()
    context = model_context(run.model, batch)
    context.pop("condition", None)  # no condition is known beyond the prompt
    out = generate(
        run.model,
        codes,
        n_new,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        **context,
    )
    signal = np.asarray(run.tokenizer.decode(out), dtype=np.float64)[0]  # (C, T0 + N)
    channels = run.config["data"].get("channels") or rec.sensors.names
    sensors = rec.sensors.pick([rec.sensors.names.index(n) for n in channels])
    scaler = run.store.manifest.get("scaler") if run.config["data"].get("normalize") else None
    physical = to_physical(signal, sensors.names, scaler)
    folder = Path(output) if output is not None else Path(run_dir) / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "run": str(run_dir),
        "prompt": prompt,
        "prompt_window": {
            "split": split,
            "index": index,
            "recording": rec.id,
            "start_sample": int(item["start"]),
        },
        "n_prompt": int(n_prompt),
        "n_generated": int(n_new),
        "seed": seed,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "first_sample_generated": int(n_prompt),
    }
    paths = {
        "npy": write_npy(
            folder / "generated.npy", physical, sfreq=sfreq, sensors=sensors, meta=meta
        ),
        "fif": write_fif(folder / "generated_raw.fif", physical, sfreq=sfreq, sensors=sensors),
        "png": plot_generated(
            folder / "generated.png", physical, sfreq=sfreq, n_prompt=n_prompt, names=sensors.names
        ),
    }
    paths["json"] = paths["npy"].with_suffix(".json")
    return paths
