"""BIDS: ``events.tsv`` with payloads, ``channels.tsv`` + ``*_meg.json`` sidecars (also when the
signal file is absent), locating a recording's signal file, and pairing an events table with a
signal. Reading the signal of a BIDS recording is :func:`neurofm.io.reader.read_bids`."""

from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.data.recording import Events, Recording
from neurofm.errors import RecordingError
from neurofm.types import DEFAULT_UNITS, SensorInfo

# BIDS channels.tsv ``type`` -> neurofm channel type (KIT/CTF axial gradiometers are read by
# MNE as magnetometers; reference sensors are kept as misc with their unit)
BIDS_CHANNEL_TYPES = {
    "MEGMAG": "mag",
    "MEGGRADPLANAR": "grad",
    "MEGGRADAXIAL": "mag",
    "MEGREFMAG": "misc",
    "MEGREFGRADAXIAL": "misc",
    "MEGREFGRADPLANAR": "misc",
    "MEGOTHER": "misc",
    "EEG": "eeg",
    "ECOG": "ecog",
    "SEEG": "seeg",
    "DBS": "dbs",
    "EOG": "eog",
    "VEOG": "eog",
    "HEOG": "eog",
    "ECG": "ecg",
    "EMG": "emg",
    "TRIG": "stim",
    "RESP": "resp",
    "MISC": "misc",
}
SIGNAL_SUFFIXES = ("meg", "eeg", "ieeg")
_MISSING = ("n/a", "")


def read_bids_events(path: str | Path) -> Events:
    """Parse a BIDS ``events.tsv`` into Events with one payload dict per row.

    ``onset``/``duration`` are seconds from the first sample of the data file. The description
    is ``trial_type``; a ``trial_type`` holding a dict literal (as MEG-MASC's original tables
    do, ``"{'kind': 'word', 'word': 'the', ...}"``) is parsed into the payload and its
    ``kind`` becomes the description. Every other column goes to the payload, ``n/a`` left out,
    numbers as int/float when the whole column is numeric.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise RecordingError(f"cannot read events table: {err}", path=str(path)) from err
    if not rows:
        return Events()
    if "onset" not in rows[0]:
        raise RecordingError(
            f"events table has no 'onset' column; columns: {list(rows[0])}", path=str(path)
        )
    columns = [c for c in rows[0] if c not in ("onset", "duration", "trial_type")]
    present = {
        c: [r[c] for r in rows if r[c] not in _MISSING and r[c] is not None] for c in columns
    }
    numeric = {c for c in columns if all(_is_number(v) for v in present[c])}
    # a numeric column is int when every value is written as an integer, float otherwise
    integer = {c for c in numeric if all(v.lstrip("+-").isdigit() for v in present[c])}
    onset, duration, description, payload = [], [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            onset.append(float(row["onset"]))
        except (TypeError, ValueError):
            raise RecordingError(
                f"line {line}: onset {row['onset']!r} is not a number", path=str(path)
            ) from None
        dur = row.get("duration")
        duration.append(0.0 if dur in _MISSING or dur is None else float(dur))
        item = {
            c: _number(row[c], c in integer) if c in numeric else row[c]
            for c in columns
            if row[c] not in _MISSING and row[c] is not None
        }
        kind = row.get("trial_type") or row.get("value") or "event"
        if kind.startswith("{"):
            try:
                parsed = ast.literal_eval(kind)
            except (ValueError, SyntaxError):
                raise RecordingError(
                    f"line {line}: trial_type {kind[:60]!r} is not a valid dict literal",
                    path=str(path),
                ) from None
            item.update(parsed)
            kind = str(parsed.get("kind", "event"))
        description.append(kind)
        payload.append(item)
    return Events(np.asarray(onset), np.asarray(duration), description, payload)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _number(text: str, as_int: bool) -> int | float:
    return int(text) if as_int else float(text)


def read_bids_channels(path: str | Path) -> SensorInfo:
    """A BIDS ``channels.tsv`` as SensorInfo (types mapped, ``status == bad`` as bads).

    The original BIDS types are not lost: :func:`read_bids_sidecars` counts them.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or "name" not in rows[0] or "type" not in rows[0]:
        raise RecordingError("channels table needs 'name' and 'type' columns", path=str(path))
    # auxiliary BIDS types (AUDIO, SYSCLOCK, GSR, TEMP, PPG, HLU, ...) are kept as misc
    types = [BIDS_CHANNEL_TYPES.get(r["type"].upper(), "misc") for r in rows]
    units = [
        r["units"] if r.get("units") not in _MISSING and r.get("units") else None for r in rows
    ]
    return SensorInfo(
        names=[r["name"] for r in rows],
        types=types,
        units=[u or DEFAULT_UNITS[t] for u, t in zip(units, types)],
        bads=[r["name"] for r in rows if r.get("status", "").lower() == "bad"],
    )


def bids_sidecar(signal: Path, suffix: str) -> Path | None:
    """The ``<prefix>_<suffix>`` file beside a BIDS signal file, when it exists."""
    match = re.match(r"(.*)_(?:meg|eeg|ieeg)(?:\.[A-Za-z0-9.]+)?$", signal.name)
    if match is None:
        return None
    candidate = signal.parent / f"{match.group(1)}_{suffix}"
    return candidate if candidate.is_file() else None


@dataclass
class BidsSidecars:
    """What the sidecars of one BIDS recording say when its signal file is not there."""

    subject: str
    session: str | None
    task: str | None
    run: str | None
    datatype: str | None
    sensors: SensorInfo | None
    sfreq: float | None
    duration: float | None
    events: Events
    bids_channel_types: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The same keys as ``Recording.summary`` (``n_times`` None: there is no signal)."""
        return {
            "source": self.files.get("events") or self.files.get("channels"),
            "format": "bids-sidecars",
            "subject": self.subject,
            "session": self.session,
            "task": self.task,
            "run": self.run,
            "n_chans": None if self.sensors is None else self.sensors.n_chans,
            "channels_by_type": {} if self.sensors is None else self.sensors.counts_by_type(),
            "bids_channel_types": self.bids_channel_types,
            "sfreq": self.sfreq,
            "n_times": None,
            "duration_s": self.duration,
            "n_events": len(self.events),
            "events_by_description": self.events.counts(),
            "bads": [] if self.sensors is None else list(self.sensors.bads),
            "signal_present": False,
        }


def find_bids_recordings(root: str | Path) -> list[dict[str, str | None]]:
    """Entity sets (subject, session, task, run, datatype) of every recording under ``root``
    that has a signal file or an events/channels/signal sidecar."""
    pattern = re.compile(
        r"^sub-([^_]+)(?:_ses-([^_]+))?(?:_task-([^_]+))?(?:_acq-[^_]+)?"
        r"(?:_run-([^_]+))?.*_(events\.tsv|channels\.tsv|meg|eeg|ieeg)(?:\.|$)"
    )
    found: dict[tuple, dict[str, str | None]] = {}
    for path in sorted(Path(root).rglob("sub-*")):
        match = pattern.match(path.name)
        if match is None or path.parent.name not in SIGNAL_SUFFIXES:
            continue
        subject, session, task, run, _ = match.groups()
        key = (subject, session, task, run, path.parent.name)
        found[key] = {
            "subject": subject,
            "session": session,
            "task": task,
            "run": run,
            "datatype": path.parent.name,
        }
    return list(found.values())


def bids_prefix(subject: str, session: str | None, task: str | None, run: str | None) -> str:
    """The file-name prefix of a recording's entities, e.g. ``sub-01_ses-a_task-rest_run-04``."""
    parts = [f"sub-{subject}"] + [
        f"{k}-{v}" for k, v in (("ses", session), ("task", task), ("run", run)) if v is not None
    ]
    return "_".join(parts)


def read_bids_sidecars(
    root: str | Path,
    *,
    subject: str,
    session: str | None = None,
    task: str | None = None,
    run: str | None = None,
    datatype: str | None = None,
) -> BidsSidecars:
    """Channels (``channels.tsv``), sfreq and duration (``*_<datatype>.json``) and events of a
    BIDS recording, read from its sidecars alone (for inspection when the signal is absent)."""
    root = Path(root)
    folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "")
    datatypes = [datatype] if datatype else [d for d in SIGNAL_SUFFIXES if (folder / d).is_dir()]
    if not datatypes:
        raise RecordingError(f"no meg/eeg/ieeg folder for sub-{subject}", path=str(folder))
    folder = folder / datatypes[0]
    prefix = bids_prefix(subject, session, task, run)
    files = {
        "events": folder / f"{prefix}_events.tsv",
        "channels": folder / f"{prefix}_channels.tsv",
        "sidecar": folder / f"{prefix}_{datatypes[0]}.json",
    }
    present = {k: p for k, p in files.items() if p.is_file()}
    if not present:
        raise RecordingError(f"no sidecar files {prefix}_*", path=str(folder))
    sensors, bids_types = None, {}
    if "channels" in present:
        sensors = read_bids_channels(present["channels"])
        with open(present["channels"], newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                bids_types[row["type"]] = bids_types.get(row["type"], 0) + 1
    sfreq = duration = None
    if "sidecar" in present:
        try:
            sidecar = json.loads(present["sidecar"].read_text())
        except json.JSONDecodeError as err:
            raise RecordingError(f"not valid JSON: {err}", path=str(present["sidecar"])) from err
        sfreq = sidecar.get("SamplingFrequency")
        duration = sidecar.get("RecordingDuration")
    events = read_bids_events(present["events"]) if "events" in present else Events()
    return BidsSidecars(
        subject=subject,
        session=session,
        task=task,
        run=run,
        datatype=datatypes[0],
        sensors=sensors,
        sfreq=None if sfreq is None else float(sfreq),
        duration=None if duration is None else float(duration),
        events=events,
        bids_channel_types=bids_types,
        files={k: str(p) for k, p in present.items()},
    )


def attach_events(
    recording: Recording, events: Events, *, replace_existing: bool = True
) -> Recording:
    """Pair an events table (e.g. from :func:`read_bids_events`) with a recording's signal.

    Onsets are seconds from the recording's first sample; an event starting outside the
    recording raises a RecordingError naming the event (nothing is dropped).
    """
    outside = np.flatnonzero((events.onset < 0) | (events.onset >= recording.duration))
    if outside.size:
        i = int(outside[0])
        raise RecordingError(
            f"{outside.size} event(s) start outside the recording's {recording.duration:g} s, "
            f"first: event {i} ({events.description[i]!r}) at {events.onset[i]:g} s",
            path=recording.source.get("path"),
        )
    if not replace_existing and len(recording.events):
        old = recording.events
        merged = Events(
            np.concatenate([old.onset, events.onset]),
            np.concatenate([old.duration, events.duration]),
            old.description + events.description,
            old.payload + events.payload,
        )
        order = np.argsort(merged.onset, kind="stable")
        events = Events(
            merged.onset[order],
            merged.duration[order],
            [merged.description[i] for i in order],
            [merged.payload[i] for i in order],
        )
    return replace(recording, events=events)


def find_bids_signal(
    root: str | Path,
    *,
    subject: str,
    session: str | None = None,
    task: str | None = None,
    run: str | None = None,
    datatype: str | None = None,
) -> Path | None:
    """The signal file of one BIDS recording (located by mne-bids), or None when absent."""
    from mne_bids import BIDSPath

    bids_path = BIDSPath(
        root=Path(root), subject=subject, session=session, task=task, run=run, datatype=datatype
    )
    matches = [
        p
        for p in bids_path.match(ignore_json=True)
        if p.suffix in SIGNAL_SUFFIXES and p.extension not in (".tsv", ".json")
    ]
    if len(matches) > 1:
        raise RecordingError(
            f"several signal files match: {[str(p.fpath) for p in matches]}; give more entities",
            path=str(root),
        )
    return Path(matches[0].fpath) if matches else None
