"""A preprocessing pipeline: an ordered list of steps with a stable fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurofm._version import __version__
from neurofm.config import build_config
from neurofm.data.recording import Recording
from neurofm.errors import ConfigError
from neurofm.preprocessing._base import as_float32
from neurofm.preprocessing.steps import STEPS, Step
from neurofm.registry import unknown_name_message

FILTER_STEPS = ("notch", "bandpass", "highpass", "lowpass")
"""Steps that take a filter ``phase``."""


def filter_phase(steps: Sequence[Mapping[str, Any]]) -> str:
    """The filter phase of the data that the steps ``[{"name": ..., ...}, ...]`` make.

    ``"zero"`` or ``"causal"`` when every filter step has that phase (a step without a
    ``phase``, as written before the option existed, is zero-phase), ``"mixed"`` when they
    differ, ``"none"`` without filter steps.
    """
    phases = {str(s.get("phase", "zero")) for s in steps if s.get("name") in FILTER_STEPS}
    if not phases:
        return "none"
    return phases.pop() if len(phases) == 1 else "mixed"


class Pipeline:
    """Steps applied in order to one recording held in memory as float32.

    Parameters
    ----------
    steps : sequence of Step
        The steps, e.g. ``[Notch(freqs=[60.0]), Bandpass(l_freq=0.5, h_freq=40.0)]``.

    Examples
    --------
    >>> pipeline = Pipeline.from_config([{"name": "bandpass", "l_freq": 1.0, "h_freq": 40.0}])
    >>> prepared = pipeline(recording)  # doctest: +SKIP
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        for i, step in enumerate(steps):
            if not isinstance(step, Step):
                raise TypeError(f"steps[{i}] is {type(step).__name__}, not a preprocessing Step")
        self.steps = list(steps)

    @classmethod
    def from_config(
        cls,
        items: Sequence[Mapping[str, Any]] | None,
        *,
        key: str = "preprocessing",
        source: str | None = None,
    ) -> Pipeline:
        """Build from ``[{"name": "notch", "freqs": [60]}, ...]``, reporting every problem.

        Raises
        ------
        ConfigError
            One line per problem, naming the key path (``preprocessing[1].h_freq``), the
            allowed values and a close match.
        """
        if items is None:
            return cls([])
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
            raise ConfigError(f"{key}: expected a list of steps, got {items!r}", source=source)
        problems: list[str] = []
        steps: list[Step] = []
        for i, item in enumerate(items):
            where = f"{key}[{i}]"
            if not isinstance(item, Mapping):
                problems.append(f"{where}: expected a mapping with a 'name', got {item!r}")
                continue
            params = dict(item)
            name = params.pop("name", None)
            if name is None:
                problems.append(
                    f"{where}.name: required key is missing; allowed: {', '.join(STEPS.names())}"
                )
                continue
            if name not in STEPS:
                problems.append(
                    unknown_name_message(STEPS.kind, name, STEPS.names(), f"{where}.name")
                )
                continue
            try:
                steps.append(build_config(STEPS.get(name).config_cls, params, prefix=where))
            except ConfigError as err:
                problems.extend(err.problems)
        if problems:
            raise ConfigError(problems, source=source)
        return cls(steps)

    def to_config(self) -> list[dict[str, Any]]:
        """The steps as ``[{"name": ..., <params>}, ...]`` (what :meth:`from_config` reads)."""
        return [step.to_config() for step in self.steps]

    def filter_phase(self) -> str:
        """``"zero"``, ``"causal"``, ``"mixed"`` or ``"none"`` (see :func:`filter_phase`)."""
        return filter_phase(self.to_config())

    def fingerprint(self) -> str:
        """Stable hash of the step names, their parameters and the neurofm version.

        Two pipelines with the same steps and parameters give the same fingerprint in any
        process; changing any parameter, the order of steps or the version changes it.
        """
        payload = json.dumps(
            {"neurofm": __version__, "steps": self.to_config()},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __call__(self, recording: Recording) -> Recording:
        """Apply every step to ``recording``; returns a new float32, in-memory Recording.

        The recording is read once (in time chunks, checking that every sample is finite); each
        step then replaces the previous array, so at most two copies are alive at a time, and
        steps that can work in place (filters) overwrite the pipeline's own intermediate arrays.
        ``recording.data`` itself is never modified.
        """
        out = as_float32(recording)
        for step in self.steps:
            out = step.apply(out, overwrite=_owned(out.data, recording.data))
        return out

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.steps)
        return f"Pipeline([{inner}])"


def _owned(data: object, original: object) -> bool:
    """True when ``data`` is a writeable array the pipeline made: not ``original`` (the caller's
    data) nor a view of it, and not a memory-mapped file."""
    if not isinstance(data, np.ndarray) or isinstance(data, np.memmap):
        return False
    if not data.flags.writeable:
        return False
    return not (isinstance(original, np.ndarray) and np.may_share_memory(data, original))
