"""Newcomer paths of ``neurofm prepare`` / ``neurofm inspect``: a plain folder of recordings
(companion files grouped with their header), mixed channel sets caught before anything is
written (with the policy to choose), one recording without a split config (hint: split in
time), and ``.npy`` arrays with reader options."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))

from io_writers import eeglab_with_fdt, tiny_raw, write_brainvision, write_exported  # noqa: E402

from neurofm.cli.main import main  # noqa: E402
from neurofm.data.store import PreparedStore  # noqa: E402

SFREQ = 250.0


def _folder(root: Path, names_b: list[str] | None = None) -> Path:
    """Three BrainVision triplets and one EEGLAB .set + .fdt, plus notes that are no recordings."""
    root.mkdir()
    rng = np.random.default_rng(0)
    names = [f"EEG{i:02d}" for i in range(4)]
    for k in range(3):
        data = rng.normal(0, 20e-6, (4, 2500))
        write_brainvision(root / f"rec{k}.vhdr", data, SFREQ, names if k else names_b or names)
    exported = write_exported(tiny_raw(n_times=2500, sfreq=SFREQ), root.parent / "x.set", "eeglab")
    eeglab_with_fdt(exported, root / "rec3.set")
    (root / "README.md").write_text("notes\n")
    (root / "participants.tsv").write_text("id\n1\n")
    return root


def _prepare(capsys, *argv: str) -> tuple[int, str]:
    code = main(["prepare", *argv])
    return code, capsys.readouterr().err


def test_folder_of_recordings_groups_companions(tmp_path, capsys):
    folder = _folder(tmp_path / "raw")
    out = tmp_path / "store"
    code, err = _prepare(capsys, "--inputs", str(folder), "--output", str(out))
    assert code == 0, err
    store = PreparedStore.open(out)
    assert [r.id for r in store.recordings] == ["rec0", "rec1", "rec2", "rec3"]
    assert main(["inspect", str(folder), "--json", "true"]) == 0
    report = json.loads(capsys.readouterr().out)
    sources = [
        Path(r["source"]["path"] if isinstance(r["source"], dict) else r["source"]).name
        for r in report["recordings"]
    ]
    assert sources == ["rec0.vhdr", "rec1.vhdr", "rec2.vhdr", "rec3.set"]


def test_companion_without_header_is_named(tmp_path, capsys):
    folder = _folder(tmp_path / "raw")
    (folder / "rec1.vhdr").unlink()
    code, err = _prepare(capsys, "--inputs", str(folder), "--output", str(tmp_path / "s"))
    assert code == 2 and "neurofm: error:" in err
    assert "rec1.eeg" in err or "rec1.vmrk" in err
    assert "rec1.vhdr" in err and not (tmp_path / "s").exists()


def test_mixed_channel_sets_are_caught_before_writing(tmp_path, capsys):
    folder = _folder(tmp_path / "raw", names_b=["EEG00", "EEG01", "EEG02", "Cz"])
    out = tmp_path / "store"
    code, err = _prepare(capsys, "--inputs", str(folder), "--output", str(out))
    assert code == 2 and "neurofm: error:" in err
    assert "recording 'rec1' has other channels than 'rec0'" in err
    assert "missing ['Cz'], extra ['EEG03']" in err
    assert "'intersect'" in err and "'keep'" in err
    assert not out.exists()
    code, err = _prepare(
        capsys, "--inputs", str(folder), "--output", str(out), "--channel_policy", "intersect"
    )
    assert code == 0, err
    store = PreparedStore.open(out)
    assert {tuple(r.sensors.names) for r in store.recordings} == {("EEG00", "EEG01", "EEG02")}
    # a new input narrows the common set: the stored recordings are prepared again, not kept
    data = np.random.default_rng(5).normal(0, 20e-6, (3, 2500))
    write_brainvision(folder / "rec4.vhdr", data, SFREQ, ["EEG00", "EEG01", "Fz"])
    code, err = _prepare(
        capsys, "--inputs", str(folder), "--output", str(out), "--channel_policy", "intersect"
    )
    assert code == 0, err
    store = PreparedStore.open(out)
    assert len(store.recordings) == 5
    assert {tuple(r.sensors.names) for r in store.recordings} == {("EEG00", "EEG01")}


def test_one_recording_gets_the_time_split_hint(tmp_path, capsys):
    folder = _folder(tmp_path / "raw")
    out = tmp_path / "one"
    code, err = _prepare(capsys, "--inputs", str(folder / "rec0.vhdr"), "--output", str(out))
    assert code == 2 and "neurofm: error:" in err
    assert "splits: {by: time}" in err and not out.exists()
    code, err = _prepare(
        capsys,
        "--inputs",
        str(folder / "rec0.vhdr"),
        "--output",
        str(out),
        "--splits.by",
        "time",
        "--splits.window",
        "0.5",
    )
    assert code == 0, err


def test_npy_arrays_with_reader_options(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for k in range(3):
        np.save(tmp_path / f"arr{k}.npy", rng.standard_normal((3, 1000)).astype(np.float32))
    out = tmp_path / "store"
    code, err = _prepare(capsys, "--inputs", str(tmp_path / "*.npy"), "--output", str(out))
    assert code == 2 and "ch_types" in err and not out.exists()
    code, err = _prepare(
        capsys,
        "--inputs",
        str(tmp_path / "*.npy"),
        "--output",
        str(out),
        "--reader",
        "{sfreq: 100, ch_types: eeg}",
    )
    assert code == 0, err
    store = PreparedStore.open(out)
    assert store.recordings[0].sfreq == 100.0 and set(store.recordings[0].sensors.types) == {"eeg"}
    code, err = _prepare(
        capsys, "--inputs", str(tmp_path / "*.npy"), "--output", str(out), "--reader", "{sfrq: 1}"
    )
    assert code == 2 and "reader.sfrq: unknown reader option" in err and "'sfreq'" in err
