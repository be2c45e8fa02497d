"""neurofm prepare: idempotence, resume, parallel determinism, train-only scaler, manifest."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import neurofm.data.prepare as prep
from neurofm.data.store import PreparedStore
from neurofm.errors import ConfigError, RecordingError
from neurofm.fileio import LOCK_FILE
from neurofm.preprocessing import RobustScaler

RUNS = ["S001R03", "S001R04", "S001R08"]
STEPS = [{"name": "bandpass", "l_freq": 1.0, "h_freq": 40.0}, {"name": "resample", "sfreq": 80}]


@pytest.fixture
def raw_dir(sample_dir, tmp_path) -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    for run in RUNS:
        shutil.copy(sample_dir / "eegbci_S001" / f"{run}.edf", folder)
    return folder


def _config(raw_dir: Path, output: Path, **changes) -> dict:
    config = {
        "inputs": [str(raw_dir / "*.edf")],
        "output": str(output),
        "preprocessing": STEPS,
        "splits": {
            "by": "recording",
            "window": 2.0,
            "assign": {"train": ["S001R03", "S001R04"], "test": ["S001R08"]},
        },
    }
    config.update(changes)
    return config


def _mtimes(root: Path) -> dict[str, int]:
    """Modification times of the store's files (the lock file, rewritten by each run, aside)."""
    return {
        p.name: p.stat().st_mtime_ns
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


def test_manifest_content(raw_dir, tmp_path):
    store = prep.prepare(_config(raw_dir, tmp_path / "out"))
    m = store.manifest
    assert [r.id for r in store.recordings] == RUNS
    rec = store["S001R03"]
    assert rec.sfreq == 80.0 and rec.n_times == 10000 and rec.n_chans == 64
    assert rec.array.dtype == np.float32 and rec.array.shape == (10000, 64)
    assert rec.subject is not None or rec.source["sha256"]
    assert len(rec.source["sha256"]) == 64 and rec.fingerprint == m["fingerprint"]
    assert m["preprocessing"]["steps"][1] == {"name": "resample", "sfreq": 80.0}
    assert [e["step"] for e in rec.meta["preprocessing"]] == ["bandpass", "resample"]
    assert m["splits"] == {
        "train": [
            {"recording": "S001R03", "start": 0, "stop": 10000},
            {"recording": "S001R04", "start": 0, "stop": 10000},
        ],
        "test": [{"recording": "S001R08", "start": 0, "stop": 10000}],
    }
    assert m["split_policy"]["by"] == "recording" and m["split_policy"]["window_length"] == 160
    scaler = RobustScaler.from_dict(m["scaler"])
    assert m["scaler"]["fitted_on"] == "train" and scaler.channels == rec.sensors.names
    train = np.concatenate([store[r].array for r in ("S001R03", "S001R04")]).astype(np.float64)
    np.testing.assert_allclose(scaler.center, np.median(train, axis=0), rtol=1e-6)
    assert (tmp_path / "out" / prep.RESOLVED_CONFIG).is_file()
    assert not (tmp_path / "out" / prep.STAGING).exists()


def test_second_run_skips_everything_and_touches_nothing(raw_dir, tmp_path):
    out = tmp_path / "out"
    prep.prepare(_config(raw_dir, out))
    before = _mtimes(out)
    calls = []
    original = prep._prepare_one
    prep_one = lambda *a: calls.append(a) or original(*a)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prep, "_prepare_one", prep_one)
        prep.prepare(_config(raw_dir, out))
    assert calls == [] and _mtimes(out) == before


def test_changed_pipeline_rewrites_every_recording(raw_dir, tmp_path):
    out = tmp_path / "out"
    first = prep.prepare(_config(raw_dir, out)).fingerprint
    steps = [dict(STEPS[0], h_freq=30.0), STEPS[1]]
    store = prep.prepare(_config(raw_dir, out, preprocessing=steps))
    assert store.fingerprint != first
    assert {r.fingerprint for r in PreparedStore.open(out).recordings} == {store.fingerprint}


def test_resume_after_a_crash_in_the_second_recording(raw_dir, tmp_path):
    out = tmp_path / "out"
    original = prep._prepare_one
    seen = []

    def crash_on_second(*args):
        seen.append(args[0].id)
        if len(seen) == 2:
            raise RuntimeError("simulated crash")
        return original(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prep, "_prepare_one", crash_on_second)
        with pytest.raises(RuntimeError, match="simulated crash"):
            prep.prepare(_config(raw_dir, out))
    with pytest.raises(RecordingError, match="incomplete.*simulated crash"):
        PreparedStore.open(out)
    partial = PreparedStore.open(out, allow_incomplete=True)
    assert [r.id for r in partial.recordings] == ["S001R03"]
    assert not list((out / "recordings").glob("S001R04*"))
    first_mtime = _array(out, "S001R03").stat().st_mtime_ns
    redone = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prep, "_prepare_one", lambda *a: redone.append(a[0].id) or original(*a))
        store = prep.prepare(_config(raw_dir, out))
    assert redone == ["S001R04", "S001R08"]
    assert _array(out, "S001R03").stat().st_mtime_ns == first_mtime
    assert [r.id for r in store.recordings] == RUNS and "scaler" in store.manifest


def test_two_jobs_give_byte_identical_arrays_and_manifest(raw_dir, tmp_path):
    one = prep.prepare(_config(raw_dir, tmp_path / "one", jobs=1))
    two = prep.prepare(_config(raw_dir, tmp_path / "two", jobs=2))
    for run in RUNS:
        a = _array(one.root, run).read_bytes()
        b = _array(two.root, run).read_bytes()
        assert a == b
    m1, m2 = (json.loads((s.root / "manifest.json").read_text()) for s in (one, two))
    for m in (m1, m2):
        m.pop("name")
    assert m1 == m2


def test_scaler_depends_on_train_data_only(raw_dir, sample_dir, tmp_path):
    out = tmp_path / "out"
    first = prep.prepare(_config(raw_dir, out))
    before, test_sha = first.manifest["scaler"], first["S001R08"].source["sha256"]
    shutil.copy(sample_dir / "eegbci_S001" / "S001R12.edf", raw_dir / "S001R08.edf")
    store = prep.prepare(_config(raw_dir, out))
    assert store["S001R08"].source["sha256"] != test_sha  # the test data did change
    assert store.manifest["scaler"] == before
    shutil.copy(sample_dir / "eegbci_S001" / "S001R12.edf", raw_dir / "S001R04.edf")
    assert prep.prepare(_config(raw_dir, out)).manifest["scaler"] != before


def test_non_finite_input_names_file_channel_and_sample(raw_dir, tmp_path, monkeypatch):
    real_read = prep.read_recording

    def with_nan(path, **kwargs):
        rec = real_read(path, **kwargs).load()
        rec.data[5, 1234] = np.nan
        return replace(rec)

    monkeypatch.setattr(prep, "read_recording", with_nan)
    with pytest.raises(RecordingError) as info:
        prep.prepare(_config(raw_dir, tmp_path / "out"))
    err = info.value
    assert err.path.endswith("S001R03.edf") and err.channel == "Fc4." and err.sample == 1234


def test_time_split_keeps_a_gap_of_one_window(raw_dir, tmp_path):
    splits = {
        "by": "time",
        "window": 2.0,
        "gap": 4.0,
        "fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
    }
    store = prep.prepare(_config(raw_dir, tmp_path / "out", splits=splits, scaler=None))
    segs = store.manifest["splits"]
    assert "scaler" not in store.manifest
    by_rec = sorted(
        (s["start"], s["stop"]) for k in segs for s in segs[k] if s["recording"] == "S001R03"
    )
    gaps = [b[0] - a[1] for a, b in zip(by_rec, by_rec[1:])]
    assert gaps == [320, 320] and store.manifest["split_policy"]["gap"] == 320


def test_config_problems_are_reported_together(raw_dir, tmp_path):
    bad = _config(
        raw_dir,
        tmp_path / "out",
        jobs=0,
        splits={"by": "subjct", "window": 2.0, "gap": 1.0},
        preprocessing=[{"name": "notch", "freqs": [60], "width": 2}],
    )
    with pytest.raises(ConfigError) as info:
        prep.prepare(bad)
    text = str(info.value)
    assert "splits.by: invalid value 'subjct'" in text and "did you mean 'subject'" in text
    assert "preprocessing[0].width: unknown key" in text and "jobs must be >= 1" not in text
    with pytest.raises(ConfigError, match="splits.assign: recording 'S001R99' is not in"):
        prep.prepare(
            _config(
                raw_dir,
                tmp_path / "o2",
                splits={
                    "by": "recording",
                    "assign": {"train": ["S001R03", "S001R04", "S001R99"], "test": ["S001R08"]},
                },
            )
        )
    with pytest.raises(RecordingError, match="no file matches"):
        prep.prepare(_config(raw_dir, tmp_path / "o3", inputs=[str(raw_dir / "*.fif")]))


UNFILTERED = {"lfp_human_m1"}


def test_shipped_prepare_configs_validate():
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "configs" / "prepare").glob("*.yaml")):
        cfg = prep.load_config(path)
        assert cfg.output, path
        # counts are stored as counted; every signal recipe filters, except the field potential
        # whose band powers (delta included) are the model's targets: kept as recorded
        assert cfg.preprocessing or cfg.scaler is None or path.stem in UNFILTERED, path


def test_each_source_is_hashed_once_and_the_manifest_saved_once_per_recording(
    raw_dir, tmp_path, monkeypatch
):
    import neurofm.data.store as store_module
    import neurofm.io.reader as reader

    hashed, saved = [], []
    real_hash, real_save = prep.sha256_file, store_module.write_json_atomic

    def hash_file(path):
        hashed.append(Path(path).name)
        return real_hash(path)

    def save(path, data):
        saved.append(Path(path))
        real_save(path, data)

    monkeypatch.setattr(prep, "sha256_file", hash_file)
    monkeypatch.setattr(reader, "sha256_file", hash_file)
    monkeypatch.setattr(store_module, "write_json_atomic", save)
    monkeypatch.setattr(prep, "write_json_atomic", save)
    store = prep.prepare(_config(raw_dir, tmp_path / "out"))
    assert sorted(hashed) == [f"{run}.edf" for run in RUNS]
    assert saved == [tmp_path / "out" / "manifest.json"] * (len(RUNS) + 1)
    assert store["S001R03"].source["sha256"] == real_hash(raw_dir / "S001R03.edf")


def test_store_writes_arrays_without_saving_the_manifest(tmp_path, sample_dir):
    from neurofm.io import read_recording

    rec = read_recording(sample_dir / "eegbci_S001" / "S001R03.edf", preload=True)
    store = PreparedStore.create(tmp_path / "s", save=False)
    assert not (tmp_path / "s" / "manifest.json").exists()
    stored = store.write("a", rec, fingerprint="f", save=False, chunk_samples=3000)
    assert not (tmp_path / "s" / "manifest.json").exists()
    assert [r["id"] for r in store.manifest["recordings"]] == ["a"]
    np.save(tmp_path / "ref.npy", np.ascontiguousarray(rec.data.astype(np.float32).T))
    assert stored.path.read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert not list((tmp_path / "s" / "recordings").glob(".*"))
    store.save_manifest()
    assert PreparedStore.open(tmp_path / "s")["a"].window(5, 3).shape == (64, 3)


def _array(root, rec_id):
    """The one array file of ``rec_id`` in the store at ``root``."""
    (path,) = (root / "recordings").glob(f"{rec_id}-*.npy")
    return path


def test_crash_while_re_preparing_never_pairs_an_old_entry_with_a_new_array(raw_dir, tmp_path):
    out = tmp_path / "out"
    old = prep.prepare(_config(raw_dir, out))
    old_entry = next(r for r in old.manifest["recordings"] if r["id"] == "S001R03")
    old_data = np.array(old["S001R03"].array)

    # Re-prepare with another pipeline and die right after the first array is moved into the
    # store, before any manifest naming it is saved.
    def die(*args, **kwargs):
        raise RuntimeError("killed before the manifest save")

    new_steps = [*STEPS, {"name": "lowpass", "h_freq": 20.0}]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prep, "_save", die)
        with pytest.raises(RuntimeError, match="killed"):
            prep.prepare(_config(raw_dir, out, preprocessing=new_steps))
    # The manifest on disk still names the old array, whose content is unchanged.
    after = PreparedStore.open(out, allow_incomplete=True)
    entry = next(r for r in after.manifest["recordings"] if r["id"] == "S001R03")
    assert entry == old_entry
    np.testing.assert_array_equal(np.array(after["S001R03"].array), old_data)
    # Rerunning the new pipeline finishes the job and removes the superseded arrays.
    store = prep.prepare(_config(raw_dir, out, preprocessing=new_steps))
    assert store["S001R03"].fingerprint != old_entry["fingerprint"]
    assert len(list((out / "recordings").glob("S001R03-*.npy"))) == 1
