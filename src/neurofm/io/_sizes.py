"""Declared size vs bytes on disk for vendor formats whose header states the data layout.

Each ``*_truncation`` function reads only the header fields it needs (the layouts are those of
the vendors' documentation, as MNE reads them) and returns a sentence describing the shortfall,
or None when the file holds everything its header announces. A corrupt header raises a
:class:`~neurofm.errors.RecordingError` naming the file and the field.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from neurofm.errors import RecordingError

# KIT/Yokogawa (.con, .sqd): a directory of 32 entries at byte 0, each (uint32 offset,
# int32 size of one item, int32 max count, int32 count), little-endian; entry 9 is the raw data.
_KIT_DIRECTORY = 32
_KIT_RAW_DATA = 9
# CTF res4: nsamp (int32) at byte 1288, nchan (int16) at 1292, no_trials (int16) at 1312, all
# big-endian; every .meg4 file starts with an 8-byte identifier, then trials of nchan x nsamp int32.
_CTF_FIELDS = {"nsamp": (1288, ">i"), "nchan": (1292, ">h"), "no_trials": (1312, ">h")}
_CTF_MEG4_HEADER = 8
# Neuroscan CNT: a 900-byte setup header and 75 bytes per channel, then the samples, then the
# event table whose position (int32 at byte 886) marks the end of the data.
_CNT_SETUP, _CNT_CHANNEL = 900, 75
_CNT_N_CHANNELS, _CNT_EVENT_TABLE = 370, 886
# EGI simple binary: big-endian header of 36 bytes (+ 4 per event code); frames of
# n_channels + n_events values of 2, 4 or 8 bytes (version bits 1-2).
_EGI_PRECISION = {2: 2, 4: 4, 6: 8}


def _unpack(path: Path, fh, offset: int, fmt: str, name: str) -> int:
    fh.seek(offset)
    raw = fh.read(struct.calcsize(fmt))
    if len(raw) < struct.calcsize(fmt):
        raise RecordingError(
            f"truncated inside the header: the field {name!r} at byte {offset} is missing",
            path=str(path),
        )
    return int(struct.unpack(fmt, raw)[0])


def kit_truncation(path: Path) -> str | None:
    """Check every block of a KIT file's directory (raw data included) against the file size."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        table = fh.read(16 * _KIT_DIRECTORY)
    if len(table) < 16 * _KIT_DIRECTORY:
        return None  # no directory to compare with: MNE reports the unreadable header
    for index in range(_KIT_DIRECTORY):
        offset, item, _, count = struct.unpack_from("<Iiii", table, 16 * index)
        if count <= 0 or item <= 0:
            continue
        end = offset + item * count
        if end > size:
            what = (
                f"the raw data ({count} values of {item} bytes)"
                if index == _KIT_RAW_DATA
                else f"directory block {index} ({count} items of {item} bytes)"
            )
            return (
                f"the header places {what} at bytes {offset}-{end} but the file ends at byte "
                f"{size}: truncated"
            )
    return None


def ctf_files(ds: Path) -> tuple[Path, list[Path]]:
    """The ``.res4`` file of a CTF ``.ds`` folder and its ``.meg4`` data files, in order."""
    stem = ds.name[:-3] if ds.name.lower().endswith(".ds") else ds.name
    meg4 = [ds / f"{stem}.meg4"]
    index = 1
    while (ds / f"{stem}.{index}_meg4").is_file():
        meg4.append(ds / f"{stem}.{index}_meg4")
        index += 1
    return ds / f"{stem}.res4", meg4


def ctf_truncation(ds: Path) -> str | None:
    """Compare the trials a CTF ``.res4`` announces with the trials its ``.meg4`` files hold.

    MNE counts trials from the file size, so a dataset cut exactly at a trial boundary would
    read as a shorter, valid recording.
    """
    res4, meg4 = ctf_files(ds)
    if not res4.is_file():
        return None  # MNE names what is missing
    with open(res4, "rb") as fh:
        fields = {name: _unpack(res4, fh, *spec, name) for name, spec in _CTF_FIELDS.items()}
    if fields["nsamp"] <= 0 or fields["nchan"] <= 0:
        raise RecordingError(
            f"corrupt header: {fields['nchan']} channels of {fields['nsamp']} samples per trial",
            path=str(res4),
        )
    trial = 4 * fields["nsamp"] * fields["nchan"]
    held, partial = 0, 0
    for data in meg4:
        if not data.is_file():
            return f"the data file {data.name!r} is missing"
        body = max(data.stat().st_size - _CTF_MEG4_HEADER, 0)
        held += body // trial
        partial += body % trial
    if partial:
        return (
            f"{partial} bytes of an incomplete trial in the data files "
            f"(trials of {fields['nsamp']} samples x {fields['nchan']} channels): truncated"
        )
    if held < fields["no_trials"]:
        return (
            f"the header announces {fields['no_trials']} trials of {fields['nsamp']} samples but "
            f"the data files hold {held}: truncated"
        )
    return None


def cnt_truncation(path: Path) -> str | None:
    """Check that a Neuroscan CNT file reaches its event table (the end of its samples)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        n_chans = _unpack(path, fh, _CNT_N_CHANNELS, "<H", "number of channels")
        table = _unpack(path, fh, _CNT_EVENT_TABLE, "<i", "event table position")
        data_start = _CNT_SETUP + _CNT_CHANNEL * n_chans
        if table < data_start:
            raise RecordingError(
                f"corrupt header: the event table position {table} lies before the samples "
                f"(byte {data_start})",
                path=str(path),
            )
        if table > size:
            return (
                f"the header places the end of the samples at byte {table} but the file ends at "
                f"byte {size}: truncated"
            )
        if table + 9 <= size:
            n_event_bytes = _unpack(path, fh, table + 1, "<i", "event table size")
            if table + 9 + n_event_bytes > size:
                return (
                    f"the event table ({n_event_bytes} bytes from byte {table + 9}) runs past "
                    f"the end of the file at byte {size}: truncated"
                )
    return None


def egi_truncation(path: Path) -> str | None:
    """Compare an EGI simple binary header's sample count with the file size."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        version = _unpack(path, fh, 0, ">i", "version")
        n_chans = _unpack(path, fh, 22, ">h", "number of channels")
        n_samples = _unpack(path, fh, 30, ">i", "number of samples")
        n_events = _unpack(path, fh, 34, ">h", "number of events")
    width = _EGI_PRECISION.get(version & 6)
    if width is None or n_chans <= 0 or n_samples < 0 or n_events < 0:
        return None  # not a layout this check knows; MNE reports what it finds
    header = 36 + 4 * n_events
    frame = width * (n_chans + n_events)
    expected = header + n_samples * frame
    if size < expected:
        held = max(size - header, 0) // frame
        return (
            f"the header announces {n_samples} samples of {n_chans} channels and {n_events} "
            f"event tracks ({expected} bytes) but the file holds {held} ({size} bytes): truncated"
        )
    return None


def persyst_truncation(lay: Path) -> str | None:
    """Check a Persyst ``.dat`` file holds whole frames and reaches its last annotation."""
    sections: dict[str, dict[str, str]] = {}
    comments: list[str] = []
    current = ""
    for line in lay.read_text(encoding="latin-1").splitlines():
        line = line.strip()
        header = re.fullmatch(r"\[(.+)\]", line)
        if header:
            current = header.group(1).lower()
        elif current == "comments" and line:
            comments.append(line)
        elif "=" in line:
            key, _, value = line.partition("=")
            sections.setdefault(current, {})[key.strip().lower()] = value.strip()
    info = sections.get("fileinfo", {})
    try:
        n_chans = int(info["waveformcount"])
        sfreq = float(info["samplingrate"])
        width = {"0": 2, "7": 4}[info.get("datatype", "0")]
    except (KeyError, ValueError):
        return None  # MNE names the missing or bad field
    data = lay.parent / Path(info.get("file", lay.with_suffix(".dat").name)).name
    if not data.is_file():
        return f"the data file {data.name!r} named in the header is missing"
    frame = width * n_chans
    size = data.stat().st_size
    if size % frame:
        return (
            f"the data file {data.name!r} has {size} bytes, not a whole number of "
            f"{n_chans}-channel samples of {width} bytes: truncated"
        )
    duration = size // frame / sfreq
    onsets = []
    for line in comments:
        try:
            onsets.append(float(line.split(",")[0]))
        except ValueError:
            continue
    if onsets and max(onsets) > duration:
        return (
            f"an annotation lies at {max(onsets):g} s but {data.name!r} holds only "
            f"{duration:g} s ({size // frame} samples): truncated"
        )
    return None


def zero_tail(read: Callable[[int, int], np.ndarray], n_times: int, block: int) -> int:
    """How many final samples are exactly zero on every channel.

    ``read(start, stop)`` returns the ``(C, stop - start)`` samples; they are read backwards in
    blocks of ``block`` samples until one holds a non-zero value (one block for most files).
    """
    zeros, stop = 0, n_times
    while stop > 0:
        start = max(stop - block, 0)
        nonzero = np.flatnonzero(np.any(np.asarray(read(start, stop)) != 0, axis=0))
        if nonzero.size:
            return zeros + (stop - start) - 1 - int(nonzero[-1])
        zeros += stop - start
        stop = start
    return zeros
