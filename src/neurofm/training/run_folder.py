"""The run folder written by ``neurofm fit``: its layout, named once for every reader and writer.

Run folder format::

    <run_dir>/config.yaml            the resolved config (all sections) + "channels" (the
                                     training channel names, in the model's channel order,
                                     matched by name when the run reads another store) +
                                     "neurofm_version"
    <run_dir>/model/                 the final model, model hub form (save_pretrained):
        config.json                  {"name": <registry name>, "config": {...}, "neurofm_version"}
        model.safetensors            the model's state_dict
    <run_dir>/tokenizer/             the fitted tokenizer (Tokenizer.save), when the run uses one
    <run_dir>/checkpoints/
        step-<N>/                    one complete checkpoint after N optimizer steps:
            model.safetensors        the model's state_dict (same keys as model/model.safetensors)
            state.pt                 optimizer, scheduler, RNG states, sampler/data position, step,
                                     epoch, loop progress; plain data, read with
                                     torch.load(weights_only=True)
            meta.json                step, epoch, neurofm_version, byte size and SHA-256
                                     of each file (the hash is verified on load)
        last                         text file naming the newest complete checkpoint ("step-<N>")
    <run_dir>/best/                  the model of the lowest val/loss so far (save_pretrained
                                     form) with best.json: its step and val/loss
    <run_dir>/metrics.csv            per-step train metrics (train/loss, train/grad_norm, ...)
                                     and per-epoch validation metrics (val/loss, ...);
                                     Lightning's CSVLogger
    <run_dir>/metrics.json           the same curves as {metric: [[step, value], ...]}, written
                                     when training ends
    <run_dir>/tensorboard/           TensorBoard logs, when output.tensorboard is true

Checkpoints are written atomically (a temporary folder, fsynced, then renamed; ``last`` is
replaced atomically afterwards), so every ``step-<N>`` folder is complete
(:mod:`neurofm.training.checkpoint`). This module imports nothing heavy, so that reading a run
back (:func:`neurofm.training.run.load_run`) never loads Lightning.
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG_FILE = "config.yaml"
MODEL_DIR = "model"
BEST_DIR = "best"
BEST_FILE = "best.json"
METRICS_JSON = "metrics.json"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"  # the name Lightning's CSVLogger writes
TENSORBOARD_DIR = "tensorboard"

# Inside one checkpoint folder (and, for the weights, inside the model folder).
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
# Inside the checkpoints folder, beside the step folders.
LAST_FILE = "last"

_CHECKPOINT_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint taken after ``step`` optimizer steps: ``step-<N>``."""
    return f"step-{int(step)}"


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint folder name (``"step-200"`` -> 200), or None for another name."""
    match = _CHECKPOINT_NAME.match(name)
    return None if match is None else int(match.group(1))


def write_metrics_json(run_dir: str | Path) -> Path | None:
    """Write ``metrics.json`` ({metric: [[step, value], ...]}) from ``metrics.csv``, if any."""
    import csv
    import json
    import math

    from neurofm.fileio import atomic_open

    source = Path(run_dir) / METRICS_FILE
    if not source.is_file():
        return None
    curves: dict[str, list[list[float]]] = {}
    with open(source, newline="") as fh:
        for row in csv.DictReader(fh):
            step = row.get("step", "")
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None) or step == "":
                    continue
                number = float(value)
                if math.isfinite(number):
                    curves.setdefault(key, []).append([int(step), number])
    path = Path(run_dir) / METRICS_JSON
    with atomic_open(path, "w") as fh:
        json.dump(curves, fh, indent=1)
    return path
