"""Few-shot transfer on the real monkey reach counts (a few steps: runs, not results), through
the CLI, with its JSON and curve."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mambapy")

from neurofm.cli.main import main  # noqa: E402
from neurofm.workflows.fewshot import FewShotConfig  # noqa: E402


def test_fewshot_command_writes_json_and_curve(shared_data, tmp_path, monkeypatch):
    from neurofm.workflows import fewshot

    tiny = {
        "d_model": 8,
        "n_layers": 1,
        "d_state": 2,
        "rates": (1,),
        "n_latents": 2,
        "d_latent": 8,
        "n_fusion_layers": 1,
        "n_heads": 2,
        "popt_layers": 1,
    }
    real = fewshot.ReachConfig
    monkeypatch.setattr(
        fewshot, "ReachConfig", lambda **kw: real(**kw, model=tiny, batch_size=2, n_bootstrap=10)
    )
    monkeypatch.setattr("neurofm.workflows.reach.ReachConfig", fewshot.ReachConfig)
    path = shared_data / "spikes_monkey_reach" / "chewie_demo.mat"
    argv = ["fewshot", str(path), "--fractions", "[0.01, 1]", "--pretrain_steps", "2"]
    assert main([*argv, "--adapt_steps", "1", "--output", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "fewshot.json").read_text())
    assert report["scenario"] == "held_out_units"  # both parts hold the same 71 units
    assert report["units"] == {"source": 35, "calibration": 36, "test": 36}
    assert set(report["results"]) == {
        "ridge (bin t)",
        "wiener (10 bins)",
        "unit_id_adapter",
        "scratch",
    }
    adapter = report["results"]["unit_id_adapter"]
    assert [r["calibration_bins"] for r in adapter] == [12, 1200]
    assert adapter[0]["trained_parameters"] < report["results"]["scratch"][0]["trained_parameters"]
    assert (tmp_path / "fewshot.png").stat().st_size > 1000


def test_fewshot_config_errors():
    with pytest.raises(ValueError, match="scenario='x'"):
        FewShotConfig(scenario="x")
    with pytest.raises(ValueError, match="fractions"):
        FewShotConfig(fractions=(0.0,))
