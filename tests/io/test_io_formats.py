"""Round trips through the vendor formats that can be written here, and dispatch of the rest.

Written from the shipped EEG (``S001R04.edf``, 64 EEG channels, 160 Hz, 125 s) and read back
with :func:`read_recording`: EEGLAB ``.set`` (``mne.export``, data embedded, and the same with a
separate ``.fdt``), BDF (24-bit, ``edfio``), EDF (``mne.export``), BrainVision (``mne.export``
through pybv) and a FIF with MEG channels cropped from the shared MEG sample.

CTF (``.ds`` folders), KIT (``.con``/``.sqd``) and BTi/4D (``c,rfDC``) have no writer in MNE or
elsewhere that runs offline, and their binary layouts are not published in enough detail to
write a valid file by hand; GDF, Persyst, Neuroscan CNT, EGI and SNIRF likewise. For those the
tests only check that the file is handed to MNE's reader for its format and that MNE's failure
on a fake file becomes a RecordingError naming the file.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from io_writers import (
    cut,
    eeglab_with_fdt,
    write_bdf,
    write_brainvision,
    write_exported,
    write_fif,
)

from neurofm.errors import RecordingError
from neurofm.io import read_recording

FRACTIONS = [0.001, 0.05, 0.5]
# a float32 sample keeps 24 significant bits: relative error below 2**-24
FLOAT32_RTOL = 2.0**-23


@pytest.fixture(scope="module")
def source(sample_dir):
    """The shipped EDF as an MNE raw, loaded."""
    import mne

    path = sample_dir / "eegbci_S001" / "S001R04.edf"
    return mne.io.read_raw_edf(path, preload=True, verbose="error")


@pytest.fixture(scope="module")
def written(tmp_path_factory, source):
    """The source written once per format."""
    folder = tmp_path_factory.mktemp("formats")
    out = {
        "set": write_exported(source, folder / "S001R04.set", "eeglab"),
        "bdf": write_bdf(source, folder / "S001R04.bdf"),
        "edf": write_exported(source, folder / "S001R04.edf", "edf"),
    }
    split = folder / "split"
    split.mkdir()
    out["fdt"] = eeglab_with_fdt(out["set"], split / "S001R04.set")
    return out


def _check_like_source(rec, source, fmt, atol):
    assert rec.source["format"] == fmt
    assert rec.sensors.names == source.ch_names
    assert rec.sensors.types == source.get_channel_types()
    assert rec.sfreq == source.info["sfreq"] and rec.n_times == source.n_times
    assert (rec.subject, rec.run) == ("001", "04")
    np.testing.assert_allclose(rec.get_data(), source.get_data(), rtol=0, atol=atol)


def _check_events(rec, source, prefix=""):
    ann = source.annotations
    assert rec.events.description == [prefix + d for d in ann.description]
    np.testing.assert_allclose(rec.events.onset, ann.onset, atol=0.5 / source.info["sfreq"])
    assert rec.events.counts() == {prefix + "T0": 15, prefix + "T1": 8, prefix + "T2": 7}


@pytest.mark.parametrize("key", ["set", "fdt"])
def test_eeglab_round_trip(written, source, key):
    peak = np.abs(source.get_data()).max()
    lazy = read_recording(written[key])
    _check_like_source(lazy, source, "eeglab", atol=peak * FLOAT32_RTOL)
    _check_events(lazy, source)
    np.testing.assert_allclose(lazy.events.duration, source.annotations.duration)
    loaded = read_recording(written[key], preload=True)
    np.testing.assert_array_equal(loaded.data, lazy.get_data())


@pytest.mark.parametrize("fraction", [*FRACTIONS, 0.99])
def test_truncated_set_raises(written, tmp_path, fraction):
    bad = cut(written["set"], tmp_path / "cut.set", fraction)
    with pytest.raises(RecordingError, match="truncated") as info:
        read_recording(bad)
    assert "cut.set" in str(info.value)
    # a MAT file cannot be read in part: allow_truncated changes nothing
    with pytest.raises(RecordingError, match="truncated"):
        read_recording(bad, allow_truncated=True)


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_truncated_fdt_raises_or_reads_the_complete_samples(written, tmp_path, fraction):
    folder = tmp_path / "short"
    folder.mkdir()
    header = shutil.copy(written["fdt"], folder / "S001R04.set")
    cut(written["fdt"].with_suffix(".fdt"), folder / "S001R04.fdt", fraction)
    with pytest.raises(RecordingError, match="holds .* truncated") as info:
        read_recording(header)
    assert "S001R04.set" in str(info.value) and "S001R04.fdt" in str(info.value)
    part = read_recording(header, allow_truncated=True, preload=True)
    n_complete = (folder / "S001R04.fdt").stat().st_size // (4 * 64)
    assert part.n_times == n_complete < 20000
    full = read_recording(written["fdt"], preload=True)
    np.testing.assert_array_equal(part.data, full.data[:, :n_complete])


def test_empty_and_corrupt_set_raise(written, tmp_path):
    empty = tmp_path / "empty.set"
    empty.write_bytes(b"")
    with pytest.raises(RecordingError, match="empty") as info:
        read_recording(empty)
    assert "empty.set" in str(info.value)
    content = bytearray(written["set"].read_bytes())
    content[128:136] = bytes(8)  # the tag of the first MAT element
    zeroed = tmp_path / "zeroed.set"
    zeroed.write_bytes(bytes(content))
    with pytest.raises(RecordingError, match="element at byte 128 has type 0") as info:
        read_recording(zeroed)
    assert "zeroed.set" in str(info.value)
    content = bytearray(written["set"].read_bytes())
    content[126:128] = b"XX"  # the endian mark of the MAT header
    endian = tmp_path / "endian.set"
    endian.write_bytes(bytes(content))
    with pytest.raises(RecordingError, match="endian mark") as info:
        read_recording(endian)
    assert "endian.set" in str(info.value)
    text = tmp_path / "text.set"
    text.write_text("EEG = pop_loadset();\n")
    with pytest.raises(RecordingError, match="mis-named or corrupt") as info:
        read_recording(text)
    assert "text.set" in str(info.value)


def test_bdf_round_trip_keeps_24_bits(written, source):
    step = 2000e-6 / (2**24 - 1)  # physical range +-1000 uV over the 24-bit digital range
    lazy = read_recording(written["bdf"])
    _check_like_source(lazy, source, "bdf", atol=step)
    _check_events(lazy, source)
    assert set(lazy.sensors.units) == {"V"}
    loaded = read_recording(written["bdf"], preload=True)
    np.testing.assert_array_equal(loaded.data, lazy.get_data())
    header = written["bdf"].read_bytes()[:256]
    assert header[:8] == b"\xffBIOSEMI" and header[192:197] == b"BDF+C"


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_truncated_bdf_raises_like_edf(written, tmp_path, fraction):
    bad = cut(written["bdf"], tmp_path / "cut.bdf", fraction)
    with pytest.raises(RecordingError, match="announces 125 data records") as info:
        read_recording(bad)
    assert "cut.bdf" in str(info.value)


def test_truncated_bdf_read_in_part_on_request(written, tmp_path):
    bad = cut(written["bdf"], tmp_path / "cut.bdf", 0.05)
    part = read_recording(bad, allow_truncated=True, preload=True)
    full = read_recording(written["bdf"], preload=True)
    assert part.n_times == 118 * 160  # whole one-second records only
    np.testing.assert_array_equal(part.data, full.data[:, : part.n_times])


def test_corrupt_bdf_header_names_the_field(written, tmp_path):
    content = bytearray(written["bdf"].read_bytes())
    content[244:252] = b"one     "
    bad = tmp_path / "header.bdf"
    bad.write_bytes(bytes(content))
    with pytest.raises(RecordingError, match="duration of a data record") as info:
        read_recording(bad)
    assert "header.bdf" in str(info.value)


def test_edf_export_round_trip(written, source):
    import edfio

    # the export rescales to the full 16-bit range: within half a digital step of the source
    signal = edfio.read_edf(written["edf"], lazy_load_data=True).signals[0]
    low, high = signal.physical_range
    digital_low, digital_high = signal.digital_range
    step = (high - low) / (digital_high - digital_low) * 1e-6  # uV -> V
    rec = read_recording(written["edf"], preload=True)
    _check_like_source(rec, source, "edf", atol=step / 2 + 1e-15)
    _check_events(rec, source)


def test_brainvision_export_matches_own_writer(written, source, tmp_path):
    pytest.importorskip("pybv", reason="BrainVision export needs pybv (the meg extra)")
    vhdr = write_exported(source, tmp_path / "S001R04.vhdr", "brainvision")
    peak = np.abs(source.get_data()).max()
    exported = read_recording(vhdr, preload=True)
    _check_like_source(exported, source, "brainvision", atol=peak * FLOAT32_RTOL)
    # MNE names BrainVision markers "<type>/<description>"; pybv writes annotations as comments
    _check_events(exported, source, prefix="Comment/")
    own_path = tmp_path / "own.vhdr"
    own = read_recording(
        write_brainvision(own_path, source.get_data(), 160.0, source.ch_names), preload=True
    )
    np.testing.assert_allclose(own.data, exported.data, rtol=0, atol=peak * FLOAT32_RTOL)
    assert own.sensors.names == exported.sensors.names and own.sfreq == exported.sfreq
    folder = tmp_path / "cut"
    folder.mkdir()
    for suffix in (".vhdr", ".vmrk", ".eeg"):
        shutil.copy(vhdr.with_suffix(suffix), folder)
    data = folder / "S001R04.eeg"
    data.write_bytes(data.read_bytes()[:-1000])
    with pytest.raises(RecordingError, match="truncated") as info:
        read_recording(folder / "S001R04.vhdr")
    assert "S001R04.vhdr" in str(info.value)


def test_fif_with_meg_channels_round_trip(test_data, tmp_path):
    import mne

    path = test_data / "meg_evoked_as_raw.fif"
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    raw.pick(["meg", "stim"]).crop(tmax=0.5)
    raw.set_annotations(mne.Annotations([0.1], [0.05], ["tone"]))  # 0.1 s after the first sample
    saved = write_fif(raw, tmp_path / "meg_raw.fif")
    rec = read_recording(saved, preload=True)
    assert rec.sensors.counts_by_type() == {"grad": 204, "mag": 102, "stim": 1}
    assert rec.sensors.names == raw.ch_names and rec.n_times == raw.n_times
    assert rec.first_time == pytest.approx(raw.first_time)
    np.testing.assert_array_equal(rec.data, raw.get_data())
    meg = np.isin(rec.sensors.types, ["mag", "grad"])
    locs = np.array([ch["loc"] for ch in raw.info["chs"]])
    np.testing.assert_array_equal(rec.sensors.positions[meg], locs[meg, :3])
    np.testing.assert_array_equal(rec.sensors.orientations[meg], locs[meg, 9:12])
    tone = rec.events.description.index("tone")
    assert rec.events.onset[tone] == pytest.approx(0.1, abs=1 / rec.sfreq)


def _fake(tmp_path, kind):
    """A fake file (or folder) that only its name marks as ``kind``."""
    if kind == "ctf":
        path = tmp_path / "run01.ds"
        path.mkdir()
        (path / "run01.meg4").write_bytes(b"MEG41CP" + bytes(100))
    elif kind in ("con", "sqd"):
        path = tmp_path / f"run01.{kind}"
        path.write_bytes(bytes(64))
    elif kind in ("bti-folder", "bti-file"):
        folder = tmp_path / "4D"
        folder.mkdir()
        (folder / "c,rfDC").write_bytes(bytes(64))
        (folder / "config").write_bytes(bytes(64))
        path = folder if kind == "bti-folder" else folder / "c,rfDC"
    else:
        path = tmp_path / "run01.gdf"
        path.write_bytes(b"GDF 2.20" + bytes(300))
    return path


@pytest.mark.parametrize(
    ("kind", "fmt", "reader"),
    [
        ("ctf", "ctf", "read_raw_ctf"),
        ("con", "kit", "read_raw_kit"),
        ("sqd", "kit", "read_raw_kit"),
        ("bti-folder", "bti", "read_raw_bti"),
        ("bti-file", "bti", "read_raw_bti"),
        ("gdf", "gdf", "read_raw_gdf"),
    ],
)
def test_unwritable_formats_go_to_mne(tmp_path, monkeypatch, kind, fmt, reader):
    import mne

    path = _fake(tmp_path, kind)
    called = []
    original = getattr(mne.io, reader)

    def spy(fname, *args, **kwargs):
        called.append(str(fname))
        return original(fname, *args, **kwargs)

    monkeypatch.setattr(mne.io, reader, spy)
    with pytest.raises(RecordingError, match=f"cannot read as {fmt}: ") as info:
        read_recording(path)
    assert str(path) in str(info.value)
    assert called and called[0].startswith(str(path))
