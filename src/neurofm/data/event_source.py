"""Spike events of a spike-times file as the data of a fit (``data.format: spike_events``).

``data.store`` names a file of spike times that :func:`neurofm.io.read_recording` reads with a
``bin_size`` (a text file of spike times, the units table of an NWB file: any (unit, time)
event source it knows; ``data.reader`` passes further options such as ``time_unit``). The
recording is cut in contiguous time blocks, one per split, in the order of
``data.time_splits`` (e.g. ``{train: 0.7, val: 0.1, test: 0.2}`` of the bins). A block's last
``window_length`` bins are left out before the next block begins (the gap between time splits
of :mod:`neurofm.data.prepare_splits`), except for the last block, so that the last split is
exactly the end of the recording; no window crosses a block edge.

Items (:class:`EventWindows`): ``x`` the window's spikes (n, 2) float64, unit id and time (s)
from the window start, sorted (the layout of :mod:`neurofm.data.spike_events`; with
``data.layout: counts``, the binned events (window_length, n_units) instead, the input of
binned-count models on the same bins and blocks), and, with
``data.behaviour_file`` (a signal whose channels are averaged over each bin), ``target``
(window_length, K). With ``data.normalize`` the behaviour is standardised by the train block's
mean and standard deviation. :func:`collate_events` pads the spikes of a batch into
``(B, N, 2)`` with padding rows of unit id ``-1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.data.collate import collate
from neurofm.data.spike_events import event_windows, pack_events
from neurofm.errors import ConfigError, RecordingError
from neurofm.types import Batch


@dataclass
class EventBlock:
    """One split's time block: bins ``[first, first + n_bins)`` of the recording."""

    first: int
    n_bins: int


class SpikeEventSource:
    """The spike events (and per-bin behaviour) of one recording, cut in time blocks.

    Parameters
    ----------
    data : DataConfig
        A ``data`` section with ``format: spike_events``.
    """

    def __init__(self, data: Any) -> None:
        from neurofm.io import read_recording

        self.root = Path(data.store)
        self.data = data
        self.bin_size = float(data.bin_size)
        self.sfreq = 1.0 / self.bin_size
        self.fingerprint = None
        self.manifest: dict[str, Any] = {}  # no prepared store: nothing was filtered
        options = dict(data.reader or {})
        try:
            recording = read_recording(self.root, bin_size=self.bin_size, **options)
        except (OSError, RecordingError, TypeError, ValueError) as err:
            raise ConfigError(f"data.store: {str(self.root)!r}: {err}") from err
        if "spike_times" not in recording.meta:
            raise ConfigError(
                f"data.store: {str(self.root)!r} holds no spike times (format spike_events reads "
                "spike-time files: text, NWB units)"
            )
        self.spike_times = [np.asarray(t, dtype=np.float64) for t in recording.meta["spike_times"]]
        self.first_time = float(recording.first_time)
        self.channel_names = list(recording.sensors.names)
        self.counts = np.asarray(recording.data, dtype=np.float64).T  # (n_bins, n_units)
        self.behaviour = None
        if data.behaviour_file is not None:
            self.behaviour = self._read_behaviour(Path(data.behaviour_file), options)
        self.blocks = self._blocks()
        if self.behaviour is not None and data.normalize:
            train = self.blocks[data.train_split]
            part = self.behaviour[train.first : train.first + train.n_bins]
            self.behaviour_mean, self.behaviour_std = part.mean(axis=0), part.std(axis=0)
            if (self.behaviour_std == 0).any():
                raise ConfigError(
                    "data.behaviour_file: a channel is constant over the train block; it "
                    "cannot be standardised (data.normalize: false keeps it as is)"
                )
            self.behaviour = (self.behaviour - self.behaviour_mean) / self.behaviour_std

    @property
    def n_units(self) -> int:
        return len(self.spike_times)

    def _read_behaviour(self, path: Path, options: dict[str, Any]) -> np.ndarray:
        """(n_bins, K): the behaviour file's channels averaged over each bin."""
        from neurofm.io import read_recording

        try:
            signal = read_recording(path, preload=True, **options)
        except (OSError, RecordingError, TypeError, ValueError) as err:
            raise ConfigError(f"data.behaviour_file: {str(path)!r}: {err}") from err
        per_bin = self.bin_size * float(signal.sfreq)
        if abs(per_bin - round(per_bin)) > 1e-6 or round(per_bin) < 1:
            raise ConfigError(
                f"data.behaviour_file: {str(path)!r} at {signal.sfreq:g} Hz: a bin of "
                f"{self.bin_size:g} s is not a whole number of its samples"
            )
        offset = (float(signal.first_time) - self.first_time) / self.bin_size
        if abs(offset) > 1e-6:
            raise ConfigError(
                f"data.behaviour_file: {str(path)!r} starts at {signal.first_time:g} s, the "
                f"spikes' bins at {self.first_time:g} s; they must start together"
            )
        per_bin = round(per_bin)
        values = np.asarray(signal.data, dtype=np.float64)  # (K, n_samples)
        n_bins = values.shape[1] // per_bin
        if n_bins < len(self.counts):
            raise ConfigError(
                f"data.behaviour_file: {str(path)!r} covers {n_bins} bins of {self.bin_size:g} "
                f"s, but the spikes of {str(self.root)!r} reach bin {len(self.counts)}"
            )
        # the spikes' bins end with the last spike: extend them to the behaviour's whole bins
        extra = np.zeros((n_bins - len(self.counts), self.n_units))
        self.counts = np.concatenate([self.counts, extra])
        binned = values[:, : n_bins * per_bin].reshape(len(values), n_bins, per_bin)
        return binned.mean(axis=2).T  # (n_bins, K)

    def _blocks(self) -> dict[str, EventBlock]:
        """The time block of every split (:data:`time_splits` in order, gaps of one window)."""
        n_total, window = len(self.counts), int(self.data.window_length)
        out, first = {}, 0
        names = list(self.data.time_splits)
        for k, name in enumerate(names):
            end = int(round((sum(list(self.data.time_splits.values())[: k + 1])) * n_total))
            n_bins = end - first - (window if k < len(names) - 1 else 0)
            if n_bins < window:
                raise ConfigError(
                    f"data.time_splits: split {name!r} gets {max(n_bins, 0)} bins of "
                    f"{str(self.root)!r} ({n_total} bins), fewer than one window ({window})"
                )
            out[name] = EventBlock(first, n_bins)
            first = end
        return out

    def block(self, split: str) -> EventBlock:
        """The time block of ``split``."""
        if split not in self.blocks:
            raise ConfigError(f"data: no split {split!r}; time_splits has {sorted(self.blocks)}")
        return self.blocks[split]

    def dataset(self, split: str, *, stride: int | None = None) -> EventWindows:
        """Windows of ``split``'s block every ``stride`` bins (default ``data.stride``)."""
        window = int(self.data.window_length)
        step = int(stride or self.data.stride or window)
        block = self.block(split)
        starts = np.arange(block.first, block.first + block.n_bins - window + 1, step)
        return EventWindows(self, starts)

    def windows_covering(self, split: str) -> tuple[np.ndarray, EventBlock]:
        """Window starts that cover every bin of ``split`` (consecutive windows, the last one
        ending at the block's last bin), and the block."""
        window = int(self.data.window_length)
        block = self.block(split)
        end = block.first + block.n_bins
        starts = list(range(block.first, end - window + 1, window))
        if starts[-1] + window < end:
            starts.append(end - window)
        return np.asarray(starts), block

    def collate(self) -> Any:
        """The collate function of this source's datasets."""
        return collate_events if self.data.layout == "spikes" else collate


class EventWindows(torch.utils.data.Dataset):
    """Windows of a :class:`SpikeEventSource` starting at the bins ``starts``."""

    def __init__(self, source: SpikeEventSource, starts: np.ndarray) -> None:
        self.source = source
        self.starts = np.asarray(starts, dtype=np.int64)
        self.channel_names = source.channel_names
        window = int(source.data.window_length)
        bin_size = source.bin_size
        times = [t - source.first_time for t in source.spike_times]
        self.events = event_windows(times, self.starts * bin_size, window * bin_size)
        self.window = window
        self.n_units = source.n_units

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, Any]:
        start = int(self.starts[i])
        if self.source.data.layout == "counts":
            x = torch.from_numpy(self.source.counts[start : start + self.window]).float()
        else:
            units, times = self.events[i]
            x = torch.from_numpy(np.stack([units.astype(np.float64), times], axis=1))
        item: dict[str, Any] = {"x": x, "start": start, "recording": 0}
        behaviour = self.source.behaviour
        if behaviour is not None:
            item["target"] = torch.from_numpy(behaviour[start : start + self.window]).float()
        return item


def collate_events(items: Sequence[dict[str, Any]]) -> Batch:
    """Pad the spikes of ``items`` into ``x`` (B, N, 2) (:func:`pack_events`), stack targets."""
    x = pack_events([(item["x"][:, 0].numpy(), item["x"][:, 1].numpy()) for item in items])
    target = None
    if items and "target" in items[0]:
        target = torch.stack([item["target"] for item in items])
    meta = {key: torch.tensor([item[key] for item in items]) for key in ("start", "recording")}
    return Batch(x=x, target=target, meta=meta)
