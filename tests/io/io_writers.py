"""Tiny recordings written to disk in several formats, for the reader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_raw(n_chans: int = 4, n_times: int = 1000, sfreq: float = 250.0, seed: int = 0):
    """An MNE RawArray of EEG in volts (tens of microvolts) with two annotations."""
    import mne

    rng = np.random.default_rng(seed)
    info = mne.create_info([f"EEG{i:02d}" for i in range(n_chans)], sfreq, "eeg")
    raw = mne.io.RawArray(rng.normal(0, 20e-6, (n_chans, n_times)), info, verbose="error")
    raw.set_annotations(mne.Annotations([0.5, 2.0], [0.1, 0.0], ["left", "right"]))
    return raw


def write_edf(raw, path: Path) -> Path:
    import mne

    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def write_fif(raw, path: Path) -> Path:
    raw.save(path, overwrite=True, verbose="error")
    return path


def write_brainvision(path: Path, data: np.ndarray, sfreq: float, names: list[str]) -> Path:
    """A BrainVision triplet (``.vhdr``, ``.vmrk``, ``.eeg`` float32 multiplexed, microvolts)."""
    stem = path.with_suffix("")
    header = [
        "Brain Vision Data Exchange Header File Version 1.0",
        "",
        "[Common Infos]",
        "Codepage=UTF-8",
        f"DataFile={stem.name}.eeg",
        f"MarkerFile={stem.name}.vmrk",
        "DataFormat=BINARY",
        "DataOrientation=MULTIPLEXED",
        f"NumberOfChannels={len(names)}",
        f"SamplingInterval={1e6 / sfreq:g}",
        "",
        "[Binary Infos]",
        "BinaryFormat=IEEE_FLOAT_32",
        "",
        "[Channel Infos]",
    ] + [f"Ch{i + 1}={name},,1,µV" for i, name in enumerate(names)]
    markers = [
        "Brain Vision Data Exchange Marker File, Version 1.0",
        "",
        "[Common Infos]",
        "Codepage=UTF-8",
        f"DataFile={stem.name}.eeg",
        "",
        "[Marker Infos]",
        "Mk1=New Segment,,1,1,0",
        "Mk2=Stimulus,S  1,101,1,0",
    ]
    path.write_text("\n".join(header) + "\n", encoding="utf-8")
    stem.with_suffix(".vmrk").write_text("\n".join(markers) + "\n", encoding="utf-8")
    (data * 1e6).T.astype("<f4").tofile(stem.with_suffix(".eeg"))
    return path


def cut(source: Path, target: Path, fraction_removed: float) -> Path:
    """Copy ``source`` without its last ``fraction_removed`` of bytes."""
    content = source.read_bytes()
    target.write_bytes(content[: int(len(content) * (1 - fraction_removed))])
    return target


def write_bdf(raw, path: Path, physical_range_uv: float = 1000.0) -> Path:
    """A 24-bit BDF+ (one-second records, microvolts) with the raw's annotations, via edfio."""
    import edfio

    signals = [
        edfio.BdfSignal(
            row * 1e6,
            raw.info["sfreq"],
            label=name,
            physical_dimension="uV",
            physical_range=(-physical_range_uv, physical_range_uv),
        )
        for name, row in zip(raw.ch_names, raw.get_data())
    ]
    ann = raw.annotations
    annotations = [
        edfio.EdfAnnotation(onset, duration, text)
        for onset, duration, text in zip(ann.onset, ann.duration, ann.description)
    ]
    edfio.Bdf(signals, annotations=annotations, data_record_duration=1.0).write(path)
    return path


def write_exported(raw, path: Path, fmt: str) -> Path:
    """``mne.export.export_raw`` to ``fmt`` ("eeglab", "brainvision", "edf")."""
    import mne

    mne.export.export_raw(path, raw, fmt=fmt, overwrite=True, verbose="error")
    return path


def eeglab_with_fdt(source: Path, target: Path) -> Path:
    """Rewrite a ``.set`` with embedded data as ``.set`` + ``.fdt`` (float32, channels fastest).

    EEGLAB stores the name of the data file in the ``data`` field when the samples live in a
    separate ``.fdt`` beside the header.
    """
    import scipy.io

    fields = {
        k: v for k, v in scipy.io.loadmat(source, appendmat=False).items() if not k.startswith("__")
    }
    samples = np.asarray(fields["data"], dtype="<f4")  # (C, T) microvolts
    fdt = target.with_suffix(".fdt")
    fields["data"] = np.array([fdt.name])
    fields["datfile"] = np.array([fdt.name])
    scipy.io.savemat(target, fields, appendmat=False)
    samples.T.tofile(fdt)
    return target


def write_persyst(path: Path, data: np.ndarray, sfreq: float, comments: list[float]) -> Path:
    """A Persyst ``.lay`` + ``.dat`` pair (int16, channels interleaved); ``comments`` are onsets."""
    names = [f"C{i + 1}" for i in range(data.shape[0])]
    lines = [
        "[FileInfo]",
        f"File={path.with_suffix('.dat').name}",
        "FileType=Interleaved",
        f"SamplingRate={sfreq:g}",
        "HeaderLength=0",
        "Calibration=1",
        f"WaveformCount={data.shape[0]}",
        "DataType=0",
        "[ChannelMap]",
        *[f"{name}={i + 1}" for i, name in enumerate(names)],
        "[Patient]",
        "First=A",
        "Last=B",
        "Sex=Male",
        "Hand=Right",
        "BirthDate=01/01/1980",
        "TestDate=01/02/2020",
        "TestTime=10:00:00",
        "[Comments]",
        *[f"{onset:g},0,0,0,mark{i}" for i, onset in enumerate(comments)],
    ]
    path.write_text("\n".join(lines) + "\n")
    data.T.astype("<i2").tofile(path.with_suffix(".dat"))
    return path


def write_egi(path: Path, data: np.ndarray, sfreq: int, events: np.ndarray) -> Path:
    """An EGI simple binary file (unsegmented, int16): data (C, T), one event track (T,)."""
    import struct

    n_chans, n_times = data.shape
    header = struct.pack(
        ">i6hi5hih", 2, 2020, 1, 2, 10, 0, 0, 0, sfreq, n_chans, 0, 16, 1000, n_times, 1
    )
    frames = np.vstack([data, events[None]]).T.astype(">i2")
    path.write_bytes(header + b"stim" + frames.tobytes())
    return path


def write_ctf_header(ds: Path, *, n_samples: int, n_chans: int, n_trials: int) -> Path:
    """The size fields of a CTF ``.res4`` and a ``.meg4`` holding ``n_trials`` trials.

    Only the fields the size check reads are filled (the rest is zeros); MNE cannot open it.
    """
    import struct

    ds.mkdir()
    res4 = bytearray(2000)
    struct.pack_into(">i", res4, 1288, n_samples)
    struct.pack_into(">h", res4, 1292, n_chans)
    struct.pack_into(">h", res4, 1312, n_trials)
    stem = ds.name[:-3]
    (ds / f"{stem}.res4").write_bytes(bytes(res4))
    rng = np.random.default_rng(0)
    trials = rng.integers(-1000, 1000, n_trials * n_chans * n_samples).astype(">i4")
    (ds / f"{stem}.meg4").write_bytes(b"MEG41CP\x00" + trials.tobytes())
    return ds
