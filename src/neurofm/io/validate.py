"""Checks of a Recording's samples: non-finite values and flat channels, streamed in chunks."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from neurofm.data.recording import Recording
from neurofm.errors import RecordingError
from neurofm.io.lazy import LazySignal
from neurofm.logging import get_logger

log = get_logger("io")

NAN_POLICIES = ("raise", "mask", "ignore")
FLAT_POLICIES = ("warn", "raise", "ignore")
# channel types that are legitimately constant for long stretches
_MAY_BE_FLAT = {"stim", "spikes"}


def validate_recording(
    recording: Recording,
    *,
    nan_policy: Literal["raise", "mask", "ignore"] = "raise",
    flat_policy: Literal["warn", "raise", "ignore"] = "warn",
    chunk_samples: int | None = None,
) -> Recording:
    """Scan every sample once for NaN/Inf and for flat channels.

    The data is read in time chunks, so a lazy recording is never loaded whole.

    Parameters
    ----------
    recording : Recording
        The recording to check; ``data`` is ``(C, T)``.
    nan_policy : {"raise", "mask", "ignore"}
        ``"raise"``: a RecordingError naming the file, channel and first bad sample (an all-NaN
        channel is named as such). ``"mask"``: the bad samples are listed in
        ``meta["nonfinite_intervals"]`` (channel -> ``[[start, stop), ...]`` sample runs) and
        read as 0.0 from the returned recording. ``"ignore"``: no check.
    flat_policy : {"warn", "raise", "ignore"}
        What to do with a channel whose finite samples are all equal (stim and spike channels
        are exempt). Flat channels are listed in ``meta["flat_channels"]``, never dropped.
    chunk_samples : int or None
        Samples per chunk; default keeps a chunk near 32 MB.

    Returns
    -------
    Recording
        ``recording`` itself, or a copy with updated ``meta`` (and masked data for ``"mask"``).
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    if flat_policy not in FLAT_POLICIES:
        raise ValueError(f"flat_policy must be one of {FLAT_POLICIES}, got {flat_policy!r}")
    if nan_policy == "ignore" and flat_policy == "ignore":
        return recording
    path = recording.source.get("path")
    names = recording.sensors.names
    n_chans, n_times = recording.n_chans, recording.n_times
    chunk = chunk_samples or max(1, (1 << 22) // max(n_chans, 1))
    low = np.full(n_chans, np.inf)
    high = np.full(n_chans, -np.inf)
    n_finite = np.zeros(n_chans, dtype=np.int64)
    runs: dict[str, list[list[int]]] = {}
    for start in range(0, n_times, chunk):
        block = np.asarray(recording.data[:, start : start + chunk], dtype=np.float64)
        finite = np.isfinite(block)
        n_finite += finite.sum(axis=1)
        if nan_policy != "ignore" and not finite.all():
            _collect_bad(~finite, start, names, runs, nan_policy, path, n_times, recording)
        masked = np.where(finite, block, np.nan)
        with np.errstate(invalid="ignore"):
            low = np.fmin(low, np.nanmin(masked, axis=1, initial=np.inf))
            high = np.fmax(high, np.nanmax(masked, axis=1, initial=-np.inf))
    meta = dict(recording.meta)
    flat = [
        names[i]
        for i in range(n_chans)
        if n_finite[i] > 1 and low[i] == high[i] and recording.sensors.types[i] not in _MAY_BE_FLAT
    ]
    if flat_policy != "ignore":
        meta["flat_channels"] = flat
        if flat:
            message = f"flat channel(s) (every sample equal): {flat}"
            if flat_policy == "raise":
                raise RecordingError(message, path=path, channel=flat[0])
            log.warning("%s: %s; kept (flat_policy='warn')", path, message)
    data = recording.data
    if runs:
        meta["nonfinite_intervals"] = runs
        total = sum(stop - start for r in runs.values() for start, stop in r)
        log.warning(
            "%s: %d non-finite sample(s) in %d channel(s) read as 0.0 (nan_policy='mask')",
            path,
            total,
            len(runs),
        )
        data = _masked(data)
    return replace(recording, data=data, meta=meta)


def check_finite(recording: Recording, *, chunk_samples: int | None = None) -> Recording:
    """Raise a RecordingError naming file, channel and sample at the first NaN/Inf sample."""
    return validate_recording(
        recording, nan_policy="raise", flat_policy="ignore", chunk_samples=chunk_samples
    )


def _collect_bad(
    bad: np.ndarray,
    start: int,
    names: list[str],
    runs: dict[str, list[list[int]]],
    nan_policy: str,
    path: str | None,
    n_times: int,
    recording: Recording,
) -> None:
    """Raise at the earliest bad sample, or add this chunk's bad runs to ``runs``."""
    if nan_policy == "raise":
        first_time = int(np.flatnonzero(bad.any(axis=0))[0])
        channel = int(np.flatnonzero(bad[:, first_time])[0])
        value = float(np.asarray(recording.data[channel, start + first_time]))
        whole = np.asarray(recording.data[channel, :])
        if not np.isfinite(whole).any():
            raise RecordingError(
                f"channel is entirely non-finite (all {n_times} samples)",
                path=path,
                channel=names[channel],
                sample=start + first_time,
            )
        raise RecordingError(
            f"non-finite value ({value}) in the data",
            path=path,
            channel=names[channel],
            sample=start + first_time,
        )
    for channel in np.flatnonzero(bad.any(axis=1)):
        row = np.concatenate([[False], bad[channel], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(row))
        chan_runs = runs.setdefault(names[channel], [])
        for run_start, run_stop in zip(edges[::2], edges[1::2]):
            begin, end = int(start + run_start), int(start + run_stop)
            if chan_runs and chan_runs[-1][1] == begin:
                chan_runs[-1][1] = end
            else:
                chan_runs.append([begin, end])


def _masked(data: object) -> object:
    """``data`` with non-finite samples reading as 0.0."""
    if isinstance(data, LazySignal):
        return LazySignal(data.raw, path=data.path, nonfinite_fill=0.0)
    array = np.asarray(data)
    return np.where(np.isfinite(array), array, 0.0)
