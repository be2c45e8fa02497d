"""Spike events as model input: the packed batch layout, its checks, binning and windowing.

A batch of spike events is one float tensor ``x`` of shape ``(B, N, 2 + F)``; row ``n`` of
window ``b`` is one spike:

- column 0: the unit id (an integer in ``[0, n_units)``), or ``-1`` for a padding row;
- column 1: the spike time in seconds from the start of the window;
- columns 2 .. 2 + F: the spike's waveform features (e.g. waveform PCs), when there are any.

Within a window the spikes are sorted by time and padding rows come after every spike (windows
hold different numbers of spikes; :func:`pack_events` pads them to the longest). Nothing is
sorted or dropped silently: :func:`split_events` raises on unsorted spikes, padding before a
spike, ids outside the vocabulary or times outside the window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

PAD_UNIT = -1
"""Unit id of a padding row."""


def pack_events(
    windows: Sequence[tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    n_waveform_features: int = 0,
) -> Tensor:
    """Pack per-window spikes into the padded ``(B, N, 2 + F)`` layout (float64, so that a
    time just inside the window stays inside it).

    Parameters
    ----------
    windows : sequence of (unit_ids, times) or (unit_ids, times, waveforms)
        One entry per window: ``unit_ids`` (n,) ints, ``times`` (n,) seconds from the window
        start, sorted; ``waveforms`` (n, F) when ``n_waveform_features = F > 0``.
    n_waveform_features : int
        F, the features per spike.

    Returns
    -------
    Tensor, shape (B, max n, 2 + F)
        Padding rows have unit id ``-1``, time 0 and zero features.
    """
    n_max = max((len(w[0]) for w in windows), default=0)
    out = np.zeros((len(windows), n_max, 2 + n_waveform_features), dtype=np.float64)
    out[:, :, 0] = PAD_UNIT
    for b, window in enumerate(windows):
        units, times = np.asarray(window[0]), np.asarray(window[1], dtype=np.float64)
        if units.shape != times.shape or units.ndim != 1:
            raise ValueError(
                f"pack_events: window {b}: unit ids {units.shape} and times {times.shape} must "
                "be matching 1-D arrays"
            )
        if np.any(np.diff(times) < 0):
            raise ValueError(f"pack_events: window {b}: spike times are not sorted")
        n = len(units)
        out[b, :n, 0], out[b, :n, 1] = units, times
        if n_waveform_features:
            if len(window) != 3 or np.shape(window[2]) != (n, n_waveform_features):
                raise ValueError(
                    f"pack_events: window {b}: waveforms must be ({n}, {n_waveform_features})"
                )
            out[b, :n, 2:] = window[2]
    return torch.from_numpy(out)


def split_events(
    x: Tensor, *, n_units: int, n_waveform_features: int, window: float
) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """Check a packed batch ``x`` (B, N, 2 + F) and split it into its parts.

    Returns
    -------
    units : LongTensor (B, N)
        Unit ids, padding rows set to 0 (use ``valid``).
    times : Tensor (B, N)
        Spike times (s), padding rows 0.
    waveforms : Tensor (B, N, F) or None
    valid : BoolTensor (B, N)
        True for spikes, False for padding rows.
    """
    width = 2 + n_waveform_features
    if x.ndim != 3 or x.shape[-1] != width:
        raise ValueError(
            f"spike events: expected x (B, N, {width}) = unit id, time (s)"
            f"{', ' + str(n_waveform_features) + ' waveform features' if n_waveform_features else ''}"
            f" per spike, got {tuple(x.shape)}"
        )
    ids, times = x[..., 0], x[..., 1]
    valid = ids != PAD_UNIT
    real_ids = ids[valid]
    if real_ids.numel():
        if (real_ids != real_ids.round()).any() or real_ids.min() < 0 or real_ids.max() >= n_units:
            raise ValueError(
                f"spike events: column 0 (unit id) must hold integers in [0, {n_units}) or -1 "
                f"for padding, got values in [{float(real_ids.min())}, {float(real_ids.max())}]"
            )
        real_times = times[valid]
        if (
            not torch.isfinite(real_times).all()
            or real_times.min() < 0
            or (real_times.max() >= window)
        ):
            raise ValueError(
                f"spike events: column 1 (time) must lie in [0, {window:g}) s, the window, got "
                f"[{float(real_times.min()):g}, {float(real_times.max()):g}]"
            )
    if (valid[:, 1:] & ~valid[:, :-1]).any():
        raise ValueError("spike events: a padding row (unit id -1) comes before a spike")
    later = torch.where(valid, times, torch.full_like(times, float("inf")))
    if (later[:, 1:] < later[:, :-1]).any():
        raise ValueError("spike events: spike times of a window are not sorted")
    units = torch.where(valid, ids, torch.zeros_like(ids)).long()
    times = torch.where(valid, times, torch.zeros_like(times))
    waveforms = x[..., 2:] if n_waveform_features else None
    return units, times, waveforms, valid


def bin_events(
    units: Tensor, times: Tensor, valid: Tensor, *, n_units: int, n_bins: int, bin_size: float
) -> Tensor:
    """Counts (B, n_bins, n_units) of the valid spikes; bin k holds ``[k, k + 1) * bin_size``.

    Bin positions are rounded to 1e-9 bins first (as :func:`neurofm.io.spikes.spikes_to_recording`
    does), so that float error does not move a spike on a bin edge.
    """
    b = units.shape[0]
    position = torch.round(times.double() / bin_size, decimals=9)
    index = torch.floor(position).long().clamp(0, n_bins - 1)
    flat = (index * n_units + units) * valid + (~valid) * (n_bins * n_units)  # padding: extra
    counts = torch.zeros(b, n_bins * n_units + 1, dtype=torch.float32, device=units.device)
    counts.scatter_add_(1, flat, valid.float())
    return counts[:, :-1].reshape(b, n_bins, n_units)


def event_windows(
    spike_times: Sequence[np.ndarray], starts: Sequence[float], window: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The spikes of each window ``[start, start + window)`` of continuous spike trains.

    Parameters
    ----------
    spike_times : sequence of arrays
        Sorted spike times (s) of each unit (the unit id is its index).
    starts : sequence of float
        Window starts (s).
    window : float
        Window length (s).

    Returns
    -------
    list of (unit_ids, times)
        Per window, every spike of every unit inside it, sorted by time (ties by unit id),
        times relative to the window start.
    """
    ids = np.concatenate([np.full(len(t), u) for u, t in enumerate(spike_times)])
    times = np.concatenate([np.asarray(t, dtype=np.float64) for t in spike_times])
    order = np.lexsort((ids, times))
    ids, times = ids[order], times[order]
    out = []
    for start in starts:
        lo, hi = np.searchsorted(times, [start, start + window], side="left")
        out.append((ids[lo:hi], times[lo:hi] - start))
    return out


def pool_steps(y: Tensor, pool: int) -> Tensor:
    """Per-sample targets ``y`` (B, T, F) averaged onto a pooled grid (B, T / pool, F).

    Step ``k`` of the pooled grid covers samples ``[k * pool, (k + 1) * pool)``, as the field
    potential tokens of NeuroFM-X do; ``pool`` must divide T.
    """
    if y.ndim != 3 or y.shape[1] % pool:
        raise ValueError(
            f"pool_steps: expected targets (B, T, F) with T a multiple of pool={pool}, got "
            f"{tuple(y.shape)}"
        )
    b, t, f = y.shape
    return y.reshape(b, t // pool, pool, f).mean(dim=2)
