"""Count windows: units time-major in ``x``, the named behaviour channels in ``target``; the data
config refuses behaviour outside the counts layout."""

from __future__ import annotations

import pytest
import torch

from neurofm.data.count_windows import CountWindows
from neurofm.data.synthetic import synthetic_reach_store
from neurofm.data.windows import WindowDataset
from neurofm.errors import ConfigError
from neurofm.training.config import DataConfig


def test_count_windows_split_units_and_behaviour(tmp_path):
    store = synthetic_reach_store(tmp_path / "store", n_units=5, n_bins=100)
    windows = WindowDataset(store, "train", window_length=20, stride=20)
    counts = CountWindows(windows, ["velocity_x", "velocity_y"])
    item, raw = counts[1], windows[1]["x"]
    assert item["x"].shape == (20, 5) and item["target"].shape == (20, 2)
    assert torch.equal(item["x"], raw[:5].T) and torch.equal(item["target"], raw[5:].T)
    assert counts.channel_names == [f"unit{i:03d}" for i in range(5)]
    assert len(counts) == len(windows) == 5
    assert CountWindows(windows)[0]["x"].shape == (20, 7)  # no behaviour: every channel a unit
    with pytest.raises(ConfigError, match=r"data.behaviour: channels \['speed'\]"):
        CountWindows(windows, ["speed"])


def test_behaviour_needs_the_counts_layout():
    with pytest.raises(ValueError, match="layout: counts only"):
        DataConfig(store="s", window_length=8, behaviour=["velocity_x"])
    assert DataConfig(store="s", window_length=8, layout="counts", behaviour=["v"]).behaviour
