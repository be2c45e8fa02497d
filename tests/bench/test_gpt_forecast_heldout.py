"""The code model's second-half forecast table read from a report's rollout section."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.gpt_forecast_heldout import code_model_forecast  # noqa: E402


def _report(context: int = 64, n_windows: int = 6) -> dict:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.0, n_windows)
    curves = {
        "model": {"window_mse": (base - 0.2).tolist()},
        "linear_ar": {"window_mse": base.tolist()},
    }
    return {
        "task": "forecasting",
        "rollout": {
            "context": context,
            "n_windows": n_windows,
            "model_samples": 2,
            "curves": curves,
        },
    }


def test_the_table_has_intervals_and_the_model_minus_each_baseline():
    out = code_model_forecast(_report(), context=64, n_windows=6)
    assert out["differences"]["linear_ar"]["mean"] == pytest.approx(-0.2)
    assert out["differences"]["linear_ar"]["below_zero"]
    s = out["scores"]["model"]
    assert s["low"] <= s["mean"] <= s["high"] and out["model_samples"] == 2


def test_another_context_window_count_or_an_old_report_is_refused():
    with pytest.raises(ValueError, match="context 32"):
        code_model_forecast(_report(context=32), context=64, n_windows=6)
    with pytest.raises(ValueError, match="8 windows"):
        code_model_forecast(_report(), context=64, n_windows=8)
    old = _report()
    del old["rollout"]["curves"]["model"]["window_mse"]
    with pytest.raises(ValueError, match="window_mse"):
        code_model_forecast(old, context=64, n_windows=6)
    with pytest.raises(ValueError, match="rollout"):
        code_model_forecast({"task": "generative"}, context=64, n_windows=6)
