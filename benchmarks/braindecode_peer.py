"""The braindecode side of the benchmarks, run in the benchmark environment (``.venv-bench``).

It imports numpy, torch, MNE and braindecode, never neurofm (whose torch it does not share), and
is driven by :mod:`benchmarks._peer`. Commands (``python -m benchmarks.braindecode_peer CMD``),
each printing one JSON line:

- ``versions``: braindecode, torch, torchaudio, mne and numpy versions;
- ``decode DATA.npz OUT.json EPOCHS BATCH SEED``: braindecode ``EEGNet`` and ``ShallowFBCSPNet``
  trained in each leave-one-run-out fold of the windows in ``DATA.npz`` (``x`` (N, C, T), ``y``,
  ``groups``, ``runs``, and the per-fold standardisation ``mean`` / ``std`` (F, 1, C, 1) that
  neurofm's networks see) with the recipe of neurofm's ``train_classifier``: AdamW (lr 1e-3,
  weight decay 1e-2), cross-entropy, shuffled batches; writes the held-out predictions;
- ``latency N_CHANS N_TIMES SFREQ REPS``: batch-1 forward latency of ``EEGNet`` (eval mode,
  no grad, one torch thread) at the input shape (1, N_CHANS, N_TIMES);
- ``serve``: answers JSON requests on stdin (one per line) for P1: ``p1_load`` builds
  braindecode windows on a FIF file (``create_fixed_length_windows`` on the raw preloaded and
  lazy, ``create_windows_from_events`` on annotations every window), ``read`` reads the windows
  at the given starts, ``epoch`` runs one DataLoader epoch, ``window`` returns one window.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from importlib import metadata
from typing import Any

import numpy as np
import torch

# braindecode 1.8 imports raise MNE's montage-name FutureWarnings; they say nothing of the peer.
warnings.filterwarnings("ignore", category=FutureWarning, module="braindecode")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("braindecode", "torch", "torchaudio", "mne", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    import braindecode.models  # noqa: F401  (the import that fails without torchaudio)
    import braindecode.preprocessing  # noqa: F401

    return out


# --- decoding ---------------------------------------------------------------------------------

MODELS = ("EEGNet", "ShallowFBCSPNet")


def _build(name: str, n_chans: int, n_outputs: int, n_times: int, sfreq: float) -> torch.nn.Module:
    from braindecode import models

    cls = getattr(models, name)
    kwargs = {"n_chans": n_chans, "n_outputs": n_outputs, "n_times": n_times}
    if name == "EEGNet":
        kwargs["sfreq"] = sfreq
    return cls(**kwargs)


def _train(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, seed: int
) -> torch.nn.Module:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(batch):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def folds(arrays: Any) -> Any:
    """Yield ``(i, test, xs)`` per leave-one-run-out fold of the windows file's ``arrays``: the
    fold index, the held-out mask (run ``runs[i]``) and all windows standardised with the
    fold's ``mean`` / ``std`` (float32), as neurofm's networks see them."""
    x, groups, runs = arrays["x"], arrays["groups"], arrays["runs"]
    for i, run in enumerate(runs):
        yield i, groups == run, ((x - arrays["mean"][i]) / arrays["std"][i]).astype(np.float32)


def decode(data: str, out: str, epochs: int, batch: int, seed: int) -> dict[str, Any]:
    """Held-out predictions of each braindecode model over the leave-one-run-out folds."""
    torch.set_num_threads(1)
    arrays = dict(np.load(data))
    x, y = arrays["x"], arrays["y"].astype(np.int64)
    sfreq = float(arrays["sfreq"])
    n_classes = int(y.max()) + 1
    result: dict[str, Any] = {"versions": versions(), "models": {}}
    for name in MODELS:
        predicted = np.empty_like(y)
        start = time.perf_counter()
        n_params = 0
        for i, test, xs in folds(arrays):
            torch.manual_seed(seed + i)
            model = _build(name, x.shape[1], n_classes, x.shape[2], sfreq)
            n_params = sum(p.numel() for p in model.parameters())
            _train(
                model,
                torch.from_numpy(xs[~test]),
                torch.from_numpy(y[~test]),
                epochs,
                batch,
                seed + i,
            )
            with torch.no_grad():
                logits = torch.cat([model(b) for b in torch.from_numpy(xs[test]).split(batch)])
            predicted[test] = logits.argmax(dim=1).numpy()
        result["models"][name] = {
            "predicted": predicted.tolist(),
            "train_and_predict_seconds": time.perf_counter() - start,
            "n_params": int(n_params),
        }
    with open(out, "w") as fh:
        json.dump(result, fh)
    return {"written": out}


# --- latency ----------------------------------------------------------------------------------


def latency(n_chans: int, n_times: int, sfreq: float, reps: int) -> dict[str, Any]:
    """Batch-1 forward latencies (s) of braindecode's EEGNet and ShallowFBCSPNet."""
    torch.set_num_threads(1)
    out: dict[str, Any] = {"versions": versions(), "models": {}}
    x = torch.randn(1, n_chans, n_times)
    for name in MODELS:
        torch.manual_seed(0)
        model = _build(name, n_chans, 2, n_times, sfreq).eval()
        times = []
        with torch.no_grad():
            for _ in range(max(3, reps // 10)):
                model(x)
            for _ in range(reps):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
        out["models"][name] = {
            "seconds": times,
            "n_params": int(sum(p.numel() for p in model.parameters())),
        }
    return out


# --- P1 window server -------------------------------------------------------------------------


class WindowServer:
    """braindecode windows of one FIF file, read on request."""

    def __init__(self) -> None:
        self.sets: dict[str, Any] = {}
        self.starts: list[int] = []
        self.order: list[int] = []
        self.event_reads: list[int] = []

    def p1_load(
        self, fif: str, window: int, starts: list[int], order: list[int], event_reads: list[int]
    ) -> dict[str, Any]:
        import mne
        from braindecode.datasets import BaseConcatDataset, RawDataset
        from braindecode.preprocessing import (
            create_fixed_length_windows,
            create_windows_from_events,
        )

        torch.set_num_threads(1)
        self.starts, self.order, self.event_reads = starts, order, event_reads
        built = {}
        for preload in (True, False):
            kind = "preload" if preload else "lazy"
            raw = mne.io.read_raw_fif(fif, preload=preload, verbose="error")
            concat = BaseConcatDataset([RawDataset(raw, description={"id": "rec"})])
            for stride, role in ((1, "reads"), (window, "epoch")):
                start = time.perf_counter()
                self.sets[f"fixed_{kind}_{role}"] = create_fixed_length_windows(
                    concat,
                    window_size_samples=window,
                    window_stride_samples=stride,
                    on_last_window="drop",
                    preload=preload,
                )
                built[f"fixed_{kind}_{role}"] = time.perf_counter() - start
            events = raw.copy()
            onsets = np.arange(0, raw.n_times - window + 1, window) / raw.info["sfreq"]
            events.set_annotations(mne.Annotations(onsets, 0.0, ["w"] * len(onsets)))
            start = time.perf_counter()
            self.sets[f"events_{kind}"] = create_windows_from_events(
                BaseConcatDataset([RawDataset(events, description={"id": "rec"})]),
                trial_start_offset_samples=0,
                trial_stop_offset_samples=window,
                mapping={"w": 0},
                preload=preload,
            )
            built[f"events_{kind}"] = time.perf_counter() - start
        return {"sizes": {k: len(v) for k, v in self.sets.items()}, "build_seconds": built}

    def read(self, variant: str) -> dict[str, Any]:
        """Read the windows at the P1 starts (fixed-length, stride 1) or at the event indices."""
        if variant.startswith("events_"):
            data = self.sets[variant]
            items = [data[i] for i in self.event_reads]
        else:
            data = self.sets[f"fixed_{variant}_reads"]
            items = [data[s] for s in self.starts]
        return {"n": len(items)}

    def epoch(self, variant: str) -> dict[str, Any]:
        data = self.sets[variant if variant.startswith("events_") else f"fixed_{variant}_epoch"]
        loader = torch.utils.data.DataLoader(data, batch_size=64, sampler=self.order)
        return {"batches": sum(1 for _ in loader)}

    def window(self, variant: str, index: int) -> dict[str, Any]:
        x = self.sets[variant][index][0]
        return {"x": np.asarray(x, dtype=np.float32).tolist(), "dtype": str(np.asarray(x).dtype)}


def serve() -> None:
    server = WindowServer()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            answer = getattr(server, op)(**request)
        except Exception as err:  # the client raises it with the request named
            answer = {"error": f"{type(err).__name__}: {err}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "serve":
        serve()
        return
    if command == "versions":
        answer = versions()
    elif command == "decode":
        answer = decode(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif command == "latency":
        answer = latency(int(args[0]), int(args[1]), float(args[2]), int(args[3]))
    else:
        raise SystemExit(f"unknown command {command!r} (versions, decode, latency, serve)")
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1:])
