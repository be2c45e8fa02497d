"""MNE-backed readers: raw files of every vendor format MNE reads, and FIF evoked files."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.data.recording import Events, Recording
from neurofm.errors import RecordingError
from neurofm.io import _sizes
from neurofm.io._checks import brainvision_truncation, edf_truncation, mat5_truncation
from neurofm.logging import get_logger
from neurofm.types import DEFAULT_UNITS, SensorInfo

log = get_logger("io")

# MNE channel types that neurofm keeps as they are; every other MNE type becomes "misc"
_KEPT_TYPES = {
    "mag",
    "grad",
    "eeg",
    "ecog",
    "seeg",
    "dbs",
    "eog",
    "ecg",
    "emg",
    "stim",
    "misc",
    "resp",
}
_MEG_TYPES = {"mag", "grad", "ref_meg"}
_FIFF_UNITS = {107: "V", 112: "T", 201: "T/m"}
# what MNE warns when it finds fewer samples than a header promises
_TRUNCATION_WARNINGS = (
    "invalid tag",
    "does not match the file size",
    "truncat",
    "fewer samples",
    "end of file",
    "outside data range",
)
# MNE reports an annotation past the end of the data as "Omitted"; one that merely extends past
# the end ("Limited") is common in complete files.
_CLIPPED_ANNOTATIONS = "limited"
_HEADER_CHECKS = {
    "kit": _sizes.kit_truncation,
    "ctf": _sizes.ctf_truncation,
    "cnt": _sizes.cnt_truncation,
    "persyst": _sizes.persyst_truncation,
}
_DATA_FORMAT_HINT = (
    "pass data_format='int16' or 'int32' (read_recording(..., data_format=...), "
    "`neurofm inspect FILE --data_format int16`, or `reader: {data_format: int16}` in a "
    "prepare config)"
)


def open_raw(path: Path, fmt: str, *, allow_truncated: bool, data_format: str | None = None) -> Any:
    """Open ``path`` with MNE without loading samples; truncation raises unless allowed.

    A header/size check runs first for every format whose header declares its length or frame
    layout (EDF/BDF, BrainVision, EEGLAB, KIT, CTF, CNT, EGI, Persyst; MNE reads several of
    them shorter or zero-filled without an error), MNE's own truncation warnings are turned
    into errors, the first and last samples are read once so that a file cut inside its data
    fails here, and a tail of samples that are exactly zero on every channel (a zero-filled
    file) is refused. ``data_format`` (``"int16"``/``"int32"``) is the sample width of a
    Neuroscan CNT file whose header does not allow MNE to infer it.
    """

    problem = None
    if fmt in ("edf", "bdf"):
        problem = edf_truncation(path, fmt)
    elif fmt == "brainvision":
        problem = brainvision_truncation(path)
    elif fmt == "eeglab":
        mat5_truncation(path)
    elif fmt == "egi" and path.is_file():
        problem = _sizes.egi_truncation(path)
    elif fmt in _HEADER_CHECKS:
        problem = _HEADER_CHECKS[fmt](path)
    _truncated(problem, path, allow_truncated)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = _open_with_mne(path, fmt, data_format)
        except Exception as err:  # noqa: BLE001 - any failure of a vendor parser is a bad file
            if fmt == "cnt" and "data_format" in str(err):
                reason = next(line for line in str(err).splitlines() if "data_format" in line)
                raise RecordingError(
                    f"cannot read as cnt: the header does not tell the sample width (MNE: "
                    f"{reason.strip()}); {_DATA_FORMAT_HINT}",
                    path=str(path),
                ) from err
            raise RecordingError(
                f"cannot read as {fmt}: {type(err).__name__}: {err}", path=str(path)
            ) from err
    for item in caught:
        message = str(item.message)
        lowered = message.lower()
        if (
            any(key in lowered for key in _TRUNCATION_WARNINGS)
            and _CLIPPED_ANNOTATIONS not in lowered
            and problem is None
        ):
            problem = f"truncated or corrupt data (MNE reports: {message})"
            _truncated(problem, path, allow_truncated)
        else:
            log.debug("%s: MNE: %s", path, message)
    if fmt == "eeglab":
        raw = _check_fdt(raw, path, allow_truncated)
    if raw.n_times == 0:
        raise RecordingError("the file holds no samples", path=str(path))
    for sample in (0, raw.n_times - 1):
        try:
            raw.get_data(start=sample, stop=sample + 1, verbose="error")
        except Exception as err:  # noqa: BLE001
            raise RecordingError(
                f"cannot read sample {sample} of {raw.n_times}: "
                f"{type(err).__name__}: {err} (truncated or corrupt)",
                path=str(path),
                sample=sample,
            ) from err
    return _check_zero_tail(raw, path, allow_truncated)


def _check_zero_tail(raw: Any, path: Path, allow_truncated: bool) -> Any:
    """Refuse (or, with ``allow_truncated``, crop) a final second or more (half of a shorter
    recording) of samples that are exactly 0 on every channel: a file padded with zeros (an interrupted copy, a preallocated
    file), not a signal. Shorter runs are left alone: EDF pads its last data record with zeros
    (the PhysioNet EEGBCI files end in 0.5 s of them).
    """
    # a second, or half of a shorter recording
    least = max(min(int(round(raw.info["sfreq"])), raw.n_times // 2), 2)
    # trigger channels are left out: a KIT trigger derived from zeroed lines reads 255
    picks = [i for i, kind in enumerate(raw.get_channel_types()) if kind != "stim"]
    zeros = _sizes.zero_tail(
        lambda start, stop: raw.get_data(
            picks=picks or None, start=start, stop=stop, verbose="error"
        ),
        raw.n_times,
        least,
    )
    if zeros < least:
        return raw
    if zeros >= raw.n_times:
        raise RecordingError("every sample is 0 on every channel", path=str(path))
    _truncated(
        f"the last {zeros} of {raw.n_times} samples ({zeros / raw.info['sfreq']:g} s) are "
        "exactly 0 on every channel (triggers aside): a zero-filled tail (an interrupted copy or a preallocated "
        "file)",
        path,
        allow_truncated,
    )
    keep = raw.n_times - zeros
    return raw.crop(tmax=(keep - 1) / raw.info["sfreq"], include_tmax=True, verbose="error")


def _open_with_mne(path: Path, fmt: str, data_format: str | None = None) -> Any:
    """``mne.io.read_raw``, except for BTi/4D, whose data file has no extension to dispatch on.

    A BTi run is a folder holding the data file ``c,rf...`` beside ``config`` and, when
    digitised, ``hs_file``; either the folder or the data file may be given.
    """
    import mne

    if fmt == "cnt":
        # read_raw would also try the ANT reader, which takes no data_format
        return mne.io.read_raw_cnt(
            path, data_format=data_format or "auto", preload=False, verbose="warning"
        )
    if fmt == "egi":
        # read_raw dispatches only .mff folders to the EGI reader, not simple binary .egi files
        return mne.io.read_raw_egi(path, preload=False, verbose="warning")
    if fmt != "bti":
        return mne.io.read_raw(path, preload=False, verbose="warning")
    data_file = path / "c,rfDC" if path.is_dir() else path
    head_shape = data_file.parent / "hs_file"
    return mne.io.read_raw_bti(
        data_file,
        config_fname=data_file.parent / "config",
        head_shape_fname=head_shape if head_shape.is_file() else None,
        preload=False,
        verbose="warning",
    )


def _check_fdt(raw: Any, path: Path, allow_truncated: bool) -> Any:
    """Compare an EEGLAB ``.fdt`` (float32, channels interleaved) with the ``.set``'s shape.

    A short ``.fdt`` raises, or with ``allow_truncated`` the raw is cropped to its complete
    samples (MNE would fail only when the missing samples are read).
    """
    data_file = Path(raw.filenames[0])
    if data_file.suffix.lower() != ".fdt":
        return raw
    frame = 4 * raw.info["nchan"]
    size = data_file.stat().st_size
    complete = size // frame
    if complete >= raw.n_times:
        return raw
    _truncated(
        f"the header announces {raw.n_times} samples of {raw.info['nchan']} channels but "
        f"{data_file.name!r} holds {complete} ({size} bytes): truncated",
        path,
        allow_truncated,
    )
    if complete == 0:
        raise RecordingError(f"the data file {data_file.name!r} holds no sample", path=str(path))
    return raw.crop(tmax=(complete - 1) / raw.info["sfreq"], include_tmax=True, verbose="error")


def _truncated(problem: str | None, path: Path, allow_truncated: bool) -> None:
    if problem is None:
        return
    if not allow_truncated:
        raise RecordingError(
            f"{problem} (pass allow_truncated=True to read what is there)", path=str(path)
        )
    log.warning("%s: %s; reading the complete part only (allow_truncated=True)", path, problem)


def sensors_from_info(
    info: Any, *, ch_types: dict[str, str] | None = None
) -> tuple[SensorInfo, dict]:
    """Map an MNE ``info`` to a SensorInfo; also return the MNE types that were renamed.

    Positions are ``loc[:3]`` (m), orientations the MEG coil normal ``loc[9:12]``; rows are NaN
    where MNE stores no location (all zeros or NaN).
    """
    names, types, units, original = [], [], [], {}
    positions = np.full((len(info["chs"]), 3), np.nan)
    orientations = np.full((len(info["chs"]), 3), np.nan)
    import mne

    for i, ch in enumerate(info["chs"]):
        mne_type = mne.channel_type(info, i)
        kind = mne_type if mne_type in _KEPT_TYPES else "misc"
        if kind != mne_type:
            original[ch["ch_name"]] = mne_type
        if ch_types and ch["ch_name"] in ch_types:
            kind = ch_types[ch["ch_name"]]
        names.append(ch["ch_name"])
        types.append(kind)
        units.append(_FIFF_UNITS.get(int(ch["unit"]), DEFAULT_UNITS.get(kind, "a.u.")))
        loc = np.asarray(ch["loc"], dtype=np.float64)
        if np.isfinite(loc[:3]).all() and np.any(loc[:3] != 0):
            positions[i] = loc[:3]
        if mne_type in _MEG_TYPES and np.isfinite(loc[9:12]).all() and np.any(loc[9:12] != 0):
            orientations[i] = loc[9:12]
    sensors = SensorInfo(
        names=names,
        types=types,
        units=units,
        positions=None if np.isnan(positions).all() else positions,
        orientations=None if np.isnan(orientations).all() else orientations,
        bads=[b for b in info["bads"] if b in names],
    )
    return sensors, original


def events_from_raw(raw: Any) -> Events:
    """Annotations (and stim-channel triggers) as Events, onsets relative to the first sample."""
    import mne

    ann = raw.annotations
    onset = list(np.asarray(ann.onset, dtype=np.float64) - raw.first_time)
    duration = list(np.asarray(ann.duration, dtype=np.float64))
    description = [str(d) for d in ann.description]
    payload: list[dict[str, Any]] = [{} for _ in description]
    if "stim" in raw.get_channel_types():
        try:
            found = mne.find_events(raw, shortest_event=1, verbose="error")
        except ValueError:
            found = np.zeros((0, 3), dtype=int)
        for sample, _, code in found:
            onset.append((sample - raw.first_samp) / raw.info["sfreq"])
            duration.append(0.0)
            description.append(str(int(code)))
            payload.append({"code": int(code), "source": "stim"})
    order = np.argsort(onset, kind="stable")
    return Events(
        np.asarray(onset)[order],
        np.asarray(duration)[order],
        [description[i] for i in order],
        [payload[i] for i in order],
    )


_ENTITY = re.compile(r"(?:^|[_/])(sub|ses|task|run)-([A-Za-z0-9]+)")
_PHYSIONET = re.compile(r"^S(\d{3})R(\d{2})\b")


def ids_from_name(path: Path, subject_info: dict | None = None) -> dict[str, str | None]:
    """subject/session/task/run from BIDS entities or the ``S001R03`` naming, else subject_info."""
    ids: dict[str, str | None] = {"subject": None, "session": None, "task": None, "run": None}
    keys = {"sub": "subject", "ses": "session", "task": "task", "run": "run"}
    for key, value in _ENTITY.findall(path.name):
        ids[keys[key]] = value
    match = _PHYSIONET.match(path.name)
    if match and ids["subject"] is None:
        ids["subject"], ids["run"] = match.group(1), match.group(2)
    if ids["subject"] is None and subject_info:
        his_id = str(subject_info.get("his_id") or "").strip()
        if his_id and his_id.upper() not in ("X", "N/A", "UNKNOWN"):
            ids["subject"] = his_id
    return ids


def raw_meta(raw: Any, renamed: dict[str, str]) -> dict[str, Any]:
    """JSON-safe facts about the acquisition kept in ``Recording.meta``."""
    info = raw.info
    meta: dict[str, Any] = {"highpass": float(info["highpass"]), "lowpass": float(info["lowpass"])}
    if info.get("line_freq") is not None:
        meta["line_freq"] = float(info["line_freq"])
    if info.get("meas_date") is not None:
        meta["meas_date"] = info["meas_date"].isoformat()
    if renamed:
        meta["mne_channel_types"] = renamed
    return meta


def recording_from_raw(
    raw: Any,
    data: Any,
    *,
    path: Path,
    fmt: str,
    source: dict[str, Any],
    ch_types: dict[str, str] | None,
) -> Recording:
    """Wrap an opened MNE raw and its ``(C, T)`` data (lazy or loaded) as a Recording."""
    sensors, renamed = sensors_from_info(raw.info, ch_types=ch_types)
    ids = ids_from_name(path, raw.info.get("subject_info"))
    return Recording(
        data=data,
        sfreq=float(raw.info["sfreq"]),
        sensors=sensors,
        first_time=float(raw.first_time),
        events=events_from_raw(raw),
        source=source,
        meta=raw_meta(raw, renamed),
        **ids,
    )


def read_evoked(
    path: Path,
    *,
    condition: str | int | None,
    source: dict[str, Any],
    ch_types: dict[str, str] | None,
) -> list[Recording]:
    """One Recording per condition of a FIF evoked file (time 0 is the stimulus)."""
    import mne

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # MNE reads only the named condition when one is given (much faster for .gz)
            evokeds = mne.read_evokeds(path, condition=condition, verbose="error")
    except ValueError as err:
        if condition is None:
            raise RecordingError(f"cannot read as FIF evoked: {err}", path=str(path)) from err
        raise RecordingError(f"no condition {condition!r}: {err}", path=str(path)) from err
    except Exception as err:  # noqa: BLE001
        raise RecordingError(
            f"cannot read as FIF evoked: {type(err).__name__}: {err}", path=str(path)
        ) from err
    if not isinstance(evokeds, list):
        evokeds = [evokeds]
    out = []
    for evoked in evokeds:
        sensors, renamed = sensors_from_info(evoked.info, ch_types=ch_types)
        events = Events(
            [-evoked.tmin],
            [0.0],
            [evoked.comment],
            [{"condition": evoked.comment, "nave": int(evoked.nave)}],
        )
        meta = {
            "nave": int(evoked.nave),
            "tmin": float(evoked.tmin),
            "kind": evoked.kind,
            "condition": evoked.comment,
        }
        if renamed:
            meta["mne_channel_types"] = renamed
        out.append(
            Recording(
                data=np.asarray(evoked.data, dtype=np.float64),
                sfreq=float(evoked.info["sfreq"]),
                sensors=sensors,
                first_time=float(evoked.tmin),
                events=events,
                source=dict(source),
                meta=meta,
                **ids_from_name(path, evoked.info.get("subject_info")),
            )
        )
    return out
