"""Real MEG, spike, LFP and BIDS files shipped in the repository (``data/test``, tiny crops of
the originals), so that these readers are tested in every clone, not only beside the full
recordings (``tests/io/test_io_real_files.py``)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from neurofm.cli.main import main
from neurofm.io import read_recording, read_recordings
from neurofm.io.bids import read_bids_sidecars


def test_checksums_match(test_data):
    lines = (test_data / "SHA256SUMS").read_text().splitlines()
    assert len(lines) >= 8
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((test_data / name).read_bytes()).hexdigest() == digest, name
        assert (test_data / name).stat().st_size < 600_000, name  # keep the repository small


def test_meg_raw_sensors_units_and_geometry(test_data):
    rec = read_recording(test_data / "meg_evoked_as_raw.fif")
    assert rec.sensors.counts_by_type() == {"grad": 204, "mag": 102, "stim": 1, "eeg": 4, "eog": 1}
    assert rec.sfreq == pytest.approx(600.615, abs=1e-3) and rec.n_times == 421
    types = np.array(rec.sensors.types)
    meg = np.isin(types, ["mag", "grad"])
    assert np.isfinite(rec.sensors.positions[meg]).all()
    assert np.allclose(np.linalg.norm(rec.sensors.orientations[meg], axis=1), 1.0, atol=1e-3)
    assert np.isnan(rec.sensors.orientations[types == "eeg"]).all()
    units = dict(zip(rec.sensors.types, rec.sensors.units))
    assert (units["grad"], units["mag"], units["eeg"]) == ("T/m", "T", "V")
    mag = rec.get_data(picks=np.flatnonzero(types == "mag"))
    assert 1e-15 < np.abs(mag).max() < 1e-10  # tesla, not femtotesla


def test_meg_evoked_conditions(test_data):
    path = test_data / "meg_evoked_crop-ave.fif"
    recs = read_recordings(path)
    assert [r.meta["condition"] for r in recs] == [
        "Left Auditory",
        "Right Auditory",
        "Left visual",
        "Right visual",
    ]
    assert [r.meta["nave"] for r in recs] == [3, 6, 6, 6]
    for rec in recs:
        assert rec.n_chans == 376 and rec.n_times == 25
        assert rec.meta["tmin"] == pytest.approx(-0.01998, abs=1e-5)
        assert rec.events.description == [rec.meta["condition"]]
    one = read_recording(path, condition="Right visual")
    np.testing.assert_array_equal(one.data, recs[3].data)
    with pytest.raises(Exception, match="no condition 'Left nothing'"):
        read_recording(path, condition="Left nothing")


def test_inspect_meg_fif(test_data, capsys):
    assert main(["inspect", str(test_data / "meg_evoked_as_raw.fif"), "--json", "true"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)["recordings"]
    assert rec["channels_by_type"] == {"grad": 204, "mag": 102, "stim": 1, "eeg": 4, "eog": 1}
    assert rec["n_times"] == 421


def test_grasshopper_spike_times_and_stimulus(test_data):
    rec = read_recording(
        test_data / "grasshopper_spike_times_1s.txt", bin_size=0.001, time_unit="us"
    )
    times = rec.meta["spike_times"][0]
    assert times.size == 127 and rec.data.sum() == 127
    assert times[0] == pytest.approx(0.0067) and times[-1] == pytest.approx(0.9882)
    assert rec.sfreq == 1000.0 and rec.data[0, 6] == 1  # 6.7 ms falls in bin [6, 7) ms
    stim = read_recording(test_data / "grasshopper_stimulus_0.1s.txt", time_unit="us")
    assert stim.sfreq == 20000.0 and stim.n_times == 2000 and stim.n_chans == 1
    with pytest.raises(Exception, match="time_unit"):
        read_recording(test_data / "grasshopper_spike_times_1s.txt", bin_size=0.001)


def test_lfp_npy(test_data):
    path = test_data / "lfp_human_m1_1s.npy"
    rec = read_recording(path, sfreq=1000, ch_types="ecog")
    assert (rec.n_chans, rec.n_times, rec.sfreq, rec.duration) == (1, 1000, 1000.0, 1.0)
    with pytest.raises(Exception, match="sfreq"):
        read_recording(path, ch_types="ecog")


def test_meg_masc_bids_sidecars(test_data):
    task0 = read_bids_sidecars(test_data / "meg_masc_bids", subject="01", session="0", task="0")
    counts = task0.events.counts()
    assert (counts["word"], counts["phoneme"]) == (23, 76)
    assert task0.sfreq == 1000.0
    assert task0.bids_channel_types == {"MEGGRADAXIAL": 208, "MEGREFMAG": 16, "MISC": 32}
    words = [p for p, d in zip(task0.events.payload, task0.events.description) if d == "word"]
    assert words[0]["word"] == "Tara" and words[0]["story"] == "lw1"
