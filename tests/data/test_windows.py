"""WindowDataset and collate: exact samples, targets, labels, ids, channels, scaling, workers."""

from __future__ import annotations

import pickle

import mne
import numpy as np
import pytest
import torch

from neurofm.data.collate import collate
from neurofm.data.recording import Events, Recording
from neurofm.data.store import PreparedStore
from neurofm.data.synthetic import synthetic_eeg, synthetic_store
from neurofm.data.windows import WindowDataset, vocabularies
from neurofm.errors import ChannelMismatchError, ConfigError
from neurofm.types import Batch, SensorInfo


@pytest.fixture
def store(tmp_path):
    return synthetic_store(
        tmp_path / "store",
        n_subjects=2,
        n_sessions=2,
        n_chans=4,
        sfreq=100.0,
        duration=8.0,
        evoked={"T1": 1e-5, "T2": -1e-5},
        n_events=6,
    )


def stored(store, rec_id):
    return np.load(store[rec_id].path)  # (T, C)


def edf_recording(path) -> Recording:
    """The shipped EDF read with MNE, with a standard montage and its annotations as events."""
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    mne.datasets.eegbci.standardize(raw)
    raw.set_montage("standard_1005", verbose="error")
    ann = raw.annotations
    sensors = SensorInfo(
        raw.ch_names,
        ["eeg"] * len(raw.ch_names),
        positions=np.array([ch["loc"][:3] for ch in raw.info["chs"]]),
    )
    return Recording(
        data=raw.get_data(),
        sfreq=raw.info["sfreq"],
        sensors=sensors,
        events=Events(ann.onset - raw.first_time, ann.duration, list(ann.description)),
        subject="S001",
        run=path.stem[-2:],
        source={"path": str(path), "sha256": "", "format": "edf"},
    )


def test_windows_are_exact_slices_with_next_and_shifted_targets(store):
    ds = WindowDataset(store, window_length=50, stride=30, target_length=20)
    for i in (0, 7, len(ds) - 1):
        rid, start, stop = ds.window_bounds(i)
        arr = stored(store, rid)
        item = ds[i]
        assert np.array_equal(item["x"].numpy(), arr[start : start + 50].T)
        assert np.array_equal(item["target"].numpy(), arr[start + 50 : start + 70].T)
        assert stop == start + 70
    shifted = WindowDataset(store, window_length=50, target_length=50, horizon=1)
    rid, start, _ = shifted.window_bounds(3)
    item = shifted[3]
    assert torch.equal(item["target"][:, :-1], item["x"][:, 1:])
    assert np.array_equal(item["target"].numpy(), stored(store, rid)[start + 1 : start + 51].T)


def test_no_window_crosses_a_segment_end_and_short_segments_are_reported(store):
    segments = [
        {"recording": "sub-00_ses-00_run-00", "start": 10, "stop": 175},
        {"recording": "sub-01_ses-01_run-00", "start": 300, "stop": 340},
        {"recording": "sub-01_ses-00_run-00", "start": 0, "stop": 800},
    ]
    ds = WindowDataset(store, segments, window_length=50, stride=7)
    for i in range(len(ds)):
        rid, start, stop = ds.window_bounds(i)
        assert any(
            s["recording"] == rid and s["start"] <= start and stop <= s["stop"] for s in segments
        )
    assert ds.short_segments == [segments[1]]
    counts = [len(range(s["start"], s["stop"] - 50 + 1, 7)) for s in segments]
    assert len(ds) == sum(counts)
    with pytest.raises(ConfigError, match="no window"):
        WindowDataset(store, segments[1:2], window_length=50)
    with pytest.raises(ConfigError, match="not a non-empty range"):
        WindowDataset(
            store,
            [{"recording": "sub-00_ses-00_run-00", "start": 0, "stop": 801}],
            window_length=10,
        )
    with pytest.raises(ConfigError, match="no split 'val'"):
        WindowDataset(store, "val", window_length=10)


def test_labels_condition_and_event_locked_windows_on_the_real_sample(tmp_path, sample_dir):
    rec = edf_recording(sample_dir / "eegbci_S001" / "S001R04.edf")
    store = PreparedStore.create(tmp_path / "eeg")
    store.write("S001R04", rec, fingerprint="raw")
    label_map = {"T1": 0, "T2": 1}
    sfreq = rec.sfreq
    ds = WindowDataset(store, window_length=160, labels=label_map, condition={"T1": 1, "T2": 2})
    onset = np.round(rec.events.onset * sfreq).astype(int)
    stop = onset + np.round(rec.events.duration * sfreq).astype(int)
    for i in range(len(ds)):
        start = ds.window_bounds(i)[1]
        active = [k for k in range(len(onset)) if onset[k] <= start < stop[k]]
        desc = rec.events.description[active[-1]] if active else None
        assert ds.labels[i] == label_map.get(desc, -1)
    assert set(np.unique(ds.labels)) == {-1, 0, 1}
    item = ds[int(np.flatnonzero(ds.labels == 1)[0])]
    assert item["condition"][0] == 2 and item["condition"].dtype == torch.int64
    locked = WindowDataset(store, labels=label_map, event_window=(-0.5, 2.0))
    n_task = sum(d in label_map for d in rec.events.description)
    assert locked.window_length == 400
    assert len(locked) + len(locked.skipped_events) == n_task
    first = int(np.flatnonzero([d in label_map for d in rec.events.description])[0])
    assert locked.window_bounds(0)[1] == onset[first] - 80
    assert locked.labels[0] == label_map[rec.events.description[first]]
    batch = collate([locked[i] for i in range(4)])
    assert batch.x.shape == (4, 64, 400) and batch.context["positions"].shape == (4, 64, 3)
    assert torch.isfinite(batch.context["positions"]).all()


def test_ids_channels_by_name_and_scaling(store):
    vocab = vocabularies(store.manifest)
    assert vocab["subject"] == {"00": 0, "01": 1}
    assert list(vocab["session"]) == ["00/00", "00/01", "01/00", "01/01"]
    ds = WindowDataset(store, window_length=40)
    ids = {(ds[i]["subject"], ds[i]["session"]) for i in range(len(ds))}
    assert ids == {(0, 0), (0, 1), (1, 2), (1, 3)}
    names = store[0].sensors.names
    picked = WindowDataset(store, window_length=40, channels=[names[2], names[0]])
    full = ds[5]
    assert torch.equal(picked[5]["x"], full["x"][[2, 0]])
    assert picked[5]["channel_ids"].tolist() == [
        vocab["channel"][names[2]],
        vocab["channel"][names[0]],
    ]
    with pytest.raises(ChannelMismatchError, match="EEG999"):
        WindowDataset(store, window_length=40, channels=[names[0], "EEG999"])
    center = np.array([1e-6, 2e-6, 3e-6, 4e-6])
    scale = np.array([1e-5, 2e-5, 4e-5, 8e-5])
    store.manifest["scaler"] = {
        "kind": "robust",
        "fitted_on": "train",
        "channels": names[::-1],
        "center": center[::-1].tolist(),
        "scale": scale[::-1].tolist(),
    }
    scaled = WindowDataset(store, window_length=40, normalize=True)
    expected = (full["x"].double() - torch.tensor(center)[:, None]) / torch.tensor(scale)[:, None]
    torch.testing.assert_close(scaled[5]["x"].double(), expected, rtol=1e-5, atol=1e-5)


def test_preload_pickling_and_dataloader_workers_give_identical_batches(store):
    lazy = WindowDataset(store, window_length=32, stride=16, target_length=8)
    lazy[0]  # opens a file handle, which must not travel
    blob = pickle.dumps(lazy)
    assert len(blob) < 20_000  # no signal data in the pickle
    clone = pickle.loads(blob)
    assert torch.equal(clone[11]["x"], lazy[11]["x"])
    preloaded = WindowDataset(store, window_length=32, stride=16, target_length=8, preload=True)
    for i in (0, 13, len(lazy) - 1):
        assert torch.equal(preloaded[i]["x"], lazy[i]["x"])
        assert torch.equal(preloaded[i]["target"], lazy[i]["target"])

    def epoch(workers: int) -> list[Batch]:
        loader = torch.utils.data.DataLoader(
            lazy, batch_size=8, num_workers=workers, collate_fn=collate
        )
        return list(loader)

    serial, parallel = epoch(0), epoch(2)
    assert len(serial) == len(parallel)
    for a, b in zip(serial, parallel):
        assert torch.equal(a.x, b.x) and torch.equal(a.target, b.target)
        assert torch.equal(a.meta["start"], b.meta["start"])
    assert serial[0].x.is_contiguous() and serial[0].x.dtype == torch.float32


def test_collate_rejects_mixed_shapes(tmp_path):
    store = PreparedStore.create(tmp_path / "mixed")
    store.write("a", synthetic_eeg(n_chans=3, duration=4, n_events=2), fingerprint="x")
    store.write("b", synthetic_eeg(n_chans=5, duration=4, n_events=2), fingerprint="x")
    ds = WindowDataset(store, window_length=100)
    first_b = next(i for i in range(len(ds)) if ds.window_bounds(i)[0] == "b")
    with pytest.raises(ValueError, match="different shapes"):
        collate([ds[0], ds[first_b]])
