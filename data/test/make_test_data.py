"""Write the tiny real test files of this folder from the original recordings.

Usage: ``python data/test/make_test_data.py SOURCE_DIR`` where ``SOURCE_DIR`` holds the original
folders (``meg_sample_evoked/``, ``spikes_grasshopper/``, ``lfp_human_m1/``,
``meg_masc_events/``; see ``SOURCE.md`` for where each comes from). Every output is a crop of real
data (fewer samples, and for MEG fewer time points), never synthetic; ``SHA256SUMS`` is rewritten.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import mne
import numpy as np

HERE = Path(__file__).resolve().parent


def main(source: Path) -> None:
    evokeds = mne.read_evokeds(source / "meg_sample_evoked" / "test-ave.fif.gz", verbose="error")
    for evoked in evokeds:  # head-position coil calibration (2 MB): not part of the signal
        with evoked.info._unlock():
            evoked.info["hpi_meas"], evoked.info["hpi_results"] = [], []
    cropped = [e.copy().crop(-0.02, 0.02) for e in evokeds]
    mne.write_evokeds(HERE / "meg_evoked_crop-ave.fif", cropped, overwrite=True, verbose="error")
    # one condition's whole average as a continuous raw file: the 306 MEG channels, one
    # stimulus, the EOG and four EEG channels (0.7 s)
    right_visual = evokeds[3].copy()
    kinds = right_visual.get_channel_types()
    keep = [n for n, t in zip(right_visual.ch_names, kinds) if t in ("mag", "grad", "eog")]
    eeg = [n for n, t in zip(right_visual.ch_names, kinds) if t == "eeg"]
    right_visual.pick([*keep, "STI 014", *eeg[:4]])
    raw = mne.io.RawArray(right_visual.data.astype(np.float32), right_visual.info, verbose="error")
    raw.save(HERE / "meg_evoked_as_raw.fif", overwrite=True, verbose="error")

    grass = source / "spikes_grasshopper"
    times = np.loadtxt(grass / "grasshopper_spike_times1.txt")
    keep = times[times < 1_000_000]  # microseconds: the first second
    np.savetxt(HERE / "grasshopper_spike_times_1s.txt", keep, fmt="%.1f")
    with open(grass / "grasshopper_stimulus1.txt") as fh:
        lines = [next(fh) for _ in range(2000)]  # 0.1 s at 20 kHz
    (HERE / "grasshopper_stimulus_0.1s.txt").write_text("".join(lines))

    lfp = np.load(source / "lfp_human_m1" / "sample_data_1.npy")
    np.save(HERE / "lfp_human_m1_1s.npy", lfp[:1000])
    shutil.copy(source / "lfp_human_m1" / "LICENSE", HERE / "LICENSE.lfp_human_m1")

    masc_in, masc_out = source / "meg_masc_events", HERE / "meg_masc_bids"
    shutil.rmtree(masc_out, ignore_errors=True)
    for path in sorted(masc_in.rglob("*")):
        rel = path.relative_to(masc_in)
        if path.is_dir() or "task-1" in rel.name or rel.name in ("SOURCE.txt", "README.md"):
            continue
        target = masc_out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.name.endswith("_events.tsv"):
            rows = path.read_text().splitlines()
            onset = rows[0].split("\t").index("onset")
            kept = [r for r in rows[1:] if float(r.split("\t")[onset]) < 30.0]
            target.write_text("\n".join([rows[0], *kept]) + "\n")
        else:
            shutil.copy(path, target)

    sums = []
    for path in sorted(HERE.rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".md") and path.name != "SHA256SUMS":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            sums.append(f"{digest}  {path.relative_to(HERE).as_posix()}")
    (HERE / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
