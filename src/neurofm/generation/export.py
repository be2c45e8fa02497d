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
