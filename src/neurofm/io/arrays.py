"""Readers of plain arrays: ``.npy``, ``.npz`` (incl. the next-band format), MATLAB ``.mat``
binned spike counts, and text columns (spike times, or time + samples)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.data.recording import Events, Recording
from neurofm.errors import RecordingError
from neurofm.io.spikes import spikes_to_recording
from neurofm.types import SensorInfo

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_KINDS = {
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "V": "records",
    "M": "dates",
    "m": "durations",
}


def describe_channels(
    n_chans: int,
    *,
    path: Path,
    ch_names: list[str] | None,
    ch_types: str | list[str] | dict[str, str] | None,
    stored_names: Any = None,
    stored_types: Any = None,
) -> SensorInfo:
    """Channel description of an array file from the file's own fields or the caller's.

    ``ch_types`` may be one type for every channel, a list, or (with names) a dict by name.
    When only types are known, names are ``ch000``, ``ch001``, ...
    """
    names = (
        list(ch_names)
        if ch_names is not None
        else (None if stored_names is None else [str(n) for n in np.asarray(stored_names).tolist()])
    )
    types: Any = (
        ch_types
        if ch_types is not None
        else (None if stored_types is None else [str(t) for t in np.asarray(stored_types).tolist()])
    )
    if types is None:
        raise RecordingError(
            "the file does not describe its channels: pass ch_types (one type or a list; "
            "ch_names optional) or store 'ch_types' (and 'ch_names') in the file",
            path=str(path),
        )
    if names is None:
        names = [f"ch{i:03d}" for i in range(n_chans)]
    if isinstance(types, str):
        types = [types] * len(names)
    elif isinstance(types, dict):
        unknown = sorted(set(types) - set(names))
        if unknown:
            raise RecordingError(
                f"ch_types names channels not in the file: {unknown}", path=str(path)
            )
        types = [types.get(n, "misc") for n in names]
    if len(names) != n_chans or len(types) != n_chans:
        raise RecordingError(
            f"the data has {n_chans} channels (rows of a (n_chans, n_times) array) but "
            f"{len(names)} names and {len(types)} types were given",
            path=str(path),
        )
    try:
        return SensorInfo(names=names, types=list(types))
    except ValueError as err:
        raise RecordingError(str(err), path=str(path)) from err


def _sfreq(path: Path, given: float | None, stored: Any, field: str = "sfreq") -> float:
    if given is not None:
        if stored is not None and not np.isclose(float(stored), given):
            raise RecordingError(
                f"sfreq={given} was given but the file's {field!r} is {float(stored)}",
                path=str(path),
            )
        return float(given)
    if stored is None:
        raise RecordingError(
            f"missing sampling frequency: the file has no {field!r} field; pass sfreq=<Hz>",
            path=str(path),
        )
    return float(np.asarray(stored))


def _as_2d(array: np.ndarray, path: Path, field: str) -> np.ndarray:
    """``array`` as ``(n_chans, n_times)``; only real numbers (ints, floats, bools) are samples."""
    if array.dtype.kind == "c":
        raise RecordingError(
            f"{field!r} holds complex numbers ({array.dtype}); store the real signal (or its "
            "real and imaginary parts as separate channels)",
            path=str(path),
        )
    if array.dtype.kind not in "biuf":
        raise RecordingError(
            f"{field!r} holds {array.dtype} values ({_KINDS.get(array.dtype.kind, 'not numbers')}),"
            " not numeric samples",
            path=str(path),
        )
    if array.ndim == 1:
        return array[None, :]
    if array.ndim != 2:
        raise RecordingError(
            f"{field!r} has shape {array.shape}; expected (n_chans, n_times) or (n_times,)",
            path=str(path),
        )
    return array


def _load_problem(kind: str, err: Exception) -> str:
    """Why numpy could not load an array file, in words."""
    if "object" in str(err).lower() or "pickle" in str(err).lower():
        return (
            f"cannot read as {kind}: the array holds Python objects, not numeric samples "
            "(loading them would unpickle, which neurofm never does)"
        )
    return f"cannot read as {kind}: {err} (truncated or corrupt)"


def read_npy(
    path: Path, *, preload: bool, sfreq: float | None, ch_names: list[str] | None, ch_types: Any
) -> Recording:
    """A ``(n_chans, n_times)`` or ``(n_times,)`` array; memory-mapped unless ``preload``."""
    try:
        array = np.load(path, mmap_mode=None if preload else "r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise RecordingError(_load_problem(".npy", err), path=str(path)) from err
    data = _as_2d(array, path, "array")
    sensors = describe_channels(data.shape[0], path=path, ch_names=ch_names, ch_types=ch_types)
    return Recording(data=data, sfreq=_sfreq(path, sfreq, None), sensors=sensors)


def read_npz(
    path: Path, *, sfreq: float | None, ch_names: list[str] | None, ch_types: Any
) -> Recording:
    """Fields ``signal`` or ``data`` (C, T), ``sfreq``, optional ``ch_names``/``ch_types``;
    the next-band fields ``bands`` and ``cumulative_bands`` go to ``meta``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            fields = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise RecordingError(_load_problem(".npz", err), path=str(path)) from err
    key = next((k for k in ("signal", "data") if k in fields), None)
    if key is None:
        raise RecordingError(
            f"no 'signal' or 'data' field; fields are {sorted(fields)}", path=str(path)
        )
    data = _as_2d(fields[key], path, key)
    sensors = describe_channels(
        data.shape[0],
        path=path,
        ch_names=ch_names,
        ch_types=ch_types,
        stored_names=fields.get("ch_names"),
        stored_types=fields.get("ch_types"),
    )
    meta: dict[str, Any] = {}
    if "bands" in fields:
        meta["bands"] = np.asarray(fields["bands"], dtype=np.float64).tolist()
    if "cumulative_bands" in fields:
        meta["cumulative_bands"] = fields["cumulative_bands"]
    return Recording(
        data=data, sfreq=_sfreq(path, sfreq, fields.get("sfreq")), sensors=sensors, meta=meta
    )


def read_mat(path: Path, *, bin_size: float | None, part: str | None) -> list[Recording]:
    """Binned spike counts from a MATLAB file with ``Y<part>`` (bins x units) variables.

    Velocity ``X<part>`` (bins x 2) and target ``T<part>`` (bins x 1) go to ``meta`` and the
    target runs become ``target`` events. The file does not state the bin width, so
    ``bin_size`` (s) must be given. ``part`` picks ``"tr"``/``"train"`` or ``"te"``/``"test"``;
    without it every part is returned.
    """
    import scipy.io

    try:
        content = scipy.io.loadmat(path)
    # scipy raises NotImplementedError for MATLAB v7.3 (HDF5) files; all become one clear error
    except (ValueError, OSError, TypeError, NotImplementedError) as err:
        raise RecordingError(f"cannot read as MATLAB .mat: {err}", path=str(path)) from err
    found = [key for key in content if key.startswith("Y") and np.ndim(content[key]) == 2]
    # training part first, then the others in file order
    parts = {key[1:]: key for key in sorted(found, key=lambda k: k != "Ytr")}
    if not parts:
        variables = sorted(k for k in content if not k.startswith("__"))
        raise RecordingError(
            f"no binned-count variable 'Y<part>' (bins x units); variables are {variables}",
            path=str(path),
        )
    if bin_size is None:
        raise RecordingError(
            "the file does not state its bin width: pass bin_size=<seconds>", path=str(path)
        )
    aliases = {"train": "tr", "test": "te"}
    if part is not None:
        wanted = aliases.get(part, part)
        if wanted not in parts:
            raise RecordingError(
                f"no part {part!r}; the file holds {sorted(parts)}", path=str(path)
            )
        parts = {wanted: parts[wanted]}
    out = []
    for name, key in parts.items():
        counts = np.asarray(content[key]).T.astype(np.float64)  # (units, bins)
        integral = bool(np.all(counts == np.round(counts)))
        n_units = counts.shape[0]
        names = [f"unit{i:03d}" for i in range(n_units)]
        types = ["spikes"] * n_units
        units = ["count" if integral else "Hz"] * n_units
        meta: dict[str, Any] = {"part": name, "bin_size": float(bin_size)}
        events = Events()
        if f"X{name}" in content:
            velocity = np.asarray(content[f"X{name}"], dtype=np.float64)
            if velocity.ndim != 2 or velocity.shape[0] != counts.shape[1]:
                raise RecordingError(
                    f"X{name} has shape {velocity.shape}; expected ({counts.shape[1]}, K): one "
                    f"row per bin of {key}",
                    path=str(path),
                )
            meta["velocity"] = velocity
            # the behaviour rides along as channels: a prepared store keeps it next to the counts
            axes = "xyz" if velocity.shape[1] <= 3 else [str(k) for k in range(velocity.shape[1])]
            names += [f"velocity_{axes[k]}" for k in range(velocity.shape[1])]
            types += ["misc"] * velocity.shape[1]
            units += ["a.u."] * velocity.shape[1]
            counts = np.concatenate([counts, velocity.T])
        sensors = SensorInfo(names=names, types=types, units=units)
        if f"T{name}" in content:
            target = np.asarray(content[f"T{name}"]).reshape(-1).astype(np.int64)
            meta["target"] = target
            events = _runs_as_events(target, bin_size)
        out.append(
            Recording(data=counts, sfreq=1.0 / bin_size, sensors=sensors, events=events, meta=meta)
        )
    return out


def _runs_as_events(labels: np.ndarray, bin_size: float) -> Events:
    """One ``target`` event per run of equal labels, payload ``{"target": id}``."""
    if labels.size == 0:
        return Events()
    starts = np.concatenate([[0], np.flatnonzero(np.diff(labels)) + 1])
    stops = np.concatenate([starts[1:], [labels.size]])
    return Events(
        starts * bin_size,
        (stops - starts) * bin_size,
        ["target"] * starts.size,
        [{"target": int(labels[s])} for s in starts],
    )


def read_text(
    path: Path,
    *,
    time_unit: str | None,
    bin_size: float | None,
    ch_names: list[str] | None,
    ch_types: Any,
) -> Recording:
    """Text columns (``#`` comments): one column = spike times, binned with ``bin_size``;
    two or more = a time column then one column per channel, sampled at a constant step."""
    if time_unit not in TIME_UNITS:
        raise RecordingError(
            f"text files do not state their time unit: pass time_unit, one of {sorted(TIME_UNITS)}",
            path=str(path),
        )
    scale = TIME_UNITS[time_unit]
    try:
        table = np.loadtxt(path, comments="#", ndmin=2, delimiter=None)
    except ValueError as err:
        raise RecordingError(
            f"cannot parse as numeric text columns: {err}", path=str(path)
        ) from err
    if table.size == 0:
        raise RecordingError("no numbers in the file", path=str(path))
    if table.shape[1] == 1:
        if bin_size is None:
            raise RecordingError(
                "one column of spike times: pass bin_size=<seconds>", path=str(path)
            )
        return spikes_to_recording(
            [table[:, 0] * scale], bin_size=bin_size, unit_names=ch_names or ["unit000"]
        )
    times = table[:, 0] * scale
    steps = np.diff(times)
    if steps.size == 0 or steps.min() <= 0 or not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise RecordingError("the time column is not evenly spaced and increasing", path=str(path))
    data = np.ascontiguousarray(table[:, 1:].T)
    sensors = describe_channels(
        data.shape[0], path=path, ch_names=ch_names, ch_types=ch_types or "misc"
    )
    return Recording(
        data=data,
        sfreq=float(np.round(1.0 / np.median(steps), 6)),
        sensors=sensors,
        first_time=float(times[0]),
    )
