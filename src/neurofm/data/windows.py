"""WindowDataset: fixed-length windows over the segments of a prepared store.

Windows are read lazily from read-only memory maps of the time-major ``.npy`` files, or from
memory after ``preload=True``; the maps bound their resident memory (see
:mod:`neurofm.data._mapped`), so memory stays flat however much data is iterated. Maps are opened
on first use in each process, so the dataset pickles small and works with
``DataLoader(num_workers>0)``. A window never crosses a segment end and is never padded; a
segment shorter than a window yields no window and is listed in
:attr:`WindowDataset.short_segments` (and logged).

An item's ``x`` (C, T) is a channel-major view of one time-major copy of its samples (the store
layout; call ``.contiguous()`` where a contiguous array is needed). A batch read through
:meth:`WindowDataset.__getitems__` (the DataLoader's path) writes every window channel-major
straight into one contiguous (B, C, T) tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data._mapped import Mappings, RecordingView, session_key, subject_key
from neurofm.data.channels import channel_vocabulary
from neurofm.data.collate import BatchedWindows, check_shapes
from neurofm.data.store import PreparedStore
from neurofm.errors import ConfigError, NeuroFMError
from neurofm.logging import get_logger

log = get_logger("data")


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
    for kind, key in (("subject", subject_key), ("session", session_key)):
        table = stored.get(kind) or {k: i for i, k in enumerate(sorted({key(r) for r in recs}))}
        out[kind] = {str(k): int(v) for k, v in table.items()}
    return out


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
            rid: RecordingView(
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
        self._maps = Mappings()
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

    @property
    def channel_names(self) -> list[str]:
        """The channels of every window, in the order of ``x``'s channel axis."""
        views = list(self._recs.values())
        return list(views[0].names) if views else []

    def window_bounds(self, i: int) -> tuple[str, int, int]:
        """``(recording id, first sample, stop sample)`` of the samples item ``i`` reads."""
        start = int(self._start[i])
        return self.segments[self._seg[i]]["recording"], start, start + self.span

    @property
    def labels(self) -> np.ndarray:
        """Per-window class labels (int64, -1 where none), in item order."""
        return self._label.copy()

    def _block(self, seg_k: int, start: int) -> np.ndarray:
        """The stored samples ``[start, start + span)`` of segment ``seg_k``: (span, C_stored)."""
        if self._arrays is not None:
            offset = start - self.segments[seg_k]["start"]
            return self._arrays[seg_k][offset : offset + self.span]
        return self._maps.block(self._seg_views[seg_k], start, self.span)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self._n_windows <= i < self._n_windows:
            raise IndexError(f"window {i} out of range for {self._n_windows} windows")
        seg_k, start = int(self._seg[i]), int(self._start[i])
        view = self._seg_views[seg_k]
        # one time-major copy, picked and normalised; x and target are (C, n) views of it
        signal = torch.from_numpy(view.time_major(self._block(seg_k, start))).T
        item: dict[str, Any] = {"x": signal[:, : self.window_length]}
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

    def __getitems__(self, indices: Sequence[int]) -> BatchedWindows:
        """The windows ``indices`` read straight into stacked (B, ...) tensors.

        ``collate`` of the result equals ``collate([self[i] for i in indices])`` field for
        field; ``x`` and ``target`` are written channel-major straight into the batch tensors.
        ``torch.utils.data.DataLoader`` calls this with the indices of each batch.

        Raises
        ------
        IndexError
            For an index outside ``[-len(self), len(self))``.
        ValueError
            When no index is given, or the windows have different channel counts (as
            ``collate`` of the items).
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if not idx.size:
            raise ValueError("WindowDataset.__getitems__: no indices given")
        bad = idx[(idx < -self._n_windows) | (idx >= self._n_windows)]
        if bad.size:
            raise IndexError(f"window {int(bad[0])} out of range for {self._n_windows} windows")
        idx %= self._n_windows
        segs, starts = self._seg[idx].tolist(), self._start[idx].tolist()
        views = [self._seg_views[k] for k in segs]
        n_chans = [len(v.names) for v in views]
        check_shapes("x", [(c, self.window_length) for c in n_chans])
        shape = (idx.size, n_chans[0])
        x = np.empty((*shape, self.window_length), np.float32)
        target = np.empty((*shape, self.target_length), np.float32) if self.target_length else None
        # each window: one copy into a cache-resident time-major buffer (picked, normalised,
        # exactly as an item), then one transposing copy into the batch
        scratch = np.empty((self.span, shape[1]), np.float32)
        target_stop = self.horizon + self.target_length
        for b, (seg_k, start, view) in enumerate(zip(segs, starts, views)):
            view.time_major(self._block(seg_k, start), out=scratch)
            np.copyto(x[b], scratch[: self.window_length].T)
            if target is not None:
                np.copyto(target[b], scratch[self.horizon : target_stop].T)
        fields: dict[str, torch.Tensor] = {"x": torch.from_numpy(x)}
        if target is not None:
            fields["target"] = torch.from_numpy(target)
        if self.has_labels:
            fields["label"] = torch.from_numpy(self._label[idx])
        if self.has_condition:
            fields["condition"] = torch.from_numpy(
                np.stack([v.condition_at(s, self.window_length) for v, s in zip(views, starts)])
            )
        ids = [(v.subject_id, v.session_id, self.store_index[v.id]) for v in views]
        subject, session, recording = torch.tensor(ids, dtype=torch.int64).T.contiguous()
        fields.update(
            subject=subject,
            session=session,
            channel_ids=torch.stack([v.channel_ids for v in views]),
            positions=torch.stack([v.positions for v in views]),
            recording=recording,
            start=torch.tensor(starts, dtype=torch.int64),
        )
        return BatchedWindows(fields)


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
