"""Per-recording reading for :class:`~neurofm.data.windows.WindowDataset`.

:class:`Mappings` holds read-only memory maps of the time-major ``.npy`` arrays of a prepared
store, opened on first use in each process, and bounds the resident memory they cost: mapped
pages count as resident memory, so after every :data:`RESIDENT_BYTES` read the maps are told to
drop their pages (``madvise(MADV_DONTNEED)``; the OS page cache keeps them).
:class:`RecordingView` holds what windows of one recording need: file location, channel picks,
scaler, ids and events, and turns a time-major block into picked, normalised samples.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data.channels import match_channels
from neurofm.data.store import StoredRecording
from neurofm.errors import ConfigError, RecordingError

RESIDENT_BYTES = 128 * 2**20
"""Bytes read through the memory maps after which their resident pages are released."""


def subject_key(rec: Mapping[str, Any]) -> str:
    """Vocabulary key of a recording's subject (``"n/a"`` when missing)."""
    return "n/a" if rec.get("subject") is None else str(rec["subject"])


def session_key(rec: Mapping[str, Any]) -> str:
    """Vocabulary key ``"<subject>/<session>"`` of a recording's session."""
    session = "n/a" if rec.get("session") is None else str(rec["session"])
    return f"{subject_key(rec)}/{session}"


class Mappings:
    """Read-only memory maps of store arrays, opened per process, resident pages bounded."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.maps: dict[str, tuple[mmap.mmap, np.ndarray]] = {}
        self.mapped_bytes = 0
        self.read_bytes = 0

    def array(self, view: RecordingView) -> np.ndarray:
        """The read-only ``(n_times, n_chans)`` float32 array of ``view``'s file."""
        if self.pid != os.getpid():  # a forked worker maps the files itself
            self.__init__()
        if view.id not in self.maps:
            n_bytes = view.n_times * view.n_chans_stored * 4
            try:
                with open(view.path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    if size < view.offset + n_bytes:
                        raise RecordingError(
                            f"prepared array file has {size} bytes, its header needs "
                            f"{view.offset + n_bytes} (truncated?)",
                            path=view.path,
                        )
                    mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except OSError as err:
                raise RecordingError(f"cannot map prepared array: {err}", path=view.path) from err
            array = np.frombuffer(mapping, np.float32, count=n_bytes // 4, offset=view.offset)
            self.maps[view.id] = (mapping, array.reshape(view.n_times, view.n_chans_stored))
            self.mapped_bytes += size
        return self.maps[view.id][1]

    def block(self, view: RecordingView, start: int, length: int) -> np.ndarray:
        """The mapped samples ``[start, start + length)``, shape (length, C_stored), read-only.

        The pages read through earlier calls are released first when they exceed
        :data:`RESIDENT_BYTES`, so the block stays resident until the caller has copied it.
        """
        array = self.array(view)
        if self.read_bytes > RESIDENT_BYTES and self.mapped_bytes > RESIDENT_BYTES:
            self.release()
        block = array[start : start + length]
        self.read_bytes += block.nbytes
        return block

    def read(self, view: RecordingView, start: int, length: int) -> np.ndarray:
        """A writable copy of samples ``[start, start + length)``, shape (length, C_stored)."""
        out = np.array(self.block(view, start, length))
        if self.read_bytes > RESIDENT_BYTES and self.mapped_bytes > RESIDENT_BYTES:
            self.release()
        return out

    def release(self) -> None:
        """Drop the mapped pages from this process (the data stays in the OS page cache)."""
        if hasattr(mmap, "MADV_DONTNEED"):  # absent on Windows, which trims working sets itself
            for mapping, _ in self.maps.values():
                mapping.madvise(mmap.MADV_DONTNEED)
        self.read_bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()


class RecordingView:
    """What a WindowDataset needs of one stored recording: file location, picks, ids, events."""

    def __init__(
        self,
        rec: StoredRecording,
        vocab: dict[str, dict[str, int]],
        channels: Sequence[str] | None,
        channel_policy: str,
        scaler: Mapping[str, Any] | None,
        labels: Mapping[str, int] | None,
        condition: Mapping[str, int] | None,
    ) -> None:
        self.id, self.path, self.sfreq = rec.id, str(rec.path), rec.sfreq
        self.n_times, self.n_chans_stored = rec.n_times, rec.n_chans
        self.offset = npy_data_offset(rec.path, (rec.n_times, rec.n_chans))
        names = rec.sensors.names
        self.picks: np.ndarray | None = None
        if channels is not None:
            match = match_channels(channels, names, policy=channel_policy, where=self.path)
            if not np.array_equal(match.index, np.arange(len(names))):
                self.picks = np.asarray(match.index, dtype=np.intp)
            names = match.names
        self.names = list(names)
        idx = np.arange(rec.n_chans) if self.picks is None else self.picks
        self.center = self.scale = None
        if scaler is not None:
            self.center, self.scale = _scaler_arrays(scaler, self.names, self.path)
        pos = rec.sensors.positions
        pos = np.full((rec.n_chans, 3), np.nan) if pos is None else pos
        self.positions = torch.as_tensor(pos[idx], dtype=torch.float32)
        self.channel_ids = torch.tensor(
            [vocab["channel"][n] for n in self.names], dtype=torch.int64
        )
        rec_dict = {"subject": rec.subject, "session": rec.session}
        self.subject_id = vocab["subject"][subject_key(rec_dict)]
        self.session_id = vocab["session"][session_key(rec_dict)]
        onset = np.round(rec.events.onset * rec.sfreq).astype(np.int64)
        length = np.maximum(np.round(rec.events.duration * rec.sfreq).astype(np.int64), 1)
        desc = rec.events.description
        self.label_events = None
        if labels is not None:
            keep = np.array([d in labels for d in desc], dtype=bool)
            order = np.argsort(onset[keep], kind="stable")
            self.label_events = (
                onset[keep][order],
                (onset + length)[keep][order],
                np.array([labels[d] for d in desc if d in labels], dtype=np.int64)[order],
            )
        self.condition_track = None
        if condition is not None:
            track = np.zeros(rec.n_times, dtype=np.int32)
            for i in np.argsort(onset, kind="stable"):
                if desc[i] in condition:
                    track[max(onset[i], 0) : max(onset[i] + length[i], 0)] = condition[desc[i]]
            self.condition_track = track

    def time_major(self, block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Picked and normalised copy of ``block`` (n, C_stored), time-major: (n, C) float32.

        Written into ``out`` (n, C) when given (a reused buffer stays in cache), else into a
        new array.
        """
        if out is None:
            out = np.empty((block.shape[0], len(self.names)), np.float32)
        if self.picks is None:
            np.copyto(out, block)
        else:
            np.take(block, self.picks, axis=1, out=out, mode="clip")  # picks are in range
        if self.center is not None:
            out -= self.center
            out /= self.scale
        return out

    def label_at(self, starts: np.ndarray) -> np.ndarray:
        """Class of the labelled event active at each start sample (-1 where none)."""
        out = np.full(starts.size, -1, dtype=np.int64)
        if self.label_events is None or not self.label_events[0].size:
            return out
        onset, stop, cls = self.label_events
        k = np.searchsorted(onset, starts, side="right") - 1
        ok = (k >= 0) & (starts < stop[np.maximum(k, 0)])
        out[ok] = cls[k[ok]]
        return out

    def event_windows(
        self, seg: Mapping[str, Any], tmin: float, span: int, skipped: list[dict]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Starts and classes of event-locked windows of the labelled events in ``seg``."""
        onset, _, cls = self.label_events
        inside = (onset >= seg["start"]) & (onset < seg["stop"])
        starts = onset[inside] + round(tmin * self.sfreq)
        fits = (starts >= seg["start"]) & (starts + span <= seg["stop"])
        for o in onset[inside][~fits]:
            skipped.append({"recording": self.id, "onset_sample": int(o)})
        return starts[fits], cls[inside][fits]

    def condition_at(self, start: int, length: int) -> np.ndarray:
        """Per-sample condition ids of ``[start, start + length)`` (int64, 0 where none)."""
        return self.condition_track[start : start + length].astype(np.int64)


def _scaler_arrays(
    scaler: Mapping[str, Any], names: list[str], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``center`` and ``scale`` (float32) of ``names`` from a manifest scaler."""
    if scaler.get("kind") != "robust":
        raise ConfigError(
            f"normalize=True needs manifest['scaler'] of kind 'robust', got {scaler.get('kind')!r}"
        )
    match = match_channels(
        names, scaler["channels"], policy="drop_extra", where=f"{where} (scaler channels)"
    )
    center = np.asarray(scaler["center"], dtype=np.float32)[match.index]
    scale = np.asarray(scaler["scale"], dtype=np.float32)[match.index]
    bad = [n for n, s in zip(names, scale) if not np.isfinite(s) or s <= 0]
    if bad:
        raise ConfigError(f"manifest scaler has a zero, negative or non-finite scale for {bad}")
    return center, scale


def npy_data_offset(path: Path, shape: tuple[int, int]) -> int:
    """Byte offset of the data in a C-ordered float32 ``.npy`` file, checking its header."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            file_shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
    except (OSError, ValueError) as err:
        raise RecordingError(f"cannot read the array header: {err}", path=str(path)) from err
    if tuple(file_shape) != shape or fortran or dtype != np.dtype("<f4"):
        raise RecordingError(
            f"array is {file_shape} {dtype} (fortran={fortran}), expected "
            f"{shape} little-endian float32 in C order",
            path=str(path),
        )
    return offset
