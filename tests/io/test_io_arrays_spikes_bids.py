"""Array files, spike data (NWB units, spike times) and BIDS reading."""

from __future__ import annotations

import csv
from datetime import datetime, timezone

import numpy as np
import pytest

from neurofm.data.recording import Events
from neurofm.errors import RecordingError
from neurofm.io import (
    attach_events,
    read_bids,
    read_bids_events,
    read_bids_sidecars,
    read_recording,
    spikes_to_recording,
)


def test_next_band_npz_reads_as_its_signal(tmp_path):
    signal = np.random.default_rng(0).normal(size=(4, 500)).astype(np.float32)
    bands = np.array([(0.5, 4.0), (4.0, 8.0)], dtype=np.float32)
    path = tmp_path / "sample_001.npz"
    np.savez_compressed(
        path,
        signal=signal,
        cumulative_bands=np.stack([signal, signal]),
        bands=bands,
        sfreq=np.float32(100.0),
    )
    rec = read_recording(path, ch_types="eeg")
    assert rec.sfreq == 100.0 and rec.sensors.names == ["ch000", "ch001", "ch002", "ch003"]
    np.testing.assert_array_equal(rec.data, signal)
    assert rec.meta["bands"] == [[0.5, 4.0], [4.0, 8.0]]
    assert rec.meta["cumulative_bands"].shape == (2, 4, 500)
    with pytest.raises(RecordingError, match="describe its channels"):
        read_recording(path)
    np.savez(tmp_path / "nosfreq.npz", signal=signal)
    with pytest.raises(RecordingError, match="'sfreq'") as info:
        read_recording(tmp_path / "nosfreq.npz", ch_types="eeg")
    assert "nosfreq.npz" in str(info.value)


def test_npz_with_channel_description(tmp_path):
    path = tmp_path / "sub-07_task-rest_eeg.npz"
    np.savez(
        path,
        data=np.ones((2, 10)) * np.arange(10),
        sfreq=50.0,
        ch_names=np.array(["Cz", "EOG1"]),
        ch_types=np.array(["eeg", "eog"]),
    )
    rec = read_recording(path)
    assert rec.sensors.types == ["eeg", "eog"] and rec.subject == "07" and rec.task == "rest"
    with pytest.raises(RecordingError, match="sfreq=10"):
        read_recording(path, sfreq=10.0)


def test_npy_channel_count_must_match(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 20)))
    with pytest.raises(RecordingError, match="3 channels"):
        read_recording(tmp_path / "x.npy", sfreq=10.0, ch_names=["a", "b"], ch_types="eeg")
    with pytest.raises(RecordingError, match="does not apply"):
        read_recording(tmp_path / "x.npy", sfreq=10.0, ch_types="eeg", bin_size=0.1)


def test_spike_binning_edges_and_range():
    rec = spikes_to_recording(
        [np.array([0.0, 0.0099, 0.01, 0.035]), np.array([0.02])], bin_size=0.01
    )
    np.testing.assert_array_equal(rec.data, [[2, 1, 0, 1], [0, 0, 1, 0]])
    assert rec.sfreq == pytest.approx(100.0) and rec.sensors.types == ["spikes", "spikes"]
    with pytest.raises(RecordingError, match="outside"):
        spikes_to_recording([np.array([0.5])], bin_size=0.1, t_stop=0.3)


def test_nwb_units_table(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    nwb = NWBFile(
        session_description="units",
        identifier="u1",
        session_id="s3",
        session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc),
        subject=Subject(subject_id="m12"),
    )
    nwb.add_unit(spike_times=[0.01, 0.25, 0.26])
    nwb.add_unit(spike_times=[0.5])
    nwb.add_trial(start_time=0.1, stop_time=0.4)
    path = tmp_path / "units.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    rec = read_recording(path, bin_size=0.1)
    np.testing.assert_array_equal(rec.data, [[1, 0, 2, 0, 0, 0], [0, 0, 0, 0, 0, 1]])
    assert rec.sfreq == pytest.approx(10.0) and (rec.subject, rec.session) == ("m12", "s3")
    np.testing.assert_allclose(rec.meta["spike_times"][0], [0.01, 0.25, 0.26])
    assert rec.events.description == ["trial"] and rec.events.duration[0] == pytest.approx(0.3)
    with pytest.raises(RecordingError, match="bin_size"):
        read_recording(path)


def test_dict_like_trial_type_is_parsed(tmp_path):
    path = tmp_path / "events.tsv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["onset", "duration", "trial_type", "value"])
        writer.writerow([1.5, 0.3, "{'kind': 'word', 'word': 'the', 'story': 'lw1'}", 1])
        writer.writerow([1.5, 0.05, "{'kind': 'phoneme', 'phoneme': 'dh_B'}", 2])
        writer.writerow([2.0, "n/a", "sound", "n/a"])
    events = read_bids_events(path)
    assert events.description == ["word", "phoneme", "sound"]
    assert events.payload[0] == {"value": 1, "kind": "word", "word": "the", "story": "lw1"}
    assert events.payload[2] == {} and events.duration[2] == 0.0


def test_attach_meg_masc_events_to_a_signal(shared_data):
    root = shared_data / "meg_masc_events"
    sidecars = read_bids_sidecars(root, subject="01", session="0", task="0")
    n_times = int(round(sidecars.duration * sidecars.sfreq)) + 1
    from neurofm.data.recording import Recording

    signal = Recording(
        data=np.zeros((sidecars.sensors.n_chans, n_times), dtype=np.float32),
        sfreq=sidecars.sfreq,
        sensors=sidecars.sensors,
    )
    rec = attach_events(signal, sidecars.events)
    assert rec.events.counts()["word"] == 668
    short = Recording(data=np.zeros((1, 1000)), sfreq=1000.0, sensors=sidecars.sensors.pick([0]))
    with pytest.raises(RecordingError, match="outside the recording"):
        attach_events(short, sidecars.events)
    merged = attach_events(rec, Events([0.1], [0.0], ["start"]), replace_existing=False)
    assert merged.events.description[0] == "start" and len(merged.events) == 3135


def test_read_bids_written_by_mne_bids(sample_dir, tmp_path):
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    raw = mne.io.read_raw_edf(sample_dir / "eegbci_S001" / "S001R04.edf", verbose="error")
    root = tmp_path / "bids"
    bids_path = BIDSPath(subject="01", session="a", task="imagery", run="04", root=root)
    write_raw_bids(raw, bids_path, verbose=False, overwrite=True)
    rec = read_bids(root, subject="01", session="a", task="imagery", run="04")
    assert (rec.subject, rec.session, rec.task, rec.run) == ("01", "a", "imagery", "04")
    assert rec.n_chans == 64 and rec.n_times == 20000 and rec.sfreq == 160.0
    assert rec.events.counts() == {"T0": 15, "T1": 8, "T2": 7}
    assert all("sample" in p for p in rec.events.payload)
    with pytest.raises(RecordingError, match="no signal file"):
        read_bids(root, subject="01", session="a", task="rest")
