import json
from pathlib import Path

import numpy as np
import pytest
import torch
from evaluation_signals import ar2_windows
from torch import nn

from neurofm.config import build_config, load_yaml
from neurofm.evaluation import baselines
from neurofm.evaluation.evaluate import EvaluateConfig, evaluate_forecasting
from neurofm.evaluation.report import write_report
from neurofm.registry import MODELS, TOKENIZERS, create
from neurofm.types import ModelOutput, ModelSpec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = EvaluateConfig(
    max_windows=8,
    rollout_windows=4,
    rollout_samples=2,
    realism_windows=4,
    realism_permutations=50,
    realism_reference_splits=2,
    drift_prompts=1,
    drift_segments=2,
    n_permutations=50,
    ar_orders=[4],
    var_lags=[2, 4],
    context_steps=[4],
    n_bootstrap=200,
)


ORACLE_SPEC = ModelSpec(
    inputs="channel_codes", outputs="logits", causal=True, sampling="autoregressive"
)


class AROracle(nn.Module):
    """A 'model' whose logits are the fitted linear AR's discretised Gaussians (ORACLE_SPEC)."""

    def __init__(self, ar: baselines.LinearAR) -> None:
        super().__init__()
        self.ar = ar
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x, *, past=None, use_cache=False):
        codes = x.cpu().numpy()
        order = self.ar.order
        lp, _ = self.ar.predict(np.concatenate([codes, codes[..., -1:]], -1), order)
        pad = np.zeros((*codes.shape[:2], order - 1, lp.shape[-1]))
        logits = torch.from_numpy(np.concatenate([pad, lp], axis=2)).float()
        return ModelOutput(logits=logits)


@pytest.fixture(scope="module")
def data():
    train = ar2_windows(32, 3, 64, seed=0)
    test = ar2_windows(8, 3, 64, seed=1)
    tok = create(TOKENIZERS, {"name": "mulaw", "preset": "tiny"}).fit(train)
    enc = lambda x: tok.encode(torch.from_numpy(x).float()).codes.numpy()  # noqa: E731
    bins = baselines.CodeBins.from_tokenizer(tok, 3)
    return {
        "train_codes": enc(train),
        "train_signal": train,
        "test_codes": enc(test),
        "test_signal": test,
        "bins": bins,
    }


def test_oracle_model_scores_like_the_ar_and_controls_expose_it(data):
    ar = baselines.LinearAR(data["bins"], order=4).fit(data["train_codes"])
    res = evaluate_forecasting(
        AROracle(ar).eval(),
        data["bins"],
        sfreq=100.0,
        config=TINY,
        spec=ORACLE_SPEC,
        **{k: v for k, v in data.items() if k != "bins"},
    )
    one = res.report["one_step"]
    assert one["model"]["bits_per_channel_sample"] == pytest.approx(
        one["linear_ar"]["bits_per_channel_sample"], abs=1e-4
    )
    # the model's point forecast is the mean over the bins, the AR's the Gaussian mean
    assert one["model"]["r2"] == pytest.approx(one["linear_ar"]["r2"], abs=0.01)
    assert one["model"]["bits_per_channel_sample"] < one["last_value"]["bits_per_channel_sample"]
    # another window's history is worth far less than the window's own
    mismatched = one["control_mismatched_context"]["bits_per_channel_sample"]
    assert mismatched > one["model"]["bits_per_channel_sample"] + 0.5
    diff = res.report["bootstrap"]["differences"]["control_mismatched_context"]
    assert diff["below_zero"] and diff["high"] < 0
    # an AR(4) reads 4 steps: truncating its context to 4 steps changes nothing (the control
    # scores every control_stride-th target: the AR's own bits on those targets)
    every = TINY.control_stride
    log_probs, _ = ar.predict(data["test_codes"], 32)
    taken = np.take_along_axis(
        log_probs[..., ::every, :], data["test_codes"][..., 32::every, None], -1
    )
    assert one["control_context_4"]["bits_per_channel_sample"] == pytest.approx(
        -taken.mean() / np.log(2), abs=1e-4
    )
    low, high = one["model"]["bits_interval"]
    assert low < one["model"]["bits_per_channel_sample"] < high
    assert one.pop("control_context_4")["n_scored"] == 8 * 3 * (64 - 32) // every
    assert {o["n_scored"] for o in one.values()} == {8 * 3 * (64 - 32)}
    assert res.report["selection"]["linear_ar"]["order"] == 4
    assert "no validation split" in res.report["selection"]["validation"]
    assert len(res.report["per_window"]["bits_per_channel_sample"]["model"]) == 8
    curves = res.report["rollout"]["curves"]
    assert curves["model"]["nmse"][0] < curves["unigram"]["nmse"][0]


def test_the_channel_copula_draws_the_evaluations_continuations(data, monkeypatch):
    """``channel_copula: true``: the copula is fitted on the train signal (3 independent AR
    channels here) and every sampled step of the rollouts and realism continuations draws its
    channels' uniforms from it; the scores do not change (they use no samples)."""
    from dataclasses import replace

    from neurofm.generation.copula import ChannelCopula

    calls = []
    draw = ChannelCopula.uniforms
    monkeypatch.setattr(
        ChannelCopula, "uniforms", lambda self, *a, **k: calls.append(1) or draw(self, *a, **k)
    )
    ar = baselines.LinearAR(data["bins"], order=4).fit(data["train_codes"])
    runs = {}
    for copula in (False, True):
        calls.clear()
        runs[copula] = evaluate_forecasting(
            AROracle(ar).eval(),
            data["bins"],
            sfreq=100.0,
            config=replace(TINY, channel_copula=copula),
            spec=ORACLE_SPEC,
            **{k: v for k, v in data.items() if k != "bins"},
        )
        assert bool(calls) == copula
    bits = [r.report["one_step"]["model"]["bits_per_channel_sample"] for r in runs.values()]
    assert bits[0] == bits[1]


def test_report_files_and_keys(data, tmp_path):
    torch.manual_seed(0)
    model = create(
        MODELS,
        {
            "name": "gpt2meg_trf",
            "preset": "tiny",
            "vocab_size": 16,
            "n_chans": 3,
            "n_subjects": 0,
            "n_conditions": 0,
        },
    ).eval()
    res = evaluate_forecasting(
        model,
        data["bins"],
        sfreq=100.0,
        config=TINY,
        **{k: v for k, v in data.items() if k != "bins"},
    )
    paths = write_report(res.report, res.arrays, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["one_step"]) == {
        "model",
        "last_value",
        "linear_ar",
        "ridge_var",
        "bigram",
        "unigram",
        "uniform",
        "control_mismatched_context",
        "control_context_4",
    }
    for scores in report["one_step"].values():
        assert set(scores) >= {"bits_per_channel_sample", "next_step_accuracy", "mse", "r2"}
        assert len(scores["bits_interval"]) == 2
    # an untrained model over 16 codes costs about log2(16) bits
    assert 3.5 < report["one_step"]["model"]["bits_per_channel_sample"] < 4.6
    assert set(report["realism"]) == {"generated", "linear_ar_samples", "tokenizer_roundtrip"}
    # flags calibrated on real held-out vs disjoint sets of real train windows
    assert report["realism"]["generated"]["reference"]["n_splits"] >= 2
    assert set(report["rollout"]["curves"]) == {
        "model",
        "last_value",
        "linear_ar",
        "ridge_var",
        "bigram",
        "unigram",
    }
    assert set(report["drift"]) == {"model", "linear_ar"}
    assert report["plots"] == ["psd.png", "traces.png", "scores.png", "rollout.png"]
    html = (tmp_path / "report.html").read_text()
    for name in report["plots"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
        assert f'src="{name}"' in html
    for column in ("control_mismatched_context", "linear_ar_samples", "tokenizer_roundtrip"):
        assert column in html
    assert paths["html"] == tmp_path / "report.html"


def test_bad_settings_raise(data):
    with pytest.raises(ValueError, match="score_start"):
        evaluate_forecasting(
            nn.Linear(1, 1),
            data["bins"],
            sfreq=100.0,
            spec=ORACLE_SPEC,
            config=EvaluateConfig(score_start=64),
            **{k: v for k, v in data.items() if k != "bins"},
        )
    with pytest.raises(ValueError, match="drift_segments"):
        EvaluateConfig(drift_segments=1)


@pytest.mark.parametrize(
    "path", sorted((CONFIGS / "evaluate").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_evaluate_configs_validate(path):
    cfg = build_config(EvaluateConfig, load_yaml(path)["evaluation"], source=str(path))
    assert cfg.split == "test"


def test_decoding_report_lists_chance_pipeline_and_controls(tmp_path):
    report = {
        "task": "decoding",
        "model": "classifier",
        "split": "test",
        "n_windows": 20,
        "decoding": {
            "model": {"accuracy": 0.8, "balanced_accuracy": 0.79},
            "chance": {"accuracy": 0.5, "balanced_accuracy": 0.5},
            "band_power_lda": {"accuracy": 0.7, "balanced_accuracy": 0.7},
            "control_noise_input": {"accuracy": 0.5, "balanced_accuracy": float("nan")},
        },
    }
    write_report(report, {}, tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["decoding"]["control_noise_input"]["balanced_accuracy"] is None
    html = (tmp_path / "report.html").read_text()
    assert "band_power_lda" in html and "n/a" in html and 'src="scores.png"' in html
