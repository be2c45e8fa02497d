"""Shared fixtures: paths to the shipped sample and to the real recordings beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
TEST_DATA = REPO / "data" / "test"
SHARED_DATA = Path(os.environ.get("NEUROFM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The real EEG sample shipped in the repository (always present)."""
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Tiny real MEG, spike, LFP and BIDS files shipped in the repository (always present)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real recordings beside the checkout; tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings folder {SHARED_DATA} is absent (a user's clone has none)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests run two at a time on two cores: keep torch to one thread each."""
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def masc_like(tmp_path_factory, shared_data) -> Path:
    """A small MEG-MASC-like BIDS tree (3 subjects, 8 channels at 100 Hz, 40 s per story) with
    the real word onsets and word-evoked responses at an easy SNR."""
    from neurofm.data.synthetic_masc import make_masc_like

    root = tmp_path_factory.mktemp("masc_like") / "bids"
    return make_masc_like(
        root,
        events_root=shared_data / "meg_masc_events",
        n_subjects=3,
        sfreq=100.0,
        n_channels=8,
        snr=2.0,
        related=True,
        seed=0,
        max_seconds=40.0,
    )
