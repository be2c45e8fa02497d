"""The MEG-MASC-like generator (real onsets, word-evoked MEG, the unrelated twin) and the real
BIDS path end to end on a tree built from MEG-MASC's shared sidecars."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("mne_bids")

from neurofm.data.synthetic_masc import make_masc_like  # noqa: E402
from neurofm.data.text_segments import read_text_segments, split_segments  # noqa: E402
from neurofm.errors import RecordingError  # noqa: E402
from neurofm.io.reader import read_bids  # noqa: E402

MEG = "sub-01/ses-0/meg"


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _tree(tmp_path, events_root, **options):
    settings = dict(n_subjects=2, stories=["lw1"], sfreq=50.0, n_channels=12, snr=3.0, seed=0)
    settings.update(options)
    return make_masc_like(tmp_path, events_root=events_root, **settings)


def _epochs(recording, word: str) -> np.ndarray:
    """(n, C * T) responses 0-0.6 s after each onset of ``word``."""
    ev, sfreq = recording.events, recording.sfreq
    starts = [
        int(round(ev.onset[i] * sfreq))
        for i in range(len(ev))
        if ev.description[i] == "word" and ev.payload[i]["word"].lower() == word
    ]
    data = np.asarray(recording.data[:, :])
    length = int(0.6 * sfreq)
    return np.stack(
        [data[:, s : s + length].ravel() for s in starts if s + length <= data.shape[1]]
    )


def _word_accuracy(recording, words=("the", "and")) -> float:
    """Leave-one-out nearest-centroid accuracy telling two frequent words apart."""
    epochs = [_epochs(recording, w) for w in words]
    correct = total = 0
    for label, group in enumerate(epochs):
        for k in range(len(group)):
            centroids = [
                np.delete(g, k, axis=0).mean(0) if j == label else g.mean(0)
                for j, g in enumerate(epochs)
            ]
            distance = [np.sum((group[k] - c) ** 2) for c in centroids]
            correct += int(np.argmin(distance) == label)
            total += 1
    return correct / total


def test_generated_tree_keeps_the_real_onsets_and_carries_the_words(tmp_path, shared_data):
    events_root = shared_data / "meg_masc_events"
    related = _tree(tmp_path / "related", events_root)
    twin = _tree(tmp_path / "twin", events_root, related=False)
    prefix = f"{MEG}/sub-01_ses-0_task-0"
    for suffix in ("meg.fif", "events.tsv", "channels.tsv", "meg.json"):
        assert (related / f"{prefix}_{suffix}").is_file()
    assert (related / "sub-02" / "ses-0" / "sub-02_ses-0_scans.tsv").is_file()
    assert json.loads((related / "dataset_description.json").read_text())["BIDSVersion"]
    source = [r for r in _rows(events_root / f"{prefix}_events.tsv") if r["trial_type"] == "word"]
    written = [r for r in _rows(related / f"{prefix}_events.tsv") if r["trial_type"] == "word"]
    assert [(r["onset"], r["word"]) for r in written] == [(r["onset"], r["word"]) for r in source]
    assert written[0]["sample"] == str(round(float(written[0]["onset"]) * 50))
    channels = _rows(related / f"{prefix}_channels.tsv")
    assert [c["name"] for c in channels][:2] == ["MEG 001", "MEG 002"] and len(channels) == 12

    recording = read_bids(related, subject="01", session="0", task="0", preload=True)
    assert recording.n_chans == 12 and recording.sfreq == 50.0
    assert recording.sensors.counts_by_type() == {"mag": 12}
    assert recording.events.counts()["word"] == 668
    assert 50e-15 < float(np.std(recording.data)) < 1e-12  # tens to hundreds of fT
    twin_recording = read_bids(twin, subject="01", session="0", task="0", preload=True)
    assert _word_accuracy(recording) > 0.8
    assert _word_accuracy(twin_recording) < 0.7

    again = _tree(tmp_path / "again", events_root)
    same = read_bids(again, subject="01", session="0", task="0", preload=True)
    np.testing.assert_array_equal(same.data, recording.data)
    other = read_bids(related, subject="02", session="0", task="0", preload=True)
    assert not np.allclose(other.data, recording.data, rtol=0.1, atol=0)
    with pytest.raises(RecordingError, match="not empty"):
        _tree(tmp_path / "again", events_root)


def test_shortened_recordings_count_what_they_leave_out(tmp_path, shared_data):
    root = _tree(
        tmp_path,
        shared_data / "meg_masc_events",
        n_subjects=1,
        stories=None,
        n_channels=4,
        max_seconds=40.0,
    )
    summary = json.loads((root / "synthetic.json").read_text())
    assert summary["settings"]["stories"] == ["cable_spool_fort", "lw1"]
    first = summary["recordings"][0]
    assert first["duration_s"] == 40.0 and first["n_events_left_out"] > 0
    assert first["n_events"] + first["n_events_left_out"] == 3134
    segments = read_text_segments(root, window_seconds=2.0, drop_incomplete=True)
    assert {s.story for s in segments} == {"lw1", "cable_spool_fort"}


def test_the_cli_writes_the_twin(tmp_path, shared_data, capsys):
    from neurofm.cli.main import main

    code = main(
        [
            "synth-masc",
            str(tmp_path / "out"),
            str(shared_data / "meg_masc_events"),
            "--subjects",
            "1",
            "--channels",
            "4",
            "--sfreq",
            "20",
            "--max_seconds",
            "30",
            "--stories",
            "[lw1]",
            "--unrelated",
        ]
    )
    assert code == 0 and "unrelated twin" in capsys.readouterr().out
    settings = json.loads((tmp_path / "out" / "synthetic.json").read_text())["settings"]
    assert settings["related"] is False and settings["sfreq"] == 20.0


def test_real_bids_sidecars_with_a_written_signal_read_segment_and_split(tmp_path, shared_data):
    """MEG-MASC's own events, channels and meg.json beside a short FIF signal: neurofm's BIDS
    reader takes the types from channels.tsv and the word payloads from events.tsv."""
    import mne

    source = shared_data / "meg_masc_events"
    root = tmp_path / "bids"
    shutil.copytree(source / "sub-01", root / "sub-01")
    shutil.copyfile(source / "dataset_description.json", root / "dataset_description.json")
    channels = _rows(root / MEG / "sub-01_ses-0_task-0_channels.tsv")
    sfreq = 10.0
    rng = np.random.default_rng(0)
    for task in ("0", "1"):
        prefix = root / MEG / f"sub-01_ses-0_task-{task}"
        if task == "1":  # the shared tree has events only for task-1: reuse task-0's channels
            shutil.copyfile(
                root / MEG / "sub-01_ses-0_task-0_channels.tsv", f"{prefix}_channels.tsv"
            )
        onsets = [float(r["onset"]) + float(r["duration"]) for r in _rows(f"{prefix}_events.tsv")]
        n_times = int((max(onsets) + 2.0) * sfreq)
        info = mne.create_info([c["name"] for c in channels], sfreq, "mag")
        data = rng.normal(0, 1e-13, (len(channels), n_times))
        mne.io.RawArray(data, info, verbose="error").save(f"{prefix}_meg.fif", verbose="error")
    recording = read_bids(root, subject="01", session="0", task="0")
    assert recording.sensors.counts_by_type() == {"mag": 208, "misc": 48}
    assert recording.events.counts()["word"] == 668
    assert recording.events.payload[2]["story"] == "lw1"
    summary: dict = {}
    segments = read_text_segments(root, mode="sentences", max_seconds=8.0, pre=0.1)
    assert {s.story for s in segments} == {"lw1", "cable_spool_fort"}
    assert sum(len(s.words) for s in segments) == 668 + 1503
    assert segments[0].signal.shape[0] == 256 and not summary
    splits = split_segments(segments, by="story", val=0, test=1, seed=0)
    assert {s.story for s in splits["test"]}.isdisjoint({s.story for s in splits["train"]})
    assert len(splits["train"]) + len(splits["test"]) == len(segments)
