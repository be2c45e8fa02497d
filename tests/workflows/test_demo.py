"""The demo chains prepare, fit, evaluate and generate on the shipped real EEG sample."""

import json
from pathlib import Path

import numpy as np

from neurofm.cli.main import main


def test_demo_end_to_end_on_the_shipped_sample(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--output",
            str(out),
            "--max_steps",
            "3",
            "--seconds",
            "1.0",
            "--evaluation",
            "smoke",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "bits per channel-sample" in printed and "report:" in printed

    summary = json.loads((out / "summary.json").read_text())
    scores = summary["scores"]
    # The model's score always comes with its baselines and controls from the same run.
    for name in (
        "model",
        "last_value",
        "linear_ar",
        "ridge_var",
        "bigram",
        "unigram",
        "uniform",
        "control_mismatched_context",
        "control_context_1",
    ):
        row = scores[name]
        assert np.isfinite(row["bits"]) and row["bits"] > 0, name
        assert row["interval"][0] <= row["bits"] <= row["interval"][1], name
    assert scores["last_value"]["model_minus"]["high"] >= scores["last_value"]["model_minus"]["low"]
    assert summary["windows"]["test_available"] == 156 and summary["windows"]["scored"] == 12
    assert (out / "report" / "report.html").is_file()
    assert (out / "report" / "report.json").is_file()
    generated = np.load(summary["generated"]["npy"])
    assert generated.shape[0] == 64 and np.isfinite(generated).all()
    # the generated signal is sampled with the demo's nucleus mass and the channel copula fitted
    # on the train windows of real EEG (correlated innovations), and says so
    sidecar = json.loads(Path(summary["generated"]["json"]).read_text())
    assert sidecar["top_p"] == 0.9
    assert sidecar["channel_copula"]["mean_abs_correlation"] > 0.2
    # the report's rollouts and realism continuations are sampled the same way
    settings = json.loads((out / "report" / "report.json").read_text())["settings"]
    assert settings["top_p"] == 0.9 and settings["channel_copula"] is True
    assert (out / "run" / "model" / "model.safetensors").is_file()
    assert (out / "run" / "config.yaml").is_file()
    # the learning curve: every checkpoint scored on the same windows, baselines as flat lines
    curve = json.loads((out / "report" / "learning_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [1, 2, 3]
    # the last checkpoint is the final model: the same bits as the evaluation report's
    assert abs(curve["points"][-1]["bits"] - scores["model"]["bits"]) < 1e-9
    assert curve["best_linear"] in ("linear_ar", "ridge_var")
    for point in curve["points"]:
        low, high = point["minus_best_linear_interval"]
        assert low <= point["minus_best_linear"] <= high
        assert point["below_zero"] == (high < 0)
    assert (out / "report" / "learning_curve.png").is_file()
    assert summary["learning_curve"]["best_linear"] == curve["best_linear"]
