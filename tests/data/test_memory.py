"""R9: lazy iteration over a 1 h, 306-channel recording stays flat; an impossible preload fails early."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import psutil
import pytest

from neurofm.data.recording import Events
from neurofm.data.store import PreparedStore, StoredRecording
from neurofm.data.windows import InsufficientMemoryError, WindowDataset
from neurofm.types import SensorInfo

N_CHANS, SFREQ = 306, 250.0

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(),
    reason="peak memory is read from /proc/self/status (Linux)",
)


def sparse_store(root: Path, n_times: int) -> PreparedStore:
    """A store whose (n_times, 306) float32 array is a sparse file: no disk time, no memory."""
    store = PreparedStore.create(root)
    sensors = SensorInfo([f"MEG{i:04d}" for i in range(N_CHANS)], ["mag"] * N_CHANS)
    np.lib.format.open_memmap(
        root / "recordings" / "rec.npy", mode="w+", dtype=np.float32, shape=(n_times, N_CHANS)
    ).flush()
    store.recordings.append(
        StoredRecording(
            root=root,
            id="rec",
            file="recordings/rec.npy",
            n_times=n_times,
            sfreq=SFREQ,
            sensors=sensors,
            events=Events(),
        )
    )
    store.save_manifest()
    return store


PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import psutil, torch
    from neurofm.data.collate import collate
    from neurofm.data.samplers import RandomWindowSampler
    from neurofm.data.windows import WindowDataset

    def peak():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    torch.set_num_threads(1)
    baseline = psutil.Process().memory_info().rss
    ds = WindowDataset(sys.argv[1], window_length=250, stride=int(sys.argv[2]))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, collate_fn=collate,
                                         sampler=RandomWindowSampler(len(ds), seed=0))
    n = sum(len(batch) for batch in loader)
    print(json.dumps({"windows": n, "growth": peak() - baseline}))
""")


def test_r9_lazy_iteration_over_one_hour_of_306_channels_stays_under_300_mb(tmp_path):
    n_times = int(3600 * SFREQ)  # 1 h at 250 Hz: 1.1 GB of float32
    sparse_store(tmp_path / "store", n_times)
    # every 1-s window of the hour, shuffled: 1.1 GB read through the memory maps
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "store"), "250"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["windows"] == 3600
    print(f"peak RSS growth {result['growth'] / 2**20:.0f} MB")
    assert result["growth"] <= 300 * 2**20, f"peak RSS grew {result['growth'] / 2**20:.0f} MB"


def test_r9_a_preload_that_cannot_fit_fails_before_allocating(tmp_path):
    available = psutil.virtual_memory().available
    n_times = int(2 * available / (N_CHANS * 4)) + 1  # twice the free memory, sparse on disk
    try:
        sparse_store(tmp_path / "big", n_times)
    except OSError as err:
        pytest.skip(f"cannot create a sparse file of {2 * available / 2**30:.0f} GiB: {err}")
    before = psutil.Process().memory_info().rss
    with pytest.raises(InsufficientMemoryError, match=r"needs \d+\.\d+ GiB but only"):
        WindowDataset(tmp_path / "big", window_length=250, preload=True)
    assert psutil.Process().memory_info().rss - before < 100 * 2**20
    lazy = WindowDataset(tmp_path / "big", window_length=250, stride=250 * 1000)
    assert lazy[len(lazy) - 1]["x"].shape == (N_CHANS, 250)  # the lazy path reads it fine
