"""``read_recording``: any supported file -> Recording, lazy by default.

Formats: every raw format ``mne.io.read_raw`` reads (FIF, CTF ``.ds``, KIT ``.con/.sqd``, BTi,
EDF/BDF/GDF, BrainVision ``.vhdr``, EEGLAB ``.set``, Persyst, ...), FIF evoked
(``-ave.fif[.gz]``), ``.npy``/``.npz`` arrays, MATLAB ``.mat`` binned spike counts, NWB (units
table or ElectricalSeries) and text columns (spike times, or time + samples).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neurofm.data.recording import Recording, sha256_file
from neurofm.errors import RecordingError
from neurofm.fileio import fsync_dir
from neurofm.io import bids
from neurofm.io._checks import check_file, format_from_name
from neurofm.io.validate import validate_recording
from neurofm.types import SensorInfo

ARRAY_FORMATS = ("npy", "npz", "text")
_OPTION_FORMATS = {
    "bin_size": ("nwb", "mat", "text"),
    "time_unit": ("text",),
    "condition": ("fif-evoked",),
    "part": ("mat",),
    "data_format": ("cnt",),
}
DATA_FORMATS = ("auto", "int16", "int32")
"""Sample widths of a Neuroscan CNT file (``data_format``)."""
_COMPANIONS = {"brainvision": (".eeg", ".vmrk"), "eeglab": (".fdt",)}
_SHA_CACHE: dict[tuple[str, int, int], str] = {}

Preload = bool | Literal["memmap"]


def read_recording(
    path: str | Path,
    *,
    preload: Preload = False,
    sfreq: float | None = None,
    ch_names: list[str] | None = None,
    ch_types: str | list[str] | dict[str, str] | None = None,
    allow_truncated: bool = False,
    bids_events: bool = True,
    condition: str | int | None = None,
    part: str | None = None,
    bin_size: float | None = None,
    time_unit: str | None = None,
    data_format: str | None = None,
    nan_policy: Literal["raise", "mask", "ignore"] = "raise",
    flat_policy: Literal["warn", "raise", "ignore"] = "warn",
    cache_dir: str | Path | None = None,
    sha256: str | None = None,
) -> Recording:
    """Read one recording from ``path``, whatever its format.

    Parameters
    ----------
    path : path
        The file (or CTF ``.ds`` folder, or BTi/4D folder holding ``c,rfDC``). The format follows the extension; content of another
        format, an empty file and a truncated file raise a RecordingError naming the file.
    preload : bool or "memmap"
        ``False``: ``data`` is a lazy ``(C, T)`` view (:class:`LazySignal`, or a read-only memmap
        for ``.npy``) read on slicing. ``True``: an in-memory float ndarray. ``"memmap"``: the
        samples are written once to a cached ``.npy`` (time-major) and ``data`` is a ``(C, T)``
        view of its memmap.
    sfreq : float, optional
        Sampling rate (Hz) for files that do not state it (``.npy``); otherwise it must agree
        with the file's.
    ch_names : list of str, optional
        Channel names for array files; otherwise they must equal the file's.
    ch_types : str, list or dict, optional
        Channel types (one for all, one per channel, or ``{name: type}`` overriding the file's).
    allow_truncated : bool
        Read the complete part of a truncated file (a warning through ``neurofm.logging``)
        instead of raising.
    bids_events : bool
        For a file inside a BIDS tree, take events (with payloads) from the ``events.tsv``
        beside it, and types/bads from its ``channels.tsv``.
    condition : str or int, optional
        The condition of a FIF evoked file (comment or index).
    part : str, optional
        The part of a ``.mat`` file with several (``"train"``/``"tr"``, ``"test"``/``"te"``).
    bin_size : float, optional
        Bin width (s) for spike times (NWB units, text) and for binned ``.mat`` counts.
    time_unit : {"s", "ms", "us", "ns"}, optional
        Unit of the times in a text file.
    data_format : {"auto", "int16", "int32"}, optional
        Sample width of a Neuroscan ``.cnt`` file; needed when its header does not allow it to
        be inferred (the error says so).
    nan_policy, flat_policy : str
        Passed to :func:`neurofm.io.validate_recording` (every sample is scanned once, in
        chunks); ``"ignore"`` for both skips the scan.
    cache_dir : path, optional
        Where ``preload="memmap"`` keeps its arrays (default: ``neurofm-cache`` in the system
        temporary folder).
    sha256 : str, optional
        The source's SHA-256 when the caller has computed it already (recorded as given; the
        file is not hashed again).

    Returns
    -------
    Recording
        ``source = {"path", "sha256", "format"}``; subject/session/task/run from BIDS entities,
        the ``S001R03`` naming or the file's subject info.
    """
    recordings = read_recordings(
        path,
        preload=preload,
        sfreq=sfreq,
        ch_names=ch_names,
        ch_types=ch_types,
        allow_truncated=allow_truncated,
        bids_events=bids_events,
        condition=condition,
        part=part,
        bin_size=bin_size,
        time_unit=time_unit,
        data_format=data_format,
        nan_policy=nan_policy,
        flat_policy=flat_policy,
        cache_dir=cache_dir,
        sha256=sha256,
    )
    if len(recordings) > 1:
        labels = [r.meta.get("condition", r.meta.get("part")) for r in recordings]
        option = "condition" if recordings[0].source.get("format") == "fif-evoked" else "part"
        raise RecordingError(
            f"the file holds {len(recordings)} recordings {labels}: pass "
            f"{option}=... or use read_recordings",
            path=str(path),
        )
    return recordings[0]


def read_recordings(
    path: str | Path,
    *,
    preload: Preload = False,
    sfreq: float | None = None,
    ch_names: list[str] | None = None,
    ch_types: str | list[str] | dict[str, str] | None = None,
    allow_truncated: bool = False,
    bids_events: bool = True,
    condition: str | int | None = None,
    part: str | None = None,
    bin_size: float | None = None,
    time_unit: str | None = None,
    data_format: str | None = None,
    nan_policy: Literal["raise", "mask", "ignore"] = "raise",
    flat_policy: Literal["warn", "raise", "ignore"] = "warn",
    cache_dir: str | Path | None = None,
    sha256: str | None = None,
) -> list[Recording]:
    """Every recording a file holds (one per evoked condition or ``.mat`` part, else one).

    Same parameters as :func:`read_recording`.
    """
    path = Path(path)
    if preload not in (True, False, "memmap"):
        raise ValueError(f"preload must be True, False or 'memmap', got {preload!r}")
    fmt = format_from_name(path)
    check_file(path, fmt)
    options = {
        "bin_size": bin_size,
        "time_unit": time_unit,
        "condition": condition,
        "part": part,
        "data_format": data_format,
    }
    if data_format is not None and data_format not in DATA_FORMATS:
        raise RecordingError(
            f"data_format={data_format!r} is not one of {list(DATA_FORMATS)}", path=str(path)
        )
    for name, value in options.items():
        if value is not None and fmt not in _OPTION_FORMATS[name]:
            raise RecordingError(
                f"{name}={value!r} does not apply to {fmt!r} files (only "
                f"{list(_OPTION_FORMATS[name])})",
                path=str(path),
            )
    source = {"path": str(path), "sha256": sha256 or _sha256(path, fmt), "format": fmt}
    recordings = _read(
        path,
        fmt,
        preload=preload,
        sfreq=sfreq,
        ch_names=ch_names,
        ch_types=ch_types,
        allow_truncated=allow_truncated,
        source=source,
        options=options,
    )
    out = []
    for rec in recordings:
        rec = _finish(
            rec,
            path,
            fmt,
            source,
            sfreq=sfreq,
            ch_names=ch_names,
            ch_types=ch_types,
            bids_events=bids_events,
        )
        if preload == "memmap" and not isinstance(rec.data, np.memmap):
            rec = replace(rec, data=_memmap(rec, cache_dir, options))
        out.append(validate_recording(rec, nan_policy=nan_policy, flat_policy=flat_policy))
    return out


def read_bids(
    root: str | Path,
    *,
    subject: str,
    session: str | None = None,
    task: str | None = None,
    run: str | None = None,
    datatype: str | None = None,
    preload: bool | str = False,
    allow_truncated: bool = False,
) -> Recording:
    """Read one BIDS recording: mne-bids locates the signal file, :func:`read_recording` reads it
    (with the events.tsv payloads and channels.tsv types/bads beside it).

    When only sidecars exist a RecordingError says so; use :func:`~neurofm.io.bids.read_bids_sidecars` to
    inspect them.
    """
    signal = bids.find_bids_signal(
        root, subject=subject, session=session, task=task, run=run, datatype=datatype
    )
    if signal is None:
        raise RecordingError(
            f"no signal file for {bids.bids_prefix(subject, session, task, run)} (only sidecars?); "
            "read_bids_sidecars reads what the sidecars say",
            path=str(root),
        )
    return read_recording(signal, preload=preload, allow_truncated=allow_truncated)


def _read(
    path: Path,
    fmt: str,
    *,
    preload: Preload,
    sfreq: float | None,
    ch_names: list[str] | None,
    ch_types: Any,
    allow_truncated: bool,
    source: dict[str, Any],
    options: dict[str, Any],
) -> list[Recording]:
    from neurofm.io import arrays, spikes

    if fmt == "npy":
        return [
            arrays.read_npy(
                path, preload=preload is True, sfreq=sfreq, ch_names=ch_names, ch_types=ch_types
            )
        ]
    if fmt == "npz":
        return [arrays.read_npz(path, sfreq=sfreq, ch_names=ch_names, ch_types=ch_types)]
    if fmt == "text":
        return [
            arrays.read_text(
                path,
                time_unit=options["time_unit"],
                bin_size=options["bin_size"],
                ch_names=ch_names,
                ch_types=ch_types,
            )
        ]
    if fmt == "mat":
        return arrays.read_mat(path, bin_size=options["bin_size"], part=options["part"])
    if fmt == "nwb":
        return [spikes.read_nwb(path, bin_size=options["bin_size"])]
    from neurofm.io import _mne
    from neurofm.io.lazy import LazySignal

    overrides = ch_types if isinstance(ch_types, dict) else None
    if fmt == "fif-evoked":
        return _mne.read_evoked(
            path, condition=options["condition"], source=source, ch_types=overrides
        )
    raw = _mne.open_raw(
        path, fmt, allow_truncated=allow_truncated, data_format=options["data_format"]
    )
    if preload is True:
        try:
            data = raw.get_data(verbose="error")
        except (ValueError, OSError, EOFError) as err:
            raise RecordingError(
                f"cannot read the samples: {err} (truncated or corrupt)", path=str(path)
            ) from err
    else:
        data = LazySignal(raw, path=str(path))
    return [
        _mne.recording_from_raw(raw, data, path=path, fmt=fmt, source=source, ch_types=overrides)
    ]


def _finish(
    rec: Recording,
    path: Path,
    fmt: str,
    source: dict[str, Any],
    *,
    sfreq: float | None,
    ch_names: list[str] | None,
    ch_types: Any,
    bids_events: bool,
) -> Recording:
    """Common last steps: source, ids from the name, option checks, type overrides, BIDS."""
    from neurofm.io._mne import ids_from_name

    ids = ids_from_name(path)
    rec = replace(rec, source=dict(source), **{k: getattr(rec, k) or v for k, v in ids.items()})
    if sfreq is not None and not np.isclose(sfreq, rec.sfreq):
        raise RecordingError(
            f"sfreq={sfreq} was given but the file's is {rec.sfreq}", path=str(path)
        )
    if ch_names is not None and list(ch_names) != rec.sensors.names:
        raise RecordingError(
            f"ch_names were given but the file names its channels {rec.sensors.names[:8]}...",
            path=str(path),
        )
    sensors = rec.sensors
    if ch_types is not None and fmt not in ARRAY_FORMATS:
        sensors = _with_types(sensors, ch_types, path)
    if bids_events:
        channels_tsv = bids.bids_sidecar(path, "channels.tsv")
        if channels_tsv is not None:
            table = bids.read_bids_channels(channels_tsv)
            by_name = dict(zip(table.names, table.types))
            types = {n: by_name[n] for n in sensors.names if n in by_name}
            sensors = _with_types(sensors, types, path)
            bads = sorted(set(sensors.bads) | (set(table.bads) & set(sensors.names)))
            sensors = replace(sensors, bads=bads)
        events_tsv = bids.bids_sidecar(path, "events.tsv")
        if events_tsv is not None:
            rec = replace(rec, events=bids.read_bids_events(events_tsv))
    return replace(rec, sensors=sensors)


def _with_types(sensors: SensorInfo, ch_types: Any, path: Path) -> SensorInfo:
    """``sensors`` with types replaced: one type, a list, or ``{name: type}``."""
    if isinstance(ch_types, str):
        types = [ch_types] * sensors.n_chans
    elif isinstance(ch_types, dict):
        unknown = sorted(set(ch_types) - set(sensors.names))
        if unknown:
            raise RecordingError(
                f"ch_types names channels not in the file: {unknown}", path=str(path)
            )
        types = [ch_types.get(n, t) for n, t in zip(sensors.names, sensors.types)]
    else:
        types = list(ch_types)
    if types == sensors.types:
        return sensors
    units = [
        u if t == old else _default_unit(t)
        for u, t, old in zip(sensors.units, types, sensors.types)
    ]
    try:
        return SensorInfo(
            names=sensors.names,
            types=types,
            units=units,
            positions=sensors.positions,
            orientations=sensors.orientations,
            bads=sensors.bads,
        )
    except ValueError as err:
        raise RecordingError(str(err), path=str(path)) from err


def _default_unit(kind: str) -> str:
    from neurofm.types import DEFAULT_UNITS

    return DEFAULT_UNITS.get(kind, "a.u.")


def _sha256(path: Path, fmt: str) -> str:
    """SHA-256 of the file and its companion files (BrainVision, EEGLAB), cached by mtime."""
    files = [path] + [
        path.with_suffix(s) for s in _COMPANIONS.get(fmt, ()) if path.with_suffix(s).is_file()
    ]
    digests = []
    for f in files:
        stat = f.stat()
        key = (str(f.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = sha256_file(f)
        digests.append(_SHA_CACHE[key])
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def _memmap(rec: Recording, cache_dir: str | Path | None, options: dict[str, Any]) -> np.ndarray:
    """Write ``rec.data`` once to a time-major ``.npy`` cache; return a ``(C, T)`` memmap view."""
    import tempfile

    folder = (
        Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "neurofm-cache"
    )
    folder.mkdir(parents=True, exist_ok=True)
    key = f"{rec.source['sha256']}:{rec.source['format']}:{sorted(options.items())}"
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    final = folder / f"{name}.npy"
    dtype = np.dtype(getattr(rec.data, "dtype", np.float64))
    shape = (rec.n_times, rec.n_chans)
    if final.is_file():
        try:
            cached = np.load(final, mmap_mode="r")
        except (ValueError, OSError):
            cached = None
        if cached is not None and cached.shape == shape and cached.dtype == dtype:
            return cached.T
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    chunk = max(1, (1 << 22) // max(rec.n_chans, 1))
    try:
        for start in range(0, rec.n_times, chunk):
            out[start : start + chunk] = np.asarray(rec.data[:, start : start + chunk]).T
        out.flush()
        del out
        os.replace(tmp, final)
        fsync_dir(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return np.load(final, mmap_mode="r").T
