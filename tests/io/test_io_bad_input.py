"""Bad files (R3) and bad samples (R4): one error type naming the file and the problem."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from io_writers import cut, tiny_raw, write_brainvision, write_edf, write_fif

from neurofm.data.recording import Recording
from neurofm.errors import RecordingError
from neurofm.io import check_finite, read_recording, validate_recording
from neurofm.types import SensorInfo

FRACTIONS = [0.001, 0.05, 0.5]


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample_dir):
    """One good file per format: the shipped EDF, a FIF, a BrainVision triplet, npy, npz."""
    folder = tmp_path_factory.mktemp("good")
    raw = tiny_raw(n_chans=3, n_times=2000)
    out = {
        "edf": shutil.copy(sample_dir / "eegbci_S001" / "S001R03.edf", folder / "S001R03.edf"),
        "fif": write_fif(raw, folder / "tiny_raw.fif"),
        "vhdr": write_brainvision(folder / "tiny.vhdr", raw.get_data(), 250.0, raw.ch_names),
    }
    np.save(folder / "tiny.npy", raw.get_data())
    np.savez(
        folder / "tiny.npz",
        signal=raw.get_data(),
        sfreq=250.0,
        ch_names=np.array(raw.ch_names),
        ch_types=np.array(["eeg"] * 3),
    )
    out["npy"], out["npz"] = folder / "tiny.npy", folder / "tiny.npz"
    return out


def _read(path, **kw):
    if path.suffix in (".npy",):
        kw.update(sfreq=250.0, ch_types="eeg")
    return read_recording(path, preload=True, **kw)


@pytest.mark.parametrize("fmt", ["edf", "fif", "npy", "npz"])
@pytest.mark.parametrize("fraction", FRACTIONS)
def test_truncated_files_raise(files, tmp_path, fmt, fraction):
    source = files[fmt]
    bad = cut(source, tmp_path / f"cut_{source.name}", fraction)
    with pytest.raises(RecordingError) as info:
        _read(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_truncated_brainvision_raises(files, tmp_path, fraction):
    folder = tmp_path / "bv"
    folder.mkdir()
    for suffix in (".vhdr", ".vmrk", ".eeg"):
        shutil.copy(files["vhdr"].with_suffix(suffix), folder)
    data = folder / "tiny.eeg"
    content = data.read_bytes()
    # cut inside a sample frame, as a copy interrupted at an arbitrary byte is
    data.write_bytes(content[: int(len(content) * (1 - fraction)) // 12 * 12 - 2])
    with pytest.raises(RecordingError, match="truncated") as info:
        _read(folder / "tiny.vhdr")
    assert "tiny.vhdr" in str(info.value)


def test_truncated_edf_is_detected_and_allowed_on_request(files, tmp_path, caplog):
    bad = cut(files["edf"], tmp_path / "S001R03.edf", 0.05)
    with pytest.raises(RecordingError, match="announces 125 data records"):
        read_recording(bad)
    logger = logging.getLogger("neurofm")
    logger.addHandler(caplog.handler)
    try:
        rec = read_recording(bad, allow_truncated=True, nan_policy="ignore")
    finally:
        logger.removeHandler(caplog.handler)
    assert rec.n_times == 118 * 160  # the complete records only
    assert "allow_truncated" in caplog.text and "S001R03.edf" in caplog.text
    full = read_recording(files["edf"], preload=True)
    np.testing.assert_array_equal(rec.get_data(), full.data[:, : rec.n_times])


def test_corrupt_edf_header_names_the_field(files, tmp_path):
    content = bytearray(files["edf"].read_bytes())
    content[236:244] = b"12x4    "
    bad = tmp_path / "header.edf"
    bad.write_bytes(bytes(content))
    with pytest.raises(RecordingError, match="number of data records") as info:
        read_recording(bad)
    assert "header.edf" in str(info.value)


def test_corrupt_fif_header(files, tmp_path):
    content = bytearray(files["fif"].read_bytes())
    content[200:400] = bytes(200)
    bad = tmp_path / "header_raw.fif"
    bad.write_bytes(bytes(content))
    with pytest.raises(RecordingError, match="header_raw.fif"):
        _read(bad)


def test_corrupt_brainvision_header(files, tmp_path):
    folder = tmp_path / "bvh"
    folder.mkdir()
    for suffix in (".vhdr", ".vmrk", ".eeg"):
        shutil.copy(files["vhdr"].with_suffix(suffix), folder)
    header = folder / "tiny.vhdr"
    header.write_text(
        header.read_text(encoding="utf-8").replace("SamplingInterval=4000", "SamplingInterval=abc")
    )
    with pytest.raises(RecordingError, match="tiny.vhdr"):
        _read(header)


@pytest.mark.parametrize(
    "name",
    [
        "empty.edf",
        "empty.bdf",
        "empty_raw.fif",
        "empty.vhdr",
        "empty.npy",
        "empty.npz",
        "empty.mat",
        "empty.nwb",
    ],
)
def test_empty_files_raise(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(RecordingError, match="empty") as info:
        read_recording(path)
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("edf", "x_raw.fif"),
        ("fif", "x.edf"),
        ("npy", "x.edf"),
        ("edf", "x.npy"),
        ("fif", "x.vhdr"),
        ("edf", "x.nwb"),
    ],
)
def test_misnamed_files_raise(files, tmp_path, source, name):
    path = shutil.copy(files[source], tmp_path / name)
    with pytest.raises(RecordingError, match="mis-named") as info:
        _read(path)
    assert name in str(info.value)


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "x.xyz").write_bytes(b"abc")
    with pytest.raises(RecordingError, match="unknown file extension"):
        read_recording(tmp_path / "x.xyz")
    with pytest.raises(RecordingError, match="no such file"):
        read_recording(tmp_path / "absent.edf")


def _recording(data: np.ndarray, types: list[str] | None = None) -> Recording:
    names = [f"C{i}" for i in range(data.shape[0])]
    return Recording(
        data=data,
        sfreq=100.0,
        source={"path": "mem.npy"},
        sensors=SensorInfo(names=names, types=types or ["eeg"] * len(names)),
    )


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_one_nonfinite_sample_is_named(value):
    data = np.random.default_rng(0).normal(size=(3, 500))
    data[1, 321] = value
    with pytest.raises(RecordingError) as info:
        check_finite(_recording(data), chunk_samples=64)
    err = info.value
    assert (err.path, err.channel, err.sample) == ("mem.npy", "C1", 321)
    assert "mem.npy" in str(err) and "'C1'" in str(err) and "sample 321" in str(err)


def test_all_nan_channel_is_named():
    data = np.random.default_rng(0).normal(size=(3, 200))
    data[2] = np.nan
    with pytest.raises(RecordingError, match="entirely non-finite") as info:
        validate_recording(_recording(data), chunk_samples=50)
    assert info.value.channel == "C2"


def test_mask_policy_records_runs_and_reads_zero():
    data = np.random.default_rng(0).normal(size=(2, 300))
    data[0, 60:140] = np.nan  # spans chunk borders at 64 and 128
    data[1, 299] = np.inf
    rec = validate_recording(_recording(data), nan_policy="mask", chunk_samples=64)
    assert rec.meta["nonfinite_intervals"] == {"C0": [[60, 140]], "C1": [[299, 300]]}
    assert np.isfinite(rec.data).all() and rec.data[0, 100] == 0.0
    assert np.isnan(data[0, 100])  # the caller's array is untouched


def test_flat_channel_is_reported_never_dropped(caplog):
    data = np.random.default_rng(0).normal(size=(3, 200))
    data[1] = 4e-6
    logger = logging.getLogger("neurofm")
    logger.addHandler(caplog.handler)
    try:
        rec = validate_recording(_recording(data))
    finally:
        logger.removeHandler(caplog.handler)
    assert rec.meta["flat_channels"] == ["C1"] and rec.n_chans == 3
    assert "flat" in caplog.text and "C1" in caplog.text
    with pytest.raises(RecordingError, match="flat") as info:
        validate_recording(_recording(data), flat_policy="raise")
    assert info.value.channel == "C1"
    stim = validate_recording(_recording(data, ["eeg", "stim", "eeg"]), flat_policy="raise")
    assert stim.meta["flat_channels"] == []


def test_nan_in_a_fif_file_is_named_with_lazy_reads(tmp_path):
    raw = tiny_raw(n_chans=3, n_times=3000)
    raw._data[2, 2500] = np.nan
    path = write_fif(raw, tmp_path / "nan_raw.fif")
    with pytest.raises(RecordingError) as info:
        read_recording(path)
    assert (info.value.channel, info.value.sample) == ("EEG02", 2500)
    assert "nan_raw.fif" in str(info.value)
    masked = read_recording(path, nan_policy="mask")
    assert masked.meta["nonfinite_intervals"] == {"EEG02": [[2500, 2501]]}
    assert masked.data[2, 2500] == 0.0 and np.isfinite(masked.data[:, :]).all()


def test_edf_written_by_mne_export_round_trips(tmp_path):
    raw = tiny_raw(n_chans=2, n_times=750)
    rec = read_recording(write_edf(raw, tmp_path / "tiny.edf"), preload=True)
    assert rec.n_times == 750 and rec.sfreq == 250.0
    assert rec.events.description == ["left", "right"]
    np.testing.assert_allclose(rec.data, raw.get_data(), atol=1e-8)
