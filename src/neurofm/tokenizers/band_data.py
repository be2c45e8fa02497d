"""Datasets of cumulative frequency bands for next-band (VAR-style) training.

Two sources give the same items, ``x`` of shape ``(n_bands, C, T)`` (float32, level ``k`` holds
bands ``0..k``, see :func:`~neurofm.tokenizers.bands.cumulative_frequency_levels`):

- :class:`BandWindowDataset` wraps the windows of a prepared store and computes the bands of each
  window with the store's sampling rate (bands above Nyquist are refused when it is built);
- :class:`BandFolder` reads the folder format of the original prototype, ``<root>/train/*.npz``
  and ``<root>/val/*.npz`` with the fields ``signal``, ``cumulative_bands``, ``bands``,
  ``sfreq`` (files sorted by name), so such data loads unchanged.

:func:`write_band_folder` writes that format from any band dataset and :func:`synthetic_band_folder`
writes a deterministic synthetic one (sums of sinusoids, one per band, with known amplitudes) for
quick checks. :class:`LimitedDataset` keeps the first ``n`` items (the prototype's
``--limit-train-samples`` / ``--limit-val-samples``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data.windows import WindowDataset
from neurofm.errors import ConfigError, RecordingError
from neurofm.tokenizers.bands import (
    DEFAULT_BANDS,
    check_bands,
    cumulative_frequency_levels,
    load_band_sample,
    save_band_sample,
)

BAND_SPLITS = ("train", "val")
"""The split folders of the prototype's format (``test/`` is read too when present)."""


class BandWindowDataset(torch.utils.data.Dataset):
    """Windows of a prepared store as cumulative bands: item ``x`` is (n_bands, C, T) float32.

    Parameters
    ----------
    windows : WindowDataset
        The windows (its items keep every other field: subject, session, start, ...).
    sfreq : float
        Sampling rate of the windows (Hz), the store's.
    bands : sequence of (low, high)
        Bands in Hz, ascending, non-overlapping, at most Nyquist (``sfreq / 2``).
    n_taps : int, optional
        FIR length (odd); default from the narrowest transition band.
    """

    def __init__(
        self,
        windows: WindowDataset,
        *,
        sfreq: float,
        bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
        n_taps: int | None = None,
    ) -> None:
        try:
            self.bands = check_bands(bands, sfreq)
        except ValueError as err:
            raise ConfigError(f"data.bands: {err} (the store {windows.root})") from None
        self.windows = windows
        self.sfreq = float(sfreq)
        self.n_taps = n_taps

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.windows[i])
        levels = cumulative_frequency_levels(item["x"].numpy(), self.sfreq, self.bands, self.n_taps)
        item["x"] = torch.from_numpy(levels.astype(np.float32))
        return item


class BandFolderDataset(torch.utils.data.Dataset):
    """The ``.npz`` samples of one split folder; item ``x`` is their ``cumulative_bands``.

    Every file is checked when the dataset is built: the fields, their shapes, one sampling rate
    and one band list across the split; every problem names the file and the field.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.files = sorted(self.folder.glob("*.npz"))
        if not self.files:
            raise RecordingError("no .npz sample in this split folder", path=str(self.folder))
        first = load_band_sample(self.files[0])
        self.sfreq = first.sfreq
        self.bands = [tuple(float(v) for v in band) for band in first.bands]
        self.shape = tuple(first.cumulative_bands.shape)
        for path in self.files[1:]:
            sample = load_band_sample(path)
            if tuple(sample.cumulative_bands.shape) != self.shape:
                raise RecordingError(
                    f"field 'cumulative_bands' has shape {sample.cumulative_bands.shape}, "
                    f"{self.files[0].name} has {self.shape}",
                    path=str(path),
                )
            if sample.sfreq != self.sfreq or not np.allclose(sample.bands, self.bands):
                raise RecordingError(
                    f"fields 'sfreq'/'bands' ({sample.sfreq} Hz, {sample.bands.tolist()}) differ "
                    f"from {self.files[0].name} ({self.sfreq} Hz, {self.bands})",
                    path=str(path),
                )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = load_band_sample(self.files[i])
        return {
            "x": torch.from_numpy(np.ascontiguousarray(sample.cumulative_bands, np.float32)),
            "recording": int(i),
            "start": 0,
        }

    def signal(self, i: int) -> np.ndarray:
        """The full-band ``signal`` (C, T) of sample ``i``."""
        return load_band_sample(self.files[i]).signal


class BandFolder:
    """A folder of the prototype's format: ``train/``, ``val/`` (and ``test/``) of ``.npz``.

    Plays the part of a prepared store for next-band runs: ``splits``, ``dataset(split)``,
    ``sfreq`` and ``root``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "train").is_dir():
            raise RecordingError(
                "not a band folder: it needs train/ (and val/) folders of .npz samples",
                path=str(self.root),
            )

    @property
    def splits(self) -> list[str]:
        """The split folders present (train, val, test)."""
        return [s for s in (*BAND_SPLITS, "test") if (self.root / s).is_dir()]

    def dataset(self, split: str) -> BandFolderDataset:
        """The samples of ``split``; an unknown split names the ones present."""
        if split not in self.splits:
            raise ConfigError(f"{self.root}: no split folder {split!r}; present: {self.splits}")
        return BandFolderDataset(self.root / split)


class LimitedDataset(torch.utils.data.Dataset):
    """The first ``limit`` items of ``dataset`` (all of them when it holds fewer)."""

    def __init__(self, dataset: Any, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"a window limit must be >= 1, got {limit}")
        self.dataset = dataset
        self.n = min(int(limit), len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self.n <= i < self.n:
            raise IndexError(f"item {i} out of range for {self.n} items")
        return self.dataset[i % self.n]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def write_band_folder(
    root: str | Path,
    splits: dict[str, Any],
    *,
    sfreq: float,
    bands: Sequence[Sequence[float]],
) -> dict[str, int]:
    """Write band datasets as ``<root>/<split>/sample_00001.npz`` files; returns counts.

    Each item's ``x`` (n_bands, C, T) is written as ``cumulative_bands`` and its last level as
    ``signal`` (the band-limited signal; the prototype stores the raw window there).
    """
    counts = {}
    for split, dataset in splits.items():
        folder = Path(root) / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(len(dataset)):
            levels = np.asarray(dataset[i]["x"], dtype=np.float32)
            save_band_sample(
                folder / f"sample_{i + 1:05d}.npz",
                levels[-1],
                sfreq,
                bands,
                cumulative_bands=levels,
            )
        counts[split] = len(dataset)
    return counts


def synthetic_signal(
    index: int, *, n_chans: int, n_times: int, sfreq: float, bands: Sequence[Sequence[float]]
) -> np.ndarray:
    """A deterministic (C, T) signal: one sinusoid per band and channel, plus weak noise.

    Sample ``index`` has, in band ``k``, frequency ``low + (high - low) * (0.3 + 0.4 * u)`` with
    ``u`` and the phases drawn from a generator seeded by ``index``; amplitudes fall as ``1 / (k
    + 1)`` like EEG's 1/f spectrum, and each channel is scaled by ``1 + 0.1 * channel``.
    """
    rng = np.random.default_rng(1000 + index)
    t = np.arange(n_times) / sfreq
    signal = np.zeros((n_chans, n_times))
    for k, (lo, hi) in enumerate(bands):
        freq = lo + (hi - lo) * (0.3 + 0.4 * rng.random())
        phases = rng.uniform(0, 2 * np.pi, size=(n_chans, 1))
        signal += np.sin(2 * np.pi * freq * t + phases) / (k + 1)
    signal *= (1.0 + 0.1 * np.arange(n_chans))[:, None]
    return signal + 0.01 * rng.standard_normal(signal.shape)


def synthetic_band_folder(
    root: str | Path,
    *,
    n_train: int = 32,
    n_val: int = 8,
    n_chans: int = 4,
    n_times: int = 500,
    sfreq: float = 100.0,
    bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
) -> dict[str, int]:
    """Write the deterministic synthetic dataset (``train/``, ``val/``); returns counts.

    The same arguments always write the same files (val samples continue the train indices).
    """
    bands = check_bands(bands, sfreq)
    counts = {}
    for split, offset, n in (("train", 0, n_train), ("val", n_train, n_val)):
        folder = Path(root) / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            signal = synthetic_signal(
                offset + i, n_chans=n_chans, n_times=n_times, sfreq=sfreq, bands=bands
            )
            save_band_sample(folder / f"sample_{i + 1:05d}.npz", signal, sfreq, bands)
        counts[split] = n
    return counts
