"""Checkpoint files: round trip, atomic writes (R2), safe loading (R5)."""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neurofm.errors import CheckpointError
from neurofm.training import checkpoint as ckpt
from neurofm.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_state,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def _weights(seed: int, n: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "layer.weight": torch.randn(n, n, generator=g),
        "layer.bias": torch.randn(n, generator=g),
    }


def _state(step: int) -> dict:
    return {
        "global_step": step,
        "optimizer_states": [{"state": {0: {"exp_avg": torch.ones(64, 64)}}}],
        "rng": (3, tuple(range(5)), None),
        "name": "x",
    }


def test_round_trip_and_last_pointer(tmp_path):
    first = save_checkpoint(tmp_path, 4, weights=_weights(0), state=_state(4), meta={"epoch": 0})
    second = save_checkpoint(tmp_path, 8, weights=_weights(1), state=_state(8), meta={"epoch": 1})
    assert (tmp_path / "last").read_text().strip() == "step-8"
    assert latest_checkpoint(tmp_path) == second
    weights, state, meta = load_checkpoint(first)
    assert torch.equal(weights["layer.weight"], _weights(0)["layer.weight"])
    assert state["global_step"] == 4 and state["rng"] == (3, (0, 1, 2, 3, 4), None)
    assert meta["step"] == 4 and meta["epoch"] == 0 and "neurofm_version" in meta
    prune_checkpoints(tmp_path, keep=1)
    assert list_checkpoints(tmp_path) == [second]


def test_tied_weights_are_saved(tmp_path):
    shared = torch.randn(4, 4)
    path = save_checkpoint(tmp_path, 1, weights={"a": shared, "b": shared}, state={})
    weights = load_weights(path / "model.safetensors")
    assert torch.equal(weights["a"], weights["b"])


class _FailingFile:
    """A file object that accepts ``limit`` bytes and then fails like a full disk."""

    def __init__(self, fh, limit: int) -> None:
        self.fh, self.left = fh, limit

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.left:
            self.fh.write(data[: self.left])
            raise OSError(28, "No space left on device")
        self.left -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


@pytest.mark.parametrize("limit", [0, 100, 10000])
def test_exception_after_n_bytes_keeps_previous_checkpoint(tmp_path, monkeypatch, limit):
    """R2: a write failing after N bytes leaves the previous checkpoint the newest complete one."""
    good = save_checkpoint(tmp_path, 4, weights=_weights(0), state=_state(4))
    real_save = torch.save

    def failing_save(obj, fh, *args, **kwargs):
        return real_save(obj, _FailingFile(fh, limit), *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", failing_save)
    with pytest.raises((OSError, RuntimeError)):  # torch may re-raise it as a RuntimeError
        save_checkpoint(tmp_path, 8, weights=_weights(1), state=_state(8))
    assert not (tmp_path / "step-8").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "step-4"]  # no temp left over
    assert latest_checkpoint(tmp_path) == good
    load_checkpoint(good)


_SAVER = """
import sys, torch
from neurofm.training.checkpoint import save_checkpoint
root = sys.argv[1]
big = {"w": torch.randn(1024, 1024)}
save_checkpoint(root, 1, weights=big, state={"step": 1})
print("first", flush=True)
step = 2
while True:
    save_checkpoint(root, step, weights=big, state={"step": step, "opt": torch.randn(1024, 512)})
    step += 1
"""


def test_sigkill_during_save_leaves_a_complete_checkpoint(tmp_path):
    """R2: SIGKILL while checkpoints are being written; the newest complete one loads."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "first"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finals = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    steps = [p for p in finals if p.name != "last"]
    for path in finals:
        assert path.name == "last" or re.fullmatch(r"step-\d+", path.name)
    assert steps, "at least the first checkpoint is at a final path"
    # every folder at a final path, not only those list_checkpoints keeps, is complete and its
    # content matches its hashes
    for path in steps:
        assert ckpt.is_complete(path), path
        ckpt.verify_checkpoint(path)
    assert list_checkpoints(tmp_path) == sorted(steps, key=lambda p: int(p.name[5:]))
    latest = latest_checkpoint(tmp_path)
    assert latest is not None
    weights, state, _ = load_checkpoint(latest)
    assert weights["w"].shape == (1024, 1024) and state["step"] == int(latest.name.split("-")[1])


def test_incomplete_checkpoint_is_skipped(tmp_path):
    good = save_checkpoint(tmp_path, 4, weights=_weights(0), state=_state(4))
    bad = save_checkpoint(tmp_path, 8, weights=_weights(1), state=_state(8))
    with open(bad / "state.pt", "r+b") as fh:
        fh.truncate(10)
    assert latest_checkpoint(tmp_path) == good
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        load_checkpoint(bad)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_malicious_pickle_is_refused_without_running_code(tmp_path, monkeypatch):
    """R5: a pickle that would run code is refused by the weights-only loader."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "state.pt"
    with open(path, "wb") as fh:
        pickle.dump({"step": 1, "payload": _Exploit()}, fh)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_state(path)
    assert not (tmp_path / "pwned.txt").exists()
    torch.save({"step": 1, "payload": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_state(path)
    assert not (tmp_path / "pwned.txt").exists()


def test_corrupt_safetensors_header_raises_checkpoint_error(tmp_path):
    """R5: a corrupt header, a truncated file and an empty file raise CheckpointError."""
    path = save_checkpoint(tmp_path, 1, weights=_weights(0), state={}) / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:8] + b"{not json" + data[17:])
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_weights(path)
    path.write_bytes((10**12).to_bytes(8, "little") + data[8:])
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_weights(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_weights(path)


def test_source_never_calls_torch_load_without_weights_only():
    """R5: every ``torch.load(`` in src/ passes ``weights_only=True``."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            call = text[match.start() : end + 1]
            if not re.search(r"weights_only\s*=\s*True", call):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(SRC)}:{line}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"
