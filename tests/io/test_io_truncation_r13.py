"""R13: truncated copies of every format whose header declares its length or frame layout, a
zero-filled tail, and complex / text / object arrays: the named error (or ``allow_truncated``
with a warning), never a silently shorter or zero-padded recording."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from io_writers import (
    cut,
    tiny_raw,
    write_bdf,
    write_brainvision,
    write_ctf_header,
    write_egi,
    write_fif,
    write_persyst,
)

from neurofm.errors import RecordingError
from neurofm.io import read_recording
from neurofm.io._sizes import ctf_truncation

FRACTIONS = [0.001, 0.05, 0.5]
QUIET = {"nan_policy": "ignore", "flat_policy": "ignore"}


def _cut_at(source, target, n_bytes):
    target.write_bytes(source.read_bytes()[:n_bytes])
    return target


def _raises(path, match="truncated", **kw):
    with pytest.raises(RecordingError, match=match) as info:
        read_recording(path, preload=True, **{**QUIET, **kw})
    assert str(path) in str(info.value)
    return str(info.value)


@pytest.fixture
def kit_file(shared_data):
    folder = shared_data / "meg_kit_1s"
    if not folder.is_dir():
        pytest.skip("the KIT recording meg_kit_1s is absent")
    return next(folder.glob("*.con"))


@pytest.fixture
def cnt_file(shared_data):
    path = shared_data / "eeg_cnt_short" / "scan41_short.cnt"
    if not path.is_file():
        pytest.skip("the CNT recording eeg_cnt_short is absent")
    return path


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_r13_kit_truncated_names_file(kit_file, tmp_path, fraction):
    message = _raises(cut(kit_file, tmp_path / kit_file.name, fraction))
    assert "the file ends at byte" in message


def test_r13_kit_cut_inside_raw_data(kit_file, tmp_path):
    message = _raises(_cut_at(kit_file, tmp_path / kit_file.name, 500_000))
    assert "raw data (448000 values of 2 bytes)" in message


def test_r13_kit_zero_filled_tail(kit_file, tmp_path):
    """Same size, the last 60% of the samples zeroed (as an interrupted copy leaves it)."""
    content = bytearray(kit_file.read_bytes())
    start, end = 62088, 62088 + 448_000 * 2  # raw data block (directory entry 9)
    zero_from = start + (end - start) * 2 // 5 // 448 * 448
    content[zero_from:end] = bytes(end - zero_from)
    bad = tmp_path / kit_file.name
    bad.write_bytes(bytes(content))
    assert "zero-filled tail" in _raises(bad, match="exactly 0 on every channel")
    rec = read_recording(bad, preload=True, allow_truncated=True, **QUIET)
    assert rec.n_times == 800
    assert np.any(rec.data[:, -1] != 0)


def test_r13_cnt_needs_data_format_and_says_so(cnt_file):
    message = _raises(cnt_file, match="data_format")
    assert "data_format='int16'" in message and "reader: {data_format: int16}" in message
    rec = read_recording(cnt_file, data_format="int16", **QUIET)
    assert (rec.n_chans, rec.n_times, rec.sfreq) == (128, 3070, 400.0)


@pytest.mark.parametrize("n_bytes", [10_500 + 128 * 2 * 1000, 796_420 + 50])
def test_r13_cnt_truncated(cnt_file, tmp_path, n_bytes):
    """Cut inside the samples (they end at the event table, byte 796420) and inside the table."""
    bad = _cut_at(cnt_file, tmp_path / cnt_file.name, n_bytes)
    _raises(bad, data_format="int16")


def test_r13_cnt_option_through_inspect(cnt_file, capsys):
    from neurofm.cli.main import main

    assert main(["inspect", str(cnt_file)]) == 2
    assert "data_format" in capsys.readouterr().err
    assert main(["inspect", str(cnt_file), "--data_format", "int16"]) == 0
    assert "3070" in capsys.readouterr().out


def test_r13_ctf_cut_at_trial_boundary(tmp_path):
    ds = write_ctf_header(tmp_path / "run.ds", n_samples=50, n_chans=3, n_trials=2)
    assert ctf_truncation(ds) is None
    meg4 = ds / "run.meg4"
    full = meg4.read_bytes()
    meg4.write_bytes(full[: 8 + 4 * 50 * 3])  # exactly one whole trial
    assert "announces 2 trials of 50 samples but the data files hold 1" in _raises(ds)
    meg4.write_bytes(full[: 8 + 4 * 50 * 3 + 100])  # inside the second trial
    assert "incomplete trial" in _raises(ds)


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_r13_persyst_truncated(tmp_path, fraction):
    rng = np.random.default_rng(0)
    lay = write_persyst(tmp_path / "rec.lay", rng.integers(-900, 900, (4, 400)), 100.0, [0.5, 3.9])
    assert read_recording(lay, **QUIET).n_times == 400
    dat = lay.with_suffix(".dat")
    cut(dat, dat, fraction)
    _raises(lay)


def test_r13_persyst_cut_at_frame_boundary_is_found_by_its_annotations(tmp_path):
    rng = np.random.default_rng(0)
    lay = write_persyst(tmp_path / "rec.lay", rng.integers(-900, 900, (4, 400)), 100.0, [0.5, 3.9])
    dat = lay.with_suffix(".dat")
    _cut_at(dat, dat, 200 * 4 * 2)
    assert "annotation lies at 3.9 s" in _raises(lay)


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_r13_egi_truncated(tmp_path, fraction):
    rng = np.random.default_rng(0)
    events = np.zeros(300)
    events[50] = 1
    path = write_egi(tmp_path / "rec.egi", rng.integers(-500, 500, (3, 300)), 100, events)
    assert read_recording(path, **QUIET).n_times == 300
    assert "announces 300 samples" in _raises(cut(path, tmp_path / "cut.egi", fraction))


def test_r13_brainvision_frame_boundary_with_marker_past_end(tmp_path):
    raw = tiny_raw(n_chans=3, n_times=2000)
    vhdr = write_brainvision(tmp_path / "bv.vhdr", raw.get_data(), 250.0, raw.ch_names)
    eeg = vhdr.with_suffix(".eeg")
    _cut_at(eeg, eeg, 80 * 12)  # 80 whole frames; the header states no sample count
    _raises(vhdr, match="outside data range")


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_r13_bdf_truncated(tmp_path, fraction):
    source = write_bdf(tiny_raw(n_chans=3, n_times=2500), tmp_path / "rec.bdf")
    assert "announces 10 data records" in _raises(cut(source, tmp_path / "cut.bdf", fraction))


def test_r13_fif_cut_at_every_buffer_boundary(shared_data, tmp_path):
    import mne

    source = shared_data / "meg_emptyroom_10s" / "141027_cropped_90Hz_raw.fif"
    if not source.is_file():
        pytest.skip("the FIF recording meg_emptyroom_10s is absent")
    raw = mne.io.read_raw_fif(source, verbose="error")
    ends = [e.pos + 16 + e.size for e in raw._raw_extras[0]["ent"] if e is not None]
    for n_bytes in ends[::3]:
        _raises(_cut_at(source, tmp_path / "cut_raw.fif", n_bytes), match="truncated")


def test_r13_edf_zero_filled_tail(sample_dir, tmp_path):
    """The last 10 of 125 one-second records zeroed; the final record's own padding is not."""
    source = sample_dir / "eegbci_S001" / "S001R03.edf"
    assert read_recording(source, **QUIET).n_times == 20000  # ends in 0.5 s of EDF padding
    content = bytearray(source.read_bytes())
    record = 64 * 160 * 2
    content[len(content) - 10 * record :] = bytes(10 * record)
    bad = tmp_path / "S001R03.edf"
    bad.write_bytes(bytes(content))
    assert "zero-filled tail" in _raises(bad, match="exactly 0")


def test_r13_fif_zero_filled_tail_allowed_with_warning(tmp_path, caplog):
    raw = tiny_raw(n_chans=3, n_times=1000)
    raw._data[:, 600:] = 0.0
    path = write_fif(raw, tmp_path / "zeros_raw.fif")
    _raises(path, match="the last 400 of 1000 samples")
    logger = logging.getLogger("neurofm")
    logger.addHandler(caplog.handler)
    try:
        rec = read_recording(path, preload=True, allow_truncated=True, **QUIET)
    finally:
        logger.removeHandler(caplog.handler)
    assert rec.n_times == 600
    assert "zero-filled tail" in caplog.text


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.ones((2, 50)) + 1j, "complex"),
        (np.array([["a", "b"], ["c", "d"]]), "text"),
        (np.array([[1, "b"]], dtype=object), "Python objects"),
    ],
)
@pytest.mark.parametrize("kind", ["npy", "npz"])
@pytest.mark.parametrize("preload", [False, True])
def test_r13_complex_and_non_numeric_arrays(tmp_path, array, match, kind, preload):
    path = tmp_path / f"bad.{kind}"
    if kind == "npy":
        np.save(path, array, allow_pickle=True)
    else:
        np.savez(path, signal=array, sfreq=100.0)
    with pytest.raises(RecordingError, match=match) as info:
        read_recording(path, sfreq=100.0, ch_types="eeg", preload=preload)
    assert str(path) in str(info.value)


def test_r13_kit_reads_whole(kit_file, tmp_path):
    rec = read_recording(shutil.copy(kit_file, tmp_path / kit_file.name), **QUIET)
    assert (rec.n_times, rec.sfreq) == (2000, 2000.0)


def test_r13_cnt_option_through_a_prepare_config(cnt_file, tmp_path):
    from neurofm.data.prepare import prepare

    config = {
        "inputs": [str(cnt_file)],
        "output": str(tmp_path / "store"),
        "splits": {"by": "time", "window": 1.0, "fractions": {"train": 0.8, "test": 0.2}},
        "scaler": None,
    }
    with pytest.raises(RecordingError, match="reader: {data_format: int16}"):
        prepare(config)
    store = prepare({**config, "reader": {"data_format": "int16"}})
    assert (store[0].n_chans, store[0].n_times) == (128, 3070)
