"""The Recording contract: one recording of one session, whatever the vendor format.

``data`` is ``(n_chans, n_times)`` in physical units (T for mag, T/m for grad, V for
EEG/ECoG/LFP) or counts for binned spikes. It may be a lazy view: anything with ``shape`` and
numpy slicing (a memmap, or a :class:`LazySignal` over an MNE raw object).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.errors import RecordingError
from neurofm.types import SensorInfo


@dataclass
class Events:
    """Annotated events of a recording.

    Attributes
    ----------
    onset : ndarray (n_events,)
        Onset in seconds from the start of the recording (``first_time`` already removed).
    duration : ndarray (n_events,)
        Duration in seconds.
    description : list of str
        Event type, e.g. ``"T1"`` or ``"word"``.
    payload : list of dict
        Per-event extra fields, e.g. ``{"word": "the"}`` or ``{"phoneme": "dh"}``.
    """

    onset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration: np.ndarray = field(default_factory=lambda: np.zeros(0))
    description: list[str] = field(default_factory=list)
    payload: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.onset = np.asarray(self.onset, dtype=np.float64).reshape(-1)
        self.duration = np.asarray(self.duration, dtype=np.float64).reshape(-1)
        n = self.onset.size
        if self.duration.size == 0 and n:
            self.duration = np.zeros(n)
        self.description = [str(d) for d in self.description]
        if not self.payload:
            self.payload = [{} for _ in range(n)]
        if not (self.duration.size == n == len(self.description) == len(self.payload)):
            raise ValueError(
                f"Events: onset ({n}), duration ({self.duration.size}), description "
                f"({len(self.description)}) and payload ({len(self.payload)}) lengths differ"
            )

    def __len__(self) -> int:
        return int(self.onset.size)

    def counts(self) -> dict[str, int]:
        """Number of events of each description."""
        out: dict[str, int] = {}
        for d in self.description:
            out[d] = out.get(d, 0) + 1
        return out

    def select(self, mask: np.ndarray) -> Events:
        """The events where ``mask`` is true."""
        idx = np.flatnonzero(mask)
        return Events(
            self.onset[idx],
            self.duration[idx],
            [self.description[i] for i in idx],
            [self.payload[i] for i in idx],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "onset": self.onset.tolist(),
            "duration": self.duration.tolist(),
            "description": self.description,
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Events:
        return cls(d["onset"], d["duration"], d["description"], d.get("payload") or [])


@dataclass
class Recording:
    """One recording of one session.

    Attributes
    ----------
    data : array-like, shape (n_chans, n_times)
        Samples in physical units; may be lazy (memmap or :class:`LazySignal`).
    sfreq : float
        Sampling frequency in Hz (``1 / bin`` for binned spikes).
    sensors : SensorInfo
        Channel names, types, units, positions, orientations, bads.
    first_time : float
        Time of the first sample in seconds (acquisition clock).
    events : Events
        Annotations with optional payloads (word, phoneme, class label).
    subject, session, task, run : str or None
        Identifiers from BIDS entities or file names.
    source : dict
        ``{"path": str, "sha256": str, "format": str}``.
    meta : dict
        Anything else (raw spike times for spike tokenizers, device, line frequency...).
    """

    data: Any
    sfreq: float
    sensors: SensorInfo
    first_time: float = 0.0
    events: Events = field(default_factory=Events)
    subject: str | None = None
    session: str | None = None
    task: str | None = None
    run: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = tuple(self.data.shape)
        where = self.source.get("path")
        if len(shape) != 2:
            raise RecordingError(
                f"data must be 2-D (n_chans, n_times), got shape {shape}", path=where
            )
        if shape[0] != self.sensors.n_chans:
            raise RecordingError(
                f"data has {shape[0]} channels but sensors describe {self.sensors.n_chans}",
                path=where,
            )
        if not np.isfinite(self.sfreq) or self.sfreq <= 0:
            raise RecordingError(f"sfreq must be a positive number, got {self.sfreq!r}", path=where)
        self.sfreq = float(self.sfreq)

    @property
    def n_chans(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_times(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Duration in seconds (``n_times / sfreq``)."""
        return self.n_times / self.sfreq

    @property
    def ch_names(self) -> list[str]:
        return self.sensors.names

    def get_data(
        self, start: int = 0, stop: int | None = None, picks: list[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Samples ``[start, stop)`` of the picked channels as a float array ``(C, T)``."""
        stop = self.n_times if stop is None else stop
        if not 0 <= start <= stop <= self.n_times:
            raise RecordingError(
                f"slice [{start}, {stop}) outside the recording's {self.n_times} samples",
                path=self.source.get("path"),
            )
        if picks is None:
            return np.asarray(self.data[:, start:stop])
        return np.asarray(self.data[np.asarray(picks), start:stop])

    def load(self) -> Recording:
        """A copy with ``data`` read fully into memory as a numpy array."""
        from dataclasses import replace

        return replace(self, data=np.ascontiguousarray(np.asarray(self.data[:, :])))

    def pick(self, picks: list[int] | list[str]) -> Recording:
        """A recording with only the given channels (indices or names), in that order."""
        from dataclasses import replace

        if picks and isinstance(picks[0], str):
            missing = [p for p in picks if p not in self.sensors.names]
            if missing:
                raise RecordingError(
                    f"channels not in the recording: {missing}", path=self.source.get("path")
                )
            idx = [self.sensors.names.index(p) for p in picks]
        else:
            idx = [int(i) for i in picks]
        data = np.asarray(self.data[np.asarray(idx, dtype=int), :])
        return replace(self, data=data, sensors=self.sensors.pick(idx))

    def summary(self) -> dict[str, Any]:
        """What ``neurofm inspect`` prints: channels by type, sfreq, duration, events, bads, ids."""
        return {
            "source": self.source.get("path"),
            "format": self.source.get("format"),
            "subject": self.subject,
            "session": self.session,
            "task": self.task,
            "run": self.run,
            "n_chans": self.n_chans,
            "channels_by_type": self.sensors.counts_by_type(),
            "sfreq": self.sfreq,
            "n_times": self.n_times,
            "duration_s": self.duration,
            "n_events": len(self.events),
            "events_by_description": self.events.counts(),
            "bads": list(self.sensors.bads),
        }


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file (or of every file under a directory, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()
