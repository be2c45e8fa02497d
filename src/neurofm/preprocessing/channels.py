"""Channel-level steps: pick by type, mark / drop / interpolate bad channels, sensor positions,
re-referencing. Pure functions ``Recording -> Recording``; each logs what it did in
``meta["preprocessing"]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurofm.data.recording import Recording
from neurofm.errors import RecordingError
from neurofm.preprocessing._base import CHUNK_SAMPLES, check_finite, logged, where
from neurofm.types import CHANNEL_TYPES, SensorInfo

INTERPOLATED_TYPES = ("eeg",)
"""Channel types :func:`interpolate_bads` handles (spherical splines need scalp positions)."""


def _select(recording: Recording, keep: np.ndarray) -> Recording:
    """The channels ``keep`` (indices, in order) as a float32 in-memory recording."""
    data = np.empty((keep.size, recording.n_times), dtype=np.float32)
    for start in range(0, recording.n_times, CHUNK_SAMPLES):
        stop = min(start + CHUNK_SAMPLES, recording.n_times)
        data[:, start:stop] = np.asarray(recording.data[keep, start:stop])
    return Recording(
        data=data,
        sfreq=recording.sfreq,
        sensors=recording.sensors.pick(keep),
        first_time=recording.first_time,
        events=recording.events,
        subject=recording.subject,
        session=recording.session,
        task=recording.task,
        run=recording.run,
        source=recording.source,
        meta=recording.meta,
    )


def pick_types(recording: Recording, types: Sequence[str]) -> Recording:
    """Keep the channels whose type is in ``types``, in their original order.

    Raises a RecordingError when an entry of ``types`` is unknown or no channel is left.
    """
    unknown = sorted(set(types) - set(CHANNEL_TYPES))
    if unknown:
        raise RecordingError(
            f"pick_types: unknown channel types {unknown}; allowed: {', '.join(CHANNEL_TYPES)}",
            path=where(recording),
        )
    keep = np.asarray(
        [i for i, t in enumerate(recording.sensors.types) if t in types], dtype=np.int64
    )
    if keep.size == 0:
        raise RecordingError(
            f"pick_types: no channel of types {list(types)}; the recording has "
            f"{recording.sensors.counts_by_type()}",
            path=where(recording),
        )
    dropped = [n for i, n in enumerate(recording.sensors.names) if i not in set(keep.tolist())]
    picked = _select(recording, keep)
    return logged(picked, {"step": "pick_types", "types": list(types), "dropped": dropped})


def mark_bads(
    recording: Recording,
    *,
    channels: Sequence[str] = (),
    flat: float | None = None,
    z_threshold: float | None = None,
) -> Recording:
    """Mark channels bad: by name, when flat, or when their spread is an outlier.

    Parameters
    ----------
    recording : Recording
        Input recording, ``(C, T)``.
    channels : sequence of str
        Names to mark bad.
    flat : float or None
        Mark a channel whose standard deviation is below ``flat`` (its physical unit).
    z_threshold : float or None
        Mark a channel whose log standard deviation lies more than ``z_threshold`` robust
        z-scores (median / 1.4826 MAD) from the other channels of its type.

    Returns
    -------
    Recording
        Same data; ``sensors.bads`` extended; the log entry names each channel and the reason.
    """
    names = recording.sensors.names
    missing = [c for c in channels if c not in names]
    if missing:
        raise RecordingError(
            f"mark_bads: channels not in the recording: {missing}", path=where(recording)
        )
    reasons = {c: "listed" for c in channels}
    if flat is not None or z_threshold is not None:
        data = np.asarray(recording.data)
        check_finite(data, recording, before="bad-channel detection")
        std = np.array([np.std(data[i], dtype=np.float64) for i in range(recording.n_chans)])
        if flat is not None:
            reasons.update({names[i]: "flat" for i in np.flatnonzero(std < flat)})
        if z_threshold is not None:
            types = np.asarray(recording.sensors.types)
            for kind in set(recording.sensors.types):
                idx = np.flatnonzero((types == kind) & (std > 0))
                if idx.size < 3:
                    continue
                spread = np.log(std[idx])
                mad = 1.4826 * np.median(np.abs(spread - np.median(spread)))
                if mad == 0:
                    continue
                z = (spread - np.median(spread)) / mad
                reasons.update({names[i]: "outlier" for i in idx[np.abs(z) > z_threshold]})
    new = [n for n in names if n in reasons and n not in recording.sensors.bads]
    sensors = _with_bads(recording.sensors, recording.sensors.bads + new)
    return logged(
        recording, {"step": "mark_bads", "marked": {n: reasons[n] for n in new}}, sensors=sensors
    )


def drop_bads(recording: Recording) -> Recording:
    """Remove the channels marked bad (listed in the log entry)."""
    bads = set(recording.sensors.bads)
    keep = np.asarray(
        [i for i, n in enumerate(recording.sensors.names) if n not in bads], dtype=np.int64
    )
    if keep.size == 0:
        raise RecordingError("drop_bads: every channel is marked bad", path=where(recording))
    kept = _select(recording, keep) if bads else recording
    return logged(kept, {"step": "drop_bads", "dropped": sorted(bads)})


def set_montage(recording: Recording, montage: str) -> Recording:
    """Set EEG sensor positions (metres, head frame) from one of MNE's built-in montages.

    Channel names are matched case-insensitively after removing the ``.`` padding that EDF
    files add (``"Fc5."`` matches ``FC5``). EEG channels without a match raise an error naming
    them.
    """
    import mne

    eeg = [i for i, t in enumerate(recording.sensors.types) if t == "eeg"]
    if not eeg:
        raise RecordingError("set_montage: the recording has no EEG channel", path=where(recording))
    names = [recording.sensors.names[i] for i in eeg]
    clean = [n.strip(".") for n in names]
    info = mne.create_info(clean, recording.sfreq, "eeg")
    try:
        info.set_montage(montage, match_case=False, on_missing="raise", verbose="error")
    except ValueError as err:
        raise RecordingError(f"set_montage({montage!r}): {err}", path=where(recording)) from err
    positions = (
        np.full((recording.n_chans, 3), np.nan)
        if recording.sensors.positions is None
        else recording.sensors.positions.copy()
    )
    for row, ch in zip(eeg, info["chs"]):
        positions[row] = ch["loc"][:3]
    sensors = SensorInfo(
        names=recording.sensors.names,
        types=recording.sensors.types,
        units=recording.sensors.units,
        positions=positions,
        orientations=recording.sensors.orientations,
        bads=recording.sensors.bads,
    )
    return logged(
        recording,
        {"step": "set_montage", "montage": montage, "n_channels": len(eeg)},
        sensors=sensors,
    )


def interpolate_bads(recording: Recording) -> Recording:
    """Replace bad EEG channels by spherical-spline interpolation (MNE) and clear their flag.

    Needs 3-D positions of the EEG channels (see :func:`set_montage`). Bad channels of other
    types raise an error (use ``drop_bads`` for them).
    """
    import mne

    bads = list(recording.sensors.bads)
    if not bads:
        return logged(recording, {"step": "interpolate_bads", "interpolated": []})
    types = recording.sensors.types
    names = recording.sensors.names
    other = [b for b in bads if types[names.index(b)] not in INTERPOLATED_TYPES]
    if other:
        raise RecordingError(
            f"interpolate_bads: cannot interpolate channels of types other "
            f"than {INTERPOLATED_TYPES}: {other}; use drop_bads",
            path=where(recording),
        )
    eeg = np.asarray([i for i, t in enumerate(types) if t == "eeg"], dtype=np.int64)
    positions = recording.sensors.positions
    if positions is None or not np.isfinite(positions[eeg]).all():
        raise RecordingError(
            "interpolate_bads: EEG channels need 3-D positions; add a set_montage step first",
            path=where(recording),
        )
    block = np.asarray(recording.data[eeg, :], dtype=np.float64)
    good = np.asarray([names[i] not in bads for i in eeg])
    check_finite(block[good], recording, channels=eeg[good], before="interpolation")
    eeg_names = [names[i] for i in eeg]
    info = mne.create_info(eeg_names, recording.sfreq, "eeg")
    raw = mne.io.RawArray(block, info, verbose="error")
    montage = mne.channels.make_dig_montage(
        ch_pos=dict(zip(eeg_names, positions[eeg])), coord_frame="head"
    )
    raw.set_montage(montage, verbose="error")
    raw.info["bads"] = bads
    raw.interpolate_bads(reset_bads=True, verbose="error")
    data = np.array(recording.data, dtype=np.float32)
    data[eeg] = raw.get_data()
    sensors = _with_bads(recording.sensors, [])
    return logged(
        recording, {"step": "interpolate_bads", "interpolated": bads}, data=data, sensors=sensors
    )


def rereference(
    recording: Recording, ref: str = "average", *, types: Sequence[str] = ("eeg",)
) -> Recording:
    """Re-reference the channels of ``types`` to their average or to one channel.

    Parameters
    ----------
    recording : Recording
        Input recording, ``(C, T)``.
    ref : str
        ``"average"`` (mean of the good channels of ``types``) or a channel name. A reference
        channel would become all zeros, so it is removed (the log entry says so).
    types : sequence of str
        Channel types re-referenced; other channels are copied unchanged.
    """
    names, bads = recording.sensors.names, set(recording.sensors.bads)
    target = np.asarray(
        [i for i, t in enumerate(recording.sensors.types) if t in types], dtype=np.int64
    )
    if target.size == 0:
        raise RecordingError(
            f"rereference: no channel of types {list(types)}", path=where(recording)
        )
    if ref == "average":
        ref_rows = np.asarray([i for i in target if names[i] not in bads], dtype=np.int64)
        if ref_rows.size == 0:
            raise RecordingError(
                "rereference: every channel to average is marked bad", path=where(recording)
            )
    elif ref in names:
        ref_rows = np.asarray([names.index(ref)], dtype=np.int64)
    else:
        raise RecordingError(
            f"rereference: reference must be 'average' or a channel name, got {ref!r}",
            path=where(recording),
        )
    data = np.array(recording.data, dtype=np.float32)
    for start in range(0, recording.n_times, CHUNK_SAMPLES):
        chunk = slice(start, start + CHUNK_SAMPLES)
        reference = data[ref_rows, chunk].mean(axis=0, dtype=np.float64)
        data[target, chunk] = data[target, chunk] - reference.astype(np.float32)
    out = logged(
        recording,
        {"step": "rereference", "ref": ref, "n_reference_channels": int(ref_rows.size)},
        data=data,
    )
    if ref != "average":
        keep = np.asarray([i for i in range(recording.n_chans) if names[i] != ref])
        out = _select(out, keep)
    return out


def _with_bads(sensors: SensorInfo, bads: list[str]) -> SensorInfo:
    return SensorInfo(
        names=sensors.names,
        types=sensors.types,
        units=sensors.units,
        positions=sensors.positions,
        orientations=sensors.orientations,
        bads=bads,
    )
