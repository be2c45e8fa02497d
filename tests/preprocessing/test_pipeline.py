"""Pipeline: config validation (R12), fingerprint stability and sensitivity, applying steps."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from preprocessing_signals import sines

from neurofm.errors import ConfigError
from neurofm.preprocessing import STEPS, Pipeline
from neurofm.preprocessing.steps import Bandpass, Notch, Resample

CONFIG = [
    {"name": "notch", "freqs": [60]},
    {"name": "bandpass", "l_freq": 0.5, "h_freq": 40},
    {"name": "resample", "sfreq": 100},
]


def test_from_config_builds_typed_steps_and_round_trips():
    pipeline = Pipeline.from_config(CONFIG)
    assert pipeline.steps == [
        Notch(freqs=[60.0]),
        Bandpass(l_freq=0.5, h_freq=40.0),
        Resample(sfreq=100.0),
    ]
    assert Pipeline.from_config(pipeline.to_config()).fingerprint() == pipeline.fingerprint()
    assert {"notch", "bandpass", "resample", "clip", "interpolate_bads"} <= set(STEPS.names())


def test_fingerprint_is_stable_across_processes():
    code = (
        "from neurofm.preprocessing import Pipeline; "
        f"print(Pipeline.from_config({CONFIG!r}).fingerprint())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == Pipeline.from_config(CONFIG).fingerprint()


def test_fingerprint_changes_with_any_parameter_order_or_version(monkeypatch):
    base = Pipeline.from_config(CONFIG).fingerprint()
    changed = [dict(CONFIG[0]), dict(CONFIG[1], h_freq=45), dict(CONFIG[2])]
    assert Pipeline.from_config(changed).fingerprint() != base
    assert Pipeline.from_config(CONFIG[::-1]).fingerprint() != base
    assert Pipeline.from_config(CONFIG[:2]).fingerprint() != base
    monkeypatch.setattr("neurofm.preprocessing.pipeline.__version__", "99.0")
    assert Pipeline.from_config(CONFIG).fingerprint() != base


def test_config_errors_name_key_path_and_close_match():
    with pytest.raises(ConfigError) as info:
        Pipeline.from_config(
            [
                {"name": "bandpas", "l_freq": 1},
                {"name": "notch", "freq": [50]},
                {"name": "bandpass", "l_freq": 40, "h_freq": 1},
                {"l_freq": 3},
                {"name": "clip", "mode": "iqrr"},
            ]
        )
    text = str(info.value)
    assert len(info.value.problems) == 5
    assert "preprocessing[0].name: unknown preprocessing step 'bandpas'" in text
    assert "did you mean 'bandpass'" in text
    assert "preprocessing[1].freq: unknown key" in text and "did you mean 'freqs'" in text
    assert "preprocessing[2]: l_freq (40.0) must be below h_freq" in text
    assert "preprocessing[3].name: required key is missing" in text
    assert "preprocessing[4].mode: invalid value 'iqrr'" in text


def test_pipeline_applies_steps_in_order_and_logs_them():
    rec = sines([10.0, 60.0], sfreq=200.0)
    out = Pipeline.from_config(CONFIG)(rec)
    assert out.sfreq == 100.0 and out.data.dtype == np.float32
    assert [e["step"] for e in out.meta["preprocessing"]] == ["notch", "bandpass", "resample"]


def test_in_place_steps_give_the_same_result_and_leave_the_input_untouched():
    rec = sines([10.0, 60.0], sfreq=200.0, n_chans=11, types=["eeg"] * 10 + ["stim"])
    rec.data[10] = np.round(rec.data[10])
    before = rec.data.copy()
    pipeline = Pipeline.from_config(CONFIG)
    out = pipeline(rec)  # float32 input: the first step copies, later steps work in place
    assert np.array_equal(rec.data, before)
    step_by_step = rec
    for step in pipeline.steps:
        step_by_step = step(step_by_step)
    assert np.array_equal(out.data, step_by_step.data)
    assert out.meta == step_by_step.meta
    as64 = replace(rec, data=rec.data.astype(np.float64))  # converted copy: notch works in place
    assert np.array_equal(pipeline(as64).data, step_by_step.data)
    copy = rec.data.copy()
    assert (
        Bandpass(l_freq=1.0, h_freq=30.0).apply(replace(rec, data=copy), overwrite=True).data
        is copy
    )


def test_caller_arrays_and_views_of_them_are_never_overwritten():
    from neurofm.preprocessing.pipeline import _owned

    data = np.zeros((2, 10), dtype=np.float32)
    assert not _owned(data, data) and not _owned(data[:1], data)
    assert _owned(data.copy(), data) and _owned(data.copy(), object())
    frozen = data.copy()
    frozen.flags.writeable = False
    assert not _owned(frozen, data)


def test_filter_phase_is_in_the_config_and_the_fingerprint():
    causal = [
        {**step, "phase": "causal"} if step["name"] != "resample" else step for step in CONFIG
    ]
    zero, forward = Pipeline.from_config(CONFIG), Pipeline.from_config(causal)
    assert zero.filter_phase() == "zero" and forward.filter_phase() == "causal"
    assert forward.fingerprint() != zero.fingerprint()
    assert forward.to_config()[1]["phase"] == "causal"
    assert Pipeline.from_config(causal[:1] + CONFIG[1:]).filter_phase() == "mixed"
    assert Pipeline.from_config(CONFIG[2:]).filter_phase() == "none"
    with pytest.raises(ConfigError, match="phase"):
        Pipeline.from_config([{"name": "bandpass", "l_freq": 1.0, "phase": "backwards"}])
