"""``neurofm generate RUN --input FILE``: a recording -> text per segment with times."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("vector_quantize_pytorch")

from neurofm.cli.main import main  # noqa: E402
from neurofm.training.fit import fit  # noqa: E402


@pytest.fixture(scope="module")
def text_run(masc_like, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("meg_text") / "run"
    config = {
        "data": {
            "store": str(masc_like),
            "format": "text_segments",
            "words_per_segment": 4,
            "window_seconds": 2.4,
            "batch_size": 4,
        },
        "model": {"name": "meg_text", "preset": "tiny", "n_chans": 8, "vocab_size": 128},
        "objective": {"name": "meg_text"},
        "trainer": {"max_steps": 2, "accelerator": "cpu", "enable_progress_bar": False},
        "output": {"dir": str(run_dir)},
    }
    return fit(config)


def _recording(masc_like):
    return masc_like / "sub-03" / "ses-0" / "meg" / "sub-03_ses-0_task-0_meg.fif"


def test_generate_from_fif_at_its_word_onsets(text_run, masc_like, tmp_path):
    out = tmp_path / "gen"
    args = ["generate", str(text_run), "--input", str(_recording(masc_like))]
    assert main([*args, "--output", str(out), "--max_new_tokens", "3"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["segmentation"] == "word onsets"
    assert results["decoding"]["teacher_forcing"] is False
    segments = results["segments"]
    assert segments and all(s["duration"] == pytest.approx(2.4) for s in segments)
    onsets = [s["onset"] for s in segments]
    assert onsets == sorted(onsets) and all(isinstance(s["text"], str) for s in segments)


def test_generate_from_npy_with_events_and_in_windows(text_run, masc_like, tmp_path):
    import mne

    raw = mne.io.read_raw_fif(_recording(masc_like), verbose="error")
    array = tmp_path / "meg.npy"
    np.save(array, raw.get_data().astype(np.float32))
    events = _recording(masc_like).with_name("sub-03_ses-0_task-0_events.tsv")
    base = ["generate", str(text_run), "--input", str(array), "--sfreq", "100"]
    out = tmp_path / "beam"
    args = [*base, "--events", str(events), "--num_beams", "2", "--max_new_tokens", "3"]
    assert main([*args, "--output", str(out)]) == 0
    beam = json.loads((out / "results.json").read_text())
    assert beam["words_given"] and beam["decoding"]["num_beams"] == 2
    assert len(beam["segments"]) + len(beam["not_decoded"]) == -(-beam_words(events) // 4)

    out = tmp_path / "windows"
    assert main([*base, "--output", str(out), "--max_new_tokens", "2"]) == 0
    windows = json.loads((out / "results.json").read_text())
    assert windows["segmentation"] == "consecutive windows"
    starts = [s["onset"] for s in windows["segments"]]
    assert starts == pytest.approx([2.4 * k for k in range(len(starts))])


def beam_words(events) -> int:
    from neurofm.workflows.text_generate import read_onsets

    return len(read_onsets(events)[0])


def test_generate_refuses_another_sampling_rate(text_run, masc_like, tmp_path, capsys):
    import mne

    raw = mne.io.read_raw_fif(_recording(masc_like), verbose="error")
    array = tmp_path / "meg.npy"
    np.save(array, raw.get_data().astype(np.float32))
    args = ["generate", str(text_run), "--input", str(array), "--sfreq", "200"]
    assert main(args) != 0
    assert "trained at 100 Hz" in capsys.readouterr().err
