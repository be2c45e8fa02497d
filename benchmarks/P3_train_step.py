"""P3: one GPT training step (forward + loss + backward + AdamW) through neurofm vs a plain loop.

Model: the registered ``gpt2meg_trf`` (``small``: d_model 256, 4 layers; 64-channel id table) on
mu-law codes of real EEG (the shipped S001R04 recording, tokenizer fitted on the same run).

- ours: the ``next_token`` objective, ``objective(model, batch)`` (input slicing, context
  keywords, cross-entropy, metrics, auxiliary losses), then ``loss.backward()``, AdamW step;
- ours through Lightning: the same model and objective in ``neurofm.training.FitModule`` (AdamW
  with parameter groups and a schedule, per-step logging) run by ``lightning.Trainer``; a step is
  the time between consecutive ``on_train_batch_start`` calls, the first step of every fit
  (optimizer state creation) excluded;
- peer: the plain PyTorch loop on the same module: ``model(x).logits`` -> ``F.cross_entropy``
  -> ``backward`` -> ``AdamW.step``.

All three share one process and one model, interleaved (peer, ours, Lightning, ...) after a
warm-up, with ``torch.set_num_threads`` pinned. Model FLOPs per step = tokens x (6 x matmul
parameters + 12 x n_layers x d_model x T) (the PaLM count, attention not halved for causality);
MFU is that over the step time over the peak measured on the same device by a large matmul.

Run: ``python benchmarks/P3_train_step.py --size full`` (CPU, writes ``results/P3.json``), or on a
GPU ``python benchmarks/P3_train_step.py --device cuda --d-model 768 --n-layers 12 --bf16``
(writes ``results/P3_cuda_bf16.json``; any setting other than the CPU default writes
``results/P3_<device>[_bf16].json``, never ``P3.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F
from benchmarks._common import check_size, median, versions, write_result
from torch import nn

from neurofm.registry import MODELS, OBJECTIVES, TOKENIZERS, create
from neurofm.types import Batch

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "eegbci_S001" / "S001R04.edf"
SHAPES = {  # device type -> size -> (windows B, channels C, samples T + 1)
    "cpu": {"smoke": (2, 4, 129), "full": (4, 4, 257)},
    "cuda": {"smoke": (2, 4, 257), "full": (8, 8, 1025)},
}


def eeg_codes(n_windows: int, n_chans: int, n_times: int, n_levels: int) -> torch.Tensor:
    """Mu-law codes (n_windows, n_chans, n_times) of consecutive windows of S001R04."""
    import mne

    raw = mne.io.read_raw_edf(SAMPLE, preload=False, verbose="error")
    x = raw.get_data(picks=list(range(n_chans))).astype(np.float32)
    tok = create(TOKENIZERS, {"name": "mulaw", "n_levels": n_levels})
    tok.fit(x, fitted_on="S001R04")
    start = 1600
    windows = [x[:, start + i * n_times : start + (i + 1) * n_times] for i in range(n_windows)]
    return torch.as_tensor(np.stack([np.asarray(tok.encode(w).codes) for w in windows]))


def model_flops_per_step(model: nn.Module, n_sequences: int, seq_len: int) -> float:
    """Training FLOPs of one step: tokens x (6 N_matmul + 12 L d T)."""
    cfg = model.config
    n_matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    per_token = 6 * n_matmul + 12 * cfg.n_layers * cfg.d_model * seq_len
    return float(n_sequences * seq_len * per_token)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_flops(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul on ``device`` in ``dtype`` (best of a few)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(3 if device.type == "cpu" else 20):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def _interleaved_in_lightning(
    fns: dict[str, Callable[[], None]],
    model: nn.Module,
    objective: nn.Module,
    batch: Batch,
    *,
    reps: int,
    warmup: int,
    bf16: bool,
) -> dict[str, list[float]]:
    """Per-step times of ``fns`` and of ``lightning.Trainer`` steps, interleaved.

    One Trainer fit runs ``warmup + reps + 1`` steps of ``FitModule``. At the start of each of its
    batches a callback runs every function of ``fns`` once (timed); the Lightning step is the time
    from the end of that callback to the start of the next batch, which holds everything the
    Trainer does for one step (hooks, batch fetch and transfer, forward, loss, backward, optimizer
    and scheduler step, logging). The first ``warmup`` steps of each are not kept.
    """
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from neurofm.training.config import OptimConfig
    from neurofm.training.module import FitModule

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # no banner, no tips
    warnings.filterwarnings("ignore", module="lightning")
    device = batch.x.device
    times: dict[str, list[float]] = {name: [] for name in (*fns, "lightning")}

    class Interleave(pl.Callback):
        resumed: float | None = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            _sync(device)
            now = time.perf_counter()
            if self.resumed is not None and batch_idx - 1 >= warmup:
                times["lightning"].append(now - self.resumed)
            if batch_idx < warmup + reps:
                for name, fn in fns.items():
                    _sync(device)
                    start = time.perf_counter()
                    fn()
                    _sync(device)
                    if batch_idx >= warmup:
                        times[name].append(time.perf_counter() - start)
            _sync(device)
            self.resumed = time.perf_counter()

    n_steps = warmup + reps + 1
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if bf16 else "32-true",
        max_steps=n_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Interleave()],
    )
    module = FitModule(
        model=model, objective=objective, optim=OptimConfig(lr=1e-4, schedule="constant")
    )
    trainer.fit(module, train_dataloaders=DataLoader([batch] * n_steps, batch_size=None))
    return times


def run(
    size: str = "smoke",
    reps: int = 11,
    *,
    device: str = "cpu",
    d_model: int | None = None,
    n_layers: int | None = None,
    bf16: bool = False,
    threads: int = 2,
) -> dict:
    """Time a training step of ours, ours through Lightning and the plain loop; write the JSON."""
    check_size(size)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    n_windows, n_chans, n_times = SHAPES[dev.type][size]
    spec: dict = {"name": "gpt2meg_trf", "preset": "small", "n_chans": 64, "max_seq_len": n_times}
    if d_model is not None:
        spec.update(d_model=d_model, n_heads=max(1, d_model // 64))
    if n_layers is not None:
        spec["n_layers"] = n_layers
    model = create(MODELS, spec).to(dev)
    vocab = model.config.vocab_size
    codes = eeg_codes(n_windows, n_chans, n_times, vocab).to(dev)
    batch = Batch(x=codes)
    objective = create(OBJECTIVES, {"name": "next_token"})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def autocast() -> contextlib.AbstractContextManager:
        if not bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)

    def finish(loss: torch.Tensor) -> None:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def ours() -> None:
        with autocast():
            out = objective(model, batch)
        finish(out.loss)

    def plain() -> None:
        with autocast():
            logits = model(codes[..., :-1]).logits
        finish(F.cross_entropy(logits.float().reshape(-1, vocab), codes[..., 1:].reshape(-1)))

    times = _interleaved_in_lightning(
        {"plain": plain, "ours": ours}, model, objective, batch, reps=reps, warmup=2, bf16=bf16
    )

    seq_len = n_times - 1
    flops = model_flops_per_step(model, n_windows * n_chans, seq_len)
    peak = peak_flops(dev, torch.bfloat16 if bf16 else torch.float32)
    med = {k: median(v) for k, v in times.items()}
    # each repetition pairs the three steps run back to back: the median of the per-repetition
    # ratios is robust to the load of a shared machine drifting between repetitions
    ratio = {
        k: median([p / o for p, o in zip(times["plain"], times[k])]) for k in ("ours", "lightning")
    }
    result = {
        "what": "GPT training step (forward + next-token loss + backward + AdamW) of gpt2meg_trf",
        "ours": {"next_token": med["ours"], "lightning": med["lightning"]},
        "peer": med["plain"],
        "unit": "s per step (median)",
        "speedup": ratio["ours"],
        "target": 0.90,
        "speedup_lightning": ratio["lightning"],
        "target_lightning": 0.85,
        "speedup_of_medians": {k: med["plain"] / med[k] for k in ("ours", "lightning")},
        "tokens_per_s": {k: n_windows * n_chans * seq_len / v for k, v in med.items()},
        "model_flops_per_step": flops,
        "peak_flops_measured": peak,
        "mfu": {k: flops / v / peak for k, v in med.items()},
        "mfu_target_h100": 0.35,
        "times": times,
        "shapes": {
            "codes": [n_windows, n_chans, n_times],
            "model_input": [n_windows, n_chans, seq_len],
            "d_model": model.config.d_model,
            "n_layers": model.config.n_layers,
            "n_heads": model.config.n_heads,
            "vocab_size": vocab,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "device": str(dev),
        "precision": "bf16-mixed" if bf16 else "fp32",
        "reps": reps,
        "torch_threads": torch.get_num_threads(),
        "size": size,
        "versions": versions("lightning"),
    }
    default = dev.type == "cpu" and not bf16 and d_model is None and n_layers is None
    write_result("P3" if default else f"P3_{dev.type}" + ("_bf16" if bf16 else ""), result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=("smoke", "full"))
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--d-model", type=int, default=None)
    parser.add_argument("--n-layers", type=int, default=None)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = run(
        args.size,
        args.reps,
        device=args.device,
        d_model=args.d_model,
        n_layers=args.n_layers,
        bf16=args.bf16,
        threads=args.threads,
    )
    print({k: out[k] for k in ("ours", "peer", "speedup", "speedup_lightning", "mfu")})
