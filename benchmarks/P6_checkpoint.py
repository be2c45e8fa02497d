"""P6: atomic checkpoint save / load against a plain ``safetensors`` + ``torch.save`` of the same state.

State: the weights of a model of ``n_params`` float32 parameters (a few large matrices, seeded)
plus an AdamW-like optimizer state (two tensors per weight) and small plain-data fields.
Ours is :func:`neurofm.training.checkpoint.save_checkpoint` (temporary folder, fsync of every
file and folder, rename, atomic ``last`` pointer) and :func:`load_checkpoint` (size check,
safetensors, ``torch.load(weights_only=True)``). The peer writes the same two files with
``safetensors.torch.save_file`` and ``torch.save`` straight to their final paths, with no fsync,
and reads them back with ``load_file`` and ``torch.load(weights_only=True)``. The calls are
interleaved A B A B after a warm-up; the previous output is deleted between calls, outside the
timing. Note that the plain save leaves its data in the page cache: the fsync ours adds is the
price of durability and depends on the disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from benchmarks._common import check_size, median, speedup, versions, write_result
from safetensors.torch import load_file, save_file

from neurofm.training.checkpoint import load_checkpoint, save_checkpoint

SIZES = {"smoke": 2_000_000, "full": 25_000_000}
REPS = {"smoke": 5, "full": 7}


def make_state(n_params: int, seed: int = 0) -> tuple[dict, dict]:
    """Weights (about ``n_params`` floats in 8 matrices) and an optimizer-like training state."""
    g = torch.Generator().manual_seed(seed)
    side = int((n_params / 8) ** 0.5)
    weights = {f"blocks.{i}.weight": torch.randn(side, side, generator=g) for i in range(8)}
    state = {
        "optimizer_states": [
            {
                "state": {
                    i: {
                        "exp_avg": torch.randn(side, side, generator=g),
                        "exp_avg_sq": torch.rand(side, side, generator=g),
                        "step": torch.tensor(10.0),
                    }
                    for i in range(8)
                },
                "param_groups": [{"lr": 1e-3, "params": list(range(8))}],
            }
        ],
        "global_step": 10,
        "epoch": 0,
    }
    return weights, state


def _timed(fns: dict, cleanup, reps: int) -> dict[str, list[float]]:
    """Interleave ``fns`` (one warm-up each), cleaning up after every call, untimed."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(reps + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            cleanup()
            if rep:
                times[name].append(elapsed)
    return times


def run(size: str) -> dict:
    check_size(size)
    torch.set_num_threads(1)
    weights, state = make_state(SIZES[size])
    n_bytes = 3 * sum(w.numel() for w in weights.values()) * 4
    root = Path(tempfile.mkdtemp(prefix="neurofm-p6-"))
    try:
        plain = root / "plain"
        plain.mkdir()
        ckpts = root / "checkpoints"

        def ours_save() -> None:
            save_checkpoint(ckpts, 10, weights=weights, state=state)

        def peer_save() -> None:
            save_file(weights, str(plain / "model.safetensors"))
            torch.save(state, plain / "state.pt")

        def durable_peer_save() -> None:
            save_file(weights, str(plain / "model.safetensors"))
            with open(plain / "state.pt", "wb") as fh:
                torch.save(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            fd = os.open(plain / "model.safetensors", os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        def cleanup() -> None:
            shutil.rmtree(ckpts, ignore_errors=True)
            for path in plain.iterdir():
                path.unlink()

        saves = _timed(
            {"ours": ours_save, "peer": peer_save, "peer_fsync": durable_peer_save},
            cleanup,
            REPS[size],
        )
        ours_save()
        peer_save()

        def ours_load() -> None:
            load_checkpoint(ckpts / "step-10")

        def peer_load() -> None:
            load_file(str(plain / "model.safetensors"))
            torch.load(plain / "state.pt", weights_only=True)

        loads = _timed({"ours": ours_load, "peer": peer_load}, lambda: None, REPS[size])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "what": "atomic checkpoint save (fsync + rename) vs plain safetensors + torch.save",
        "ours": median(saves["ours"]),
        "peer": median(saves["peer"]),
        "unit": "s",
        "speedup": speedup(saves["ours"], saves["peer"]),
        "target": round(1 / 1.2, 3),
        "durable_peer": {
            "what": "the same plain save plus fsync of both files",
            "seconds": median(saves["peer_fsync"]),
            "speedup": speedup(saves["ours"], saves["peer_fsync"]),
        },
        "load": {
            "ours": median(loads["ours"]),
            "peer": median(loads["peer"]),
            "speedup": speedup(loads["ours"], loads["peer"]),
        },
        "all_times": {
            **{f"save_{k}": v for k, v in saves.items()},
            **{f"load_{k}": v for k, v in loads.items()},
        },
        "shapes": {
            "size": size,
            "n_params": sum(w.numel() for w in weights.values()),
            "checkpoint_bytes": n_bytes,
            "reps": REPS[size],
        },
        "versions": versions("safetensors"),
    }
    write_result("P6", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="smoke", choices=("smoke", "full"))
    out = run(parser.parse_args().size)
    print(
        f"P6 save: ours {out['ours']:.3f} s, plain {out['peer']:.3f} s, "
        f"speedup {out['speedup']:.2f} (target >= {out['target']}); load speedup "
        f"{out['load']['speedup']:.2f}"
    )
