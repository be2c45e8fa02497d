"""Leave-one-run-out decoding of labelled EEGBCI runs (``neurofm decode``).

:func:`cross_validate_runs` fits reference decoders (band-power LDA, CSP + LDA) and a fresh
neurofm classifier in each fold (one run held out) and scores the pooled held-out predictions
with exact binomial intervals and label-permutation p-values. Its pieces are public so that
other decoders can be scored on the same windows and folds: :func:`eegbci_windows` (the
windows, labels and runs), :func:`fold_standardisation` (what a fold's network sees),
:func:`train_classifier`, :func:`permuted_labels` and :func:`held_out_scores`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.errors import ConfigError
from neurofm.evaluation.decoding import balanced_accuracy, model_input, model_log_probs
from neurofm.evaluation.decoding_baselines import shrinkage_lda
from neurofm.logging import get_logger

log = get_logger("evaluation")


EEGBCI_LEFT_RIGHT_RUNS = (3, 4, 7, 8, 11, 12)
"""EEGBCI runs where T1 / T2 are the left / right fist (executed: 3, 7, 11; imagined: 4, 8, 12)."""


def accuracy_interval(n_correct: int, n_total: int, level: float = 0.95) -> list[float]:
    """Exact (Clopper-Pearson) binomial interval of an accuracy ``n_correct / n_total``."""
    from scipy import stats

    ci = stats.binomtest(int(n_correct), int(n_total)).proportion_ci(level, method="exact")
    return [float(ci.low), float(ci.high)]


def csp_lda(n_components: int = 4) -> Any:
    """CSP + shrinkage LDA: a scikit-learn pipeline of ``mne.decoding.CSP`` (``n_components``
    common spatial patterns, log average power of the components) and :func:`shrinkage_lda`.

    It takes windows ``(N, C, T)``, band-passed beforehand. CSP uses MNE's defaults (class
    covariances of the concatenated windows, no regularisation, two-class components ordered by
    mutual information) except ``rank="full"``: the covariance is taken as full-rank (EEG neither
    re-referenced to the average nor projected), which saves an SVD of the data per fit.
    """
    from mne.decoding import CSP

    return shrinkage_lda(CSP(n_components=n_components, reg=None, log=True, rank="full"))


def _read_runs(
    folder: Path, runs: tuple[int, ...], preprocessing: list[dict[str, Any]]
) -> dict[int, Any]:
    """Preprocessed EEG channels of the EEGBCI files ``S###R{run:02d}.edf`` in ``folder``."""
    import re

    from neurofm.io import read_recording
    from neurofm.preprocessing import Pipeline, pick_types

    pattern = re.compile(r"S\d{3}R(\d{2})\.edf$", re.IGNORECASE)
    found = {
        int(m.group(1)): p for p in sorted(folder.rglob("*.edf")) if (m := pattern.search(p.name))
    }
    missing = [r for r in runs if r not in found]
    if missing:
        raise ConfigError(
            f"{folder}: no EEGBCI file S###R##.edf for runs {missing} (found runs "
            f"{sorted(found) or 'none'})"
        )
    pipeline = Pipeline.from_config(preprocessing)
    return {r: pipeline(pick_types(read_recording(found[r], preload=True), ["eeg"])) for r in runs}


def _event_windows(
    recording: Any, labels: dict[str, int], window: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``(N, C, T)`` from ``window[0]`` to ``window[1]`` s after each labelled onset."""
    sfreq = recording.sfreq
    offset, length = round(window[0] * sfreq), round((window[1] - window[0]) * sfreq)
    data = np.asarray(recording.data)
    xs, ys = [], []
    for onset, name in zip(recording.events.onset, recording.events.description):
        start = round(onset * sfreq) + offset
        if name in labels and 0 <= start and start + length <= data.shape[1]:
            xs.append(data[:, start : start + length])
            ys.append(labels[name])
    if not xs:
        raise ConfigError(
            f"{recording.source.get('path')}: no event {sorted(labels)} with a full window "
            f"{list(window)} s"
        )
    return np.stack(xs).astype(np.float64), np.asarray(ys, dtype=np.int64)


def _band_filtered(x: np.ndarray, sfreq: float, band: tuple[float, float]) -> np.ndarray:
    """Windows band-passed with a 4th-order Butterworth, forwards and backwards in each window."""
    from scipy import signal

    sos = signal.butter(4, band, btype="bandpass", fs=sfreq, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1)


def train_classifier(
    model_spec: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
) -> torch.nn.Module:
    """A fresh ``model_spec`` classifier trained with Adam on cross-entropy (CPU, a few epochs)."""
    from neurofm.registry import MODELS, create

    torch.manual_seed(seed)
    n_classes = int(y.max()) + 1
    model = create(MODELS, {**model_spec, "n_chans": x.shape[1], "n_classes": n_classes})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    xt = model_input(x)
    yt = torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=generator).split(batch_size):
            loss = torch.nn.functional.cross_entropy(model(xt[idx]).logits, yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def _within_run_permutation(
    y: np.ndarray, groups: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    out = y.copy()
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[idx] = y[rng.permutation(idx)]
    return out


def _cv_predict(
    estimator: Any, inputs: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Held-out predictions of ``estimator`` refitted in each leave-one-run-out fold."""
    import mne
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

    with mne.utils.use_log_level("warning"):
        return cross_val_predict(estimator, inputs, y, groups=groups, cv=LeaveOneGroupOut())


def cross_validate_runs(
    folder: str | Path,
    *,
    runs: tuple[int, ...] = EEGBCI_LEFT_RIGHT_RUNS,
    labels: dict[str, int] | None = None,
    window: tuple[float, float] = (0.0, 4.0),
    preprocessing: list[dict[str, Any]] | None = None,
    csp_band: tuple[float, float] = (8.0, 30.0),
    model: dict[str, Any] | None = None,
    epochs: int = 15,
    batch_size: int = 16,
    n_permutations: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Leave-one-run-out decoding of labelled event windows of EEGBCI runs.

    Every decoder is fitted on all runs but one and predicts the windows of the held-out run;
    the scores pool the held-out predictions of all folds.

    Decoders (the same folds):

    - ``band_power_lda``: log10 band power (delta .. gamma, Welch) per channel, standardised,
      scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")``
      (:func:`~neurofm.evaluation.baselines.shrinkage_lda`);
    - ``csp_lda``: windows band-passed to ``csp_band`` Hz, ``mne.decoding.CSP`` (4 components
      fitted on the train runs, log power) then the same standardisation and LDA
      (:func:`csp_lda`);
    - ``model``: a fresh neurofm classifier (``model``, default ``classifier_continuous`` preset
      ``small``) trained ``epochs`` epochs per fold (AdamW, lr 1e-3) on windows standardised per
      channel with the train runs' mean and standard deviation. ``model={}`` leaves it out.

    Parameters
    ----------
    folder : path
        Folder holding the EDF files ``S###R##.edf`` (searched recursively), read with
        :func:`neurofm.io.read_recording` and preprocessed with ``preprocessing`` (default: the
        notch and band-pass of the ``eegbci`` recipes), EEG channels only.
    runs : tuple of int
        Run numbers; one fold per run (default: the six left vs right fist runs).
    labels : dict of str to int
        Event description -> class (default ``{"T1": 0, "T2": 1}``: left vs right fist).
    window : (float, float)
        Start and end of each window in s from the event onset.
    n_permutations : int
        Label permutations of the p-values (each within runs, keeping every run's class counts).
        The reference decoders are refitted in every fold of every permutation; CSP fits
        dominate the time (``len(runs) * (1 + n_permutations)`` fits of ``mne.decoding.CSP``,
        about 0.3 s each for 64 channels and 4 s windows on one CPU thread).

    Returns
    -------
    dict
        Per decoder: ``accuracy`` (held-out windows of all folds), ``accuracy_95ci`` (exact
        binomial interval), ``balanced_accuracy``, ``per_run_accuracy``, ``p_value`` and
        ``p_value_method``; plus the windows, runs and settings.
        ``p_value`` = ``(1 + #{permuted accuracy >= observed}) / (1 + n_permutations)``. For the
        two reference decoders it is the permutation test of scikit-learn's
        ``permutation_test_score``: the whole cross-validation is refitted on each permutation of
        the labels. The neurofm model is trained once per fold, so its test permutes the held-out
        labels with its predictions fixed (a test that its predictions depend on the labels).
    """
    from neurofm.evaluation.realism import band_power

    labels = dict(labels or {"T1": 0, "T2": 1})
    model = {"name": "classifier_continuous", "preset": "small"} if model is None else model
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    if len(runs) < 2:
        raise ValueError(f"cross-validation over runs needs >= 2 runs, got {list(runs)}")
    x, y, groups, sfreq, steps = eegbci_windows(
        folder, runs=runs, labels=labels, window=window, preprocessing=preprocessing
    )
    log.info("decoding %d windows of %d runs (%d channels)", len(y), len(runs), x.shape[1])

    power, _ = band_power(x, sfreq)
    band_features = np.log10(power + 1e-30).reshape(len(x), -1)
    filtered = _band_filtered(x, sfreq, csp_band)

    permuted = permuted_labels(y, groups, n_permutations, seed)
    decoders: dict[str, dict[str, Any]] = {}
    for name, estimator, inputs in (
        ("band_power_lda", shrinkage_lda(), band_features),
        ("csp_lda", csp_lda(), filtered),
    ):
        predicted = _cv_predict(estimator, inputs, y, groups)
        null = np.array([np.mean(_cv_predict(estimator, inputs, p, groups) == p) for p in permuted])
        decoders[name] = _cv_scores(predicted, y, groups, null, "refit on permuted labels")
    if model:
        predicted = np.empty_like(y)
        for i, r in enumerate(runs):
            test = groups == r
            mean, std = fold_standardisation(x, test)
            net = train_classifier(
                model,
                (x[~test] - mean) / std,
                y[~test],
                epochs=epochs,
                batch_size=batch_size,
                seed=seed + i,
            )
            log_probs = model_log_probs(net, (x[test] - mean) / std, batch_size)
            predicted[test] = log_probs.argmax(axis=1)
        decoders["model"] = held_out_scores(predicted, y, groups, permuted)
    return {
        "task": "decoding_cross_validated",
        "folder": str(folder),
        "runs": [int(r) for r in runs],
        "labels": labels,
        "window_seconds": [float(w) for w in window],
        "sfreq": sfreq,
        "n_chans": int(x.shape[1]),
        "n_windows": int(len(y)),
        "n_per_class": np.bincount(y).tolist(),
        "n_windows_per_run": {str(r): int(np.sum(groups == r)) for r in runs},
        "preprocessing": steps,
        "csp_band": [float(b) for b in csp_band],
        "model": dict(model) or None,
        "epochs": int(epochs),
        "n_permutations": int(n_permutations),
        "seed": int(seed),
        "decoders": decoders,
        "definitions": {
            "cross-validation": "leave one run out: fitted on the other runs, scored on the "
            "held-out run; scores pool the held-out windows of all folds",
            "accuracy_95ci": "exact (Clopper-Pearson) binomial 95% interval over windows",
            "p_value": "(1 + #{permuted accuracy >= observed}) / (1 + n_permutations); labels "
            "permuted within runs",
            "chance": "0.5 for balanced classes; null_mean is the permutation estimate",
        },
    }


def eegbci_windows(
    folder: str | Path,
    *,
    runs: tuple[int, ...] = EEGBCI_LEFT_RIGHT_RUNS,
    labels: dict[str, int] | None = None,
    window: tuple[float, float] = (0.0, 4.0),
    preprocessing: list[dict[str, Any]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, list[dict[str, Any]]]:
    """The labelled event windows that :func:`cross_validate_runs` decodes.

    Parameters are those of :func:`cross_validate_runs`.

    Returns
    -------
    x : array, shape (N, C, T)
        Windows of all runs (float64), in run order then event order.
    y : array, shape (N,)
        Their classes.
    groups : array, shape (N,)
        Their run numbers (one leave-one-run-out fold per run).
    sfreq : float
        Sampling frequency (Hz).
    preprocessing : list of dict
        The preprocessing steps applied.
    """
    from neurofm.data.recipes import EEGBCI_PREPROCESSING

    labels = dict(labels or {"T1": 0, "T2": 1})
    steps = [dict(s) for s in (EEGBCI_PREPROCESSING if preprocessing is None else preprocessing)]
    recordings = _read_runs(Path(folder), tuple(runs), steps)
    sfreq = float(next(iter(recordings.values())).sfreq)
    parts = {r: _event_windows(rec, labels, window) for r, rec in recordings.items()}
    x = np.concatenate([p[0] for p in parts.values()])
    y = np.concatenate([p[1] for p in parts.values()])
    groups = np.concatenate([np.full(len(p[1]), r) for r, p in parts.items()])
    return x, y, groups, sfreq, steps


def fold_standardisation(x: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (+1e-12) of the train windows ``x[~test]``,
    shaped (1, C, 1): the standardisation a fold's network sees (train and held-out windows)."""
    train = x[~test]
    return train.mean(axis=(0, 2), keepdims=True), train.std(axis=(0, 2), keepdims=True) + 1e-12


def permuted_labels(
    y: np.ndarray, groups: np.ndarray, n_permutations: int, seed: int
) -> list[np.ndarray]:
    """``n_permutations`` permutations of ``y`` within runs (``groups``), as the p-values of
    :func:`cross_validate_runs` draw them with ``seed``."""
    rng = np.random.default_rng(seed)
    return [_within_run_permutation(y, groups, rng) for _ in range(n_permutations)]


def held_out_scores(
    predicted: np.ndarray, y: np.ndarray, groups: np.ndarray, permuted: list[np.ndarray]
) -> dict[str, Any]:
    """Scores of a network's pooled held-out predictions, as :func:`cross_validate_runs` reports
    its ``model``: accuracy with its exact 95% interval, balanced and per-run accuracy, and the
    p-value of the held-out labels permuted (``permuted``) with the predictions fixed."""
    null = np.array([np.mean(predicted == p) for p in permuted])
    return _cv_scores(predicted, y, groups, null, "held-out labels permuted, predictions fixed")


def _cv_scores(
    predicted: np.ndarray, y: np.ndarray, groups: np.ndarray, null: np.ndarray, method: str
) -> dict[str, Any]:
    correct = predicted == y
    observed = float(correct.mean())
    return {
        "accuracy": observed,
        "accuracy_95ci": accuracy_interval(int(correct.sum()), correct.size),
        "balanced_accuracy": balanced_accuracy(predicted, y),
        "per_run_accuracy": {str(g): float(correct[groups == g].mean()) for g in np.unique(groups)},
        "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size)),
        "p_value_method": method,
        "null_mean": float(null.mean()),
        "null_q95": float(np.quantile(null, 0.95)),
    }
