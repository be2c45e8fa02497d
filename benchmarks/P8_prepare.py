"""P8: a raw EDF file to the prepared store (filter, resample, scale, write) vs MNE + numpy.

Ours: ``neurofm.data.prepare.prepare`` on one recording (read lazily, band-pass 0.5-40 Hz,
resample to 100 Hz, write the float32 store, time split, robust scaler fitted on train) into a
fresh folder each repetition. Peer: the same steps written directly with MNE and numpy
(``read_raw_edf(preload=True)`` -> ``raw.filter`` -> ``raw.resample`` -> median / IQR scaling ->
``np.save``). Timed interleaved in one process; peak memory of one run of each is measured with
tracemalloc in a fresh subprocess and divided by the float32 size of the raw data.

Ours stores signals in physical units and records the scaler in the manifest (readers apply it
per window); the peer divides the whole array before saving. Both compute the same statistics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from benchmarks._common import (
    check_size,
    interleaved,
    median,
    speedup,
    versions,
    write_result,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "eegbci_S001"
L_FREQ, H_FREQ, SFREQ = 0.5, 40.0, 100.0


def _files(size: str) -> list[Path]:
    if size == "smoke":
        return [SAMPLE / "S001R03.edf"]
    return sorted(SAMPLE.glob("S001R*.edf"))


def ours(files: list[Path], output: Path) -> None:
    """neurofm prepare of ``files`` into a fresh ``output``."""
    from neurofm.data.prepare import prepare

    shutil.rmtree(output, ignore_errors=True)
    prepare(
        {
            "inputs": [str(f) for f in files],
            "output": str(output),
            "preprocessing": [
                {"name": "bandpass", "l_freq": L_FREQ, "h_freq": H_FREQ},
                {"name": "resample", "sfreq": SFREQ},
            ],
            "splits": {
                "by": "time",
                "window": 2.0,
                "fractions": {"train": 0.8, "val": 0.1, "test": 0.1},
            },
            "scaler": {"kind": "robust"},
        }
    )


def peer(files: list[Path], output: Path) -> None:
    """The same steps with MNE and numpy directly."""
    import mne

    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    for f in files:
        raw = mne.io.read_raw_edf(f, preload=True, verbose="error")
        raw.filter(L_FREQ, H_FREQ, verbose="error")
        raw.resample(SFREQ, verbose="error")
        x = raw.get_data()
        train = x[:, : int(0.8 * x.shape[1])]
        q25, q50, q75 = np.percentile(train, [25, 50, 75], axis=1, keepdims=True)
        np.save(output / f"{f.stem}.npy", ((x - q50) / (q75 - q25)).astype(np.float32).T)


MEMORY_SCRIPT = """
import json, sys, tempfile, tracemalloc
from pathlib import Path
sys.path.insert(0, {repo!r})
from benchmarks.P8_prepare import ours, peer
import mne, neurofm.data.prepare, neurofm.io
files = [Path(p) for p in {files!r}]
fn = {{"ours": ours, "peer": peer}}[{which!r}]
out = Path(tempfile.mkdtemp())
fn(files, out / "warm")
tracemalloc.start()
fn(files, out / "run")
print(json.dumps(tracemalloc.get_traced_memory()[1]))
"""


def peak_memory(which: str, files: list[Path]) -> int:
    """Peak bytes traced during one run of ``which`` in a fresh interpreter (after a warm-up)."""
    code = MEMORY_SCRIPT.format(repo=str(REPO), files=[str(f) for f in files], which=which)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def run(size: str = "smoke") -> dict:
    """Time ours vs the peer, measure peak memory, write ``benchmarks/results/P8.json``."""
    import mne
    import torch

    check_size(size)
    torch.set_num_threads(1)
    files = _files(size)
    info = mne.io.read_raw_edf(files[0], preload=False, verbose="error")
    n_chans = len(info.ch_names)
    n_times = sum(mne.io.read_raw_edf(f, preload=False, verbose="error").n_times for f in files)
    float32_bytes = (
        n_chans
        * max(mne.io.read_raw_edf(f, preload=False, verbose="error").n_times for f in files)
        * 4
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        times = interleaved(
            {"ours": lambda: ours(files, tmp / "ours"), "peer": lambda: peer(files, tmp / "peer")},
            reps=5 if size == "smoke" else 7,
            warmup=1,
        )
        a = np.load(tmp / "ours" / "recordings" / f"{files[0].stem}.npy")
        b = np.load(tmp / "peer" / f"{files[0].stem}.npy")
    memory = {k: peak_memory(k, files) for k in ("ours", "peer")}
    result = {
        "what": "raw EDF -> band-pass 0.5-40 Hz -> resample 100 Hz -> robust scaling -> "
        "float32 store on disk (one recording at a time)",
        "ours": median(times["ours"]),
        "peer": median(times["peer"]),
        "unit": "s",
        "speedup": speedup(times["ours"], times["peer"]),
        "target": 0.83,
        "times": times,
        "peak_memory_bytes": memory,
        "peak_memory_over_float32_recording": {k: v / float32_bytes for k, v in memory.items()},
        "memory_target": 2.5,
        "same_shape": list(a.shape) == list(b.shape),
        "shapes": {
            "files": [f.name for f in files],
            "n_chans": n_chans,
            "n_times_total": n_times,
            "float32_bytes_largest_recording": float32_bytes,
        },
        "notes": "memory: tracemalloc peak of one run in a fresh process after a warm-up run, "
        "divided by the float32 size of the largest raw recording; ours also computes "
        "sha256 checksums, a time split and writes the manifest atomically",
        "versions": versions("mne", "scipy"),
    }
    write_result("P8", result)
    return result


if __name__ == "__main__":
    size = sys.argv[1] if len(sys.argv) > 1 else "smoke"
    res = run(size)
    print(
        json.dumps(
            {
                k: res[k]
                for k in ("ours", "peer", "speedup", "target", "peak_memory_over_float32_recording")
            },
            indent=1,
        )
    )
