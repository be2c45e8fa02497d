"""Score a window classifier next to chance, a classical pipeline and controls.

:func:`decoding_scores` and :func:`permutation_test` work on arrays; :func:`evaluate_decoding`
on a model and labelled windows; :func:`evaluate_decoding_run` on a run of a model with
``class_logits`` outputs (``neurofm evaluate`` picks it by the model's spec). Leave-one-run-out
decoding of EEGBCI runs (``neurofm decode``) is in :mod:`neurofm.evaluation.decoding_runs`.

What is compared, all on the same held-out labelled windows:

- ``model``: the trained classifier, ``model(x (B, C, T)).logits`` (B, K);
- ``chance``: the majority class of the train labels
  (:func:`~neurofm.evaluation.decoding_baselines.majority_class`); its predictive distribution, used for
  the cross-entropy, is the train class frequencies with add-one smoothing;
- ``band_power_lda``: log band power per channel + scikit-learn's shrinkage LDA
  (:class:`~neurofm.evaluation.decoding_baselines.BandPowerLDA`) fitted on the train windows; its
  predictive distribution is the softmax of its linear discriminants (the LDA posterior);
- ``control_shuffled_input``: the same model fed each window with its time axis permuted (one
  random permutation per window, all channels alike), scored against the real labels;
- ``control_noise_input``: the same model fed Gaussian white noise with the mean and standard
  deviation of each real window's channels, scored against the real labels.

Every predictor carries a label-permutation test of its balanced accuracy: the held-out labels
are permuted ``n_permutations`` times with the predictions fixed, and
``p = (1 + #{permuted >= observed}) / (1 + n_permutations)``; the mean and 95th percentile of the
permuted balanced accuracies are the empirical chance level of these windows.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.errors import ConfigError
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly, write_run_report
from neurofm.evaluation.decoding_baselines import BandPowerLDA, majority_class
from neurofm.evaluation.metrics import LN2, _as_numpy, log_softmax
from neurofm.logging import get_logger

log = get_logger("evaluation")


def _check_labels(labels: Any, n_classes: int, what: str) -> np.ndarray:
    y = _as_numpy(labels).astype(np.int64).reshape(-1)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}: label {int(y[first])} of window {first} lies outside 0..{n_classes - 1}"
        )
    return y


def balanced_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels`` (both (N,) int)."""
    classes = np.unique(labels)
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in classes]))


def decoding_scores(log_probs: Any, labels: Any) -> dict[str, Any]:
    """Classification scores of predictive distributions on labelled windows.

    Parameters
    ----------
    log_probs : array, shape (N, K)
        Natural-log class probabilities of each window (rows sum to 1 in probability).
    labels : array, shape (N,)
        True classes in ``0 .. K - 1``.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present),
        ``cross_entropy`` (mean -ln p(true class), nats), ``bits`` (the same in bits),
        ``confusion`` (K x K counts, rows true class, columns predicted class), ``recall`` (per
        class, None for a class absent from ``labels``), ``n_true`` and ``n_predicted`` (per
        class counts), ``n_windows``.
    """
    lp = _as_numpy(log_probs).astype(np.float64)
    if lp.ndim != 2 or lp.shape[1] < 2:
        raise ValueError(f"log_probs must have shape (N, K >= 2), got {lp.shape}")
    n, k = lp.shape
    y = _check_labels(labels, k, "decoding_scores")
    if y.shape[0] != n or n == 0:
        raise ValueError(f"{n} predictions for {y.shape[0]} labels (need the same, >= 1)")
    predicted = lp.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    n_true = confusion.sum(axis=1)
    recall = [float(confusion[c, c] / n_true[c]) if n_true[c] else None for c in range(k)]
    ce = float(-lp[np.arange(n), y].mean())
    return {
        "accuracy": float(np.mean(predicted == y)),
        "balanced_accuracy": balanced_accuracy(predicted, y),
        "cross_entropy": ce,
        "bits": ce / LN2,
        "confusion": confusion.tolist(),
        "recall": recall,
        "n_true": n_true.tolist(),
        "n_predicted": confusion.sum(axis=0).tolist(),
        "n_windows": int(n),
    }


def permutation_test(
    predicted: Any, labels: Any, *, n_permutations: int = 200, seed: int = 0
) -> dict[str, float]:
    """Label-permutation test of the balanced accuracy of fixed predictions.

    Parameters
    ----------
    predicted, labels : arrays, shape (N,)
        Predicted and true classes.
    n_permutations : int
        Random permutations of ``labels``.
    seed : int

    Returns
    -------
    dict
        ``observed`` balanced accuracy, ``p_value`` (one-sided, ``(1 + #{null >= observed}) /
        (1 + n_permutations)``), ``null_mean`` and ``null_q95`` of the permuted scores,
        ``n_permutations``.
    """
    pred = _as_numpy(predicted).astype(np.int64).reshape(-1)
    y = _as_numpy(labels).astype(np.int64).reshape(-1)
    if pred.shape != y.shape or y.size == 0:
        raise ValueError(f"{pred.size} predictions for {y.size} labels (need the same, >= 1)")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    perms = np.stack([y[rng.permutation(y.size)] for _ in range(n_permutations)])  # (P, N)
    classes = np.unique(y)
    counts = np.array([np.sum(y == c) for c in classes])  # unchanged by permutation
    hits = np.stack([((perms == c) & (pred == c)).sum(axis=1) for c in classes], axis=1)
    null = (hits / counts).mean(axis=1)  # (P,)
    observed = balanced_accuracy(pred, y)
    tol = 1e-12  # equal scores count as reaching the observed one
    return {
        "observed": observed,
        "p_value": float((1 + np.sum(null >= observed - tol)) / (1 + n_permutations)),
        "null_mean": float(null.mean()),
        "null_q95": float(np.quantile(null, 0.95)),
        "n_permutations": int(n_permutations),
    }


def model_input(x: np.ndarray) -> torch.Tensor:
    """Float windows as float32, integer codes as int64 (a quantized classifier's input)."""
    dtype = np.int64 if np.issubdtype(np.asarray(x).dtype, np.integer) else np.float32
    return torch.from_numpy(np.ascontiguousarray(x, dtype))


def model_log_probs(model: torch.nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    params = next(iter(model.parameters()), None)
    device = params.device if params is not None else torch.device("cpu")
    parts = []
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            xb = model_input(x[lo : lo + batch_size])
            logits = model(xb.to(device)).logits
            if logits is None or logits.ndim != 2 or logits.shape[0] != xb.shape[0]:
                got = None if logits is None else tuple(logits.shape)
                raise ValueError(f"the model gives logits {got}; expected ({xb.shape[0]}, K)")
            parts.append(log_softmax(logits))
    return np.concatenate(parts)


def _lda_log_probs(lda: BandPowerLDA, x: np.ndarray, n_classes: int) -> np.ndarray:
    """LDA posterior (softmax of the linear discriminants) spread onto all ``n_classes``: a class
    absent from the train labels gets probability 0."""
    out = np.full((len(x), n_classes), -np.inf)
    out[:, lda.classes] = lda.predict_log_proba(x)
    return out


def _controls(x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shuffled = np.stack([w[:, rng.permutation(w.shape[-1])] for w in x])
    mean, std = x.mean(axis=-1, keepdims=True), x.std(axis=-1, keepdims=True)
    noise = mean + std * rng.standard_normal(x.shape)
    return {"control_shuffled_input": shuffled, "control_noise_input": noise}


def evaluate_decoding(
    model: torch.nn.Module,
    *,
    train_x: Any,
    train_labels: Any,
    test_x: Any,
    test_labels: Any,
    sfreq: float,
    class_names: dict[int, str] | None = None,
    config: EvaluateConfig | None = None,
) -> EvaluationResult:
    """Score ``model`` next to chance, band-power LDA and controls on held-out windows.

    Parameters
    ----------
    model : nn.Module
        Window classifier: ``model(x (B, C, T) float).logits`` (B, K).
    train_x : array, shape (N, C, T)
        Train windows (signal units as the model sees them); LDA is fitted on these.
    train_labels : array, shape (N,)
        Their classes; chance is their majority class.
    test_x : array, shape (M, C, T)
        Held-out windows scored.
    test_labels : array, shape (M,)
        Their classes in ``0 .. K - 1``.
    sfreq : float
        Sampling frequency (Hz), for the band powers.
    class_names : dict of int to str, optional
        Name of class ids (default: the id itself).
    config : EvaluateConfig, optional
        ``batch_size``, ``n_permutations`` and ``seed`` are used.
    """
    cfg = config or EvaluateConfig()
    train_x = _as_numpy(train_x).astype(np.float64)
    test_x = _as_numpy(test_x).astype(np.float64)
    rng = np.random.default_rng(cfg.seed)
    log_probs = {"model": model_log_probs(model, test_x, cfg.batch_size)}
    n_win, n_classes = log_probs["model"].shape
    y_test = _check_labels(test_labels, n_classes, "held-out windows")
    y_train = _check_labels(train_labels, n_classes, "train windows")
    if y_test.size != len(test_x) or y_train.size != len(train_x):
        raise ValueError("one label per window is needed, for train and held-out windows")
    names = [(class_names or {}).get(c, str(c)) for c in range(n_classes)]

    prior = (np.bincount(y_train, minlength=n_classes) + 1.0) / (y_train.size + n_classes)
    majority = majority_class(y_train)  # == argmax of the prior (smallest id on ties)
    log_probs["chance"] = np.tile(np.log(prior), (n_win, 1))
    lda = BandPowerLDA(sfreq).fit(train_x, y_train)
    log_probs["band_power_lda"] = _lda_log_probs(lda, test_x, n_classes)
    for name, inputs in _controls(test_x, rng).items():
        log_probs[name] = model_log_probs(model, inputs, cfg.batch_size)

    log.info("scoring %d held-out windows, %d classes", n_win, n_classes)
    decoding = {}
    for i, (name, lp) in enumerate(log_probs.items()):
        scores = decoding_scores(lp, y_test)
        test = permutation_test(
            lp.argmax(axis=1), y_test, n_permutations=cfg.n_permutations, seed=cfg.seed + i
        )
        scores.update(
            p_value=test["p_value"], null_mean=test["null_mean"], null_q95=test["null_q95"]
        )
        decoding[name] = scores
    report = {
        "task": "decoding",
        "sfreq": float(sfreq),
        "n_windows": int(n_win),
        "n_train_windows": int(y_train.size),
        "n_chans": int(test_x.shape[1]),
        "window_length": int(test_x.shape[2]),
        "n_classes": int(n_classes),
        "class_names": names,
        "n_train_per_class": np.bincount(y_train, minlength=n_classes).tolist(),
        "n_test_per_class": np.bincount(y_test, minlength=n_classes).tolist(),
        "majority_class": majority,
        "lda_shrinkage": float(lda.shrinkage),
        "n_permutations": int(cfg.n_permutations),
        "settings": asdict(cfg),
        "decoding": decoding,
        "definitions": {
            "balanced_accuracy": "mean recall over the classes present in the held-out labels",
            "bits": "mean -log2 p(true class) over held-out windows",
            "p_value": f"label-permutation test of the balanced accuracy ({cfg.n_permutations} "
            "permutations of the held-out labels, predictions fixed): (1 + #{null >= observed}) "
            "/ (1 + permutations)",
            "null_mean / null_q95": "mean and 95th percentile of the permuted balanced accuracies",
            "chance": "majority class of the train labels; probabilities: train class "
            "frequencies, add-one smoothed",
            "band_power_lda": "log10 band power per channel, standardised on train, "
            "scikit-learn LinearDiscriminantAnalysis(solver='lsqr', shrinkage='auto') fitted on "
            "the train windows; probabilities: its posterior (softmax of the discriminants)",
            "lda_shrinkage": "Ledoit-Wolf coefficients of the LDA's class covariances, weighted "
            "by the train class frequencies",
            "control_shuffled_input": "same model, each window's time axis randomly permuted "
            "(all channels alike), real labels",
            "control_noise_input": "same model, Gaussian white noise with each window's "
            "per-channel mean and standard deviation, real labels",
            "confusion": "rows: true class, columns: predicted class",
        },
    }
    return EvaluationResult(report=report, arrays={})


def _labelled(dataset: Any, n_max: int, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Signal and labels of up to ``n_max`` evenly spaced labelled windows of ``dataset``."""
    from neurofm.data.collate import collate

    labels = dataset.labels
    keep = np.flatnonzero(labels >= 0)
    if keep.size == 0:
        raise ConfigError(f"{what}: no labelled windows (check data.labels and data.event_window)")
    keep = keep[evenly(keep.size, n_max)]
    batch = collate([dataset[int(i)] for i in keep])
    return batch.x.float().numpy(), batch.label.numpy(), int(labels.size - np.sum(labels >= 0))


def evaluate_decoding_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a run of a window classifier (spec outputs ``class_logits``) and write the report.

    Parameters
    ----------
    run : Run
        From :func:`~neurofm.training.run.load_run`.
    config : EvaluateConfig, optional
        ``split``, ``max_windows`` (held-out windows scored), ``max_train_windows`` (train
        windows LDA is fitted on), ``batch_size``, ``n_permutations``, ``seed``.
    out_dir : path, optional
        Report folder (default ``<run_dir>/eval-<split>``): ``report.json``, ``report.html``,
        ``confusion.png``, ``scores.png`` and the resolved ``evaluate.yaml``.
    checkpoint : str, optional
        Name of the checkpoint the model came from (recorded in the report).
    """
    cfg = config or EvaluateConfig()
    data = run.data_config
    if not data.labels:
        raise ConfigError(f"{run.run_dir}: a classification run needs data.labels in its config")
    test_set, train_set = run.dataset(cfg.split), run.dataset(data.train_split)
    test_x, test_y, test_unlabelled = _labelled(test_set, cfg.max_windows, f"split {cfg.split!r}")
    train_x, train_y, _ = _labelled(train_set, cfg.max_train_windows, f"split {data.train_split!r}")
    by_id: dict[int, list[str]] = {}
    for name, cid in data.labels.items():
        by_id.setdefault(int(cid), []).append(str(name))
    names = {cid: "/".join(label_names) for cid, label_names in by_id.items()}
    sfreq = float(run.store.recordings[0].sfreq)
    result = evaluate_decoding(
        run.model,
        train_x=train_x,
        train_labels=train_y,
        test_x=test_x,
        test_labels=test_y,
        sfreq=sfreq,
        class_names=names,
        config=cfg,
    )
    write_run_report(
        result,
        run,
        cfg,
        out_dir=out_dir,
        checkpoint=checkpoint,
        details={
            "labels": dict(data.labels),
            "event_window": None if data.event_window is None else list(data.event_window),
            "n_windows_available": int(len(test_set) - test_unlabelled),
            "n_unlabelled_windows_skipped": test_unlabelled,
        },
    )
    return result
