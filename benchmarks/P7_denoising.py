"""P7: diffusion / flow sampling against the bare network called N times.

For N in 50 / 200 / 1000 steps (smoke: 10 / 50 / 200 on smaller inputs, see ``SHAPES``), ours is a full sampler call: DDPM and
DDIM (``diffusers`` schedulers driven by :func:`neurofm.generation.diffusion.sample_diffusion`)
over NTD, and the discrete Euler solver of ``flow_matching``
(:func:`neurofm.generation.flow.sample_flow`) over the flow-matching transformer. The peer is the
same network called N times on the same input shapes in a plain loop under ``no_grad`` (no
scheduler, no sampling): the floor every sampler pays. ``overhead`` is our time / the peer's
minus 1 (target <= 10%); ``time_per_step`` across N shows whether time is linear in N. Ours and
the peer run interleaved, 7 repetitions after a warm-up, one thread, seeded inputs. Each case
also gets a least-squares line of our time against N (``linear_fit``: seconds per step, fixed
seconds, R² and the largest relative residual) and the result records ``os.getloadavg()`` before
and after (timings on a loaded machine are noisy; the interleaved ratio much less so).
``sampler_alone_overhead`` times the sampler with the network replaced by a stand-in that
returns one precomputed output (the sampler's own work per call, over the peer's time): a
direct measure of the overhead that the difference of two noisy timings only estimates.

Run: ``python -m benchmarks.P7_denoising smoke`` (or ``full``); ``--steps 50 200 1000`` runs
BENCHMARKS.md's step counts on the size's input shapes.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from benchmarks._common import check_size, interleaved, median, versions, write_result

from neurofm.registry import MODELS, create

SIZES = {"smoke": (10, 50, 200), "full": (50, 200, 1000)}
REPS = 7
SHAPES = {  # NTD (windows, channels, samples) and flow matching (windows, tokens)
    "smoke": {"ntd": (2, 8, 64), "flow_matching": (2, 128)},
    "full": {"ntd": (4, 16, 160), "flow_matching": (4, 256)},
}
NTD_SHAPE, FLOW_SHAPE = SHAPES["full"]["ntd"], SHAPES["full"]["flow_matching"]


def _ntd_case(n_steps: int, sampler: str) -> dict:
    from neurofm.generation.diffusion import NoiseSchedule, sample_diffusion

    torch.manual_seed(0)
    model = create(MODELS, {"name": "ntd", "preset": "small", "n_chans": NTD_SHAPE[1]}).eval()
    schedule = NoiseSchedule(n_train_steps=max(1000, n_steps))
    x = torch.randn(NTD_SHAPE)
    steps = torch.full((NTD_SHAPE[0],), 10)

    def ours() -> None:
        sample_diffusion(
            model, NTD_SHAPE, n_steps=n_steps, schedule=schedule, sampler=sampler, seed=0
        )

    @torch.no_grad()
    def peer() -> None:
        for _ in range(n_steps):
            model(steps, x)

    return {"ours": ours, "peer": peer, "alone": _alone(model, ours, lambda: model(steps, x))}


def _flow_case(n_steps: int) -> dict:
    from neurofm.generation.flow import sample_flow

    torch.manual_seed(0)
    model = create(MODELS, {"name": "flow_matching", "preset": "small", "max_seq_len": 512}).eval()
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, FLOW_SHAPE)
    t = torch.full((FLOW_SHAPE[0],), 0.5)

    def ours() -> None:
        sample_flow(model, FLOW_SHAPE, n_steps=n_steps, vocab_size=vocab, seed=0)

    @torch.no_grad()
    def peer() -> None:
        for _ in range(n_steps):
            model(t, ids)

    return {"ours": ours, "peer": peer, "alone": _alone(model, ours, lambda: model(t, ids))}


def _alone(
    model: torch.nn.Module, ours: Callable[[], None], network_call: Callable[[], Any]
) -> Callable[[], None]:
    """``ours`` with the network replaced by a stand-in returning one precomputed output of the
    same shape: what the sampler costs by itself, free of the network's timing noise."""

    with torch.no_grad():
        output = network_call()

    @torch.no_grad()
    def alone() -> None:
        model.forward = lambda *args, **kwargs: output
        try:
            ours()
        finally:
            del model.forward

    return alone


def linear_fit(counts: list[int], seconds: list[float]) -> dict:
    """Least-squares ``seconds = per_step * N + fixed``, its R² and largest relative residual."""
    n, t = np.asarray(counts, dtype=float), np.asarray(seconds, dtype=float)
    slope, intercept = np.polyfit(n, t, 1)
    fit = slope * n + intercept
    total = float(((t - t.mean()) ** 2).sum())
    r2 = 1.0 - float(((t - fit) ** 2).sum()) / total if total > 0 else 1.0
    return {
        "per_step_s": float(slope),
        "fixed_s": float(intercept),
        "r2": r2,
        "max_relative_residual": float(np.max(np.abs(t - fit) / t)),
    }


def run(size: str, counts: tuple[int, ...] | None = None) -> dict:
    """Time the samplers against the bare network loop at ``size``'s input shapes and step counts
    (``counts`` replaces the step counts); write ``results/P7.json``."""
    load_before = os.getloadavg()
    torch.set_num_threads(1)
    counts = tuple(counts or SIZES[check_size(size)])
    global NTD_SHAPE, FLOW_SHAPE
    NTD_SHAPE, FLOW_SHAPE = SHAPES[size]["ntd"], SHAPES[size]["flow_matching"]
    cases = {}
    for name, make in (
        ("ddpm_ntd", lambda n: _ntd_case(n, "ddpm")),
        ("ddim_ntd", lambda n: _ntd_case(n, "ddim")),
        ("euler_flow_matching", _flow_case),
    ):
        rows = {}
        for n in counts:
            fns = make(n)
            alone = fns.pop("alone")
            times = interleaved(fns, reps=REPS, warmup=1)
            ours, peer = median(times["ours"]), median(times["peer"])
            alone_s = median(interleaved({"alone": alone}, reps=REPS, warmup=1)["alone"])
            rows[str(n)] = {
                "ours_s": ours,
                "peer_s": peer,
                "overhead": ours / peer - 1.0,
                "ours_time_per_step_s": ours / n,
                "sampler_alone_s": alone_s,
                "sampler_alone_overhead": alone_s / peer,
            }
        cases[name] = {
            "steps": rows,
            "linear_fit": linear_fit(list(counts), [rows[str(n)]["ours_s"] for n in counts]),
        }
    worst = max(r["overhead"] for case in cases.values() for r in case["steps"].values())
    worst_alone = max(
        r["sampler_alone_overhead"] for case in cases.values() for r in case["steps"].values()
    )
    largest = str(counts[-1])
    headline = cases["ddpm_ntd"]["steps"][largest]
    result = {
        "what": "denoising samplers (DDPM, DDIM over NTD; discrete Euler over the flow-matching "
        "transformer) vs the bare network called N times",
        "size": size,
        "ours": headline["ours_s"],
        "peer": headline["peer_s"],
        "unit": f"s per sampling call of {largest} steps (median of {REPS}, DDPM headline)",
        "speedup": headline["peer_s"] / headline["ours_s"],
        "target": 1 / 1.10,
        "worst_overhead": worst,
        "worst_sampler_alone_overhead": worst_alone,
        "cases": cases,
        "shapes": {"ntd": list(NTD_SHAPE), "flow_matching": list(FLOW_SHAPE)},
        "threads": torch.get_num_threads(),
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
        "versions": versions("diffusers", "flow-matching"),
    }
    write_result("P7", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", nargs="?", default="smoke", choices=("smoke", "full"))
    parser.add_argument(
        "--steps", type=int, nargs="+", help="step counts instead of the size's (e.g. 50 200 1000)"
    )
    args = parser.parse_args()
    out = run(args.size, tuple(args.steps) if args.steps else None)
    for name, case in out["cases"].items():
        fit = case["linear_fit"]
        steps = "  ".join(
            f"N={n}: {r['ours_s']:.3f} s vs {r['peer_s']:.3f} s ({100 * r['overhead']:+.1f}%, "
            f"alone {100 * r['sampler_alone_overhead']:.1f}%)"
            for n, r in case["steps"].items()
        )
        print(f"{name:<20} {steps}  | {1e3 * fit['per_step_s']:.2f} ms/step, R2 {fit['r2']:.4f}")
    print(
        f"worst overhead {100 * out['worst_overhead']:+.1f}% (sampler alone "
        f"{100 * out['worst_sampler_alone_overhead']:.1f}%), load {out['loadavg_before']}"
    )
