"""A lazy ``(n_chans, n_times)`` view of an MNE raw object, read on slicing."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurofm.errors import RecordingError


class LazySignal:
    """Array-like ``(n_chans, n_times)`` view whose samples are read from disk when sliced.

    Supports numpy basic indexing on both axes (integers, slices with any step, integer lists or
    arrays, boolean masks on the channel axis, ``...``) and ``numpy.asarray``. Only the samples
    between the first and last requested time index are read.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        An MNE raw object opened without preloading.
    path : str
        The file, named in every error.
    nonfinite_fill : float or None
        When set, non-finite samples read as this value (used by the ``"mask"`` NaN policy).
    """

    def __init__(self, raw: Any, *, path: str, nonfinite_fill: float | None = None) -> None:
        self.raw = raw
        self.path = path
        self.nonfinite_fill = nonfinite_fill
        self.shape = (len(raw.ch_names), int(raw.n_times))
        self.dtype = np.dtype(np.float64)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazySignal(shape={self.shape}, path={self.path!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        chan_key, time_key = _split_key(key)
        channels = _positions(chan_key, self.shape[0])
        times = _positions(time_key, self.shape[1])
        squeeze_chan = np.ndim(channels) == 0
        squeeze_time = np.ndim(times) == 0
        channels = np.atleast_1d(channels)
        times = np.atleast_1d(times)
        if channels.size == 0 or times.size == 0:
            out = np.zeros((channels.size, times.size), dtype=self.dtype)
        else:
            out = self._read(channels, times)
        if squeeze_time:
            out = out[:, 0]
        if squeeze_chan:
            out = out[0]
        return out

    def _read(self, channels: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Read the samples at ``times`` of ``channels``: (len(channels), len(times))."""
        start, stop = int(times.min()), int(times.max()) + 1
        unique, inverse = np.unique(channels, return_inverse=True)
        try:
            block = self.raw.get_data(picks=unique, start=start, stop=stop, verbose="error")
        except (ValueError, OSError, EOFError, IndexError) as err:
            raise RecordingError(
                f"cannot read samples [{start}, {stop}): {err} (the file may be truncated or "
                "corrupt)",
                path=self.path,
                sample=start,
            ) from err
        out = block[inverse][:, times - start]
        if self.nonfinite_fill is not None:
            out[~np.isfinite(out)] = self.nonfinite_fill
        return out


def _positions(key: Any, n: int) -> np.ndarray:
    """The integer positions that ``key`` selects along an axis of length ``n`` (0-D for an int)."""
    if isinstance(key, slice):
        return np.arange(*key.indices(n))
    if isinstance(key, (int, np.integer)):
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of bounds for an axis of size {n}")
        return np.asarray(key % n)
    key = np.asarray(key)
    if key.dtype == bool:
        if key.shape != (n,):
            raise IndexError(f"boolean index of shape {key.shape} for an axis of size {n}")
        return np.flatnonzero(key)
    if key.size and (key.min() < -n or key.max() >= n):
        raise IndexError(f"index out of bounds for an axis of size {n}")
    return key.astype(np.int64) % n if key.size else key.astype(np.int64)


def _split_key(key: Any) -> tuple[Any, Any]:
    """Split an index into its channel and time parts (``...`` and missing parts are ``:``)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        pos = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (2 - (len(key) - 1))
        key = key[:pos] + fill + key[pos + 1 :]
    if len(key) > 2:
        raise IndexError(f"LazySignal is 2-D, got an index with {len(key)} parts")
    key = key + (slice(None),) * (2 - len(key))
    return key[0], key[1]
