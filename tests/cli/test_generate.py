"""``neurofm generate`` on a tiny run folder: .npy, .fif (readable by MNE) and a plot."""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest
from test_evaluate import N_CHANS, SFREQ, make_run

from neurofm.cli.main import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("generate"))


def test_generate_writes_npy_fif_and_plot(run_dir, tmp_path):
    out = tmp_path / "gen"
    args = [
        "generate",
        str(run_dir),
        "--prompt",
        "test:1",
        "--seconds",
        "0.5",
        "--seed",
        "3",
        "--top_k",
        "8",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    signal = np.load(out / "generated.npy")
    sidecar = json.loads((out / "generated.json").read_text())
    assert signal.shape == (N_CHANS, 64 + 50) and signal.dtype == np.float32
    assert sidecar["n_prompt"] == 64 and sidecar["n_generated"] == 50 and sidecar["sfreq"] == SFREQ
    # back in physical units (V): the scaler was undone
    assert 1e-7 < np.abs(signal).max() < 1e-3
    raw = mne.io.read_raw_fif(out / "generated_raw.fif", verbose="error")
    assert raw.ch_names == sidecar["channels"] and raw.info["sfreq"] == SFREQ
    assert set(raw.get_channel_types()) == {"eeg"}
    np.testing.assert_allclose(raw.get_data(), signal, rtol=1e-5, atol=1e-12)
    assert (out / "generated.png").read_bytes()[:4] == b"\x89PNG"
    again = tmp_path / "again"
    assert main([*args[:-1], str(again)]) == 0
    np.testing.assert_array_equal(np.load(again / "generated.npy"), signal)


def test_generate_prompt_in_seconds_and_errors(run_dir, tmp_path, capsys):
    out = tmp_path / "sec"
    assert (
        main(
            ["generate", str(run_dir), "--prompt", "0.2", "--seconds", "0.1", "--output", str(out)]
        )
        == 0
    )
    assert np.load(out / "generated.npy").shape == (N_CHANS, 20 + 10)
    assert main(["generate", str(run_dir), "--prompt", "test:999", "--output", str(out)]) == 2
    assert "no window 999" in capsys.readouterr().err
    assert main(["generate", str(run_dir), "--seconds", "0.001", "--output", str(out)]) == 2
    assert "at least 1" in capsys.readouterr().err
