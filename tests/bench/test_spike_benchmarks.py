"""The spike benchmarks on the real grasshopper recording, a few steps: every row and paired
difference present and finite, the splits they report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest.importorskip("mambapy")

from benchmarks import spike_adapter_vs_scratch, spikes_vs_counts  # noqa: E402


@pytest.fixture()
def grasshopper(shared_data):
    if not (shared_data / "spikes_grasshopper").is_dir():
        pytest.skip("the grasshopper recording is absent")
    return shared_data / "spikes_grasshopper"


def _finite_intervals(rows: dict, value: str, interval: str) -> None:
    for row in rows.values():
        low, high = row[interval]
        assert math.isfinite(row[value]) and low <= high


def test_adapter_vs_scratch_rows_on_pseudo_units(grasshopper, tmp_path):
    out = tmp_path / "adapter.json"
    argv = ["--steps", "2", "--seeds", "0", "--n_bootstrap", "20", "--output", str(out)]
    assert spike_adapter_vs_scratch.main(argv) == 0
    seed = json.loads(out.read_text())["seeds"][0]
    names = {"adapter", "adapter, untrained", "scratch", "scratch, 2x steps", "train mean rate"}
    assert set(seed["deviance"]) == names
    _finite_intervals(seed["deviance"], "deviance", "ci95")
    _finite_intervals(seed["differences"], "mean", "ci95")
    assert seed["test_windows"] == 10  # the last 400 bins, 40-bin windows
    # 2 unit identities (d_model 32), rates and behaviour heads (d_latent 32)
    assert seed["trained_parameters"]["adapter"] == 2 * 32 + 33 * 2 + 33


def test_spikes_vs_counts_rows(grasshopper, tmp_path):
    out = tmp_path / "svc.json"
    argv = ["--steps", "1", "--seeds", "0", "--n_bootstrap", "20", "--output", str(out)]
    assert spikes_vs_counts.main(argv) == 0
    seed = json.loads(out.read_text())["seeds"][0]
    assert set(seed["r2"]) == set(spikes_vs_counts.ROWS)
    assert len(seed["differences"]) == len(spikes_vs_counts.DIFFERENCES)
    for block in (seed, seed["train_block"]):
        _finite_intervals(block["r2"], "r2", "r2_ci95")
        _finite_intervals(block["differences"], "mean", "ci95")
    # the two-sided count model has the spike model's size: the window read-out's block
    assert seed["parameters"]["counts_window"] > seed["parameters"]["counts"]
    assert seed["test_bins"] == 400
