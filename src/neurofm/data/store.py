"""The prepared store: the on-disk form that training reads.

One folder per dataset::

    manifest.json            recordings, channels, sfreq, preprocessing fingerprint, checksums, splits
    recordings/<id>-<tag>.npy  one float32 array per recording, time-major (n_times, n_chans)

Time-major storage makes a window one contiguous read. Arrays are ``.npy`` files opened with
``numpy.load(mmap_mode="r")``, so any tool can read them. Recording arrays and the manifest are
written atomically; a recording whose source checksum and preprocessing fingerprint match the
manifest is skipped, so preparing is idempotent and resumable.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurofm._version import __version__
from neurofm.data.recording import Events, Recording
from neurofm.errors import RecordingError
from neurofm.fileio import fsync_dir, resolve_inside, write_json_atomic
from neurofm.types import SensorInfo

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
INCOMPLETE = "incomplete.json"
"""Present while ``neurofm prepare`` writes the store, and after a run that did not finish."""


@dataclass
class StoredRecording:
    """One recording of a prepared store: its metadata and a lazily opened memmap."""

    root: Path
    id: str
    file: str
    n_times: int
    sfreq: float
    sensors: SensorInfo
    events: Events
    subject: str | None = None
    session: str | None = None
    task: str | None = None
    run: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    _array: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_chans(self) -> int:
        return self.sensors.n_chans

    @property
    def path(self) -> Path:
        return self.root / self.file

    @property
    def array(self) -> np.ndarray:
        """The memory-mapped ``(n_times, n_chans)`` float32 array (opened on first use)."""
        if self._array is None:
            try:
                arr = np.load(self.path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise RecordingError(
                    f"cannot open prepared array: {err}", path=str(self.path)
                ) from err
            if arr.shape != (self.n_times, self.n_chans):
                raise RecordingError(
                    f"prepared array has shape {arr.shape}, manifest says "
                    f"({self.n_times}, {self.n_chans})",
                    path=str(self.path),
                )
            self._array = arr
        return self._array

    def window(self, start: int, length: int) -> np.ndarray:
        """Samples ``[start, start + length)`` as a ``(C, T)`` float32 array (one contiguous read)."""
        if start < 0 or start + length > self.n_times:
            raise IndexError(
                f"{self.id}: window [{start}, {start + length}) outside 0..{self.n_times}"
            )
        return np.ascontiguousarray(self.array[start : start + length].T)

    def to_recording(self) -> Recording:
        """A Recording whose data is a (C, T) view of the memmap (nothing loaded)."""
        return Recording(
            data=self.array.T,
            sfreq=self.sfreq,
            sensors=self.sensors,
            events=self.events,
            subject=self.subject,
            session=self.session,
            task=self.task,
            run=self.run,
            source=dict(self.source),
            meta=dict(self.meta),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "n_times": self.n_times,
            "sfreq": self.sfreq,
            "sensors": self.sensors.to_dict(),
            "events": self.events.to_dict(),
            "subject": self.subject,
            "session": self.session,
            "task": self.task,
            "run": self.run,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, root: Path, d: dict[str, Any]) -> StoredRecording:
        """Read a manifest entry; its ``file`` must lie inside ``root`` (UnsafePathError)."""
        resolve_inside(
            root, d["file"], source=root / MANIFEST, field=f"recordings[id={d.get('id')!r}].file"
        )
        return cls(
            root=root,
            id=d["id"],
            file=d["file"],
            n_times=int(d["n_times"]),
            sfreq=float(d["sfreq"]),
            sensors=SensorInfo.from_dict(d["sensors"]),
            events=Events.from_dict(d["events"]),
            subject=d.get("subject"),
            session=d.get("session"),
            task=d.get("task"),
            run=d.get("run"),
            source=d.get("source", {}),
            fingerprint=d.get("fingerprint", ""),
            meta=d.get("meta", {}),
        )


class PreparedStore:
    """A prepared dataset folder: read it with :meth:`open`, add recordings with :meth:`write`.

    Parameters
    ----------
    root : path
        The dataset folder.
    manifest : dict
        The parsed ``manifest.json``.
    """

    def __init__(self, root: str | Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self._renamed = False  # an array was renamed into recordings/ since the last save
        self.recordings = [StoredRecording.from_dict(self.root, r) for r in manifest["recordings"]]

    @classmethod
    def open(cls, root: str | Path, *, allow_incomplete: bool = False) -> PreparedStore:
        """Open an existing store; errors name the folder and the problem.

        A store whose ``neurofm prepare`` is running or did not finish is refused unless
        ``allow_incomplete`` (``prepare`` itself, ``neurofm inspect``).
        """
        root = Path(root)
        path = root / MANIFEST
        if not allow_incomplete and (root / INCOMPLETE).is_file():
            raise RecordingError(
                f"the prepared dataset is incomplete: {incomplete_reason(root)}; run "
                "`neurofm prepare` with the same config again to complete it",
                path=str(root),
            )
        if not path.is_file():
            raise RecordingError("not a prepared dataset (no manifest.json)", path=str(root))
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise RecordingError(f"manifest.json is not valid JSON: {err}", path=str(path)) from err
        for key in ("format_version", "recordings"):
            if key not in manifest:
                raise RecordingError(f"manifest.json lacks the field {key!r}", path=str(path))
        if manifest["format_version"] > FORMAT_VERSION:
            raise RecordingError(
                f"manifest format_version {manifest['format_version']} is newer than this "
                f"neurofm reads ({FORMAT_VERSION})",
                path=str(path),
            )
        return cls(root, manifest)

    @classmethod
    def create(
        cls,
        root: str | Path,
        *,
        name: str | None = None,
        preprocessing: dict[str, Any] | None = None,
        fingerprint: str = "",
        save: bool = True,
    ) -> PreparedStore:
        """Open ``root`` for writing, creating an empty store when there is none.

        An existing store keeps its recordings; those with another fingerprint will be rewritten.
        ``save=False`` leaves a new store's ``manifest.json`` to the first :meth:`save_manifest`
        (or ``write(..., save=True)``).
        """
        root = Path(root)
        (root / "recordings").mkdir(parents=True, exist_ok=True)
        if (root / MANIFEST).is_file():
            store = cls.open(root, allow_incomplete=True)
            store.manifest["preprocessing"] = preprocessing or {}
            store.manifest["fingerprint"] = fingerprint
            return store
        manifest = {
            "format_version": FORMAT_VERSION,
            "neurofm_version": __version__,
            "name": name or root.name,
            "preprocessing": preprocessing or {},
            "fingerprint": fingerprint,
            "recordings": [],
            "splits": {},
        }
        store = cls(root, manifest)
        if save:
            store.save_manifest()
        return store

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, key: int | str) -> StoredRecording:
        if isinstance(key, str):
            for rec in self.recordings:
                if rec.id == key:
                    return rec
            raise KeyError(
                f"{self.root}: no recording {key!r}; have {[r.id for r in self.recordings]}"
            )
        return self.recordings[key]

    @property
    def fingerprint(self) -> str:
        return self.manifest.get("fingerprint", "")

    @property
    def splits(self) -> dict[str, list[str]]:
        """Named splits as lists of recording ids (or ``id@start:stop`` time ranges)."""
        return self.manifest.setdefault("splits", {})

    def is_current(self, rec_id: str, source_sha256: str, fingerprint: str) -> bool:
        """True when ``rec_id`` is stored from the same source with the same preprocessing."""
        for rec in self.recordings:
            if rec.id == rec_id:
                return (
                    rec.source.get("sha256") == source_sha256
                    and rec.fingerprint == fingerprint
                    and rec.path.is_file()
                )
        return False

    def write(
        self,
        rec_id: str,
        recording: Recording,
        *,
        fingerprint: str,
        chunk_samples: int = 1 << 16,
        save: bool = True,
    ) -> StoredRecording:
        """Store ``recording`` as ``recordings/<rec_id>-<tag>.npy`` (float32, time-major), atomically.

        ``tag`` is derived from the source checksum and ``fingerprint``, so re-preparing a
        recording writes a new file instead of replacing the one the manifest names: a crash
        before the manifest is saved leaves the old entry pointing at the old, matching array.
        :meth:`prune_unreferenced` removes superseded arrays once the new manifest is saved.

        The data is streamed in chunks so that a lazy recording is never loaded whole; the file
        is written beside its final path, fsync'd and renamed into place. Non-finite samples raise
        a RecordingError naming the channel and sample. ``save=False`` records the recording in
        memory only: the caller writes ``manifest.json`` later with :meth:`save_manifest` (once
        after several writes), which first makes the arrays' renames durable.
        """
        tag = hashlib.sha256(
            f"{recording.source.get('sha256', '')}:{fingerprint}".encode()
        ).hexdigest()[:12]
        rel = f"recordings/{rec_id}-{tag}.npy"
        final = self.root / rel
        tmp = final.with_name(f".{final.name}.tmp")
        n_chans, n_times = recording.n_chans, recording.n_times
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
            "fortran_order": False,
            "shape": (n_times, n_chans),
        }
        try:
            with open(tmp, "wb") as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                for start in range(0, n_times, chunk_samples):
                    stop = min(start + chunk_samples, n_times)
                    block = np.asarray(recording.data[:, start:stop], dtype=np.float32)
                    if not np.isfinite(block).all():
                        ch, t = np.argwhere(~np.isfinite(block))[0]
                        raise RecordingError(
                            "non-finite sample in prepared data",
                            path=recording.source.get("path"),
                            channel=recording.sensors.names[ch],
                            sample=int(start + t),
                        )
                    fh.write(np.ascontiguousarray(block.T, dtype="<f4").data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            self._renamed = True
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        stored = StoredRecording(
            root=self.root,
            id=rec_id,
            file=rel,
            n_times=n_times,
            sfreq=recording.sfreq,
            sensors=recording.sensors,
            events=recording.events,
            subject=recording.subject,
            session=recording.session,
            task=recording.task,
            run=recording.run,
            source=dict(recording.source),
            fingerprint=fingerprint,
            meta=_json_safe(recording.meta),
        )
        self.recordings = [r for r in self.recordings if r.id != rec_id] + [stored]
        if save:
            self.save_manifest()
        else:
            self.manifest["recordings"] = [r.to_dict() for r in self.recordings]
        return stored

    def prune_unreferenced(self) -> list[Path]:
        """Delete arrays in ``recordings/`` that the saved manifest no longer names.

        Call it only after the manifest naming the current arrays is on disk.
        """
        on_disk = json.loads((self.root / MANIFEST).read_text())
        keep = {self.root / r["file"] for r in on_disk["recordings"]}
        removed = []
        for path in sorted((self.root / "recordings").glob("*.npy")):
            if path not in keep:
                path.unlink()
                removed.append(path)
        return removed

    def save_manifest(self) -> None:
        """Write ``manifest.json`` atomically, after making the arrays' renames durable."""
        self.manifest["recordings"] = [r.to_dict() for r in self.recordings]
        if self._renamed:
            fsync_dir(self.root / "recordings")
            self._renamed = False
        write_json_atomic(self.root / MANIFEST, self.manifest)


def incomplete_reason(root: str | Path) -> str | None:
    """Why the store at ``root`` is incomplete, in words, or None when it is complete."""
    path = Path(root) / INCOMPLETE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        text = (
            f"a prepare run (process id {record['pid']}, started {record['started']}) "
            "did not finish or is still running"
        )
        if record.get("error"):
            text += f"; it failed with: {record['error']}"
        return text
    except (OSError, ValueError, KeyError, TypeError):
        return "a prepare run did not finish or is still running"


def _json_safe(meta: dict[str, Any]) -> dict[str, Any]:
    """Keep the JSON-serialisable part of ``meta`` (arrays such as spike times are dropped)."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out
