"""Per-channel robust scaling (median / interquartile range), fitted on the train split only.

The prepared store keeps signals in physical units and records the scaler in
``manifest["scaler"]``::

    {"kind": "robust", "fitted_on": "train", "channels": [...], "center": [...], "scale": [...],
     "n_samples": 123456}

Readers apply :meth:`RobustScaler.transform` to windows and :meth:`inverse_transform` to model
outputs to get back to physical units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from neurofm.errors import RecordingError


class RobustScaler:
    """Per-channel ``(x - median) / IQR``.

    Parameters
    ----------
    channels : list of str or None
        Channel names, in the order of the channel axis.
    center, scale : array-like of shape (C,) or None
        Median and interquartile range per channel (set by :meth:`fit` or :meth:`from_dict`).
    fitted_on : str or None
        What the statistics were computed on (``"train"``).
    n_samples : int
        Time samples per channel the statistics used.
    """

    kind = "robust"

    def __init__(
        self,
        *,
        channels: Sequence[str] | None = None,
        center: Sequence[float] | np.ndarray | None = None,
        scale: Sequence[float] | np.ndarray | None = None,
        fitted_on: str | None = None,
        n_samples: int = 0,
    ) -> None:
        self.channels = None if channels is None else [str(c) for c in channels]
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.fitted_on = fitted_on
        self.n_samples = int(n_samples)

    @property
    def is_fitted(self) -> bool:
        return self.center is not None and self.scale is not None

    def fit(
        self,
        data: Iterable[np.ndarray] | Any,
        *,
        segments: Sequence[Mapping[str, Any]] | None = None,
        max_samples: int = 1_000_000,
        channels: Sequence[str] | None = None,
        fitted_on: str = "train",
    ) -> RobustScaler:
        """Compute the per-channel median and IQR.

        Parameters
        ----------
        data : iterable of ndarray (C, T), or a prepared store
            Arrays with the same channels; or, with ``segments``, a store (anything where
            ``data[recording_id].array`` is a ``(T, C)`` array and ``.sensors.names`` its channels).
        segments : list of dict or None
            ``{"recording", "start", "stop"}`` segments of the store to use (the train split).
        max_samples : int
            At most this many time samples per channel are used, taken at an even stride over
            all segments, so memory stays bounded by ``max_samples * C`` floats.
        channels : list of str or None
            Channel names of ``data`` arrays (taken from the store when ``segments`` is given).
        fitted_on : str
            Recorded in :attr:`fitted_on`.

        Returns
        -------
        RobustScaler
            ``self``, fitted.
        """
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        if segments is not None:
            blocks, channels = _store_blocks(data, segments, max_samples)
        else:
            arrays = [np.asarray(a) for a in data]
            if not arrays:
                raise ValueError("RobustScaler.fit: no data given")
            n_chans = {a.shape[0] for a in arrays}
            if len(n_chans) != 1 or any(a.ndim != 2 for a in arrays):
                raise ValueError(
                    f"RobustScaler.fit: arrays must be (C, T) with one C, got shapes "
                    f"{[a.shape for a in arrays]}"
                )
            stride = _stride(sum(a.shape[1] for a in arrays), max_samples)
            blocks = [a[:, ::stride].T for a in arrays]
        n_chans = blocks[0].shape[1]
        quartiles = np.empty((3, n_chans))
        for c in range(n_chans):  # one channel at a time keeps the extra memory to one column
            column = np.concatenate([b[:, c] for b in blocks]).astype(np.float64)
            if not np.isfinite(column).all():
                raise RecordingError("RobustScaler.fit: non-finite values in the fitting data")
            quartiles[:, c] = np.percentile(column, [25, 50, 75])
        n_samples = sum(b.shape[0] for b in blocks)
        q25, q50, q75 = quartiles
        scale = q75 - q25
        names = list(channels) if channels is not None else [str(i) for i in range(len(q50))]
        if len(names) != len(q50):
            raise ValueError(
                f"RobustScaler.fit: {len(names)} channel names for {len(q50)} channels"
            )
        flat = [names[i] for i in np.flatnonzero(~(scale > 0))]
        if flat:
            raise RecordingError(
                f"channels with zero interquartile range in the {fitted_on} data "
                f"(flat; mark them bad and drop them): {flat}"
            )
        self.channels, self.center, self.scale = names, q50, scale
        self.fitted_on, self.n_samples = fitted_on, int(n_samples)
        return self

    def _params(self, x: Any, n_chans: int) -> tuple[Any, Any]:
        if not self.is_fitted:
            raise RuntimeError("RobustScaler is not fitted; call fit() or from_dict() first")
        if n_chans != len(self.center):
            raise ValueError(
                f"RobustScaler: input has {n_chans} channels, the scaler "
                f"{len(self.center)} ({self.channels})"
            )
        if hasattr(x, "device") and not isinstance(x, np.ndarray):
            import torch

            def cast(v: np.ndarray) -> Any:
                return torch.as_tensor(v, dtype=x.dtype, device=x.device)[:, None]

            return cast(self.center), cast(self.scale)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return self.center.astype(dtype)[:, None], self.scale.astype(dtype)[:, None]

    def transform(self, x: Any) -> Any:
        """Scale ``x`` of shape ``(..., C, T)`` (numpy array or torch tensor, dtype kept)."""
        center, scale = self._params(x, x.shape[-2])
        return (x - center) / scale

    def inverse_transform(self, x: Any) -> Any:
        """Back to physical units: ``x * IQR + median``, ``x`` of shape ``(..., C, T)``."""
        center, scale = self._params(x, x.shape[-2])
        return x * scale + center

    def to_dict(self) -> dict[str, Any]:
        """The manifest form (``manifest["scaler"]``)."""
        if not self.is_fitted:
            raise RuntimeError("RobustScaler is not fitted")
        return {
            "kind": self.kind,
            "fitted_on": self.fitted_on,
            "channels": self.channels,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "n_samples": self.n_samples,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RobustScaler:
        """Read the manifest form; errors name the bad field."""
        if d.get("kind") != cls.kind:
            raise ValueError(f"scaler.kind: expected {cls.kind!r}, got {d.get('kind')!r}")
        missing = [k for k in ("channels", "center", "scale") if k not in d]
        if missing:
            raise ValueError(f"scaler: missing fields {missing}")
        n = len(d["channels"])
        if len(d["center"]) != n or len(d["scale"]) != n:
            raise ValueError(
                f"scaler: {n} channels but {len(d['center'])} centers and {len(d['scale'])} scales"
            )
        return cls(
            channels=d["channels"],
            center=d["center"],
            scale=d["scale"],
            fitted_on=d.get("fitted_on"),
            n_samples=d.get("n_samples", 0),
        )

    def __repr__(self) -> str:
        n = "unfitted" if not self.is_fitted else f"{len(self.center)} channels"
        return f"RobustScaler({n}, fitted_on={self.fitted_on!r})"


def _stride(total: int, max_samples: int) -> int:
    return max(1, -(-total // max_samples))


def _store_blocks(
    store: Any, segments: Sequence[Mapping[str, Any]], max_samples: int
) -> tuple[list[np.ndarray], list[str]]:
    """Strided ``(n, C)`` samples of the store's ``segments`` and their channel names."""
    if not segments:
        raise ValueError("RobustScaler.fit: no segments given (is the train split empty?)")
    names: list[str] | None = None
    for seg in segments:
        rec_names = list(store[seg["recording"]].sensors.names)
        if names is None:
            names = rec_names
        elif rec_names != names:
            raise RecordingError(
                f"RobustScaler.fit: recording {seg['recording']!r} has channels {rec_names}, "
                f"others have {names}; scaling needs one channel set"
            )
    stride = _stride(sum(int(s["stop"]) - int(s["start"]) for s in segments), max_samples)
    blocks = [
        np.asarray(store[s["recording"]].array[int(s["start"]) : int(s["stop"]) : stride])
        for s in segments
    ]
    return blocks, names or []
