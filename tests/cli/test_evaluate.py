"""``neurofm evaluate`` on a tiny run folder written in the run format of ``neurofm fit``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurofm.cli.main import main
from neurofm.config import save_yaml
from neurofm.data.synthetic import synthetic_store
from neurofm.registry import MODELS, TOKENIZERS, create
from neurofm.training.pretrained import save_pretrained

N_CHANS, SFREQ, WINDOW = 3, 100.0, 64


def make_run(root: Path) -> Path:
    """A prepared store with a robust scaler and splits, and a run folder over it (untrained)."""
    store = synthetic_store(
        root / "store", n_subjects=2, n_chans=N_CHANS, sfreq=SFREQ, duration=12.0, seed=1
    )
    n = store.recordings[0].n_times
    store.manifest["splits"] = {
        "train": [{"recording": store.recordings[0].id, "start": 0, "stop": n}],
        "test": [{"recording": store.recordings[1].id, "start": 0, "stop": n}],
    }
    train = np.asarray(store.recordings[0].array, dtype=np.float64)  # (T, C)
    q75, q25 = np.percentile(train, [75, 25], axis=0)
    store.manifest["scaler"] = {
        "kind": "robust",
        "fitted_on": "train",
        "channels": store.recordings[0].sensors.names,
        "center": np.median(train, axis=0).tolist(),
        "scale": (q75 - q25).tolist(),
    }
    store.save_manifest()
    run = root / "run"
    data = {
        "store": str(root / "store"),
        "window_length": WINDOW,
        "stride": WINDOW // 2,
        "normalize": True,
    }
    model_spec = {
        "name": "gpt2meg_trf",
        "preset": "tiny",
        "vocab_size": 16,
        "n_chans": N_CHANS,
        "n_subjects": 0,
        "n_conditions": 0,
        "max_seq_len": 160,
    }
    tok_spec = {"name": "mulaw", "preset": "tiny"}
    scale = (q75 - q25)[None, :, None]
    center = np.median(train, axis=0)[None, :, None]
    windows = train[: (len(train) // WINDOW) * WINDOW].T.reshape(N_CHANS, -1, WINDOW)
    tokenizer = create(TOKENIZERS, tok_spec).fit((windows.transpose(1, 0, 2) - center) / scale)
    tokenizer.save(run / "tokenizer")
    torch.manual_seed(0)
    save_pretrained(create(MODELS, model_spec), run / "model")
    save_yaml(
        {
            "data": data,
            "tokenizer": tok_spec,
            "model": model_spec,
            "objective": {"name": "next_token"},
        },
        run / "config.yaml",
    )
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("evaluate"))


def test_evaluate_writes_report_with_baselines_and_controls(run_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "evaluate",
            str(run_dir),
            "--split",
            "test",
            "--output",
            str(out),
            "--evaluation.preset",
            "tiny",
            "--evaluation.ar_orders",
            "[4, 8]",
            "--evaluation.forecast_windows",
            "12",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "linear_ar" in printed and "95% interval" in printed and "model - this" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "test" and report["model"] == "gpt2meg_trf"
    assert report["settings"]["ar_orders"] == [4, 8] and report["settings"]["max_windows"] == 8
    assert report["windows"]["scored"] == 12 and report["windows"]["capped"]
    # the synthetic store has no val split: the sizes are chosen on a tail of train
    assert "no validation split" in report["selection"]["validation"]
    assert report["selection"]["linear_ar"]["order"] in (4, 8)
    one = report["one_step"]
    assert set(one) == {
        "model",
        "last_value",
        "linear_ar",
        "ridge_var",
        "bigram",
        "unigram",
        "uniform",
        "control_mismatched_context",
        "control_context_1",
        "control_context_8",
    }
    # untrained model: about log2(16) bits; the AR beats the unigram on real-like EEG
    assert 3.3 < one["model"]["bits_per_channel_sample"] < 4.7
    assert one["linear_ar"]["bits_per_channel_sample"] < one["unigram"]["bits_per_channel_sample"]
    assert (out / "report.html").is_file() and (out / "evaluate.yaml").is_file()
    assert all((out / name).is_file() for name in report["plots"])


def test_evaluate_rejects_bad_settings(run_dir, tmp_path, capsys):
    code = main(
        ["evaluate", str(run_dir), "--output", str(tmp_path), "--evaluation.max_windwos", "3"]
    )
    assert code == 2
    assert "max_windows" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
