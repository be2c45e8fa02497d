"""Real signals for the tokenizer tests: the shipped EEG sample and the shared MEG file."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def eeg_signal(sample_dir):
    """16 s of 8 channels of the shipped EEG (S001R03), float32 volts, shape (8, 2560)."""
    import mne

    raw = mne.io.read_raw_edf(
        sample_dir / "eegbci_S001" / "S001R03.edf", preload=False, verbose="error"
    )
    return raw.get_data(picks=list(range(8)), start=0, stop=2560).astype(np.float32)


@pytest.fixture(scope="module")
def meg_signal(test_data):
    """The 306 MEG channels (T and T/m) of the shipped Vectorview file (0.1 s), float32."""
    import mne

    raw = mne.io.read_raw_fif(test_data / "meg_evoked_as_raw.fif", preload=True, verbose="error")
    raw.pick("meg")
    return raw.get_data().astype(np.float32)
