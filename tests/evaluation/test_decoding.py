"""Decoding evaluation: scores and permutation test on synthetic arrays, and ``neurofm evaluate``
on a tiny classifier trained on the prepared shipped sample (T1 vs T2 event-locked windows)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from neurofm.cli.main import main
from neurofm.evaluation.decoding import (
    decoding_scores,
    evaluate_decoding,
    permutation_test,
)
from neurofm.evaluation.evaluate import EvaluateConfig

PREDICTORS = {
    "model",
    "chance",
    "band_power_lda",
    "control_shuffled_input",
    "control_noise_input",
}


def _one_hot_log_probs(predicted: np.ndarray, k: int, sure: float = 0.9) -> np.ndarray:
    p = np.full((predicted.size, k), (1 - sure) / (k - 1))
    p[np.arange(predicted.size), predicted] = sure
    return np.log(p)


def test_scores_of_a_perfect_classifier():
    y = np.array([0, 1, 1, 0, 2, 2, 1, 0, 1, 2] * 4)
    scores = decoding_scores(_one_hot_log_probs(y, 3), y)
    assert scores["accuracy"] == 1.0 and scores["balanced_accuracy"] == 1.0
    assert scores["confusion"] == np.diag(np.bincount(y)).tolist()
    assert scores["n_true"] == scores["n_predicted"] == np.bincount(y).tolist()
    assert scores["recall"] == [1.0, 1.0, 1.0]
    assert math.isclose(scores["cross_entropy"], -math.log(0.9))
    assert math.isclose(scores["bits"], -math.log2(0.9))
    test = permutation_test(y, y, n_permutations=200, seed=0)
    assert test["observed"] == 1.0 and test["p_value"] < 0.05
    assert test["p_value"] == pytest.approx(1 / 201)
    assert 0.2 < test["null_mean"] < 0.5


def test_scores_count_errors_by_class():
    y = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 0, 1, 0, 1])
    scores = decoding_scores(_one_hot_log_probs(predicted, 2), y)
    assert scores["confusion"] == [[3, 1], [1, 1]]
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert scores["recall"] == [0.75, 0.5] and scores["n_predicted"] == [4, 2]


def test_random_predictions_are_not_significant():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    predicted = rng.integers(0, 2, 200)
    test = permutation_test(predicted, y, n_permutations=200, seed=1)
    assert test["p_value"] > 0.1
    assert abs(test["null_mean"] - 0.5) < 0.02
    # a constant predictor scores exactly chance under every permutation
    constant = permutation_test(np.zeros_like(y), y, n_permutations=50)
    assert constant["observed"] == 0.5 and constant["p_value"] == 1.0


def test_scores_reject_bad_labels():
    with pytest.raises(ValueError, match="label 2 of window 1"):
        decoding_scores(np.log(np.full((3, 2), 0.5)), [0, 2, 1])
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        decoding_scores(np.log(np.full((3, 2), 0.5)), [0, 1])


class _PowerClassifier(torch.nn.Module):
    """Class 1 when channel 0 carries more power than channel 1 (a fixed, known decoder)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(4.0))

    def forward(self, x: torch.Tensor):
        from neurofm.types import ModelOutput

        power = x.pow(2).mean(dim=-1).log()  # (B, C)
        margin = self.scale * (power[:, 0] - power[:, 1])
        return ModelOutput(logits=torch.stack([-margin, margin], dim=1) / 2)


def _power_windows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.tile([0, 1], n // 2)
    x = rng.standard_normal((n, 2, 80))
    x[y == 1, 0] *= 3.0
    x[y == 0, 1] *= 3.0
    return x, y


def test_evaluate_decoding_on_arrays():
    rng = np.random.default_rng(0)
    train_x, train_y = _power_windows(40, rng)
    test_x, test_y = _power_windows(30, rng)
    result = evaluate_decoding(
        _PowerClassifier(),
        train_x=train_x,
        train_labels=train_y,
        test_x=test_x,
        test_labels=test_y,
        sfreq=80.0,
        class_names={0: "left", 1: "right"},
        config=EvaluateConfig(n_permutations=100),
    )
    report = result.report
    dec = report["decoding"]
    assert set(dec) == PREDICTORS and report["class_names"] == ["left", "right"]
    assert dec["model"]["accuracy"] == 1.0 and dec["model"]["p_value"] < 0.05
    assert dec["band_power_lda"]["balanced_accuracy"] > 0.9
    assert dec["chance"]["balanced_accuracy"] == 0.5 and dec["chance"]["p_value"] == 1.0
    assert dec["chance"]["bits"] == pytest.approx(1.0)
    # the decoder reads power, which time shuffling keeps and matched noise keeps too
    assert dec["control_shuffled_input"]["accuracy"] == 1.0
    assert report["n_windows"] == 30 and report["n_test_per_class"] == [15, 15]


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory) -> Path:
    from neurofm.data.recipes import prepare_recipe
    from neurofm.training.fit import fit

    root = tmp_path_factory.mktemp("decoding")
    prepare_recipe("eegbci_sample", root / "prepared")
    config = {
        "data": {
            "store": str(root / "prepared"),
            "labels": {"T1": 0, "T2": 1},
            "event_window": [0.0, 2.0],
            "normalize": True,
            "batch_size": 8,
            "num_workers": 0,
        },
        "model": {"name": "classifier_continuous", "preset": "tiny", "n_chans": 64, "n_classes": 2},
        "objective": {"name": "classification"},
        "optim": {"lr": 3.0e-3},
        "trainer": {
            "max_steps": 24,
            "max_epochs": 4,
            "accelerator": "cpu",
            "devices": 1,
            "strategy": "auto",
            "precision": "32-true",
            "enable_progress_bar": False,
            "seed": 0,
        },
        "output": {"dir": str(root / "run"), "checkpoint_every_n_steps": 24},
    }
    torch.manual_seed(0)
    return fit(config)


def test_evaluate_classification_run(classification_run, capsys):
    assert main(["evaluate", str(classification_run)]) == 0
    printed = capsys.readouterr().out
    assert "balanced accuracy model" in printed and "band-power LDA" in printed
    out = classification_run / "eval-test"
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "decoding" and report["split"] == "test"
    assert report["model"] == "classifier_continuous"
    assert report["class_names"] == ["T1", "T2"]
    dec = report["decoding"]
    assert set(dec) == PREDICTORS
    for name, scores in dec.items():
        for key in ("accuracy", "balanced_accuracy", "cross_entropy", "bits", "p_value"):
            assert isinstance(scores[key], float) and math.isfinite(scores[key]), (name, key)
        assert 0.0 <= scores["balanced_accuracy"] <= 1.0 and 0.0 < scores["p_value"] <= 1.0
        assert sum(map(sum, scores["confusion"])) == report["n_windows"]
    # held-out run R12: every T1 / T2 event gives one 2 s window (320 samples at 160 Hz)
    assert report["window_length"] == 320 and report["n_chans"] == 64
    assert sum(report["n_test_per_class"]) == report["n_windows"] >= 10
    assert min(report["n_test_per_class"]) > 0 and min(report["n_train_per_class"]) > 0
    assert report["n_permutations"] == 1000
    assert {"confusion.png", "scores.png"} <= set(report["plots"])
    assert all((out / name).is_file() for name in report["plots"])
    page = (out / "report.html").read_text()
    assert "band_power_lda" in page and "confusion matrix" in page
    print(
        json.dumps({k: {m: v[m] for m in ("balanced_accuracy", "p_value")} for k, v in dec.items()})
    )


def test_csp_lda_separates_classes_by_channel_variance():
    from mne.decoding import CSP

    from neurofm.evaluation.decoding_runs import csp_lda

    rng = np.random.default_rng(0)

    def windows(n: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = _power_windows(n, rng)  # class 1: channel 0 louder; class 0: channel 1 louder
        return np.concatenate([x, rng.standard_normal((n, 2, 80))], axis=1), y  # + 2 noise

    train_x, train_y = windows(40)
    test_x, test_y = windows(40)
    pipeline = csp_lda(n_components=2).fit(train_x, train_y)
    assert isinstance(pipeline[0], CSP) and pipeline[-1].shrinkage == "auto"
    assert np.mean(pipeline.predict(test_x) == test_y) >= 0.95
    # one component per informative channel, in MNE's (components, channels) filters
    weight = np.abs(pipeline[0].filters_[:2])
    assert set(weight.argmax(axis=1)) == {0, 1}
    # with the labels shuffled, nothing separates the classes
    shuffled = csp_lda(n_components=2).fit(train_x, rng.permutation(train_y))
    assert np.mean(shuffled.predict(test_x) == test_y) < 0.8


def test_leave_one_run_out_on_real_eegbci_runs(shared_data):
    from neurofm.evaluation.decoding_runs import cross_validate_runs

    report = cross_validate_runs(
        shared_data / "eegbci_S001",
        runs=(3, 7, 11),
        window=(0.0, 4.0),
        model={"name": "classifier_continuous", "preset": "tiny"},
        epochs=1,
        n_permutations=4,
    )
    assert report["n_windows"] == sum(report["n_windows_per_run"].values()) >= 40
    assert report["n_chans"] == 64 and report["sfreq"] == 160.0
    assert set(report["decoders"]) == {"band_power_lda", "csp_lda", "model"}
    for scores in report["decoders"].values():
        low, high = scores["accuracy_95ci"]
        assert 0.0 <= low <= scores["accuracy"] <= high <= 1.0
        assert set(scores["per_run_accuracy"]) == {"3", "7", "11"}
        assert 1 / 5 <= scores["p_value"] <= 1.0
    # executed left vs right fist: CSP over the motor cortex beats chance
    assert report["decoders"]["csp_lda"]["accuracy"] > 0.6


def test_cross_validation_names_missing_runs(tmp_path):
    from neurofm.errors import ConfigError
    from neurofm.evaluation.decoding_runs import cross_validate_runs

    with pytest.raises(ConfigError, match=r"runs \[3, 4\]"):
        cross_validate_runs(tmp_path, runs=(3, 4), n_permutations=1)


def test_decode_command(shared_data, tmp_path, capsys):
    argv = ["decode", str(shared_data / "eegbci_S001"), "--runs", "[3, 7]", "--window", "[0, 2]"]
    argv += ["--model", "none", "--n_permutations", "5", "--output", str(tmp_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "csp_lda" in printed and "p " in printed
    report = json.loads((tmp_path / "decoding.json").read_text())
    assert report["runs"] == [3, 7] and report["model"] is None
    assert set(report["decoders"]) == {"band_power_lda", "csp_lda"}
