"""Batched window reads (``WindowDataset.__getitems__``) equal the collate of single items."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neurofm.data import _mapped
from neurofm.data.collate import BatchedWindows, collate
from neurofm.data.store import PreparedStore
from neurofm.data.synthetic import synthetic_eeg, synthetic_store
from neurofm.data.windows import WindowDataset
from neurofm.types import Batch

LABELS = {"T1": 0, "T2": 1}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = synthetic_store(
        tmp_path_factory.mktemp("batched") / "store",
        n_subjects=2,
        n_sessions=2,
        n_chans=5,
        sfreq=100.0,
        duration=8.0,
        evoked={"T1": 1e-5, "T2": -1e-5},
        n_events=6,
    )
    names = store[0].sensors.names
    store.manifest["scaler"] = {
        "kind": "robust",
        "fitted_on": "train",
        "channels": names[::-1],
        "center": [1e-6 * (k + 1) for k in range(len(names))][::-1],
        "scale": [3e-6 * (k + 1) for k in range(len(names))][::-1],
    }
    return store


def assert_same_batch(batched: Batch, itemwise: Batch) -> None:
    for field in dataclasses.fields(Batch):
        a, b = getattr(batched, field.name), getattr(itemwise, field.name)
        if field.name in ("meta", "context"):
            assert a.keys() == b.keys()
            for key in a:
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
        elif b is None:
            assert a is None, field.name
        else:
            assert a.dtype == b.dtype and a.shape == b.shape, field.name
            assert torch.equal(a, b), field.name  # bit for bit (NaN positions compare below)
    assert batched.x.is_contiguous() and itemwise.x.is_contiguous()


OPTIONS = {
    "plain": {"window_length": 32, "stride": 16},
    "next_target": {"window_length": 32, "stride": 7, "target_length": 12},
    "shifted_target": {"window_length": 30, "target_length": 30, "horizon": 1},
    "labels_condition": {"window_length": 40, "labels": LABELS, "condition": {"T1": 1, "T2": 2}},
    "event_locked": {"labels": LABELS, "event_window": (-0.2, 0.5), "condition": {"T2": 3}},
    "picked_normalised": {"window_length": 25, "channels": [2, 0, 4], "normalize": True},
    "normalised_target": {"window_length": 20, "target_length": 5, "normalize": True},
    "preloaded": {
        "window_length": 32,
        "stride": 9,
        "target_length": 4,
        "channels": [4, 1],
        "normalize": True,
        "labels": LABELS,
        "preload": True,
    },
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_batched_read_equals_collate_of_items_for_every_option(store, name):
    options = dict(OPTIONS[name])
    if "channels" in options:
        names = store[0].sensors.names
        options["channels"] = [names[k] for k in options["channels"]]
    ds = WindowDataset(store, **options)
    rng = np.random.default_rng(0)
    n = len(ds)
    batches = [
        rng.permutation(n)[: min(n, 9)].tolist(),  # shuffled, across recordings
        [n - 1, 0, n - 1, -1, -n],  # repeats and negative indices
        [int(rng.integers(n))],
    ]
    for indices in batches:
        batched = collate(ds.__getitems__(indices))
        itemwise = collate([ds[i] for i in indices])
        # NaN where a store has no positions: compared apart
        positions = (batched.context.pop("positions"), itemwise.context.pop("positions"))
        assert_same_batch(batched, itemwise)
        torch.testing.assert_close(*positions, rtol=0, atol=0, equal_nan=True)


def test_items_are_channel_major_views_of_time_major_copies(store):
    ds = WindowDataset(store, window_length=32, target_length=8)
    arr = np.load(store[0].path)  # (T, C)
    item = ds[3]
    _, start, _ = ds.window_bounds(3)
    assert item["x"].shape == (5, 32) and item["x"].dtype == torch.float32
    assert np.array_equal(item["x"].numpy(), arr[start : start + 32].T)
    assert np.array_equal(item["target"].numpy(), arr[start + 32 : start + 40].T)
    before = item["x"].clone()
    ds[3]["x"].mul_(2)  # an item owns its samples: changing it changes nothing else
    assert torch.equal(ds[3]["x"], before)
    assert torch.equal(collate([item]).x[0], before) and collate([item]).x.is_contiguous()


def test_batched_windows_act_as_the_sequence_of_their_items(store):
    ds = WindowDataset(store, window_length=32, labels=LABELS, target_length=4)
    indices = [5, 1, 17]
    batched = ds.__getitems__(indices)
    assert isinstance(batched, BatchedWindows) and len(batched) == 3
    for k, i in enumerate(indices):
        got, want = batched[k], ds[i]
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got[key].nan_to_num(), value.nan_to_num()), key
            else:
                assert got[key] == value and isinstance(got[key], int), key
    with pytest.raises(IndexError, match="out of range"):
        batched[3]
    default = torch.utils.data.default_collate(batched)  # list-of-items code keeps working
    assert torch.equal(default["x"], collate(batched).x)


def test_dataloader_uses_the_batched_path_with_and_without_workers(store):
    ds = WindowDataset(store, window_length=24, stride=10, target_length=6, labels=LABELS)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(3)).tolist()
    expected = [collate([ds[i] for i in order[k : k + 8]]) for k in range(0, len(order), 8)]
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(
            ds, batch_size=8, sampler=order, collate_fn=collate, num_workers=workers
        )
        got = list(loader)
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert torch.equal(a.x, b.x) and torch.equal(a.target, b.target)
            assert torch.equal(a.label, b.label) and torch.equal(a.meta["start"], b.meta["start"])
    subset = torch.utils.data.Subset(ds, order[:8])
    assert torch.equal(collate(subset.__getitems__(list(range(8)))).x, expected[0].x)


def test_batched_errors_match_the_item_path(tmp_path, store):
    ds = WindowDataset(store, window_length=32)
    with pytest.raises(IndexError, match="out of range"):
        ds.__getitems__([0, len(ds)])
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]
    with pytest.raises(ValueError, match="no indices"):
        ds.__getitems__([])
    with pytest.raises(ValueError, match="no items"):
        collate([])
    mixed = PreparedStore.create(tmp_path / "mixed")
    mixed.write("a", synthetic_eeg(n_chans=3, duration=4, n_events=2), fingerprint="x")
    mixed.write("b", synthetic_eeg(n_chans=5, duration=4, n_events=2), fingerprint="x")
    ds = WindowDataset(mixed, window_length=100)
    first_b = next(i for i in range(len(ds)) if ds.window_bounds(i)[0] == "b")
    with pytest.raises(ValueError, match="different shapes"):
        ds.__getitems__([0, first_b])
    with pytest.raises(ValueError, match="different shapes"):
        collate([ds[0], ds[first_b]])


def test_batched_reads_release_mapped_pages(store, monkeypatch):
    monkeypatch.setattr(_mapped, "RESIDENT_BYTES", 4096)
    ds = WindowDataset(store, window_length=50)
    released, release = [], ds._maps.release

    def counted_release():
        released.append(ds._maps.read_bytes)
        release()

    monkeypatch.setattr(ds._maps, "release", counted_release)
    ds.__getitems__(list(range(len(ds))))
    assert released and max(released) <= 4096 + 50 * 5 * 4
