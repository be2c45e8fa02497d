"""A tiny prepared store and fit configs over it, shared by the training and CLI tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.data.recording import Events, Recording
from neurofm.data.store import PreparedStore
from neurofm.types import SensorInfo

N_CHANS = 4
SFREQ = 100.0


def make_store(root: Path, *, n_times: int = 2000, seed: int = 0) -> PreparedStore:
    """Two recordings of 4 smooth random channels (unit scale) with T1/T2 events every 0.5 s."""
    rng = np.random.default_rng(seed)
    store = PreparedStore.create(root, name="tiny")
    for k in range(2):
        noise = rng.standard_normal((N_CHANS, n_times))
        kernel = np.ones(5) / 5
        data = np.stack([np.convolve(ch, kernel, mode="same") for ch in noise]) * 2
        onsets = np.arange(0.0, n_times / SFREQ, 0.5)
        events = Events(
            onset=onsets,
            duration=np.full(onsets.size, 0.5),
            description=["T1" if i % 2 else "T2" for i in range(onsets.size)],
        )
        rec = Recording(
            data=data,
            sfreq=SFREQ,
            sensors=SensorInfo(names=[f"C{i}" for i in range(N_CHANS)], types=["eeg"] * N_CHANS),
            events=events,
            subject=f"{k:02d}",
            session="01",
            source={"path": f"synthetic-{k}", "sha256": "", "format": "synthetic"},
        )
        store.write(f"rec{k}", rec, fingerprint="tiny")
    store.manifest["splits"] = {
        "train": [
            {"recording": "rec0", "start": 0, "stop": n_times},
            {"recording": "rec1", "start": 0, "stop": n_times // 2},
        ],
        "val": [{"recording": "rec1", "start": n_times // 2 + 100, "stop": n_times}],
    }
    store.save_manifest()
    return PreparedStore.open(root)


def forecast_config(store_root: Path | str, run_dir: Path | str, **sections: Any) -> dict[str, Any]:
    """A fit config of the tiny causal conv forecaster.

    ``sections`` update the ``data``, ``optim``, ``trainer`` and ``output`` sections key by key and
    replace the ``model``, ``objective`` and ``tokenizer`` sections (None removes a section).
    """
    config: dict[str, Any] = {
        "data": {"store": str(store_root), "window_length": 32, "stride": 16, "batch_size": 8},
        "model": {"name": "conv_forecaster", "preset": "tiny", "dropout": 0.2},
        "objective": {"name": "forecast", "loss": "mse"},
        "optim": {"lr": 1e-2, "warmup_steps": 2},
        "trainer": {
            "max_steps": 12,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "seed": 3,
        },
        "output": {"dir": str(run_dir), "checkpoint_every_n_steps": 4},
    }
    for key, value in sections.items():
        if value is None:
            config.pop(key, None)
        elif key in ("model", "objective", "tokenizer"):
            config[key] = value
        else:
            config[key] = {**config.get(key, {}), **value}
    return copy.deepcopy(config)
