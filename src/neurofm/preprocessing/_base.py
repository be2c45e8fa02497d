"""Helpers shared by the preprocessing functions: loading, finiteness checks, the step log.

Every preprocessing function returns a new :class:`Recording` and appends one entry to
``recording.meta["preprocessing"]`` saying what it did (channels marked, samples clipped, ...), so
that nothing happens silently and the prepared store's manifest records it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from neurofm.data.recording import Recording
from neurofm.errors import RecordingError

CHUNK_SAMPLES = 1 << 16
"""Samples read at a time when a step can work through a recording in time chunks."""

CHANNEL_BLOCK = 8
"""Channels filtered at a time (each block is converted to float64 for MNE)."""

LOAD_PARTS = 16
"""A lazy recording is read in this many time chunks (at least 1024 samples each), so each
float64 read buffer (the reader may hold two or three while it copies) is an eighth of the
float32 recording."""

UNFILTERED_TYPES = ("stim",)
"""Channel types that filters and re-referencing leave untouched (event codes, not signals)."""


def where(recording: Recording) -> str | None:
    """The source file of ``recording``, named in errors."""
    return recording.source.get("path")


def check_finite(
    block: np.ndarray,
    recording: Recording,
    *,
    channels: np.ndarray | None = None,
    start: int = 0,
    before: str = "filtering",
) -> None:
    """Raise a RecordingError naming the first non-finite sample of ``block``.

    Parameters
    ----------
    block : ndarray, shape (n_block_chans, n_block_times)
        Samples of ``recording``.
    recording : Recording
        The recording the block comes from (for the file and channel names).
    channels : ndarray of int or None
        Channel index in ``recording`` of each row of ``block`` (all channels when None).
    start : int
        Sample index of the block's first column.
    before : str
        What was about to happen, for the message.
    """
    finite = np.isfinite(block)
    if finite.all():
        return
    row, col = np.argwhere(~finite)[0]
    index = int(row if channels is None else channels[row])
    raise RecordingError(
        f"non-finite value {block[row, col]!r} before {before} (a filter would spread it over "
        "the whole channel); mark the channel bad and drop or interpolate it",
        path=where(recording),
        channel=recording.sensors.names[index],
        sample=int(start + col),
    )


def as_float32(recording: Recording) -> Recording:
    """The recording with its data in memory as a float32 ``(C, T)`` array.

    Reads a lazy recording in time chunks (one contiguous read each) and checks that every sample
    is finite, naming the file, channel and sample of the first that is not.
    """
    data = recording.data
    if (
        isinstance(data, np.ndarray)
        and data.dtype == np.float32
        and not isinstance(data, np.memmap)
    ):
        check_finite(data, recording, before="preprocessing")
        return recording
    n_chans, n_times = recording.n_chans, recording.n_times
    chunk_samples = max(1024, -(-n_times // LOAD_PARTS))
    out = np.empty((n_chans, n_times), dtype=np.float32)
    for start in range(0, n_times, chunk_samples):
        stop = min(start + chunk_samples, n_times)
        block = np.asarray(data[:, start:stop])
        check_finite(block, recording, start=start, before="preprocessing")
        out[:, start:stop] = block
    return replace(recording, data=out)


def map_channel_blocks(
    recording: Recording,
    channels: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    n_times_out: int | None = None,
    before: str = "filtering",
) -> np.ndarray:
    """Apply ``fn`` to blocks of ``channels`` (as float64) and return a new float32 array.

    Rows not in ``channels`` are copied unchanged when the length is kept, and left for the
    caller to fill otherwise. Every block is checked for non-finite values before ``fn`` sees it.

    Parameters
    ----------
    recording : Recording
        The input; its data is not modified.
    channels : ndarray of int
        The channels ``fn`` applies to.
    fn : callable
        Maps a float64 block ``(n, T)`` to ``(n, n_times_out)``.
    n_times_out : int or None
        Length of the output (``recording.n_times`` when None).

    Returns
    -------
    ndarray, shape (C, n_times_out), float32
    """
    n_times_out = recording.n_times if n_times_out is None else n_times_out
    out = np.empty((recording.n_chans, n_times_out), dtype=np.float32)
    chosen = np.zeros(recording.n_chans, dtype=bool)
    chosen[channels] = True
    untouched = np.flatnonzero(~chosen)
    if untouched.size and n_times_out == recording.n_times:
        out[untouched] = np.asarray(recording.data[untouched, :])
    for i in range(0, len(channels), CHANNEL_BLOCK):
        picks = np.asarray(channels[i : i + CHANNEL_BLOCK])
        block = np.asarray(recording.data[picks, :], dtype=np.float64)
        check_finite(block, recording, channels=picks, before=before)
        out[picks] = fn(block)
    return out


def filtered_channels(recording: Recording) -> np.ndarray:
    """Indices of the channels that filters apply to (every type but ``UNFILTERED_TYPES``)."""
    return np.asarray(
        [i for i, t in enumerate(recording.sensors.types) if t not in UNFILTERED_TYPES],
        dtype=np.int64,
    )


def logged(recording: Recording, entry: dict[str, Any], **changes: Any) -> Recording:
    """A copy of ``recording`` with ``changes`` applied and ``entry`` appended to its step log."""
    meta = dict(recording.meta)
    meta["preprocessing"] = [*meta.get("preprocessing", []), entry]
    return replace(recording, meta=meta, **changes)


def map_into(
    out: np.ndarray,
    recording: Recording,
    channels: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    size: int,
    before: str,
) -> None:
    """Write ``fn(block)`` into ``out[picks]`` for blocks of ``size`` of ``channels``.

    Each block is float64 and checked for non-finite samples before ``fn`` sees it. Rows of an
    in-memory array are copied into one reused buffer (no float32 temporary); other data (a lazy
    recording) is read a block at a time. ``out`` may be ``recording.data`` itself.
    """
    data = recording.data
    buffer = None
    if isinstance(data, np.ndarray):
        buffer = np.empty((min(size, channels.size), recording.n_times), dtype=np.float64)
    for i in range(0, channels.size, size):
        picks = channels[i : i + size]
        if buffer is None:
            block = np.asarray(data[picks, :], dtype=np.float64)
        else:
            block = buffer[: picks.size]
            for row, channel in zip(block, picks):
                row[:] = data[channel]
        check_finite(block, recording, channels=picks, before=before)
        out[picks] = fn(block)
