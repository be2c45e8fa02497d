"""Every example fit config under configs/ trains (two steps) and ``neurofm evaluate`` scores the
run it writes, with the evaluation its model's spec calls for.

Fit configs are found by content (a YAML with ``model`` and ``objective`` sections), wherever
they sit under ``configs/``. Runs are shrunk to seconds on a CPU: four channels of the prepared
shipped sample, short windows, the ``tiny`` model preset, a tiny evaluation.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from neurofm.cli.main import main
from neurofm.config import load_yaml
from neurofm.registry import MODELS, model_spec
from neurofm.training.pretrained import from_pretrained

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FIT_CONFIGS = sorted(
    path
    for path in CONFIGS.rglob("*.y*ml")
    if isinstance(cfg := load_yaml(path), dict) and {"model", "objective"} <= set(cfg)
)
N_CHANS, WINDOW = 4, 64
TRAINER = {
    "max_steps": "2",
    "max_epochs": "1",
    "accelerator": "cpu",
    "devices": "1",
    "strategy": "auto",
    "precision": "32-true",
    "accumulate_grad_batches": "1",
    "enable_progress_bar": "false",
    "val_check_interval": "2",
    "limit_val_batches": "1",
}
EVALUATION = {
    "preset": "tiny",
    "max_windows": "4",
    "max_train_windows": "8",
    "forecast_windows": "6",
    "baseline_train_windows": "16",
    "val_windows": "4",
    "ar_orders": "[4]",
    "var_lags": "[2]",
    "var_ridges": "[0.01]",
    "n_bootstrap": "50",
    "rollout_windows": "2",
    "realism_windows": "2",
    "realism_permutations": "20",
    "realism_reference_splits": "2",
    "realism_seconds": "1.0",
    "n_permutations": "20",
    "rollout_samples": "2",
    "denoising_steps": "[2, 3]",
    "bound_steps": "4",
}
# the report's task for each (inputs, outputs) of a model spec
TASKS = {
    ("channel_codes", "logits"): "forecasting",
    ("token_sequence", "logits"): "forecasting",
    ("signal", "prediction"): "continuous_forecasting",
    ("signal", "class_logits"): "decoding",
    ("band_stack", "prediction"): "next_band",
    ("band_codes", "logits"): "band_tokens",
    ("channel_codes", "class_logits"): "decoding",
    ("token_sequence", "logits", "flow"): "generative",
    ("signal", "noise", "diffusion"): "generative",
    ("binned_counts", "prediction"): "cosmoothing",
    ("spike_events", "prediction"): "spike_events",
    ("field_potentials", "prediction"): "band_power",
    ("signal_text", "text"): "text",
}
# text-segment configs (MEG-to-text) read a small MEG-MASC-like BIDS tree instead
TEXT_DATA = {
    "data.window_seconds": "2.4",
    "data.words_per_segment": "4",
    "model.n_chans": "8",
    "model.vocab_size": "128",
}
N_UNITS = 12  # units of the synthetic counts store (binned-count models)


def test_fit_configs_are_found():
    names = {load_yaml(p)["model"]["name"] for p in FIT_CONFIGS}
    assert {"conv_forecaster", "classifier_continuous", "gpt2meg"} <= names


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from neurofm.data.recipes import prepare_recipe

    root = tmp_path_factory.mktemp("prepared") / "eegbci_sample"
    store = prepare_recipe("eegbci_sample", root)
    return root, store.recordings[0].sensors.names[:N_CHANS]


@pytest.fixture(scope="module")
def counts_store(tmp_path_factory):
    from neurofm.data.synthetic import synthetic_reach_store

    root = tmp_path_factory.mktemp("counts") / "synthetic_reach"
    synthetic_reach_store(root, n_units=N_UNITS, n_bins=400)
    return root


def _spec(config: dict):
    """The spec of the model a config's ``model`` section builds (an alias's values applied)."""
    entry = MODELS.get(config["model"]["name"])
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    # the values that choose the spec (an alias's, a modality); sizes keep their defaults
    chosen = {**entry.defaults, **{k: v for k, v in config["model"].items() if k == "modality"}}
    return entry.spec_for(entry.config_cls(**{k: v for k, v in chosen.items() if k in fields}))


def _overrides(config: dict, channels: list[str]) -> list[str]:
    """Dotted overrides that shrink the run of ``config`` (only keys its sections have)."""
    data = config["data"]
    values = {f"trainer.{k}": v for k, v in TRAINER.items()}
    if "val_split" in data and data["val_split"] is None:  # nothing to validate on
        values = {k: v for k, v in values.items() if "_val_" not in k and "val_check" not in k}
    entry = MODELS.get(config["model"]["name"])
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    spec = _spec(config)
    if spec.inputs == "binned_counts":  # the synthetic counts store: all its units
        values["model.n_units"] = str(N_UNITS)
    elif spec.inputs == "spike_events":  # the real grasshopper receptor: one unit
        values["model.n_units"] = "1"
        values["model.n_bins"] = str(min(WINDOW, data["window_length"]))
    # channel ids index the store's whole channel vocabulary: such models read every channel;
    # text segments have no channel selection (channels is None)
    elif channels is not None and "channel_ids" not in spec.context:
        values["data.channels"] = json.dumps(channels)
        if "n_chans" in fields:
            values["model.n_chans"] = str(len(channels))
        if spec.inputs == "field_potentials":  # the sample store's rate
            values["model.sfreq"] = "160.0"
    values.update(
        {
            "data.batch_size": "2",
            "data.num_workers": "0",
            "output.checkpoint_every_n_steps": "2",
            "model.preset": "tiny",
        }
    )
    if (data.get("window_length") or 0) > WINDOW:
        values.update({"data.window_length": str(WINDOW), "data.stride": str(WINDOW)})
    # a flat token sequence holds every channel's samples: N_CHANS tokens per time step
    flat = spec.inputs == "token_sequence"
    shrink = {"max_seq_len": str(WINDOW * N_CHANS if flat else WINDOW)}
    if "tokenizer" in config:
        shrink["vocab_size"] = "256"  # the example tokenizers' 256 mu-law levels
    values.update({f"model.{k}": v for k, v in shrink.items() if k in fields})
    return [arg for key, value in values.items() for arg in (f"--{key}", value)]


@pytest.mark.parametrize(
    "path", FIT_CONFIGS, ids=[str(p.relative_to(CONFIGS)) for p in FIT_CONFIGS]
)
def test_fit_config_run_evaluates(path, request, tmp_path, capsys):
    config = load_yaml(path)
    text = config["data"].get("format") == "text_segments"
    events = config["data"].get("format") == "spike_events"
    if text:
        store, channels = request.getfixturevalue("masc_like"), None
    elif events:  # a spike-times file with its stimulus: the real grasshopper recording
        folder = request.getfixturevalue("shared_data") / "spikes_grasshopper"
        store, channels = folder / "grasshopper_spike_times1.txt", None
    elif _spec(config).inputs == "binned_counts":
        store, channels = request.getfixturevalue("counts_store"), None
    else:
        store, channels = request.getfixturevalue("prepared")
    run = tmp_path / "run"
    args = ["fit", "--config", str(path), "--data.store", str(store), "--output.dir", str(run)]
    overrides = _overrides(config, channels)
    if events:
        behaviour = str(folder / "grasshopper_stimulus1.txt")
        overrides += ["--data.behaviour_file", behaviour]
    if text:
        overrides += [arg for k, v in TEXT_DATA.items() for arg in (f"--{k}", v)]
    if config["objective"]["name"] == "meg_text_distill":  # a tiny teacher run first
        teacher = CONFIGS / "fit" / "meg_text" / "full.yaml"
        fit_teacher = ["fit", "--config", str(teacher), "--data.store", str(store)]
        teacher_run = tmp_path / "teacher"
        assert main([*fit_teacher, "--output.dir", str(teacher_run), *overrides]) == 0
        hidden = str(from_pretrained(teacher_run / "model").config.llm_hidden)
        overrides += ["--objective.teacher", str(teacher_run), "--model.distill_hidden", hidden]
    assert main(args + overrides) == 0

    out = tmp_path / "eval"
    settings = {**EVALUATION, **({"text_max_new_tokens": "4"} if text else {})}
    evaluation = [arg for k, v in settings.items() for arg in (f"--evaluation.{k}", v)]
    code = main(["evaluate", str(run), "--output", str(out), *evaluation])
    spec = model_spec(from_pretrained(run / "model"))
    printed = capsys.readouterr()
    assert code == 0, printed.err
    report = json.loads((out / "report.json").read_text())
    if report["task"] == "next_band":  # its scores are MSEs per stage, not bits
        assert "bits per channel-sample" not in printed.out
    task = TASKS.get((spec.inputs, spec.outputs, spec.sampling))
    assert report["task"] == (task or TASKS[(spec.inputs, spec.outputs)])
    assert report["model"] == config["model"]["name"]
    assert (out / "report.html").is_file()
