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
