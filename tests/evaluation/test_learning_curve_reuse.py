"""The learning curve takes the final model's bits from its evaluation report only when the
checkpoint holds exactly the final weights of the same run."""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurofm.evaluation.learning_curve import _final_model_bits, same_weights


def test_same_weights_compares_every_tensor():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    assert not same_weights(a, b)
    b.load_state_dict(a.state_dict())
    assert same_weights(a, b)
    with torch.no_grad():
        b.bias[0] += 1e-7
    assert not same_weights(a, b)
    assert not same_weights(a, nn.Linear(3, 3))  # other shapes


def test_final_model_bits_only_from_a_report_of_this_runs_final_model(tmp_path):
    run = tmp_path / "run"
    report = {
        "run_dir": str(run),
        "checkpoint": "final",
        "per_window": {"bits_per_channel_sample": {"model": [4.0, 5.0]}},
    }
    np.testing.assert_array_equal(_final_model_bits(report, run), [4.0, 5.0])
    assert _final_model_bits(None, run) is None
    assert _final_model_bits({**report, "checkpoint": "step-10"}, run) is None
    assert _final_model_bits({**report, "run_dir": str(tmp_path / "other")}, run) is None
    assert _final_model_bits({**report, "per_window": {}}, Path(run)) is None
