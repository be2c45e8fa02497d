"""Decoding with a pretrained forecaster's trunk: ``backbone_classifier`` on EEGBCI S001.

The row of the foundation-model backbone in ``docs/decoding.md``, in the windows, labels,
leave-one-run-out folds and label permutations of :mod:`benchmarks.decoding_vs_braindecode`
(left vs right fist, runs 3 4 7 8 11 12, 0-4 s after each cue).

1. Pretraining (no label, no decoding run): the EEGBCI S001 runs 5, 6, 9, 10, 13 and 14 (hands
   vs feet, executed and imagined; none is a run the classifier is tested on) are prepared as
   the ``eegbci`` recipe does (train R05 R06 R09 R10 R13, val R14, robust scaler) and
   ``gpt2meg_trf`` preset ``tiny`` (64 channels, 256-level mu-law codes, windows of 128 samples)
   is fitted by ``neurofm fit`` for ``--steps`` steps.
2. Decoding: in each fold, a fresh ``backbone_classifier`` reads that run folder (trunk and
   tokenizer), pools the final hidden states over channels and time and trains its linear head
   (``--finetune frozen``, or LoRA adapters / the full trunk) with the recipe of the other
   networks (AdamW lr 1e-3, weight decay 1e-2, batch 16, ``--epochs`` epochs, one CPU thread)
   on the windows standardised per channel with the train runs' mean and std.

Adds the row to ``benchmarks/results/decoding_braindecode.json`` and to the table of
``docs/decoding.md``. Run: ``python -m benchmarks.decoding_backbone [--steps 300] [--epochs 5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks._common import RESULTS_DIR
from benchmarks.decoding_vs_braindecode import BATCH, FOLDER, table, write_table

PRETRAIN_RUNS = {
    "train": ["S001R05", "S001R06", "S001R09", "S001R10", "S001R13"],
    "val": ["S001R14"],
}


def pretrain(folder: Path, work: Path, steps: int, seed: int) -> Path:
    """Prepare the pretraining runs and fit the backbone; returns its run folder."""
    from neurofm.data.prepare import prepare
    from neurofm.data.recipes import EEGBCI_PREPROCESSING
    from neurofm.training.fit import fit

    names = PRETRAIN_RUNS["train"] + PRETRAIN_RUNS["val"]
    store = work / "pretrain_store"
    prepare(
        {
            "name": "eegbci_pretrain",
            "inputs": [str(folder / f"{name}.edf") for name in names],
            "preprocessing": [dict(s) for s in EEGBCI_PREPROCESSING],
            "output": str(store),
            "splits": {"by": "recording", "assign": PRETRAIN_RUNS, "window": 2.0},
            "scaler": {"kind": "robust", "max_samples": 1_000_000},
            "jobs": 1,
        }
    )
    return fit(
        {
            "data": {"store": str(store), "window_length": 128, "stride": 64, "batch_size": 8},
            "tokenizer": {"name": "mulaw", "n_levels": 256},
            "model": {
                "name": "gpt2meg_trf",
                "preset": "tiny",
                "n_chans": 64,
                "n_subjects": 1,
                "vocab_size": 256,
                "max_seq_len": 128,
            },
            "objective": {"name": "next_token"},
            "optim": {"lr": 1e-3, "warmup_steps": 20},
            "trainer": {"max_steps": steps, "accelerator": "cpu", "seed": seed},
            "output": {"dir": str(work / "backbone_run")},
        }
    )


def frozen_head(
    spec: dict[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    epochs: int,
    seed: int,
) -> tuple[torch.nn.Module, np.ndarray]:
    """:func:`~neurofm.evaluation.decoding_runs.train_classifier` for a frozen trunk, with the
    trunk's pooled features computed once per window instead of once per epoch: the same
    initialisation, batches, dropout on the features and AdamW steps (the frozen trunk runs in
    eval mode and draws no random number, so the result is the same). Returns the classifier
    and the test windows' log-probabilities."""
    from neurofm.registry import MODELS, create

    torch.manual_seed(seed)
    n_classes = int(y_train.max()) + 1
    net = create(MODELS, {**spec, "n_chans": x_train.shape[1], "n_classes": n_classes})

    def features(x: np.ndarray) -> torch.Tensor:
        net.eval()
        with torch.no_grad():
            parts = [
                net.features(torch.from_numpy(x[lo : lo + BATCH])) for lo in range(0, len(x), BATCH)
            ]
        return torch.cat(parts)

    f_train, f_test = features(x_train), features(x_test)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    labels = torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(f_train), generator=generator).split(BATCH):
            logits = net.classify(net.dropout(f_train[idx]))
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        log_probs = torch.log_softmax(net.classify(f_test), dim=-1).numpy()
    return net, log_probs


def run(
    folder: Path, *, steps: int, epochs: int, finetune: str, n_permutations: int, seed: int
) -> dict[str, Any]:
    """Pretrain, decode in the shared folds, add the row to the JSON and the docs table."""
    from neurofm.evaluation.decoding import model_log_probs
    from neurofm.evaluation.decoding_runs import (
        eegbci_windows,
        fold_standardisation,
        held_out_scores,
        permuted_labels,
        train_classifier,
    )

    torch.set_num_threads(1)
    runs = [3, 4, 7, 8, 11, 12]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = pretrain(folder, Path(tmp), steps, seed)
        pretrain_seconds = time.perf_counter() - start
        x, y, groups, _, _ = eegbci_windows(folder, runs=tuple(runs))
        permuted = permuted_labels(y, groups, n_permutations, seed)
        spec = {"name": "backbone_classifier", "backbone": str(run_dir), "finetune": finetune}
        predicted, n_params, n_trained = np.empty_like(y), 0, 0
        start = time.perf_counter()
        for i, r in enumerate(runs):
            test = groups == r
            mean, std = fold_standardisation(x, test)
            xs = ((x - mean) / std).astype(np.float32)
            if finetune == "frozen":
                net, log_probs = frozen_head(
                    spec, xs[~test], y[~test], xs[test], epochs=epochs, seed=seed + i
                )
            else:
                net = train_classifier(
                    spec, xs[~test], y[~test], epochs=epochs, batch_size=BATCH, seed=seed + i
                )
                log_probs = model_log_probs(net, xs[test], BATCH)
            n_params = sum(p.numel() for p in net.parameters())
            n_trained = sum(p.numel() for p in net.parameters() if p.requires_grad)
            predicted[test] = log_probs.argmax(axis=1)
            print(f"fold {r}: {np.mean(predicted[test] == y[test]):.3f}", file=sys.stderr)
        seconds = time.perf_counter() - start
    name = f"backbone_classifier ({finetune})"
    row = {
        **held_out_scores(predicted, y, groups, permuted),
        "source": "neurofm, gpt2meg_trf pretrained on runs 5 6 9 10 13 14",
        "train_and_predict_seconds": seconds,
        "pretrain_seconds": pretrain_seconds,
        "pretrain_steps": steps,
        "n_params": int(n_params),
        "n_trained_params": int(n_trained),
        "epochs": epochs,
        "n_permutations": n_permutations,
        "model": {
            "name": "backbone_classifier",
            "finetune": finetune,
            "backbone": "gpt2meg_trf tiny",
        },
        "pretraining_data": "EEGBCI S001 runs 5 6 9 10 13 14 (unlabelled next-code prediction); "
        "no window of the decoding runs 3 4 7 8 11 12",
    }
    path = RESULTS_DIR / "decoding_braindecode.json"
    result = json.loads(path.read_text())
    result["decoders"] = {
        k: v for k, v in result["decoders"].items() if not k.startswith("backbone_classifier")
    }
    decoders = list(result["decoders"].items())
    at = next(
        (i for i, (k, _) in enumerate(decoders) if k.startswith("braindecode")), len(decoders)
    )
    result["decoders"] = dict(decoders[:at] + [(name, row)] + decoders[at:])
    result.pop("foundation_model_backbone", None)
    path.write_text(json.dumps(result, indent=1) + "\n")
    write_table(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--finetune", default="frozen", choices=("frozen", "lora", "full"))
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder}: no EEGBCI folder", file=sys.stderr)
        return 2
    result = run(
        args.folder,
        steps=args.steps,
        epochs=args.epochs,
        finetune=args.finetune,
        n_permutations=args.n_permutations,
        seed=args.seed,
    )
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
