"""The windows a fit config's ``data`` section describes, built the same way by training and by
everything that reads a run back (no Lightning here)."""

from __future__ import annotations

from neurofm.data.store import PreparedStore
from neurofm.data.windows import WindowDataset
from neurofm.training.config import DataConfig


def build_dataset(store: PreparedStore, data: DataConfig, split: str) -> WindowDataset:
    """The WindowDataset of ``split`` as configured by the ``data`` section."""
    return WindowDataset(
        store,
        split,
        window_length=data.window_length,
        stride=data.stride,
        target_length=data.target_length,
        horizon=data.horizon,
        labels=data.labels,
        event_window=None if data.event_window is None else tuple(data.event_window),
        condition=data.condition,
        channels=data.channels,
        channel_policy=data.channel_policy,
        normalize=data.normalize,
        preload=data.preload,
    )
