"""Lazy, preloaded and memmapped reads of the same file give identical data (STYLE rule 10)."""

from __future__ import annotations

import numpy as np
import pytest
from io_writers import tiny_raw, write_fif

from neurofm.io import LazySignal, read_recording

# EDF records of the shipped sample hold 160 samples (1 s): slices cross record boundaries
SLICES = [
    (slice(None), slice(0, 0)),  # empty
    (slice(None), slice(5, 6)),  # one sample
    (slice(None), slice(-1, None)),  # last sample
    (slice(None), slice(150, 330)),  # across two record boundaries
    (slice(None), slice(159, 161)),  # the two samples around a boundary
    (slice(2, 5), slice(319, 481)),
    ([7, 0, 7], slice(100, 200, 7)),  # repeated, unordered channels, stepped time
    (3, slice(0, 10)),
    (slice(None), 42),
    (-1, -1),
    (np.arange(64) % 2 == 0, slice(1000, 1100)),
    (Ellipsis, slice(19990, None)),
]


@pytest.fixture(scope="module")
def modes(sample_dir, tmp_path_factory):
    """The shipped EDF and a FIF, each read lazily, preloaded and memmapped."""
    fif = write_fif(
        tiny_raw(n_chans=64, n_times=20000, sfreq=160.0),
        tmp_path_factory.mktemp("fif") / "contract_raw.fif",
    )
    cache = tmp_path_factory.mktemp("cache")
    out = {}
    for name, path in (("edf", sample_dir / "eegbci_S001" / "S001R03.edf"), ("fif", fif)):
        out[name] = {
            mode: read_recording(path, preload=mode, cache_dir=cache)
            for mode in (False, True, "memmap")
        }
    return out


@pytest.mark.parametrize("fmt", ["edf", "fif"])
def test_modes_give_identical_data(modes, fmt):
    lazy, loaded, mapped = (modes[fmt][m] for m in (False, True, "memmap"))
    assert isinstance(lazy.data, LazySignal)
    assert isinstance(loaded.data, np.ndarray) and not isinstance(loaded.data, np.memmap)
    assert isinstance(mapped.data, np.memmap)
    assert lazy.data.shape == loaded.data.shape == mapped.data.shape == (64, 20000)
    for key in SLICES:
        expected = loaded.data[key]
        for other in (lazy.data[key], mapped.data[key]):
            assert other.shape == expected.shape, key
            np.testing.assert_array_equal(other, expected, err_msg=str(key))
    assert lazy.events.to_dict() == loaded.events.to_dict() == mapped.events.to_dict()
    assert lazy.sensors.to_dict() == mapped.sensors.to_dict()


def test_recording_get_data_matches_across_modes(modes):
    lazy, loaded = modes["edf"][False], modes["edf"][True]
    np.testing.assert_array_equal(
        lazy.get_data(159, 481, picks=[3, 1]), loaded.get_data(159, 481, picks=[3, 1])
    )
    np.testing.assert_array_equal(np.asarray(lazy.data), loaded.data)


def test_memmap_cache_is_reused(modes, sample_dir, tmp_path):
    path = sample_dir / "eegbci_S001" / "S001R04.edf"
    first = read_recording(path, preload="memmap", cache_dir=tmp_path)
    second = read_recording(path, preload="memmap", cache_dir=tmp_path)
    assert first.data.filename == second.data.filename
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert first.data.base.shape == (20000, 64)  # stored time-major


def test_lazy_index_errors(modes):
    lazy = modes["edf"][False].data
    with pytest.raises(IndexError):
        lazy[64, 0]
    with pytest.raises(IndexError):
        lazy[0, 20000]
    with pytest.raises(IndexError):
        lazy[0, 0, 0]
