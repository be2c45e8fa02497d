"""What fit learns from: the tokenizer's statistics come from the train split only (wild values
elsewhere change nothing), a classifier learns separable classes, and the ``bands`` tokenizer
takes its sampling rate from the data (a different one set by hand is refused)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import N_CHANS, SFREQ, forecast_config, make_store

from neurofm.data.recording import Events, Recording
from neurofm.data.store import PreparedStore
from neurofm.errors import ConfigError
from neurofm.registry import TOKENIZERS, create
from neurofm.training.data import check_tokenizer_rate
from neurofm.training.fit import fit
from neurofm.training.run import load_run
from neurofm.types import SensorInfo


def _tokenizer_run(store_root, run_dir):
    config = forecast_config(
        store_root,
        run_dir,
        data={"val_split": None},
        tokenizer={"name": "mulaw", "preset": "tiny"},
        model={"name": "gpt2meg", "preset": "tiny", "n_chans": N_CHANS, "vocab_size": 16},
        objective={"name": "next_token"},
        trainer={"max_steps": 1},
    )
    return load_run(fit(config)).tokenizer


def test_tokenizer_statistics_come_from_train_only(tmp_path):
    store = make_store(tmp_path / "store", n_times=600)
    before = _tokenizer_run(store.root, tmp_path / "before")
    train = store.manifest["splits"]["train"]
    wild = 0
    for rec in store.recordings:
        arr = np.load(rec.path, mmap_mode="r+")  # (T, C)
        keep = np.zeros(rec.n_times, dtype=bool)
        for seg in train:
            if seg["recording"] == rec.id:
                keep[seg["start"] : seg["stop"]] = True
        arr[~keep] = 1e6  # val and outside every split: wild values
        arr.flush()
        wild += int((~keep).sum())
    assert wild > 0
    after = _tokenizer_run(store.root, tmp_path / "after")
    assert torch.equal(before.center, after.center)
    assert torch.equal(before.scale, after.scale)
    assert float(after.scale.max()) < 100  # the wild values would give a scale near 1e6


def _separable_store(root) -> PreparedStore:
    """Class T1: a 10 Hz sine of amplitude 3 on every channel over noise; T2: noise alone."""
    rng = np.random.default_rng(0)
    store = PreparedStore.create(root, name="separable")
    n_times = 1500
    for k in range(2):
        data = rng.standard_normal((N_CHANS, n_times)) * 0.5
        onsets = np.arange(0.0, n_times / SFREQ, 0.5)
        labels = ["T1" if i % 2 else "T2" for i in range(onsets.size)]
        t = np.arange(n_times) / SFREQ
        for onset, label in zip(onsets, labels):
            if label == "T1":
                sl = slice(int(onset * SFREQ), int((onset + 0.5) * SFREQ))
                data[:, sl] += 3 * np.sin(2 * np.pi * 10 * t[sl])
        rec = Recording(
            data=data,
            sfreq=SFREQ,
            sensors=SensorInfo(names=[f"C{i}" for i in range(N_CHANS)], types=["eeg"] * N_CHANS),
            events=Events(onset=onsets, duration=np.full(onsets.size, 0.5), description=labels),
            subject=f"{k:02d}",
            session="01",
            source={"path": f"synthetic-{k}", "sha256": "", "format": "synthetic"},
        )
        store.write(f"rec{k}", rec, fingerprint="separable")
    store.manifest["splits"] = {
        "train": [{"recording": "rec0", "start": 0, "stop": n_times}],
        "val": [{"recording": "rec1", "start": 0, "stop": n_times}],
    }
    store.save_manifest()
    return PreparedStore.open(root)


def test_classifier_learns_separable_classes(tmp_path):
    store = _separable_store(tmp_path / "store")
    config = forecast_config(
        store.root,
        tmp_path / "run",
        data={"labels": {"T1": 0, "T2": 1}, "window_length": 25, "stride": 25},
        model={"name": "classifier_continuous", "preset": "tiny", "n_classes": 2, "dropout": 0.0},
        objective={"name": "classification"},
        trainer={"max_steps": 40},
        output={"checkpoint_every_n_steps": 40},
    )
    run = load_run(fit(config))
    val = run.dataset("val")
    x = torch.stack([val[i]["x"] for i in range(len(val))])
    y = torch.as_tensor([int(val[i]["label"]) for i in range(len(val))])
    assert set(y.tolist()) == {0, 1}
    with torch.no_grad():
        predicted = run.model(x).logits.argmax(-1)
    recalls = [float((predicted[y == c] == c).float().mean()) for c in (0, 1)]
    assert min(recalls) > 0.9, recalls  # chance is 0.5


def test_bands_tokenizer_takes_the_data_rate_and_refuses_another(tiny_store):
    free = create(TOKENIZERS, {"name": "bands", "bands": [[1.0, 8.0], [8.0, 30.0]]})
    with pytest.raises(RuntimeError, match="no sfreq"):
        free.encode(np.zeros((N_CHANS, 64), dtype=np.float32))
    check_tokenizer_rate(free, tiny_store)
    assert free.config.sfreq == SFREQ
    assert free.encode(np.zeros((N_CHANS, 64), dtype=np.float32)).info["sfreq"] == SFREQ
    wrong = create(TOKENIZERS, {"name": "bands", "sfreq": 160.0})
    with pytest.raises(ConfigError, match=r"tokenizer.sfreq: 160.0 Hz, but the data are sampled"):
        check_tokenizer_rate(wrong, tiny_store)
    too_high = create(TOKENIZERS, {"name": "bands"})  # gamma up to 50 Hz = Nyquist at 100 Hz
    check_tokenizer_rate(too_high, tiny_store)
    narrow = create(TOKENIZERS, {"name": "bands", "bands": [[1.0, 8.0], [30.0, 60.0]]})
    with pytest.raises(ConfigError, match=r"tokenizer.bands: .*Nyquist"):
        check_tokenizer_rate(narrow, tiny_store)
