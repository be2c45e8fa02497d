"""Every recording in the shared data folder read with its numbers checked."""

from __future__ import annotations

import numpy as np
import pytest

from neurofm.io import read_bids_sidecars, read_recording, read_recordings

# (T1, T2) counts per run; T0 (rest) is 15 in every run
EEGBCI_T1_T2 = {
    "03": (8, 7),
    "04": (8, 7),
    "05": (8, 7),
    "06": (7, 8),
    "07": (8, 7),
    "08": (8, 7),
    "09": (8, 7),
    "10": (7, 8),
    "11": (7, 8),
    "12": (7, 8),
    "13": (7, 8),
    "14": (7, 8),
}


def test_eegbci_runs(shared_data):
    folder = shared_data / "eegbci_S001"
    sums = dict(
        line.split()[::-1]
        for line in (folder / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    for run, (n_t1, n_t2) in EEGBCI_T1_T2.items():
        rec = read_recording(folder / f"S001R{run}.edf")
        assert rec.sensors.counts_by_type() == {"eeg": 64}
        assert rec.sfreq == 160.0 and rec.n_times == 20000 and rec.duration == 125.0
        assert rec.events.counts() == {"T0": 15, "T1": n_t1, "T2": n_t2}
        assert (rec.subject, rec.run) == ("001", run)
        assert rec.source["sha256"] == sums[f"S001R{run}.edf"]
        assert rec.source["format"] == "edf"
        assert set(rec.sensors.units) == {"V"}
        assert rec.events.onset[0] == 0.0 and rec.events.onset[-1] < 125.0


def test_meg_sample_audvis(shared_data):
    rec = read_recording(shared_data / "meg_sample_audvis_1s" / "sample_audvis_trunc_raw_sss.fif")
    assert rec.sensors.counts_by_type() == {"grad": 204, "mag": 102, "stim": 9, "eeg": 60, "eog": 1}
    assert rec.sfreq == pytest.approx(300.3075, abs=1e-4)
    assert rec.n_times == 301 and rec.duration == pytest.approx(1.00231, abs=1e-5)
    assert rec.first_time == pytest.approx(12900 / rec.sfreq)
    assert len(rec.events) == 0
    types = np.array(rec.sensors.types)
    meg = np.isin(types, ["mag", "grad"])
    assert np.isfinite(rec.sensors.positions[meg]).all()
    normals = np.linalg.norm(rec.sensors.orientations[meg], axis=1)
    assert np.allclose(normals, 1.0, atol=1e-3)
    assert np.isnan(rec.sensors.orientations[types == "eeg"]).all()
    units = dict(zip(rec.sensors.types, rec.sensors.units))
    assert (units["grad"], units["mag"], units["eeg"]) == ("T/m", "T", "V")
    mag = rec.get_data(picks=np.flatnonzero(types == "mag"))
    assert 1e-14 < np.abs(mag).max() < 1e-10  # tesla, not femtotesla


def test_meg_sample_evoked(shared_data):
    path = shared_data / "meg_sample_evoked" / "test-ave.fif.gz"
    recs = read_recordings(path)
    assert [r.meta["condition"] for r in recs] == [
        "Left Auditory",
        "Right Auditory",
        "Left visual",
        "Right visual",
    ]
    assert [r.meta["nave"] for r in recs] == [3, 6, 6, 6]
    for rec in recs:
        assert rec.n_chans == 376 and rec.n_times == 421
        assert rec.sfreq == pytest.approx(600.615, abs=1e-3)
        assert rec.meta["tmin"] == pytest.approx(-0.19980, abs=1e-5)
        assert rec.events.description == [rec.meta["condition"]]
        assert rec.events.onset[0] == pytest.approx(0.19980, abs=1e-5)
    one = read_recording(path, condition="Right visual")
    np.testing.assert_array_equal(one.data, recs[3].data)
    with pytest.raises(Exception, match="no condition 'Left nothing'"):
        read_recording(path, condition="Left nothing")


def test_meg_emptyroom(shared_data):
    rec = read_recording(
        shared_data / "meg_emptyroom_10s" / "141027_cropped_90Hz_raw.fif", preload=True
    )
    assert rec.sensors.counts_by_type() == {"grad": 204, "mag": 102}
    assert rec.sfreq == 90.0 and rec.n_times == 900 and rec.duration == 10.0
    assert rec.first_time == 25.0
    assert isinstance(rec.data, np.ndarray) and np.isfinite(rec.data).all()


def test_monkey_reach_binned_counts(shared_data):
    folder = shared_data / "spikes_monkey_reach"
    train, test = read_recordings(folder / "chewie_demo.mat", bin_size=0.05)
    assert (train.meta["part"], test.meta["part"]) == ("tr", "te")
    assert train.sensors.counts_by_type() == {"spikes": 71, "misc": 2} and test.n_chans == 73
    assert train.sensors.names[-2:] == ["velocity_x", "velocity_y"]
    assert (train.data[-2:].T == train.meta["velocity"]).all()  # the behaviour as channels
    assert (train.n_times, test.n_times) == (1200, 1818)
    assert train.sfreq == 20.0 and set(train.sensors.units[:71]) == {"count"}
    assert train.data[:71].max() == 12 and test.data[:71].max() == 13
    assert train.meta["velocity"].shape == (1200, 2) and train.meta["target"].shape == (1200,)
    starts = (train.events.onset / 0.05).round().astype(int)
    assert [p["target"] for p in train.events.payload] == train.meta["target"][starts].tolist()
    mihi = read_recording(folder / "mihi_demo.mat", bin_size=0.05, part="test")
    assert (mihi.n_chans, mihi.n_times) == (189, 803)  # 187 units + 2 velocity channels
    assert set(mihi.sensors.units[:187]) == {"Hz"}  # firing rates, not counts
    with pytest.raises(Exception, match="bin_size"):
        read_recordings(folder / "chewie_demo.mat")
    with pytest.raises(Exception, match=r"holds 2 recordings \['tr', 'te'\]"):
        read_recording(folder / "chewie_demo.mat", bin_size=0.05)


def test_grasshopper_spike_times_and_stimulus(shared_data):
    folder = shared_data / "spikes_grasshopper"
    rec = read_recording(folder / "grasshopper_spike_times1.txt", bin_size=0.001, time_unit="us")
    times = rec.meta["spike_times"][0]
    assert times.size == 929 and rec.data.sum() == 929
    assert times[0] == pytest.approx(0.0067) and times[-1] == pytest.approx(9.9993)
    assert rec.sfreq == 1000.0 and rec.n_times == 10000
    assert rec.data[0, 6] == 1  # 6.7 ms falls in bin [6, 7) ms
    stim = read_recording(folder / "grasshopper_stimulus1.txt", time_unit="us")
    assert stim.sfreq == 20000.0 and stim.n_times == 200000 and stim.n_chans == 1
    with pytest.raises(Exception, match="time_unit"):
        read_recording(folder / "grasshopper_spike_times1.txt", bin_size=0.001)


def test_lfp_npy(shared_data):
    path = shared_data / "lfp_human_m1" / "sample_data_1.npy"
    rec = read_recording(path, sfreq=1000, ch_types="ecog")
    assert (rec.n_chans, rec.n_times, rec.sfreq, rec.duration) == (1, 10000, 1000.0, 10.0)
    assert isinstance(rec.data, np.memmap)
    with pytest.raises(Exception, match="sfreq"):
        read_recording(path, ch_types="ecog")


def test_meg_masc_sidecars(shared_data):
    root = shared_data / "meg_masc_events"
    task0 = read_bids_sidecars(root, subject="01", session="0", task="0")
    counts = task0.events.counts()
    assert (counts["word"], counts["phoneme"]) == (668, 2462)
    assert task0.sfreq == 1000.0 and task0.duration == pytest.approx(396.0, abs=0.01)
    assert task0.bids_channel_types == {"MEGGRADAXIAL": 208, "MEGREFMAG": 16, "MISC": 32}
    assert task0.sensors.counts_by_type() == {"mag": 208, "misc": 48}
    words = [p for p, d in zip(task0.events.payload, task0.events.description) if d == "word"]
    assert words[0]["word"] == "Tara" and words[0]["story"] == "lw1"
    assert {p["kind"] for p in task0.events.payload} == {"sound", "word", "phoneme"}
    task1 = read_bids_sidecars(root, subject="01", session="0", task="1")
    assert task1.events.counts()["word"] == 1503 and task1.sensors is None
