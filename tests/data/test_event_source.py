"""The spike-event source (``data.format: spike_events``) on the real grasshopper recording:
time blocks in order with a one-window gap, windows inside their block, events and binned
counts of the same bins, behaviour per bin standardised on train."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.config import build_config
from neurofm.data.event_source import SpikeEventSource
from neurofm.data.spike_events import bin_events, split_events
from neurofm.errors import ConfigError
from neurofm.training.config import DataConfig


def _source(shared_data, **overrides) -> SpikeEventSource:
    folder = shared_data / "spikes_grasshopper"
    section = {
        "format": "spike_events",
        "layout": "spikes",
        "store": str(folder / "grasshopper_spike_times1.txt"),
        "behaviour_file": str(folder / "grasshopper_stimulus1.txt"),
        "reader": {"time_unit": "us"},
        "bin_size": 0.005,
        "window_length": 64,
        "stride": 8,
        "time_splits": {"train": 0.7, "val": 0.1, "test": 0.2},
        "normalize": True,
        **overrides,
    }
    return SpikeEventSource(build_config(DataConfig, section, prefix="data"))


def test_blocks_windows_events_and_counts_agree(shared_data):
    source = _source(shared_data)
    blocks = {name: (b.first, b.n_bins) for name, b in source.blocks.items()}
    assert blocks == {"train": (0, 1400 - 64), "val": (1400, 200 - 64), "test": (1600, 400)}
    assert source.counts.shape == (2000, 1) and source.counts.sum() == 929
    train = source.behaviour[:1336]
    assert abs(train.mean()) < 1e-9 and abs(train.std() - 1) < 1e-9
    windows = source.dataset("test")
    assert windows.starts[0] == 1600 and windows.starts[-1] + 64 <= 2000
    counts = _source(shared_data, layout="counts").dataset("test")
    batch = source.collate()([windows[i] for i in range(3)])
    units, times, _, valid = split_events(batch.x, n_units=1, n_waveform_features=0, window=0.32)
    binned = bin_events(units, times, valid, n_units=1, n_bins=64, bin_size=0.005)
    expected = torch.stack([counts[i]["x"] for i in range(3)])
    assert torch.equal(binned, expected)  # the events bin to the counts layout's windows
    assert torch.equal(batch.target, torch.stack([counts[i]["target"] for i in range(3)]))
    starts, block = source.windows_covering("test")
    assert starts[0] == 1600 and starts[-1] == 2000 - 64 and np.all(np.diff(starts) <= 64)


def test_bad_sources_raise_naming_the_key(shared_data, tmp_path):
    with pytest.raises(ConfigError, match=r"time_splits: split 'val' gets 0 bins"):
        _source(shared_data, time_splits={"train": 0.7, "val": 0.02, "test": 0.2})
    with pytest.raises(ConfigError, match=r"bin of 0.00012 s is not a whole number"):
        _source(shared_data, bin_size=0.00012)
    with pytest.raises(ConfigError, match=r"data.store: .*missing.txt"):
        _source(shared_data, store=str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match=r"bin_size: format spike_events needs bins > 0 s"):
        _source(shared_data, bin_size=None)
