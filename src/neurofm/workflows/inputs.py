"""Bring your own recordings to the demo: check the files, then prepare them the demo's way.

``neurofm demo --inputs FILE [FILE ...]`` reads every file once, lazily, through
:func:`~neurofm.io.read_recording` (any format it reads), keeps the data channels
(:data:`DATA_CHANNEL_TYPES`) and checks that all inputs share one channel set and one sampling
rate and are long enough for their split:

- one or two recordings: a split in time within each recording (train, val, test in time order,
  80 / 10 / 10 %, with a gap of one evaluation window between neighbouring splits);
- three or more: a split by recording (whole recordings drawn for train, val and test, seed 0).

Every problem raises a :class:`~neurofm.errors.RecordingError` naming the file and what is
needed. The prepared store then goes through the demo's fit, evaluation and generation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurofm.errors import RecordingError

DATA_CHANNEL_TYPES = ("mag", "grad", "eeg", "ecog", "seeg", "dbs", "lfp", "spikes")
"""Channel types modelled; EOG, ECG, EMG, stimulus, respiration and misc channels are dropped."""

EVALUATION_WINDOW_S = 2.0
"""The longest window read after preparing (the evaluation's realism windows,
``EvaluateConfig.realism_seconds``): every split holds one, and time splits keep a gap of one."""

HIGHPASS_HZ = 0.5
"""Edge of the high-pass that removes slow drifts of continuous signals (mains frequency and
useful band are unknown, so no notch or low-pass)."""

MIN_RECORDINGS_BY_RECORDING = 3
"""A split by recording needs one recording each for train, val and test."""


@dataclass(frozen=True)
class InputRecordings:
    """The user's recordings, checked to fit one model.

    Attributes
    ----------
    paths : list of str
        The files, in the order given.
    ch_names : list of str
        The data channels every file holds, in order.
    ch_types : list of str
        The data channel types kept (from :data:`DATA_CHANNEL_TYPES`).
    sfreq : float
        The common sampling rate (Hz).
    durations : list of float
        Length of each file (s).
    """

    paths: list[str]
    ch_names: list[str]
    ch_types: list[str]
    sfreq: float
    durations: list[float]

    @property
    def n_chans(self) -> int:
        """Channels after picking the data channels."""
        return len(self.ch_names)

    @property
    def split_by(self) -> str:
        """``"time"`` for one or two recordings, else ``"recording"``."""
        return "time" if len(self.paths) < MIN_RECORDINGS_BY_RECORDING else "recording"

    def prepare_config(self, output: str | Path) -> dict[str, Any]:
        """The ``neurofm prepare`` config of these inputs into the store ``output``."""
        steps: list[dict[str, Any]] = [{"name": "pick_types", "types": list(self.ch_types)}]
        if "spikes" not in self.ch_types:
            steps.append({"name": "highpass", "l_freq": HIGHPASS_HZ})
        return {
            "name": "inputs",
            "inputs": list(self.paths),
            "output": str(output),
            "preprocessing": steps,
            "splits": {"by": self.split_by, "window": EVALUATION_WINDOW_S},
            "scaler": {"kind": "robust", "max_samples": 1_000_000},
        }


def check_inputs(paths: Sequence[str | Path]) -> InputRecordings:
    """Read the headers of ``paths`` and check that they make one dataset for the demo.

    Raises
    ------
    RecordingError
        Naming the file: it cannot be read, holds no data channel, its data channels or sampling
        rate differ from the first file's, or it is too short for its split.
    """
    from neurofm.io import read_recording

    if not paths:
        raise RecordingError("give at least one recording file")
    if len({str(Path(p).resolve()) for p in paths}) < len(paths):
        raise RecordingError(f"a file is given twice among the inputs {[str(p) for p in paths]}")
    reference: tuple[str, list[str], list[str], float] | None = None  # path, names, types, Hz
    durations = []
    for path in map(str, paths):
        recording = read_recording(path, nan_policy="ignore", flat_policy="ignore")
        types = [t for t in DATA_CHANNEL_TYPES if t in recording.sensors.types]
        if not types:
            raise RecordingError(
                f"no data channel (types {', '.join(DATA_CHANNEL_TYPES)}); the file has "
                f"{recording.sensors.counts_by_type()}",
                path=path,
            )
        names = [n for n, t in zip(recording.sensors.names, recording.sensors.types) if t in types]
        sfreq = float(recording.sfreq)
        if reference is None:
            reference = (path, names, types, sfreq)
        elif not math.isclose(sfreq, reference[3], rel_tol=1e-6):
            raise RecordingError(
                f"sampling rate {sfreq:g} Hz differs from {reference[3]:g} Hz of the first input "
                f"{reference[0]}; all inputs need one rate (resample them first)",
                path=path,
            )
        elif names != reference[1]:
            raise RecordingError(
                f"data channels differ from the first input {reference[0]}: "
                + _channel_difference(reference[1], names)
                + "; all inputs need the same channels in the same order",
                path=path,
            )
        durations.append(recording.n_times / sfreq)
    _, names, types, sfreq = reference
    inputs = InputRecordings([str(p) for p in paths], names, types, sfreq, durations)
    for path, seconds in zip(inputs.paths, durations):
        _check_length(path, seconds, inputs)
    return inputs


def _channel_difference(expected: list[str], got: list[str]) -> str:
    """The difference between two channel lists, in words (a few names each)."""
    missing = [n for n in expected if n not in set(got)]
    extra = [n for n in got if n not in set(expected)]
    if not missing and not extra:
        return f"same {len(got)} channels in another order"
    parts = [f"{len(got)} data channels instead of {len(expected)}"]
    if missing:
        parts.append(f"missing {_few(missing)}")
    if extra:
        parts.append(f"extra {_few(extra)}")
    return ", ".join(parts)


def _few(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return f"{shown} (+{len(names) - n} more)" if len(names) > n else shown


def _check_length(path: str, seconds: float, inputs: InputRecordings) -> None:
    """Raise when the recording ``path`` of ``seconds`` is too short for the inputs' split."""
    from neurofm.data.splits import DEFAULT_FRACTIONS, SplitError, split_by_time

    window = round(EVALUATION_WINDOW_S * inputs.sfreq)
    if inputs.split_by == "recording":
        if seconds < EVALUATION_WINDOW_S:
            raise RecordingError(
                f"{seconds:.1f} s is too short: a split by recording needs every recording to "
                f"hold at least one {EVALUATION_WINDOW_S:g} s evaluation window",
                path=path,
            )
        return
    # the time split itself decides (exactly, with its rounding); the message gives the rule
    n_times = round(seconds * inputs.sfreq)
    try:
        split_by_time({"recordings": [{"id": path, "n_times": n_times}]}, window_length=window)
    except SplitError:
        smallest = min(DEFAULT_FRACTIONS.values())
        needed = EVALUATION_WINDOW_S / smallest + 2 * EVALUATION_WINDOW_S
        raise RecordingError(
            f"{seconds:.1f} s is too short for a split in time: it needs about {needed:g} s "
            f"(val and test each get {smallest:.0%} of the time and must hold one "
            f"{EVALUATION_WINDOW_S:g} s evaluation window, with {EVALUATION_WINDOW_S:g} s gaps "
            f"between splits); give a longer recording, or three or more recordings for a "
            f"split by recording",
            path=path,
        ) from None
