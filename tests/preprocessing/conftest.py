"""Fixtures: synthetic recordings with known content and one real run of the shipped sample."""

from __future__ import annotations

import pytest

from neurofm.data.recording import Recording


@pytest.fixture(scope="module")
def real_run(sample_dir) -> Recording:
    """S001R03 of the shipped sample (64 EEG channels, 160 Hz), loaded."""
    from neurofm.io import read_recording

    return read_recording(sample_dir / "eegbci_S001" / "S001R03.edf", preload=True)
