"""WindowDataset: fixed-length windows over the segments of a prepared store.

Windows are read lazily from read-only memory maps of the time-major ``.npy`` files (a window is
one contiguous copy), or from memory after ``preload=True``. Mapped pages count as resident
memory, so after every :data:`RESIDENT_BYTES` read the maps are told to drop their pages
(``madvise(MADV_DONTNEED)``; the OS page cache keeps them): memory stays flat however much data is
iterated. Maps are opened on first use in each process, so the dataset pickles small and works
with ``DataLoader(num_workers>0)``. A window never crosses a
segment end and is never padded; a segment shorter than a window yields no window and is listed
in :attr:`WindowDataset.short_segments` (and logged).
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data.channels import channel_vocabulary, match_channels
from neurofm.data.store import PreparedStore, StoredRecording
from neurofm.errors import ConfigError, NeuroFMError, RecordingError
from neurofm.logging import get_logger

log = get_logger("data")

RESIDENT_BYTES = 128 * 2**20
"""Bytes read through the memory maps after which their resident pages are released."""


class InsufficientMemoryError(NeuroFMError, MemoryError):
    """Loading data into memory would not fit in the memory available."""


def check_memory(n_bytes: int, *, what: str, fraction: float = 0.8) -> None:
    """Raise :class:`InsufficientMemoryError` before allocating ``n_bytes`` that would not fit.

    Parameters
    ----------
    n_bytes : int
        Bytes about to be allocated.
    what : str
        What is being loaded (named in the error).
    fraction : float
        Largest share of the currently available memory the allocation may take.
    """
    import psutil

    available = psutil.virtual_memory().available
    if n_bytes > fraction * available:
        raise InsufficientMemoryError(
            f"{what}: loading needs {n_bytes / 2**30:.2f} GiB but only {available / 2**30:.2f} GiB "
            f"is available ({fraction:.0%} usable); iterate lazily (preload=False) instead"
        )


def vocabularies(manifest: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Integer ids of subjects, sessions and channels of a prepared dataset.

    ``manifest["vocabularies"]`` is used where present; otherwise ids follow the sorted keys.
    A session key is ``"<subject>/<session>"`` (sessions of different subjects are different
    sessions); a missing subject or session is the key ``"n/a"``.
    """
    stored = manifest.get("vocabularies", {})
    recs = manifest.get("recordings", [])
    out = {"channel": channel_vocabulary(manifest)}
    for kind, key in (("subject", _subject_key), ("session", _session_key)):
        table = stored.get(kind) or {k: i for i, k in enumerate(sorted({key(r) for r in recs}))}
        out[kind] = {str(k): int(v) for k, v in table.items()}
    return out


def _subject_key(rec: Mapping[str, Any]) -> str:
    return "n/a" if rec.get("subject") is None else str(rec["subject"])


def _session_key(rec: Mapping[str, Any]) -> str:
    session = "n/a" if rec.get("session") is None else str(rec["session"])
    return f"{_subject_key(rec)}/{session}"


class WindowDataset(torch.utils.data.Dataset):
    """Windows of a prepared store as dict items (collate them with ``neurofm.data.collate``).

    Parameters
    ----------
    store : PreparedStore or path
        The prepared dataset.
    segments : str, list of dict, or None
        A split name of ``manifest["splits"]`` (``"train"``), a list of segments
        ``{"recording": id, "start": sample, "stop": sample}``, or None for whole recordings.
    window_length : int
        Window length in samples (omit in event-locked mode, where ``event_window`` sets it).
    stride : int, optional
        Step between window starts in samples (default: ``window_length``, no overlap).
    target_length : int
        Samples in the forecasting ``target`` (0: no target).
    horizon : int, optional
        Offset of the target's first sample from the window start: ``window_length`` (default)
        gives the next ``target_length`` samples after the window; ``1`` with
        ``target_length=window_length`` gives the window shifted by one sample. Windows are only
        made where the target also lies in the segment.
    labels : mapping of str to int, optional
        Event description -> class id, e.g. ``{"T1": 0, "T2": 1}``. A window's ``label`` is that
        of the labelled event active at its start sample (latest onset wins), -1 where none.
    event_window : (float, float), optional
        ``(tmin, tmax)`` in seconds: event-locked mode, one window ``[onset + tmin, onset + tmax)``
        per event of ``labels``. Events whose window crosses the segment end are skipped and
        listed in :attr:`skipped_events`.
    condition : mapping of str to int, optional
        Event description -> id >= 1 for the per-sample ``condition`` (0 where no event; an
        event lasts its duration, at least one sample; a later onset overrides).
    channels : list of str, optional
        Channels to read, in this order, matched by name in every recording.
    channel_policy : str
        Policy of :func:`~neurofm.data.channels.match_channels` for ``channels``.
    normalize : bool
        Apply ``manifest["scaler"]``: ``(x - center) / scale`` per channel (target too).
    preload : bool
        Read the segments into memory first (after checking that they fit).
    """

    def __init__(
        self,
        store: PreparedStore | str | Path,
        segments: str | Sequence[Mapping] | None = None,
        *,
        window_length: int | None = None,
        stride: int | None = None,
        target_length: int = 0,
        horizon: int | None = None,
        labels: Mapping[str, int] | None = None,
        event_window: tuple[float, float] | None = None,
        condition: Mapping[str, int] | None = None,
        channels: Sequence[str] | None = None,
        channel_policy: str = "drop_extra",
        normalize: bool = False,
        preload: bool = False,
    ) -> None:
        if not isinstance(store, PreparedStore):
            store = PreparedStore.open(store)
        self.root = store.root
        self.segments = _resolve_segments(store, segments)
        if event_window is not None:
            if not labels:
                raise ConfigError("event_window needs labels={description: class id}")
            if window_length is not None:
                raise ConfigError("give window_length or event_window, not both")
        elif window_length is None or window_length < 1:
            raise ConfigError(
                f"window_length must be a positive number of samples, got {window_length!r}"
            )
        if target_length < 0 or (horizon is not None and horizon < 0):
            raise ConfigError(
                f"target_length and horizon must be >= 0, got {target_length}, {horizon}"
            )
        if condition and min(condition.values()) < 1:
            raise ConfigError(
                f"condition ids must be >= 1 (0 means no event), got {dict(condition)}"
            )
        vocab = vocabularies(store.manifest)
        used = sorted({seg["recording"] for seg in self.segments})
        self._recs = {
            rid: _RecordingView(
                store[rid],
                vocab,
                channels,
                channel_policy,
                store.manifest.get("scaler") if normalize else None,
                labels,
                condition,
            )
            for rid in used
        }
        self.store_index = {r.id: i for i, r in enumerate(store.recordings)}
        self.window_length = window_length
        if event_window is not None:
            lengths = {
                rid: round((event_window[1] - event_window[0]) * v.sfreq)
                for rid, v in self._recs.items()
            }
            if len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
                raise ConfigError(
                    f"event_window {event_window} gives window lengths {lengths} "
                    "(samples); recordings need one sampling rate and tmax > tmin"
                )
            self.window_length = next(iter(lengths.values()))
        self.target_length = target_length
        self.horizon = self.window_length if horizon is None else horizon
        self.span = max(self.window_length, self.horizon + target_length if target_length else 0)
        self.stride = self.window_length if stride is None else stride
        if self.stride < 1:
            raise ConfigError(f"stride must be >= 1 sample, got {self.stride}")
        self.has_labels = labels is not None
        self.has_condition = condition is not None
        self.short_segments: list[dict] = []
        self.skipped_events: list[dict] = []
        self._index(event_window)
        self._arrays: list[np.ndarray] | None = None
        self._maps = _Mappings()
        if preload:
            self._preload()

    def _index(self, event_window: tuple[float, float] | None) -> None:
        segs, starts, labels = [], [], []
        for k, seg in enumerate(self.segments):
            view = self._recs[seg["recording"]]
            if event_window is None:
                s = np.arange(
                    seg["start"], seg["stop"] - self.span + 1, self.stride, dtype=np.int64
                )
                lab = view.label_at(s)
            else:
                s, lab = view.event_windows(seg, event_window[0], self.span, self.skipped_events)
            if s.size == 0 and event_window is None:
                self.short_segments.append(dict(seg))
            segs.append(np.full(s.size, k, dtype=np.int32))
            starts.append(s)
            labels.append(lab)
        self._seg = np.concatenate(segs) if segs else np.zeros(0, np.int32)
        self._start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self._label = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        if self.short_segments:
            log.warning(
                "%d segment(s) shorter than the window span of %d samples yield no window: %s",
                len(self.short_segments),
                self.span,
                self.short_segments[:5],
            )
        if self.skipped_events:
            log.warning(
                "%d event window(s) cross a segment end and are skipped: %s",
                len(self.skipped_events),
                self.skipped_events[:5],
            )
        self._n_windows = int(self._start.size)
        self._seg_views = [self._recs[seg["recording"]] for seg in self.segments]
        if self._start.size == 0:
            raise ConfigError(
                f"{self.root}: no window of {self.span} samples fits in the "
                f"{len(self.segments)} segment(s) given"
            )

    def _preload(self) -> None:
        n_bytes = sum(
            (s["stop"] - s["start"]) * self._recs[s["recording"]].n_chans_stored * 4
            for s in self.segments
        )
        check_memory(n_bytes, what=f"preloading {len(self.segments)} segment(s) of {self.root}")
        self._arrays = []
        for seg in self.segments:
            view = self._recs[seg["recording"]]
            self._arrays.append(self._maps.read(view, seg["start"], seg["stop"] - seg["start"]))

    def __len__(self) -> int:
        return self._n_windows

    def window_bounds(self, i: int) -> tuple[str, int, int]:
        """``(recording id, first sample, stop sample)`` of the samples item ``i`` reads."""
        start = int(self._start[i])
        return self.segments[self._seg[i]]["recording"], start, start + self.span

    @property
    def labels(self) -> np.ndarray:
        """Per-window class labels (int64, -1 where none), in item order."""
        return self._label.copy()

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self._n_windows <= i < self._n_windows:
            raise IndexError(f"window {i} out of range for {self._n_windows} windows")
        seg_k, start = int(self._seg[i]), int(self._start[i])
        view = self._seg_views[seg_k]
        if self._arrays is not None:
            offset = start - self.segments[seg_k]["start"]
            data = self._arrays[seg_k][offset : offset + self.span]  # prepare() copies
        else:
            data = self._maps.read(view, start, self.span, reuse=True)
        signal = torch.from_numpy(view.prepare(data))  # (C, span) picked, normalised
        window = signal if self.span == self.window_length else signal[:, : self.window_length]
        item: dict[str, Any] = {"x": window}
        if self.target_length:
            item["target"] = signal[:, self.horizon : self.horizon + self.target_length]
        if self.has_labels:
            item["label"] = int(self._label[i])
        if self.has_condition:
            item["condition"] = torch.from_numpy(view.condition_at(start, self.window_length))
        item.update(
            subject=view.subject_id,
            session=view.session_id,
            channel_ids=view.channel_ids,
            positions=view.positions,
            recording=self.store_index[view.id],
            start=start,
        )
        return item


class _Mappings:
    """Read-only memory maps of store arrays, opened per process, resident pages bounded."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.maps: dict[str, tuple[mmap.mmap, np.ndarray]] = {}
        self.mapped_bytes = 0
        self.read_bytes = 0
        self.local = threading.local()

    def array(self, view: _RecordingView) -> np.ndarray:
        """The ``(n_times, n_chans)`` float32 array of ``view``'s file."""
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

    def read(
        self, view: _RecordingView, start: int, length: int, *, reuse: bool = False
    ) -> np.ndarray:
        """A writable copy of samples ``[start, start + length)``, shape (length, C_stored).

        With ``reuse`` the copy goes to a per-thread scratch buffer that the next read with
        ``reuse`` overwrites (no allocation; the caller must copy what it keeps).
        """
        block = self.array(view)[start : start + length]
        if reuse:
            scratch = getattr(self.local, "scratch", None)
            if scratch is None or scratch.shape != block.shape:
                scratch = self.local.scratch = np.empty(block.shape, np.float32)
            out = scratch
            np.copyto(out, block)
        else:
            out = np.array(block)
        self.read_bytes += out.nbytes
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


class _RecordingView:
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
        self.offset = _npy_data_offset(rec.path, (rec.n_times, rec.n_chans))
        names = rec.sensors.names
        self.picks: np.ndarray | None = None
        if channels is not None:
            match = match_channels(channels, names, policy=channel_policy, where=self.path)
            if not np.array_equal(match.index, np.arange(len(names))):
                self.picks = match.index
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
        self.subject_id = vocab["subject"][_subject_key(rec_dict)]
        self.session_id = vocab["session"][_session_key(rec_dict)]
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

    def prepare(self, data: np.ndarray) -> np.ndarray:
        """Channel-major, picked and normalised: ``data`` (n, C_stored) -> (C, n) float32."""
        out = data.T.copy()  # the time-major block was just read: transposed in cache
        if self.picks is not None:
            out = out[self.picks]
        if self.center is not None:
            out -= self.center[:, None]
            out /= self.scale[:, None]
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


def _npy_data_offset(path: Path, shape: tuple[int, int]) -> int:
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


def _resolve_segments(
    store: PreparedStore, segments: str | Sequence[Mapping] | None
) -> list[dict[str, Any]]:
    """Segments as a validated list of ``{"recording", "start", "stop"}`` dicts."""
    where = str(store.root / "manifest.json")
    if segments is None:
        return [{"recording": r.id, "start": 0, "stop": r.n_times} for r in store.recordings]
    if isinstance(segments, str):
        splits = store.manifest.get("splits") or {}
        if segments not in splits:
            raise ConfigError(f"no split {segments!r} in {where}; splits: {sorted(splits)}")
        segments = splits[segments]
    ids = {r.id: r.n_times for r in store.recordings}
    out = []
    for k, seg in enumerate(segments):
        rid, start, stop = seg.get("recording"), seg.get("start"), seg.get("stop")
        if rid not in ids:
            raise ConfigError(f"{where}: segment {k} names unknown recording {rid!r}")
        ints = isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))
        if not (ints and 0 <= start < stop <= ids[rid]):
            raise ConfigError(
                f"{where}: segment {k} [{start}, {stop}) of {rid!r} is not a "
                f"non-empty range inside its {ids[rid]} samples"
            )
        out.append({"recording": rid, "start": int(start), "stop": int(stop)})
    return out
