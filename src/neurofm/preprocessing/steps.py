"""Preprocessing steps: small typed dataclasses registered by short name in ``STEPS``.

A step is its own config: ``{"name": "bandpass", "l_freq": 0.5, "h_freq": 40.0}`` builds
``Bandpass(l_freq=0.5, h_freq=40.0)``, validated by :func:`neurofm.config.build_config`. Calling
a step applies the matching pure function of :mod:`neurofm.preprocessing.filters` or
:mod:`neurofm.preprocessing.channels` to a :class:`Recording`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from neurofm.data.recording import Recording
from neurofm.preprocessing import channels as ch
from neurofm.preprocessing import filters as flt
from neurofm.preprocessing.resample import resample
from neurofm.registry import Registry

STEPS = Registry("preprocessing step")
"""Registry of preprocessing steps (short name -> step dataclass)."""


def register_step(name: str) -> Callable[[type], type]:
    """Register a step dataclass under ``name`` (it is its own config class)."""

    def decorator(cls: type) -> type:
        cls.name = name
        return STEPS.register(name, config=cls)(cls)

    return decorator


@dataclass(frozen=True)
class Step(abc.ABC):
    """Base of every step: ``step(recording) -> recording`` plus its name and parameters."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def __call__(self, recording: Recording) -> Recording:
        """Apply the step; returns a new Recording."""

    def apply(self, recording: Recording, *, overwrite: bool = False) -> Recording:
        """Apply the step, allowed to reuse ``recording.data`` for the result when ``overwrite``.

        Pass ``overwrite=True`` only for data the caller made and will not read again (the
        pipeline does so for its intermediate arrays); the result is the same either way. Steps
        that cannot work in place ignore it.
        """
        return self(recording)

    def params(self) -> dict[str, Any]:
        """The step's parameters as plain values."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., <params>}``, the form :meth:`Pipeline.from_config` reads."""
        return {"name": self.name, **self.params()}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@register_step("pick_types")
@dataclass(frozen=True)
class PickTypes(Step):
    """Keep the channels of the given types."""

    types: list[str] = field(default_factory=lambda: ["eeg"])  # channel types to keep

    def __call__(self, recording: Recording) -> Recording:
        return ch.pick_types(recording, self.types)


@register_step("mark_bads")
@dataclass(frozen=True)
class MarkBads(Step):
    """Mark bad channels by name, when flat, or when their spread is an outlier."""

    channels: list[str] = field(default_factory=list)  # channel names to mark bad
    flat: float | None = None  # std below this (physical unit) marks a channel flat
    z_threshold: float | None = None  # robust z-score of log std above this marks an outlier

    def __post_init__(self) -> None:
        if self.flat is not None and self.flat < 0:
            raise ValueError(f"flat must be >= 0, got {self.flat}")
        if self.z_threshold is not None and self.z_threshold <= 0:
            raise ValueError(f"z_threshold must be > 0, got {self.z_threshold}")

    def __call__(self, recording: Recording) -> Recording:
        return ch.mark_bads(
            recording, channels=self.channels, flat=self.flat, z_threshold=self.z_threshold
        )


@register_step("drop_bads")
@dataclass(frozen=True)
class DropBads(Step):
    """Remove the channels marked bad."""

    def __call__(self, recording: Recording) -> Recording:
        return ch.drop_bads(recording)


@register_step("set_montage")
@dataclass(frozen=True)
class SetMontage(Step):
    """Set EEG sensor positions from an MNE built-in montage."""

    montage: str = "standard_1005"  # name of an MNE built-in montage

    def __call__(self, recording: Recording) -> Recording:
        return ch.set_montage(recording, self.montage)


@register_step("interpolate_bads")
@dataclass(frozen=True)
class InterpolateBads(Step):
    """Interpolate bad EEG channels with spherical splines (needs positions)."""

    def __call__(self, recording: Recording) -> Recording:
        return ch.interpolate_bads(recording)


@register_step("notch")
@dataclass(frozen=True)
class Notch(Step):
    """Remove line noise with an FIR notch filter."""

    freqs: list[float] = field(default_factory=lambda: [50.0])  # frequencies to remove (Hz)
    notch_width: float | None = None  # stop-band width in Hz (MNE default freq / 200 when None)
    phase: Literal["zero", "causal"] = "zero"  # zero: centred FIR; causal: minimum-phase, forwards

    def __post_init__(self) -> None:
        if not self.freqs or any(f <= 0 for f in self.freqs):
            raise ValueError(f"freqs must be a non-empty list of positive Hz, got {self.freqs}")

    def __call__(self, recording: Recording) -> Recording:
        return self.apply(recording)

    def apply(self, recording: Recording, *, overwrite: bool = False) -> Recording:
        return flt.notch(
            recording,
            self.freqs,
            notch_width=self.notch_width,
            phase=self.phase,
            overwrite=overwrite,
        )


@register_step("bandpass")
@dataclass(frozen=True)
class Bandpass(Step):
    """FIR band-pass, zero-phase or causal; one edge may be None (high-pass or low-pass only)."""

    l_freq: float | None = None  # high-pass edge (Hz); None for no high-pass
    h_freq: float | None = None  # low-pass edge (Hz); None for no low-pass
    phase: Literal["zero", "causal"] = "zero"  # zero: centred FIR; causal: minimum-phase, forwards

    def __post_init__(self) -> None:
        if self.l_freq is None and self.h_freq is None:
            raise ValueError("give l_freq, h_freq or both")
        if any(f is not None and f <= 0 for f in (self.l_freq, self.h_freq)):
            raise ValueError(
                f"edges must be positive, got l_freq={self.l_freq}, h_freq={self.h_freq}"
            )
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq})")

    def __call__(self, recording: Recording) -> Recording:
        return self.apply(recording)

    def apply(self, recording: Recording, *, overwrite: bool = False) -> Recording:
        return flt.bandpass(
            recording, self.l_freq, self.h_freq, phase=self.phase, overwrite=overwrite
        )


@register_step("highpass")
@dataclass(frozen=True)
class Highpass(Step):
    """FIR high-pass, zero-phase or causal."""

    l_freq: float = 0.5  # edge (Hz)
    phase: Literal["zero", "causal"] = "zero"  # zero: centred FIR; causal: minimum-phase, forwards

    def __post_init__(self) -> None:
        if self.l_freq <= 0:
            raise ValueError(f"l_freq must be positive, got {self.l_freq}")

    def __call__(self, recording: Recording) -> Recording:
        return self.apply(recording)

    def apply(self, recording: Recording, *, overwrite: bool = False) -> Recording:
        return flt.bandpass(recording, self.l_freq, None, phase=self.phase, overwrite=overwrite)


@register_step("lowpass")
@dataclass(frozen=True)
class Lowpass(Step):
    """FIR low-pass, zero-phase or causal."""

    h_freq: float = 40.0  # edge (Hz)
    phase: Literal["zero", "causal"] = "zero"  # zero: centred FIR; causal: minimum-phase, forwards

    def __post_init__(self) -> None:
        if self.h_freq <= 0:
            raise ValueError(f"h_freq must be positive, got {self.h_freq}")

    def __call__(self, recording: Recording) -> Recording:
        return self.apply(recording)

    def apply(self, recording: Recording, *, overwrite: bool = False) -> Recording:
        return flt.bandpass(recording, None, self.h_freq, phase=self.phase, overwrite=overwrite)


@register_step("resample")
@dataclass(frozen=True)
class Resample(Step):
    """Resample to a new sampling frequency (FFT, anti-aliased)."""

    sfreq: float = 100.0  # new sampling frequency (Hz)

    def __post_init__(self) -> None:
        if self.sfreq <= 0:
            raise ValueError(f"sfreq must be positive, got {self.sfreq}")

    def __call__(self, recording: Recording) -> Recording:
        return resample(recording, self.sfreq)


@register_step("rereference")
@dataclass(frozen=True)
class Rereference(Step):
    """Re-reference to the average or to one channel."""

    ref: str = "average"  # "average" or a channel name
    types: list[str] = field(default_factory=lambda: ["eeg"])  # channel types re-referenced

    def __call__(self, recording: Recording) -> Recording:
        return ch.rereference(recording, self.ref, types=self.types)


@register_step("clip")
@dataclass(frozen=True)
class Clip(Step):
    """Clip outlying samples; counts are reported in the step log."""

    limit: float = 20.0  # in IQRs around the median (mode iqr) or physical units (absolute)
    mode: Literal["iqr", "absolute"] = "iqr"  # how limit is measured

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")

    def __call__(self, recording: Recording) -> Recording:
        return flt.clip(recording, self.limit, mode=self.mode)
