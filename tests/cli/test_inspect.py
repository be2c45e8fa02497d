"""``neurofm inspect`` on the shipped sample, a FIF file, a prepared dataset and MEG-MASC."""

from __future__ import annotations

import json

from neurofm.cli.main import main


def _run_json(capsys, *args: str) -> dict:
    assert main(["inspect", *args, "--json", "true"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_shipped_edf_table_and_json(sample_dir, capsys):
    path = str(sample_dir / "eegbci_S001" / "S001R03.edf")
    assert main(["inspect", path]) == 0
    table = capsys.readouterr().out
    assert "eeg 64" in table and "160 Hz" in table and "T0 15, T1 8, T2 7" in table
    assert "subject 001" in table and "run 03" in table
    report = _run_json(capsys, path)
    (rec,) = report["recordings"]
    assert rec["channels_by_type"] == {"eeg": 64} and rec["n_times"] == 20000
    assert rec["duration_s"] == 125.0 and rec["events_by_description"] == {
        "T0": 15,
        "T1": 8,
        "T2": 7,
    }
    assert rec["bads"] == [] and rec["flat_channels"] == [] and rec["nonfinite_samples"] == {}


def test_inspect_fif(shared_data, capsys):
    path = str(shared_data / "meg_sample_audvis_1s" / "sample_audvis_trunc_raw_sss.fif")
    (rec,) = _run_json(capsys, path)["recordings"]
    assert rec["channels_by_type"] == {"grad": 204, "mag": 102, "stim": 9, "eeg": 60, "eog": 1}
    assert rec["n_times"] == 301 and round(rec["sfreq"], 3) == 300.307


def test_inspect_meg_masc_sidecars(shared_data, capsys):
    report = _run_json(capsys, str(shared_data / "meg_masc_events"))
    assert report["kind"] == "bids"
    task0 = next(r for r in report["recordings"] if r["task"] == "0")
    assert task0["signal_present"] is False and task0["sfreq"] == 1000.0
    assert task0["bids_channel_types"]["MEGGRADAXIAL"] == 208 and task0["n_chans"] == 256
    assert task0["events_by_description"]["word"] == 668
    assert task0["events_by_description"]["phoneme"] == 2462
    assert main(["inspect", str(shared_data / "meg_masc_events")]) == 0
    assert "signal     absent" in capsys.readouterr().out


def test_inspect_prepared_dataset(sample_dir, tmp_path, capsys):
    from neurofm.data.store import PreparedStore
    from neurofm.io import read_recording

    store = PreparedStore.create(tmp_path / "prepared", fingerprint="abc123")
    rec = read_recording(sample_dir / "eegbci_S001" / "S001R07.edf", preload=True)
    store.write("S001R07", rec, fingerprint="abc123")
    store.manifest["splits"] = {
        "train": [{"recording": "S001R07", "start": 0, "stop": 16000}],
        "val": [{"recording": "S001R07", "start": 16160, "stop": 20000}],
    }
    store.manifest["split_policy"] = {"by": "time"}
    store.save_manifest()
    report = _run_json(capsys, str(tmp_path / "prepared"))
    assert report["kind"] == "prepared" and report["fingerprint"] == "abc123"
    assert report["splits"]["train"] == {
        "n_segments": 1,
        "n_samples": 16000,
        "recordings": ["S001R07"],
    }
    (stored,) = report["recordings"]
    assert stored["channels_by_type"] == {"eeg": 64} and stored["n_times"] == 20000
    assert stored["events_by_description"] == {"T0": 15, "T1": 8, "T2": 7}
    assert main(["inspect", str(tmp_path / "prepared")]) == 0
    assert "split train" in capsys.readouterr().out


def test_inspect_bad_file_exits_2(tmp_path, capsys):
    (tmp_path / "empty.edf").write_bytes(b"")
    assert main(["inspect", str(tmp_path / "empty.edf")]) == 2
    assert "empty.edf" in capsys.readouterr().err
