"""Dataset recipes registered in ``DATASETS``: named ``neurofm prepare`` configs.

A recipe returns the sections of a prepare config (``inputs``, ``preprocessing``, ``splits``,
``scaler``, ``name``). ``neurofm.data.prepare`` finds recipes through the registry only (a config's
``recipe:`` key); this module sits above it: :func:`prepare_recipe` adds the output folder and
runs :func:`~neurofm.data.prepare.prepare`::

    from neurofm.data.recipes import prepare_recipe
    store = prepare_recipe("eegbci_sample", "prepared/eegbci_sample")

or from the shell: ``neurofm prepare --recipe eegbci_sample --output prepared/eegbci_sample``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from neurofm.data.prepare import prepare
from neurofm.data.store import PreparedStore
from neurofm.errors import RecordingError
from neurofm.registry import DATASETS

EEGBCI_SAMPLE_RUNS = {
    "train": ["S001R03", "S001R04", "S001R07"],
    "val": ["S001R08"],
    "test": ["S001R12"],
}
"""Whole runs of the shipped sample held out for validation and test (one subject)."""

EEGBCI_PREPROCESSING = [
    {"name": "notch", "freqs": [60.0]},
    {"name": "bandpass", "l_freq": 0.5, "h_freq": 50.0},
]
"""US mains at 60 Hz stand ~12 dB above the neighbouring spectrum in these files, and a 50 Hz
low-pass (kept for gamma, 30-50 Hz) only reaches its stop band at ~56 Hz, so both are used."""


def sample_dir() -> Path:
    """The real EEG sample shipped with the repository (``data/sample``)."""
    path = Path(__file__).resolve().parents[3] / "data" / "sample"
    if not path.is_dir():
        raise RecordingError(
            "the shipped sample folder is missing (it comes with a clone of the "
            "repository, not with an installed wheel)",
            path=str(path),
        )
    return path


@DATASETS.register("eegbci_sample")
def eegbci_sample() -> dict[str, Any]:
    """Shipped PhysioNet EEGBCI sample: S001, 5 runs, 64 EEG @ 160 Hz; runs held out for val/test."""
    folder = sample_dir() / "eegbci_S001"
    return {
        "name": "eegbci_sample",
        "inputs": [str(folder / "S001R*.edf")],
        "preprocessing": [dict(step) for step in EEGBCI_PREPROCESSING],
        "splits": {
            "by": "recording",
            "window": 2.0,
            "assign": {k: list(v) for k, v in EEGBCI_SAMPLE_RUNS.items()},
        },
        "scaler": {"kind": "robust", "max_samples": 1_000_000},
    }


@dataclass
class EEGBCIRecipe:
    """Options of the ``eegbci`` recipe."""

    path: str  # folder holding S###R##.edf files (searched recursively)
    subjects: list[int] | None = None  # subject numbers to keep (None: all found)
    runs: list[int] | None = None  # run numbers to keep (None: all found)
    by: Literal["subject", "recording", "time"] = "recording"  # split unit
    fractions: dict[str, float] | None = None  # split -> share (default 0.8 / 0.1 / 0.1)
    seed: int = 0  # seed of the split assignment
    phase: Literal["zero", "causal"] = "zero"  # filter phase of the notch and band-pass

    def __post_init__(self) -> None:
        if any(r < 1 or r > 14 for r in self.runs or []):
            raise ValueError(f"EEGBCI runs are numbered 1..14, got {self.runs}")


@DATASETS.register("eegbci", config=EEGBCIRecipe)
def eegbci(options: EEGBCIRecipe) -> dict[str, Any]:
    """PhysioNet EEG Motor Movement/Imagery files in a folder (e.g. the shared eegbci_S001)."""
    root = Path(options.path)
    pattern = re.compile(r"S(\d{3})R(\d{2})\.edf$")
    files = []
    for path in sorted(root.rglob("S*R*.edf")):
        match = pattern.search(path.name)
        if match is None:
            continue
        subject, run = int(match.group(1)), int(match.group(2))
        if options.subjects is not None and subject not in options.subjects:
            continue
        if options.runs is not None and run not in options.runs:
            continue
        files.append(str(path))
    if not files:
        raise RecordingError(
            f"no EEGBCI file (S###R##.edf) matches subjects={options.subjects}, "
            f"runs={options.runs}",
            path=str(root),
        )
    splits: dict[str, Any] = {"by": options.by, "window": 2.0, "seed": options.seed}
    if options.fractions is not None:
        splits["fractions"] = dict(options.fractions)
    return {
        "name": "eegbci",
        "inputs": files,
        "preprocessing": [{**step, "phase": options.phase} for step in EEGBCI_PREPROCESSING],
        "splits": splits,
        "scaler": {"kind": "robust", "max_samples": 1_000_000},
    }


def prepare_recipe(
    name: str, output: str | Path, *, jobs: int = 1, **options: Any
) -> PreparedStore:
    """Prepare the recipe ``name`` into ``output`` (options go to the recipe, e.g. ``path``)."""
    recipe: dict[str, Any] = {"name": name, **options}
    return prepare({"recipe": recipe, "output": str(output), "jobs": jobs})
