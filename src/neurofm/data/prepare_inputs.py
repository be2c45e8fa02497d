"""What ``neurofm prepare`` checks about its inputs before anything is written.

- A folder given as an input stands for the recordings in it: each header file (``.vhdr``,
  ``.set``, ``.lay``, ``.edf``, ...) is one recording, and its companion files (``.vmrk`` and
  ``.eeg`` of BrainVision, ``.fdt`` of EEGLAB, ``.dat`` of Persyst) are grouped with it; notes,
  tables and checksums are passed over (:func:`recordings_in_folder`).
- Reader options (``reader:`` in the config, e.g. ``sfreq`` and ``ch_types`` of a ``.npy`` array)
  are checked against :func:`neurofm.io.read_recording` (:func:`reader_problems`).
- Recordings with different channel sets are caught from their headers, with the
  ``channel_policy`` to choose (:func:`channel_sets`).
- Too few recordings for the split policy gets the hint to split in time (:func:`split_hint`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurofm.config import _close
from neurofm.errors import ConfigError, RecordingError
from neurofm.io import read_recording
from neurofm.io._checks import format_from_name
from neurofm.logging import get_logger

log = get_logger("prepare")

COMPANIONS: dict[str, tuple[str, ...]] = {
    ".vmrk": (".vhdr",),
    ".eeg": (".vhdr",),
    ".fdt": (".set",),
    ".dat": (".lay",),
}
"""Companion file extension -> the header extensions that own it (same file stem)."""

FOLDER_FORMATS = ("ctf", "egi", "bti")
"""Formats whose recording is itself a folder (CTF ``.ds``, EGI ``.mff``, 4D/BTi)."""

SET_BY_PREPARE = ("path", "preload", "nan_policy", "flat_policy", "sha256", "cache_dir")
"""Arguments of ``read_recording`` that prepare sets itself (not reader options)."""


def recordings_in_folder(folder: Path) -> list[Path]:
    """The recording files of ``folder`` (not recursive), companions grouped with their header.

    Raises
    ------
    RecordingError
        When the folder holds no recording, or a companion file lacks its header (naming both).
    """
    headers: list[Path] = []
    passed_over: list[str] = []
    names = {child.name.lower() for child in folder.iterdir()}
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        suffix = child.suffix.lower()
        if suffix in COMPANIONS:
            owners = [child.stem + ext for ext in COMPANIONS[suffix]]
            if not any(o.lower() in names for o in owners):
                raise RecordingError(
                    f"companion file without its header {' or '.join(owners)} in the same "
                    "folder (the header names the recording; give it, or remove this file)",
                    path=str(child),
                )
            continue
        try:
            fmt = format_from_name(child)
        except RecordingError:
            passed_over.append(child.name)
            continue
        if fmt == "text" or (child.is_dir() and fmt not in FOLDER_FORMATS):
            passed_over.append(child.name)  # notes and tables; text signals need a pattern
            continue
        headers.append(child)
    if passed_over:
        log.info("%s: not recordings, passed over: %s", folder, ", ".join(passed_over))
    if not headers:
        raise RecordingError(
            "no recording file in this folder (text files count only when named by a pattern, "
            "e.g. DIR/*.txt)",
            path=str(folder),
        )
    return headers


def is_recording_folder(path: Path) -> bool:
    """True for a folder that is a recording itself (CTF ``.ds``, EGI ``.mff``, BTi)."""
    try:
        return format_from_name(path) in FOLDER_FORMATS
    except RecordingError:
        return False


def reader_problems(options: Mapping[str, Any] | None) -> list[str]:
    """One line per ``reader.<key>`` that :func:`~neurofm.io.read_recording` does not take."""
    if not options:
        return []
    allowed = [
        name
        for name in inspect.signature(read_recording).parameters
        if name not in SET_BY_PREPARE and not name.startswith("_")
    ]
    return [
        f"reader.{key}: unknown reader option; allowed: {', '.join(allowed)}" + _close(key, allowed)
        for key in options
        if key not in allowed
    ]


def channel_sets(
    paths: Sequence[tuple[str, str]], reader: Mapping[str, Any] | None, policy: str
) -> list[str] | None:
    """Compare the channel names of every input (read from the headers, no samples loaded).

    Parameters
    ----------
    paths : sequence of (id, path)
        The inputs.
    reader : mapping, optional
        Reader options.
    policy : {"same", "intersect", "keep"}
        ``same``: every recording must have the same channels (any order), else a ConfigError
        lists the differences and the policies; ``intersect``: the channels common to all, in
        the first recording's order, are returned (each recording keeps only those);
        ``keep``: no check, each recording is stored with its own channels.

    Returns
    -------
    list of str or None
        The channels each recording keeps (``intersect``), or None (keep them all).
    """
    if policy == "keep" or len(paths) < 2:
        return None
    names = {}
    for rid, path in paths:
        rec = read_recording(  # the header only: no samples read, the file not hashed here
            path, nan_policy="ignore", flat_policy="ignore", sha256="-", **dict(reader or {})
        )
        names[rid] = list(rec.sensors.names)
    first_id, first = next(iter(names.items()))
    common = [n for n in first if all(n in set(v) for v in names.values())]
    differ = {rid: v for rid, v in names.items() if set(v) != set(first)}
    if not differ:
        return None
    if policy == "intersect":
        if not common:
            raise ConfigError("channel_policy: intersect: the recordings share no channel")
        log.info("channel_policy intersect: keeping %d common channels", len(common))
        return common
    lines = []
    for rid, v in list(differ.items())[:5]:
        missing = [n for n in first if n not in set(v)]
        extra = [n for n in v if n not in set(first)]
        lines.append(
            f"channel_policy: recording {rid!r} has other channels than {first_id!r}: "
            f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
            f"extra {extra[:8]}{' ...' if len(extra) > 8 else ''}"
        )
    lines.append(
        f"channel_policy: {len(differ)} of {len(names)} recordings differ; choose "
        f"'intersect' (keep the {len(common)} channels all share) or 'keep' (store each with "
        "its own channels; training then picks them with data.channels), or prepare them "
        "separately"
    )
    raise ConfigError(lines)


def split_hint(splits: Any, n_sources: int) -> list[str]:
    """The problem of a split by groups with fewer recordings than splits, with the way out."""
    if splits.by == "time" or splits.assign is not None:
        return []
    wanted = [name for name, share in splits.fractions.items() if share > 0]
    if n_sources >= len(wanted) or splits.by != "recording":
        return []
    return [
        f"splits.by: {splits.by!r} needs at least {len(wanted)} recordings for the splits "
        f"{wanted}, the inputs have {n_sources}; split in time instead: "
        "splits: {by: time} (each recording is cut into train / val / test blocks)"
    ]
