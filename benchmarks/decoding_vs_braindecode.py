"""Decoding: braindecode's EEGNet and ShallowFBCSPNet vs neurofm's classifiers on EEGBCI.

Left vs right fist (T1 vs T2) of PhysioNet EEGBCI subject S001, runs 3 4 7 8 11 12 (executed and
imagined), 0-4 s after each cue, the ``eegbci`` recipe's preprocessing, 64 EEG channels at
160 Hz: the windows, labels and leave-one-run-out folds of ``neurofm decode``
(:func:`neurofm.evaluation.decoding_runs.eegbci_windows`). Every method is fitted on five runs and
predicts the sixth; scores pool the held-out windows of the six folds.

- reference decoders of ``neurofm decode``: band-power LDA and CSP + LDA (p-values: refitted on
  labels permuted within runs);
- networks, each trained from scratch in each fold with one recipe (AdamW, lr 1e-3, weight decay
  1e-2, cross-entropy, batch 16, ``EPOCHS`` epochs, one CPU thread) on windows standardised per
  channel with the train runs' mean and standard deviation (the same arrays for every network):
  neurofm's ``classifier_continuous``, ``cnn_multivariate``, ``cnnlstm_classifier`` (signal)
  and ``classifier_quantized`` (mu-law codes, 256 levels, fitted on the fold's train windows),
  all preset ``small``; braindecode's ``EEGNet`` and ``ShallowFBCSPNet`` (default
  hyper-parameters) in the benchmark environment (:mod:`benchmarks._peer`). p-values: held-out
  labels permuted within runs, predictions fixed, the same permutations for every network.

Writes ``benchmarks/results/decoding_braindecode.json`` and the table of ``docs/decoding.md``.
Run: ``python -m benchmarks.decoding_vs_braindecode [--epochs 5] [--folder ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks._common import RESULTS_DIR, machine_info, versions
from benchmarks._peer import find_peer, run_peer
from benchmarks.braindecode_peer import folds

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT.parent / "shared" / "data" / "eegbci_S001"
DOC = ROOT / "docs" / "decoding.md"
NETWORKS = {  # our name -> registered model and settings; quantized ones get mu-law codes
    "classifier_continuous": {"name": "classifier_continuous", "preset": "small"},
    "cnn_multivariate": {"name": "cnn_multivariate", "preset": "small"},
    # the per-channel networks cost ~10 s a step at preset small on 64 x 640 windows (one
    # thread): the comparison runs smaller widths of them, and pools the LSTM's input by 8
    "cnnlstm_classifier": {"name": "cnnlstm_classifier", "preset": "tiny", "pool_size": 8},
    "classifier_quantized": {"name": "classifier_quantized", "preset": "tiny", "vocab_size": 256},
}
QUANTIZED = {"classifier_quantized"}
BATCH = 16


def fold_arrays(x: np.ndarray, groups: np.ndarray, runs: list[int]) -> dict[str, np.ndarray]:
    """Per-fold standardisation (fold i holds out ``runs[i]``): ``mean`` / ``std`` (F, 1, C, 1)."""
    from neurofm.evaluation.decoding_runs import fold_standardisation

    stats = [fold_standardisation(x, groups == r) for r in runs]
    return {"mean": np.stack([m for m, _ in stats]), "std": np.stack([s for _, s in stats])}


def save_windows(
    path: Path, x: np.ndarray, y: np.ndarray, groups: np.ndarray, runs: list[int], sfreq: float
) -> dict[str, np.ndarray]:
    """Write the windows file the braindecode side reads: float32 windows, labels, runs and
    each fold's standardisation (:func:`fold_arrays`). Returns the arrays written."""
    arrays = {
        "x": x.astype(np.float32),
        "y": y,
        "groups": groups,
        "runs": np.asarray(runs),
        "sfreq": np.float64(sfreq),
        **fold_arrays(x, groups, runs),
    }
    np.savez(path, **arrays)
    return arrays


def _mulaw_codes(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from neurofm.registry import TOKENIZERS, create

    tokenizer = create(TOKENIZERS, {"name": "mulaw", "preset": "small"})
    tokenizer.fit(train.astype(np.float32), fitted_on="train runs")
    encode = lambda a: tokenizer.encode(torch.from_numpy(a.astype(np.float32))).codes.numpy()  # noqa: E731
    return encode(train), encode(test)


def neurofm_predictions(
    name: str, arrays: dict[str, np.ndarray], *, epochs: int, seed: int
) -> tuple[np.ndarray, float, int]:
    """Held-out predictions of a fresh neurofm network per fold (the folds and standardised
    windows of :func:`benchmarks.braindecode_peer.folds`, as the braindecode side sees them);
    seconds; parameters."""
    from neurofm.evaluation.decoding import model_log_probs
    from neurofm.evaluation.decoding_runs import train_classifier

    y = arrays["y"]
    predicted = np.empty_like(y)
    start, n_params = time.perf_counter(), 0
    for i, test, xs in folds(arrays):
        train_in, test_in = xs[~test], xs[test]
        if name in QUANTIZED:
            train_in, test_in = _mulaw_codes(train_in, test_in)
        spec = dict(NETWORKS[name])
        net = train_classifier(
            spec, train_in, y[~test], epochs=epochs, batch_size=BATCH, seed=seed + i
        )
        n_params = sum(p.numel() for p in net.parameters())
        predicted[test] = model_log_probs(net, test_in, BATCH).argmax(axis=1)
    return predicted, time.perf_counter() - start, int(n_params)


def run(
    folder: Path = FOLDER,
    *,
    epochs: int = 5,
    n_permutations: int = 1000,
    n_ref_permutations: int = 10,
    seed: int = 0,
    write_doc: bool = True,
) -> dict[str, Any]:
    """Score every decoder in the same folds; write the JSON (and the docs table)."""
    from neurofm.evaluation.decoding_runs import (
        cross_validate_runs,
        eegbci_windows,
        held_out_scores,
        permuted_labels,
    )

    torch.set_num_threads(1)
    stack = contextlib.ExitStack()
    load_before = os.getloadavg()
    runs = [3, 4, 7, 8, 11, 12]
    x, y, groups, sfreq, steps = eegbci_windows(folder, runs=tuple(runs))
    permuted = permuted_labels(y, groups, n_permutations, seed)

    decoders: dict[str, dict[str, Any]] = {}
    tmp = stack.enter_context(tempfile.TemporaryDirectory())
    data = Path(tmp) / "windows.npz"
    arrays = save_windows(data, x, y, groups, runs, sfreq)
    for name in NETWORKS:
        predicted, seconds, n_params = neurofm_predictions(name, arrays, epochs=epochs, seed=seed)
        decoders[name] = {
            **held_out_scores(predicted, y, groups, permuted),
            "source": "neurofm",
            "train_and_predict_seconds": seconds,
            "n_params": n_params,
            "n_permutations": n_permutations,
            "model": NETWORKS[name],
        }
        print(f"{name}: {json.dumps(decoders[name])}", file=sys.stderr, flush=True)

    python, peer = find_peer()
    if python is not None:
        out = Path(tmp) / "predictions.json"
        run_peer(["decode", str(data), str(out), str(epochs), str(BATCH), str(seed)], python=python)
        answer = json.loads(out.read_text())
        for name, got in answer["models"].items():
            predicted = np.asarray(got["predicted"], dtype=np.int64)
            decoders[f"braindecode_{name}"] = {
                **held_out_scores(predicted, y, groups, permuted),
                "source": f"braindecode {answer['versions']['braindecode']}",
                "train_and_predict_seconds": got["train_and_predict_seconds"],
                "n_params": got["n_params"],
                "n_permutations": n_permutations,
            }
            print(f"{name}: {json.dumps(decoders[f'braindecode_{name}'])}", file=sys.stderr)
    start = time.perf_counter()
    reference = cross_validate_runs(
        folder, runs=tuple(runs), model={}, n_permutations=n_ref_permutations, seed=seed
    )
    print(f"reference decoders: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if reference["n_windows"] != len(y):
        raise RuntimeError("the reference decoders saw other windows than the networks")
    for name, scores in reference["decoders"].items():
        decoders[name] = {
            **scores,
            "source": "neurofm decode reference",
            "n_permutations": n_ref_permutations,
        }
    result = {
        "what": "leave-one-run-out decoding of left vs right fist (T1 vs T2), EEGBCI S001 runs "
        f"{runs}, 0-4 s windows: braindecode EEGNet and ShallowFBCSPNet vs neurofm's classifiers "
        "and reference decoders, the same windows, labels and folds",
        "n_windows": int(len(y)),
        "n_chans": int(x.shape[1]),
        "n_times": int(x.shape[2]),
        "sfreq": sfreq,
        "runs": runs,
        "n_per_class": np.bincount(y).tolist(),
        "preprocessing": steps,
        "epochs": epochs,
        "batch_size": BATCH,
        "training": "AdamW lr 1e-3, weight decay 1e-2, cross-entropy, shuffled batches, one "
        "CPU thread; fresh network per fold (seed + fold); inputs standardised per channel with "
        "the train runs' mean and std",
        "chance": {"balanced_classes": 0.5, "majority_class": float(np.bincount(y).max() / len(y))},
        "decoders": decoders,
        "braindecode": peer,
        "foundation_model_backbone": "not compared: neurofm has no foundation-model backbone "
        "with a classification head yet (the forecasters give next-sample logits only)",
        "definitions": reference["definitions"],
        "versions": versions("mne", "scikit-learn"),
        "machine": {**machine_info(), "load_average_before": list(load_before)},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stack.close()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "decoding_braindecode.json").write_text(json.dumps(result, indent=1) + "\n")
    if write_doc:
        write_table(result)
    return result


def table(result: dict[str, Any]) -> str:
    """Markdown table of the decoders' held-out scores."""
    lines = [
        "| decoder | source | accuracy [95% CI] | balanced acc. | p | null mean | "
        "parameters | fit+predict s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["decoders"].items():
        low, high = s["accuracy_95ci"]
        params = s.get("n_params", "—")
        secs = s.get("train_and_predict_seconds")
        lines.append(
            f"| `{name}` | {s['source']} | {s['accuracy']:.3f} [{low:.3f}, {high:.3f}] | "
            f"{s['balanced_accuracy']:.3f} | {s['p_value']:.3f} | {s['null_mean']:.3f} | "
            f"{params} | {'—' if secs is None else f'{secs:.0f}'} |"
        )
    return "\n".join(lines)


def write_table(result: dict[str, Any]) -> None:
    """Put the table between the markers of ``docs/decoding.md`` (creating the file if absent)."""
    start, end = "<!-- decoding-table:start -->", "<!-- decoding-table:end -->"
    block = f"{start}\n{table(result)}\n{end}"
    text = DOC.read_text() if DOC.exists() else f"# Decoding\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    DOC.write_text(head + block + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--n-ref-permutations", type=int, default=10)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder}: no EEGBCI folder", file=sys.stderr)
        return 2
    result = run(
        args.folder,
        epochs=args.epochs,
        n_permutations=args.n_permutations,
        n_ref_permutations=args.n_ref_permutations,
    )
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
