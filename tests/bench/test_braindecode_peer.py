"""The benchmarks' braindecode plumbing without braindecode: the windows file both sides read,
their folds, the reason written when the benchmark environment is absent, the docs table.

braindecode itself runs only in the benchmark environment (``make bench-env``); the one test
that calls it skips when that environment is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _peer, braindecode_peer, decoding_vs_braindecode  # noqa: E402


def _windows(rng: np.random.Generator):
    runs = [3, 7, 11]
    groups = np.repeat(runs, [5, 4, 6])
    x = rng.standard_normal((groups.size, 3, 20)) * np.array([1.0, 5.0, 0.1])[:, None] + 2.0
    y = rng.integers(0, 2, groups.size)
    return x, y, groups, runs


def test_both_sides_read_the_same_folds_and_standardisation(tmp_path):
    from neurofm.evaluation.decoding_runs import fold_standardisation

    x, y, groups, runs = _windows(np.random.default_rng(0))
    written = decoding_vs_braindecode.save_windows(tmp_path / "w.npz", x, y, groups, runs, 160.0)
    loaded = dict(np.load(tmp_path / "w.npz"))  # what the braindecode side reads
    assert set(loaded) == set(written)
    assert float(loaded["sfreq"]) == 160.0 and loaded["runs"].tolist() == runs
    seen = list(braindecode_peer.folds(loaded))
    assert [i for i, _, _ in seen] == [0, 1, 2]
    for (_, test, xs), run in zip(seen, runs):
        np.testing.assert_array_equal(test, groups == run)  # one held-out run per fold
        mean, std = fold_standardisation(x, groups == run)  # the train runs' statistics
        np.testing.assert_allclose(xs, (x - mean) / std, rtol=1e-5, atol=1e-5)
        assert xs.dtype == np.float32
        train = xs[~test]
        np.testing.assert_allclose(train.mean(axis=(0, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(train.std(axis=(0, 2)), 1.0, rtol=1e-4)
    # every window is held out exactly once
    held_out = np.sum([test for _, test, _ in seen], axis=0)
    assert held_out.tolist() == [1] * len(y)


def test_missing_benchmark_environment_gives_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROFM_BENCH_PYTHON", str(tmp_path / "no-venv" / "bin" / "python"))
    python, info = _peer.find_peer()
    assert python is None
    assert "absent" in info["reason"] and "make bench-env" in info["reason"]


def test_a_broken_benchmark_environment_gives_a_reason(tmp_path, monkeypatch):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'No module named braindecode' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("NEUROFM_BENCH_PYTHON", str(fake))
    python, info = _peer.find_peer(timeout=30)
    assert python is None and "does not run" in info["reason"]


def test_docs_table_replaces_only_its_block(tmp_path, monkeypatch):
    doc = tmp_path / "decoding.md"
    doc.write_text(
        "# Decoding\n\nintro\n\n<!-- decoding-table:start -->\nold\n"
        "<!-- decoding-table:end -->\n\noutro\n"
    )
    monkeypatch.setattr(decoding_vs_braindecode, "DOC", doc)
    scores = {
        "accuracy": 0.6,
        "accuracy_95ci": [0.5, 0.7],
        "balanced_accuracy": 0.6,
        "p_value": 0.01,
        "null_mean": 0.5,
        "source": "neurofm",
    }
    decoding_vs_braindecode.write_table({"decoders": {"cnn_multivariate": scores}})
    text = doc.read_text()
    assert "old" not in text and "intro" in text and "outro" in text
    assert "| `cnn_multivariate` | neurofm | 0.600 [0.500, 0.700] |" in text


def test_peer_worker_runs_when_the_benchmark_environment_exists():
    if not _peer.bench_python().exists():
        pytest.skip("no benchmark environment (.venv-bench; `make bench-env` builds it)")
    python, info = _peer.find_peer()
    assert python is not None, info
    assert info["versions"]["braindecode"]
