"""Resampling: a pure function ``Recording -> Recording`` computing MNE's FFT resampler for blocks
of channels at once (see :func:`resample`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neurofm.data.recording import Recording
from neurofm.errors import RecordingError
from neurofm.preprocessing._base import filtered_channels, logged, map_into, where

RESAMPLE_BLOCK = 4
"""Channels resampled at a time (their padded float64 rows and spectra are held together)."""


def _fft_resampler(n_times: int, ratio: float) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function resampling each row of a float64 ``(n, n_times)`` block by ``ratio``.

    The computation of ``mne.filter.resample(x, up, down, npad="auto")`` (``ratio = up / down``)
    for all rows at once instead of one channel at a time: each row is extended by odd reflection
    up to a power-of-two length, its spectrum is cut or zero-extended to the new length (the
    Nyquist bin halved or doubled as MNE does, the boxcar window scaling it by the length ratio),
    transformed back and trimmed. None when the padding would need more samples than the row
    holds (MNE then pads with zeros; the caller uses MNE directly).
    """
    import scipy.fft

    min_add = min(n_times // 8, 100) * 2
    total = 2 ** int(np.ceil(np.log2(n_times + min_add))) - n_times
    left, extra = divmod(total, 2)
    right = left + extra
    if n_times < 2 or right > n_times - 1:
        return None
    padded = n_times + left + right
    new_len = max(int(round(ratio * padded)), 1)
    final_len = max(int(round(ratio * n_times)), 1)
    start = int(round(ratio * left))
    stop = start + final_len
    use_len = min(new_len, padded)
    nyquist = use_len // 2 if use_len % 2 == 0 else None
    nyquist_gain = 2.0 if new_len < padded else 0.5

    def run(block: np.ndarray) -> np.ndarray:
        ends = (
            2 * block[:, :1] - block[:, left:0:-1],
            2 * block[:, -1:] - block[:, -2 : -right - 2 : -1],
        )
        spectrum = scipy.fft.rfft(np.concatenate([ends[0], block, ends[1]], axis=1), axis=1)
        if nyquist is not None:
            spectrum[:, nyquist] *= nyquist_gain
        spectrum *= float(new_len) / float(padded)
        return scipy.fft.irfft(spectrum, new_len, axis=1)[:, start:stop]

    return run


def resample(recording: Recording, sfreq: float) -> Recording:
    """Resample to ``sfreq`` Hz with MNE's FFT resampler (anti-aliased); duration is kept.

    ``mne.filter.resample`` (``npad="auto"``, boxcar window, reflected edges) is computed for a
    block of channels at once (see ``_fft_resampler``), giving MNE's result.

    Stim channels are resampled by taking the nearest original sample, so event codes stay
    integers. Events keep their onsets in seconds.

    Returns
    -------
    Recording
        ``(C, round(T * sfreq / recording.sfreq))`` float32 data at ``sfreq``.
    """
    import mne

    if sfreq <= 0:
        raise RecordingError(
            f"resample: sfreq must be positive, got {sfreq}", path=where(recording)
        )
    if sfreq == recording.sfreq:
        return logged(recording, {"step": "resample", "sfreq": sfreq, "unchanged": True})
    ratio = sfreq / recording.sfreq
    n_out = int(round(recording.n_times * ratio))

    blockwise = _fft_resampler(recording.n_times, ratio)

    def run(block: np.ndarray) -> np.ndarray:
        if blockwise is not None:
            out = blockwise(block)
        else:
            out = mne.filter.resample(
                block, up=sfreq, down=recording.sfreq, npad="auto", verbose="error"
            )
        if out.shape[-1] != n_out:
            raise RecordingError(
                f"resample produced {out.shape[-1]} samples, expected {n_out}",
                path=where(recording),
            )
        return out

    channels = filtered_channels(recording)
    stim = np.setdiff1d(np.arange(recording.n_chans), channels)
    data = np.empty((recording.n_chans, n_out), dtype=np.float32)
    map_into(data, recording, channels, run, size=RESAMPLE_BLOCK, before="resampling")
    if stim.size:
        nearest = np.minimum(
            np.round(np.arange(n_out) / ratio).astype(np.int64), recording.n_times - 1
        )
        data[stim] = np.asarray(recording.data[stim, :])[:, nearest]
    return logged(
        recording,
        {"step": "resample", "from_sfreq": recording.sfreq, "sfreq": float(sfreq)},
        data=data,
        sfreq=float(sfreq),
    )
