"""Splits (R6): no subject/session overlap, no window across a time split, train-only statistics."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurofm.data.recording import Recording
from neurofm.data.splits import (
    SplitError,
    check_splits,
    save_splits,
    split_by_recording,
    split_by_session,
    split_by_subject,
    split_by_time,
)
from neurofm.data.store import PreparedStore
from neurofm.data.windows import WindowDataset
from neurofm.preprocessing.scaling import RobustScaler
from neurofm.types import SensorInfo

N_CHANS = 3


def make_store(root: Path, layout: list[tuple[int, int, int, int]], seed: int) -> PreparedStore:
    """A store with one recording per (subject, session, run, n_times) of seeded noise."""
    rng = np.random.default_rng(seed)
    store = PreparedStore.create(root)
    sensors = SensorInfo([f"C{i}" for i in range(N_CHANS)], ["eeg"] * N_CHANS)
    for sub, ses, run, n_times in layout:
        rec = Recording(
            data=rng.standard_normal((N_CHANS, n_times)),
            sfreq=100.0,
            sensors=sensors,
            subject=f"{sub}",
            session=f"{ses}",
            run=f"{run}",
        )
        store.write(f"sub-{sub}_ses-{ses}_run-{run}", rec, fingerprint="p")
    return store


@st.composite
def manifests(draw):
    n_subjects = draw(st.integers(3, 5))
    layout = []
    for sub in range(n_subjects):
        for ses in range(draw(st.integers(1, 3))):
            for run in range(draw(st.integers(1, 2))):
                layout.append((sub, ses, run, draw(st.integers(200, 500))))
    window = draw(st.integers(4, 40))
    stride = draw(st.integers(max(1, window // 4), window))  # overlapping windows
    return layout, window, stride, draw(st.integers(0, 2**16))


def windows_of(store, segments, window, stride):
    ds = WindowDataset(store, segments, window_length=window, stride=stride)
    return [ds.window_bounds(i) for i in range(len(ds))]


def train_only_statistics(store: PreparedStore, splits: dict) -> None:
    """Scaler statistics use train samples only: scrambling every other sample changes nothing."""
    before = RobustScaler().fit(store, segments=splits["train"])
    for rec in store.recordings:
        arr = np.load(rec.path, mmap_mode="r+")
        keep = np.zeros(rec.n_times, dtype=bool)
        for seg in splits["train"]:
            if seg["recording"] == rec.id:
                keep[seg["start"] : seg["stop"]] = True
        arr[~keep] = 1e6  # outside train: wild values
        arr.flush()
    after = RobustScaler().fit(store, segments=splits["train"])
    np.testing.assert_array_equal(before.center, after.center)
    np.testing.assert_array_equal(before.scale, after.scale)


@settings(
    max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(manifests(), st.sampled_from(["subject", "session", "recording"]))
def test_r6_group_splits_never_share_a_subject_or_session(case, by):
    layout, window, stride, seed = case
    root = Path(tempfile.mkdtemp())
    try:
        store = make_store(root, layout, seed)
        split = {
            "subject": split_by_subject,
            "session": split_by_session,
            "recording": split_by_recording,
        }[by]
        splits = split(store.manifest, seed=seed)
        assert splits == split(store.manifest, seed=seed)  # deterministic for a seed
        check_splits(store.manifest, splits, by=by, window_length=window)
        recs = {r["id"]: r for r in store.manifest["recordings"]}
        assert sum(len(v) for v in splits.values()) == len(recs)  # nothing dropped
        keys = {
            "subject": lambda r: r["subject"],
            "recording": lambda r: r["id"],
            "session": lambda r: (r["subject"], r["session"]),
        }
        owners = {by: {}, **({"session": {}} if by == "subject" else {})}
        for name, segs in splits.items():
            for rid, _, _ in windows_of(store, segs, window, stride):
                for kind, owner in owners.items():
                    group = keys[kind](recs[rid])
                    assert owner.setdefault(group, name) == name, f"{kind} {group} in two splits"
        train_only_statistics(store, splits)
    finally:
        shutil.rmtree(root)


@settings(
    max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(manifests(), st.integers(1, 3))
def test_r6_no_overlapping_window_crosses_a_time_split(case, n_blocks):
    layout, window, stride, seed = case
    root = Path(tempfile.mkdtemp())
    try:
        store = make_store(root, layout, seed)
        window = min(window, min(n for *_, n in layout) // (8 * n_blocks))  # every block fits
        stride = min(stride, window)
        fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
        splits = split_by_time(
            store.manifest, window_length=window, n_blocks=n_blocks, fractions=fractions
        )
        check_splits(store.manifest, splits, by="time", window_length=window)
        taken = {}
        for name, segs in splits.items():
            for rid, start, stop in windows_of(store, segs, window, stride):
                others = [
                    s
                    for other, ss in splits.items()
                    if other != name
                    for s in ss
                    if s["recording"] == rid
                ]
                # a window lies a full window away from every segment of another split
                assert all(
                    stop + window <= s["start"] or s["stop"] + window <= start for s in others
                )
                taken.setdefault(rid, set()).add(name)
        assert all(len(names) == 3 for names in taken.values())
        train_only_statistics(store, splits)
    finally:
        shutil.rmtree(root)


def test_check_splits_lists_every_leak(tmp_path):
    store = make_store(tmp_path, [(0, 0, 0, 500), (0, 1, 0, 500), (1, 0, 0, 500)], seed=0)
    leaky = {
        "train": [{"recording": "sub-0_ses-0_run-0", "start": 0, "stop": 300}],
        "test": [
            {"recording": "sub-0_ses-0_run-0", "start": 310, "stop": 500},
            {"recording": "sub-0_ses-1_run-0", "start": 0, "stop": 500},
        ],
    }
    with pytest.raises(SplitError) as err:
        check_splits(store.manifest, leaky, by="subject", window_length=20)
    message = str(err.value)
    assert "only 10 samples between 'train'" in message
    assert "subject '0' is in several splits" in message
    overlap = {
        "train": [{"recording": "sub-1_ses-0_run-0", "start": 0, "stop": 300}],
        "val": [{"recording": "sub-1_ses-0_run-0", "start": 200, "stop": 500}],
    }
    with pytest.raises(SplitError, match="overlap"):
        check_splits(store.manifest, overlap)
    with pytest.raises(SplitError, match="gap >= window_length"):
        split_by_time(store.manifest, window_length=20, gap=5)
    with pytest.raises(SplitError, match="cannot fill"):
        split_by_subject(store.manifest)  # 2 subjects, 3 splits
    splits = split_by_session(store.manifest, fractions={"train": 0.67, "test": 0.33}, seed=1)
    save_splits(store, splits, by="session", policy={"seed": 1})
    reopened = PreparedStore.open(tmp_path)
    assert reopened.manifest["splits"] == splits
    assert reopened.manifest["split_policy"] == {"by": "session", "window_length": 1, "seed": 1}
