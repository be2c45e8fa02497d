"""The recordings a ``neurofm prepare`` config names: files, globs, folders or a BIDS selection.

:func:`find_inputs` turns ``inputs:`` into :class:`Source` items in a stable order, with unique
ids (the file names without extension; two different files with one id are an error naming
both). A plain folder stands for the recordings in it (:mod:`neurofm.data.prepare_inputs`); a
:class:`BidsInputs` selection is resolved with ``mne_bids`` (events, channels and other sidecar
tables are not recordings).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from neurofm.config import to_dict
from neurofm.data.prepare_inputs import is_recording_folder, recordings_in_folder
from neurofm.errors import RecordingError


@dataclass
class BidsInputs:
    """Recordings of a BIDS dataset selected by entities (None: every value)."""

    bids_root: str  # root folder of the BIDS dataset
    subjects: list[str] | None = None  # subject labels without "sub-"
    sessions: list[str] | None = None  # session labels without "ses-"
    tasks: list[str] | None = None  # task labels
    runs: list[str] | None = None  # run labels
    datatypes: list[str] | None = None  # e.g. ["eeg"], ["meg"]
    extensions: list[str] | None = None  # e.g. [".edf"], [".fif"]


@dataclass(frozen=True)
class Source:
    """One input recording: its store id, file and BIDS entities."""

    id: str
    path: str
    entities: dict[str, str | None] = field(default_factory=dict)


def find_inputs(inputs: list[str] | BidsInputs) -> list[Source]:
    """The input files, in a stable order, with unique ids (file names without extension)."""
    if isinstance(inputs, BidsInputs):
        return _bids_sources(inputs)
    sources: list[Source] = []
    for pattern in inputs:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            raise RecordingError("no file matches this input pattern", path=pattern)
        files = []
        for match in map(Path, matches):  # a plain folder stands for the recordings in it
            is_folder = match.is_dir() and not is_recording_folder(match)
            files += recordings_in_folder(match) if is_folder else [match]
        sources += [Source(id=_stem(m), path=str(m)) for m in files]
    return _unique(sources)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".tar.gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem if path.suffix else name


def _unique(sources: list[Source]) -> list[Source]:
    """Sources with distinct ids; the same file matched twice is kept once."""
    seen: dict[str, Source] = {}
    for src in sources:
        if src.id in seen and seen[src.id].path != src.path:
            raise RecordingError(
                f"two inputs have the same recording id {src.id!r}: "
                f"{seen[src.id].path!r} and {src.path!r}; rename one",
                path=src.path,
            )
        seen.setdefault(src.id, src)
    return list(seen.values())


def _bids_sources(spec: BidsInputs) -> list[Source]:
    from mne_bids import find_matching_paths

    root = Path(spec.bids_root)
    if not root.is_dir():
        raise RecordingError("BIDS root is not a folder", path=str(root))
    paths = find_matching_paths(
        root,
        subjects=spec.subjects,
        sessions=spec.sessions,
        tasks=spec.tasks,
        runs=spec.runs,
        datatypes=spec.datatypes,
        extensions=spec.extensions
        or [".edf", ".bdf", ".fif", ".vhdr", ".set", ".con", ".sqd", ".ds"],
    )
    sources = [
        Source(
            id=p.basename.rsplit(".", 1)[0] if p.extension else p.basename,
            path=str(p.fpath),
            entities={
                "subject": p.subject,
                "session": p.session,
                "task": p.task,
                "run": None if p.run is None else str(p.run),
            },
        )
        for p in sorted(paths, key=lambda p: str(p.fpath))
        if p.suffix not in ("events", "channels", "scans", "coordsystem", "electrodes")
    ]
    if not sources:
        raise RecordingError(
            f"no recording in the BIDS dataset matches the selection {to_dict(spec)}",
            path=str(root),
        )
    return _unique(sources)
