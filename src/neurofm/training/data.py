"""The windows a fit config's ``data`` section describes, built the same way by training and by
everything that reads a run back (no Lightning here)."""

from __future__ import annotations

from neurofm.data.store import PreparedStore
from neurofm.data.windows import WindowDataset
from neurofm.errors import ConfigError
from neurofm.tokenizers.base import Tokenizer
from neurofm.training.config import DataConfig


def check_tokenizer_rate(tokenizer: Tokenizer, store: PreparedStore) -> None:
    """Give the store's sampling rates to ``tokenizer`` (:meth:`Tokenizer.check_data`); raise
    the problems it reports, naming the store."""
    problems: list[str] = []
    for rate in sorted({float(rec.sfreq) for rec in store.recordings}):
        problems.extend(f"{p} (store {str(store.root)!r})" for p in tokenizer.check_data(rate))
    if problems:
        raise ConfigError(problems)


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
