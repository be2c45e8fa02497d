"""Filters and clipping: pure functions ``Recording -> Recording`` over MNE.

Band-pass and notch filters take a ``phase``: ``"zero"`` (default) is MNE's linear-phase FIR
applied forwards and backwards in effect (centred), so a sample carries information from up to
half a filter length in the future: fine for modelling the filtered signal, not for claims about
forecasting it. ``"causal"`` designs the same filter as a minimum-phase FIR
(``mne.filter.create_filter(..., phase="minimum")``) and applies it forwards only, with the first
sample repeated before the start: every output sample depends on the input up to that sample and
no later (at the cost of a frequency-dependent delay and a weaker stop band).

Filters run on blocks of channels converted to float64 (what MNE's filters need) and write a new
float32 array, so that a recording is held at most twice in float32 plus one float64 block; with
``overwrite=True`` (the pipeline's intermediate arrays) the result replaces the input in place, so
the recording is held once plus one float64 block. Every block is checked for non-finite samples
*before* filtering: a filter spreads one NaN over the whole channel, so the error names the file,
channel and sample instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from neurofm.data.recording import Recording
from neurofm.errors import RecordingError
from neurofm.logging import get_logger
from neurofm.preprocessing._base import (
    CHANNEL_BLOCK,
    CHUNK_SAMPLES,
    filtered_channels,
    logged,
    map_channel_blocks,
    map_into,
    where,
)

log = get_logger("preprocessing")


def _filter_channels(
    recording: Recording,
    channels: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    overwrite: bool,
    before: str,
) -> np.ndarray:
    """``fn`` applied to ``channels`` (float64 blocks, each checked for non-finite samples).

    With ``overwrite`` and a writeable in-memory float32 array, the rows are replaced in
    ``recording.data`` itself; otherwise a new array is returned (see ``map_channel_blocks``).
    Each channel is filtered on its own, so the block size does not change the result.
    """
    data = recording.data
    in_place = (
        overwrite
        and isinstance(data, np.ndarray)
        and not isinstance(data, np.memmap)
        and data.dtype == np.float32
        and data.flags.writeable
    )
    if not in_place:
        return map_channel_blocks(recording, channels, fn, before=before)
    map_into(data, recording, channels, fn, size=CHANNEL_BLOCK, before=before)
    return data


def _zero_phase_fir(h: np.ndarray, n_times: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function filtering each row of a float64 ``(n, n_times)`` block with the FIR ``h``.

    The rows are extended at both ends by odd reflection over ``min(len(h), n_times) - 1``
    samples (MNE's ``"reflect_limited"`` padding), convolved with ``h`` by one FFT per row, and the
    ``n_times`` samples centred on the filter's delay are kept: the zero-phase result of
    ``mne.filter.filter_data`` (which convolves in overlap-add segments, one channel at a time).
    """
    import scipy.fft

    n_h = h.size
    edge = max(min(n_h, n_times) - 1, 0)
    n_fft = scipy.fft.next_fast_len(n_times + 2 * edge + n_h - 1, real=True)
    response = scipy.fft.rfft(h, n_fft)
    start = edge + (n_h - 1) // 2

    def run(block: np.ndarray) -> np.ndarray:
        left = 2 * block[:, :1] - block[:, edge:0:-1]
        right = 2 * block[:, -1:] - block[:, -2 : -edge - 2 : -1]
        spectrum = scipy.fft.rfft(np.concatenate([left, block, right], axis=1), n_fft, axis=1)
        spectrum *= response
        return scipy.fft.irfft(spectrum, n_fft, axis=1)[:, start : start + n_times]

    return run


def _causal_fir(h: np.ndarray, n_times: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function filtering each row of a float64 ``(n, n_times)`` block forwards with ``h``.

    Each row is extended at its start by ``len(h) - 1`` copies of its first sample (never by
    later samples), convolved with ``h`` by one FFT per row, and the ``n_times`` samples aligned
    with the input are kept: output sample ``t`` depends on input samples ``0 .. t`` only.
    """
    import scipy.fft

    n_h = h.size
    n_fft = scipy.fft.next_fast_len(n_times + 2 * (n_h - 1), real=True)
    response = scipy.fft.rfft(h, n_fft)

    def run(block: np.ndarray) -> np.ndarray:
        left = np.repeat(block[:, :1], n_h - 1, axis=1)
        spectrum = scipy.fft.rfft(np.concatenate([left, block], axis=1), n_fft, axis=1)
        spectrum *= response
        return scipy.fft.irfft(spectrum, n_fft, axis=1)[:, n_h - 1 : n_h - 1 + n_times]

    return run


PHASES = ("zero", "causal")
"""Filter phases: ``zero`` (linear-phase FIR, centred) or ``causal`` (minimum-phase FIR, forwards)."""


def _check_phase(phase: str, recording: Recording) -> None:
    if phase not in PHASES:
        raise RecordingError(
            f"filter phase must be one of {PHASES}, got {phase!r}", path=where(recording)
        )


def notch(
    recording: Recording,
    freqs: Sequence[float],
    *,
    notch_width: float | None = None,
    phase: str = "zero",
    overwrite: bool = False,
) -> Recording:
    """Remove line noise at ``freqs`` (Hz) with MNE's FIR notch filter.

    Parameters
    ----------
    recording : Recording
        Input recording, ``(C, T)``.
    freqs : sequence of float
        Frequencies to remove, e.g. ``[50, 100]`` or ``[60]`` (Hz); each below Nyquist.
    notch_width : float or None
        Width of each stop band in Hz (MNE's default, ``freq / 200``, when None).
    phase : {"zero", "causal"}
        ``"zero"``: ``mne.filter.notch_filter`` as it is. ``"causal"``: the same band-stops (1 Hz
        transition bands) designed as one minimum-phase FIR and applied forwards only.
    overwrite : bool
        Filter ``recording.data`` in place when it is a writeable float32 array (pass it only
        for an array the caller made and will not read again); the result is the same.

    Returns
    -------
    Recording
        Same shape, float32 data.
    """
    import mne

    _check_phase(phase, recording)
    nyquist = recording.sfreq / 2
    bad = [f for f in freqs if not 0 < f < nyquist]
    if bad:
        raise RecordingError(
            f"notch frequencies {bad} Hz are outside (0, {nyquist}) Hz (Nyquist)",
            path=where(recording),
        )

    def run(block: np.ndarray) -> np.ndarray:
        return mne.filter.notch_filter(
            block,
            recording.sfreq,
            np.asarray(freqs, dtype=float),
            notch_widths=notch_width,
            copy=False,
            verbose="error",
        )

    if phase == "causal":
        # the band-stops mne.filter.notch_filter builds (its default 1 Hz transition bands)
        widths = [f / 200.0 if notch_width is None else notch_width for f in freqs]
        h = mne.filter.create_filter(
            None,
            recording.sfreq,
            [f + w / 2 + 0.5 for f, w in zip(freqs, widths)],
            [f - w / 2 - 0.5 for f, w in zip(freqs, widths)],
            l_trans_bandwidth=0.5,
            h_trans_bandwidth=0.5,
            phase="minimum",
            verbose="error",
        )
        run = _causal_fir(h, recording.n_times)
    channels = filtered_channels(recording)
    data = _filter_channels(recording, channels, run, overwrite=overwrite, before="notch filtering")
    return logged(
        recording,
        {
            "step": "notch",
            "freqs": [float(f) for f in freqs],
            "phase": phase,
            "n_channels": int(channels.size),
        },
        data=data,
    )


def bandpass(
    recording: Recording,
    l_freq: float | None,
    h_freq: float | None,
    *,
    phase: str = "zero",
    overwrite: bool = False,
) -> Recording:
    """FIR band-pass (or high-pass / low-pass when one edge is None) with MNE's design.

    ``phase="zero"``: MNE's default FIR (``mne.filter.create_filter``), applied as
    ``mne.filter.filter_data`` applies it (reflected edges, zero phase); the result equals
    ``filter_data``'s to float64 rounding. ``phase="causal"``: the same edges designed as a
    minimum-phase FIR and applied forwards only (see the module docstring).

    Parameters
    ----------
    recording : Recording
        Input recording, ``(C, T)``.
    l_freq : float or None
        High-pass edge in Hz (None: no high-pass).
    h_freq : float or None
        Low-pass edge in Hz, below Nyquist (None: no low-pass).
    phase : {"zero", "causal"}
        Zero-phase (centred) or causal (forwards only) application.
    overwrite : bool
        Filter ``recording.data`` in place when it is a writeable float32 array (pass it only
        for an array the caller made and will not read again); the result is the same.

    Returns
    -------
    Recording
        Same shape, float32 data.
    """
    import mne

    _check_phase(phase, recording)
    nyquist = recording.sfreq / 2
    if h_freq is not None and h_freq >= nyquist:
        raise RecordingError(
            f"low-pass edge {h_freq} Hz is not below Nyquist ({nyquist} Hz)", path=where(recording)
        )

    # MNE's default FIR design (firwin, Hamming window, automatic length and transition bands),
    # designed once for the recording and applied to every channel block.
    if phase == "causal":
        h = mne.filter.create_filter(
            None, recording.sfreq, l_freq, h_freq, phase="minimum", verbose="error"
        )
        run = _causal_fir(h, recording.n_times)
    else:
        h = mne.filter.create_filter(None, recording.sfreq, l_freq, h_freq, verbose="error")
        run = _zero_phase_fir(h, recording.n_times)
    channels = filtered_channels(recording)
    data = _filter_channels(
        recording, channels, run, overwrite=overwrite, before="band-pass filtering"
    )
    return logged(
        recording,
        {
            "step": "bandpass",
            "l_freq": l_freq,
            "h_freq": h_freq,
            "phase": phase,
            "n_channels": int(channels.size),
        },
        data=data,
    )


def clip(recording: Recording, limit: float, *, mode: str = "iqr") -> Recording:
    """Clip samples beyond ``limit``, counting every clipped sample (never silent).

    Parameters
    ----------
    recording : Recording
        Input recording, ``(C, T)``.
    limit : float
        ``mode="iqr"``: each channel is clipped to its median +/- ``limit`` times its
        interquartile range (in this recording). ``mode="absolute"``: clipped to +/- ``limit``
        in the channel's physical unit.
    mode : {"iqr", "absolute"}

    Returns
    -------
    Recording
        Same shape; ``meta["preprocessing"][-1]`` holds ``n_clipped`` (total) and
        ``clipped_per_channel`` (name -> count, channels with clipped samples only).
    """
    if limit <= 0:
        raise RecordingError(f"clip: limit must be positive, got {limit}", path=where(recording))
    if mode not in ("iqr", "absolute"):
        raise RecordingError(
            f"clip: mode must be 'iqr' or 'absolute', got {mode!r}", path=where(recording)
        )
    data = np.array(recording.data, dtype=np.float32)
    channels = filtered_channels(recording)
    if mode == "iqr":
        q25, q50, q75 = (
            np.array([np.percentile(data[i], [25, 50, 75]) for i in channels]).reshape(-1, 3).T
        )
        low, high = q50 - limit * (q75 - q25), q50 + limit * (q75 - q25)
    else:
        low = np.full(channels.size, -limit)
        high = np.full(channels.size, limit)
    counts = np.zeros(recording.n_chans, dtype=np.int64)
    for start in range(0, recording.n_times, CHUNK_SAMPLES):
        block = data[channels, start : start + CHUNK_SAMPLES]
        outside = (block < low[:, None]) | (block > high[:, None])
        counts[channels] += outside.sum(axis=1)
        data[channels, start : start + CHUNK_SAMPLES] = np.clip(block, low[:, None], high[:, None])
    per_channel = {recording.sensors.names[i]: int(counts[i]) for i in np.flatnonzero(counts)}
    total = int(counts.sum())
    if total:
        log.warning(
            "%s: clipped %d samples in %d channels (limit %s, mode %s)",
            where(recording) or "recording",
            total,
            len(per_channel),
            limit,
            mode,
        )
    entry = {
        "step": "clip",
        "limit": float(limit),
        "mode": mode,
        "n_clipped": total,
        "clipped_per_channel": per_channel,
    }
    return logged(recording, entry, data=data)
