"""``neurofm demo --inputs``: the demo on the user's recordings, and the checks of those files."""

import json

import numpy as np
import pytest

from neurofm.cli.main import gather_values, main
from neurofm.errors import RecordingError
from neurofm.workflows.inputs import check_inputs


@pytest.fixture(scope="module")
def eegbci_run(shared_data):
    return shared_data / "eegbci_S001" / "S001R03.edf"


def _derived_fif(source, path, *, seconds=None, drop=()):
    """A FIF copy of a real EDF run, cropped to ``seconds`` and without the ``drop`` channels."""
    import mne

    raw = mne.io.read_raw_edf(source, preload=True, verbose="error")
    if seconds is not None:
        raw.crop(0, seconds, include_tmax=False)
    raw.drop_channels(list(drop))
    raw.save(path, verbose="error")
    return path


def test_demo_on_one_recording_splits_it_in_time(eegbci_run, tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        ["demo", "--inputs", str(eegbci_run), "--output", str(out)]
        + ["--max_steps", "2", "--seconds", "0.5", "--evaluation", "smoke"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "split in time" in printed and "bits per channel-sample" in printed

    summary = json.loads((out / "summary.json").read_text())
    data = summary["data"]
    assert data["inputs"] == [str(eegbci_run)]
    assert data["split"]["by"] == "time" and "S001R03" in data["split"]["text"]
    # 64 EEG channels at 160 Hz: 0.8 s windows are 128 samples, the demo model's max_seq_len
    assert (data["n_chans"], data["sfreq"], data["window_length"]) == (64, 160.0, 128)
    for name in ("model", "last_value", "ridge_var", "unigram", "control_mismatched_context"):
        row = summary["scores"][name]
        assert np.isfinite(row["bits"]) and row["interval"][0] <= row["bits"] <= row["interval"][1]
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    gap = manifest["split_policy"]["gap"]
    segments = sorted(
        (s for split in manifest["splits"].values() for s in split), key=lambda s: s["start"]
    )
    assert gap >= 2 * 128 and all(
        b["start"] - a["stop"] >= gap for a, b in zip(segments, segments[1:])
    )
    assert np.load(summary["generated"]["npy"]).shape[0] == 64


def test_mismatched_recordings_are_refused_naming_the_file(eegbci_run, shared_data, tmp_path):
    meg = shared_data / "meg_emptyroom_10s" / "141027_cropped_90Hz_raw.fif"
    with pytest.raises(RecordingError, match=r"141027_cropped_90Hz_raw\.fif.*sampling rate 90 Hz"):
        check_inputs([eegbci_run, meg])
    fewer = _derived_fif(eegbci_run, tmp_path / "fewer_raw.fif", drop=["Fc5.", "Fc3."])
    with pytest.raises(
        RecordingError, match=r"fewer_raw\.fif.*62 data channels instead of 64.*Fc5\."
    ):
        check_inputs([eegbci_run, fewer])


def test_too_short_and_unreadable_recordings_are_refused(eegbci_run, tmp_path, capsys):
    short = _derived_fif(eegbci_run, tmp_path / "short_raw.fif", seconds=10.0)
    with pytest.raises(RecordingError, match=r"short_raw\.fif.*10\.0 s is too short.*about 24 s"):
        check_inputs([short])
    junk = tmp_path / "junk.edf"
    junk.write_text("not an EDF file")
    code = main(["demo", "--inputs", str(eegbci_run), str(junk), "--output", str(tmp_path / "o")])
    assert code == 2
    assert "junk.edf" in capsys.readouterr().err


def test_inputs_take_several_values():
    argv = ["demo", "--inputs", "a.edf", "b dir/c.fif", "--max_steps", "3"]
    assert gather_values(argv) == [
        "demo",
        "--inputs",
        '["a.edf", "b dir/c.fif"]',
        "--max_steps",
        "3",
    ]
    assert gather_values(["demo", "--inputs", "[a.edf]"]) == ["demo", "--inputs", "[a.edf]"]
