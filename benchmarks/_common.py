"""Shared benchmark helpers: interleaved A/B timing, machine description, result files.

Every benchmark times ours and its peer in the same process, interleaved after a warm-up, the
order alternating between repetitions (A B, B A, A B, ...) so that neither side always runs on a
cache or allocator state the other left behind, and reports the median of each and the ratio of
medians.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

SIZES = ("smoke", "full")


def check_size(size: str) -> str:
    """Return ``size`` when it is one of :data:`SIZES`, else raise a ValueError naming them."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return size


def interleaved(
    fns: dict[str, Callable[[], Any]], *, reps: int = 5, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each function ``reps`` times, interleaved, after ``warmup`` calls each.

    Parameters
    ----------
    fns : dict of str to callable
        Zero-argument callables, run in dict order in even repetitions and in reverse order in
        odd ones (A B, B A, ...).
    reps : int
        Timed repetitions per function (>= 5 for a reported result).
    warmup : int
        Untimed calls of each function before timing.

    Returns
    -------
    dict of str to list of float
        Wall-clock seconds of every timed call, per name.
    """
    if reps < 1 or warmup < 0:
        raise ValueError(f"reps must be >= 1 and warmup >= 0, got reps={reps}, warmup={warmup}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    forward = list(fns.items())
    for rep in range(reps):
        for name, fn in forward if rep % 2 == 0 else forward[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def speedup(ours: list[float], peer: list[float]) -> float:
    """How many times faster ours is than the peer: median peer time / median our time."""
    return median(peer) / median(ours)


def machine_info() -> dict[str, Any]:
    """CPU, core count, torch threads, OS and Python version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15min": list(os.getloadavg()),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def versions(*packages: str) -> dict[str, str | None]:
    """Installed versions of neurofm, numpy, torch and the named ``packages`` (None if absent)."""
    out: dict[str, str | None] = {}
    for name in ("neurofm", "numpy", "torch", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_result(bench_id: str, result: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<bench_id>.json`` with ``id``, ``machine`` and ``date`` filled in.

    ``result`` should hold ``what``, ``ours``, ``peer``, ``unit``, ``speedup``, ``target``,
    ``shapes`` and ``versions``; missing ``machine`` and ``date`` are added here.
    """
    payload = {"id": bench_id, **result}
    payload.setdefault("machine", machine_info())
    payload.setdefault("date", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{bench_id}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    os.replace(tmp, path)
    return path


def seeded_runs(
    doc: str,
    output: Path,
    data: Path,
    run_seed: Callable[[int, int, int], dict[str, Any]],
    argv: list[str] | None = None,
) -> tuple[Any, list[dict[str, Any]]] | None:
    """Parse ``--steps --seeds --n_bootstrap --output`` and run ``run_seed(seed, steps,
    n_bootstrap)`` per seed on one torch thread; None (after saying why) when ``data`` is absent."""
    import argparse
    import sys

    import torch

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n_bootstrap", type=int, default=500)
    parser.add_argument("--output", default=str(output))
    args = parser.parse_args(argv)
    if not data.is_dir():
        print(f"the recording is absent ({data})", file=sys.stderr)
        return None
    torch.set_num_threads(1)
    return args, [run_seed(seed, args.steps, args.n_bootstrap) for seed in args.seeds]
