"""The windows a fit config's ``data`` section describes, built the same way by training and by
everything that reads a run back (no Lightning here).

``data.format: store`` reads windows of a prepared store (as cumulative frequency bands
(L, C, T) when ``data.bands`` is set, computed with the store's sampling rate);
``data.format: band_npz`` reads the split folders of ``.npz`` next-band samples;
``data.format: spike_events`` reads windows of spike events of a spike-times file, split in time
blocks (:mod:`neurofm.data.event_source`).
"""

from __future__ import annotations

from typing import Any

from neurofm.data.count_windows import CountWindows
from neurofm.data.event_source import SpikeEventSource
from neurofm.data.store import PreparedStore
from neurofm.data.windows import WindowDataset
from neurofm.errors import ConfigError
from neurofm.tokenizers.band_data import BandFolder, BandWindowDataset, LimitedDataset
from neurofm.tokenizers.base import Tokenizer
from neurofm.training.config import DataConfig
from neurofm.training.text_data import TextSegmentSource


def check_tokenizer_rate(tokenizer: Tokenizer, store: PreparedStore | BandFolder) -> None:
    """Give the store's sampling rates to ``tokenizer`` (:meth:`Tokenizer.check_data`); raise
    the problems it reports, naming the store (a band folder: its rate)."""
    if isinstance(store, BandFolder):
        rates = {float(store.dataset("train").sfreq)}
    else:
        rates = {float(rec.sfreq) for rec in store.recordings}
    problems: list[str] = []
    for rate in sorted(rates):
        problems.extend(f"{p} (store {str(store.root)!r})" for p in tokenizer.check_data(rate))
    if problems:
        raise ConfigError(problems)


def open_data(
    data: DataConfig,
) -> PreparedStore | BandFolder | TextSegmentSource | SpikeEventSource:
    """The prepared store, the ``.npz`` band folder, the text segments or the spike events
    ``data.store`` names."""
    if data.format == "text_segments":
        return TextSegmentSource(data)
    if data.format == "spike_events":
        return SpikeEventSource(data)
    if data.format == "band_npz":
        return BandFolder(data.store)
    return PreparedStore.open(data.store)


def data_sfreq(store: PreparedStore | BandFolder, dataset: Any) -> float:
    """Sampling rate (Hz) of the windows of ``dataset``; one rate is required."""
    if isinstance(store, BandFolder):
        return float(_unlimited(dataset).sfreq)
    windows = _unlimited(dataset)
    windows = getattr(windows, "windows", windows)
    rates = {float(store[seg["recording"]].sfreq) for seg in windows.segments}
    if len(rates) != 1:
        raise ConfigError(f"{store.root}: the windows mix sampling rates {sorted(rates)} Hz")
    return rates.pop()


def _unlimited(dataset: Any) -> Any:
    return dataset.dataset if isinstance(dataset, LimitedDataset) else dataset


def build_dataset(store: PreparedStore | BandFolder, data: DataConfig, split: str) -> Any:
    """The dataset of ``split`` as configured by the ``data`` section.

    A :class:`~neurofm.data.windows.WindowDataset`, wrapped in a
    :class:`~neurofm.tokenizers.band_data.BandWindowDataset` when ``data.bands`` is set, or the
    split folder of a band folder, or in a :class:`~neurofm.data.count_windows.CountWindows`
    (x (T, units), target (T, K) of ``data.behaviour``) when ``data.layout`` is ``counts``; the train / val split keeps its first ``max_train_windows`` /
    ``max_val_windows`` items when those are set.
    """
    if isinstance(store, (BandFolder, TextSegmentSource, SpikeEventSource)):
        dataset: Any = store.dataset(split)
    else:
        dataset = WindowDataset(
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
        if data.layout == "counts":
            dataset = CountWindows(dataset, data.behaviour or ())
        if data.bands is not None:
            dataset = BandWindowDataset(
                dataset,
                sfreq=data_sfreq(store, dataset),
                bands=data.bands,
                n_taps=data.band_taps,
            )
    limit = {data.train_split: data.max_train_windows, data.val_split: data.max_val_windows}
    if limit.get(split) is not None:
        dataset = LimitedDataset(dataset, limit[split])
    return dataset
