"""``neurofm tokenize`` on a prepared store built from the shipped EEG sample."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurofm.cli.main import main
from neurofm.data.recording import Recording
from neurofm.data.store import PreparedStore
from neurofm.tokenizers.base import load_tokenizer
from neurofm.types import SensorInfo


@pytest.fixture(scope="module")
def sample_store(sample_dir, tmp_path_factory):
    """Two runs of the shipped EEG, 16 channels: R03 is train, R04 is split into val and test."""
    import mne

    root = tmp_path_factory.mktemp("store")
    store = PreparedStore.create(root, name="eegbci_test", fingerprint="test-fingerprint")
    for run in ("S001R03", "S001R04"):
        raw = mne.io.read_raw_edf(sample_dir / "eegbci_S001" / f"{run}.edf", verbose="error")
        data = raw.get_data(picks=list(range(16)), stop=4800)
        sensors = SensorInfo(names=raw.ch_names[:16], types=["eeg"] * 16)
        store.write(
            run,
            Recording(data=data, sfreq=raw.info["sfreq"], sensors=sensors, source={"path": run}),
            fingerprint="test-fingerprint",
        )
    store.manifest["splits"] = {
        "train": [{"recording": "S001R03", "start": 0, "stop": 4800}],
        "val": [{"recording": "S001R04", "start": 0, "stop": 2400}],
        "test": [{"recording": "S001R04", "start": 2400, "stop": 4800}],
    }
    store.save_manifest()
    return root


def test_tokenize_writes_tokenizer_codes_and_report(sample_store, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "tokenize",
            "--data",
            json.dumps({"path": str(sample_store)}),
            "--tokenizer",
            json.dumps({"name": "mulaw", "n_levels": 256}),
            "--output",
            str(out),
            "--tokenizer.quantile",
            "0.99",
        ]
    )
    assert rc == 0
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["split"] == "val" and report["fitted_on"] == "test-fingerprint:train"
    assert report["time"]["r2_mean"] > 0.99 and report["n_clipped"] > 0
    assert set(report["spectrum"]["band_log10_ratio_mean"]) == {
        "delta",
        "theta",
        "alpha",
        "beta",
        "gamma",
    }
    assert report["codes"]["vocab_size"] == 256 and report["codes"]["bits_per_sample"] == 8.0
    assert 1 < report["codes"]["perplexity"] <= 256
    for png in ("code_histogram.png", "psd_overlay.png", "example_trace.png"):
        assert (out / "report" / png).stat().st_size > 1000
    tok = load_tokenizer(out / "tokenizer")
    assert tok.config.quantile == 0.99  # the dotted override reached the tokenizer
    manifest = json.loads((out / "codes" / "manifest.json").read_text())
    assert manifest["splits"]["train"][0]["recording"] == "S001R03"
    codes = np.load(out / "codes" / "S001R04.npy")
    assert codes.shape == (16, 4800) and codes.dtype == np.uint8
    store = PreparedStore.open(sample_store)
    expected = tok.encode(np.asarray(store["S001R04"].array).T).codes
    assert np.array_equal(codes.astype(np.int64), expected)
    assert (out / "config.yaml").is_file()


def test_tokenize_bad_config_errors(sample_store, tmp_path, capsys):
    rc = main(
        [
            "tokenize",
            "--data",
            json.dumps({"path": str(sample_store), "eval_split": "train"}),
            "--tokenizer",
            json.dumps({"name": "mulaw"}),
            "--output",
            str(tmp_path / "a"),
        ]
    )
    assert rc == 2 and "is the split the tokenizer is fitted on" in capsys.readouterr().err
    rc = main(
        [
            "tokenize",
            "--data",
            json.dumps({"path": str(sample_store)}),
            "--tokenizer",
            json.dumps({"name": "mulew"}),
            "--output",
            str(tmp_path / "b"),
        ]
    )
    assert rc == 2 and "did you mean 'mulaw'" in capsys.readouterr().err
