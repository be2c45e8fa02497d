"""P10: NeuroFM-X speed on this machine: the selective scan, latency and throughput.

- scan: neurofm's :class:`~neurofm.layers.mamba.MambaStack` with its default parallel scan
  (ours) against ``mambapy``'s own ``Mamba`` model with its ``pscan`` on the same weights (the
  peer), and the step-by-step reference recurrence; outputs compared (max abs difference,
  target 1e-5), times interleaved;
- latency: one window (batch 1) through the whole ``neurofm_x`` model in eval mode, ``tiny`` and
  ``base`` presets; throughput: windows per second at batch 32 (tiny) / 8 (base);
  against the spec's figures (< 10 ms per sample, > 1000 samples/s);
- the parameter count of ``base`` against the spec's ~230 M.

The CPU is shared with other jobs: ``os.getloadavg()`` is recorded before and after. On a GPU
(none here unless lent) the CUDA kernel path would be timed too when ``mamba-ssm`` imports.
"""

from __future__ import annotations

import os

import torch
from benchmarks._common import check_size, interleaved, median, versions, write_result

from neurofm.layers.mamba import MambaStack
from neurofm.models.neurofm_x import NeuroFMX, NeuroFMXConfig

SIZES = {  # (scan batch, scan length, scan d_model, window bins, reps)
    "smoke": (2, 64, 32, 32, 2),
    "full": (4, 256, 128, 100, 5),
}
N_UNITS = 96  # the spec's binned example (2, 100, 96)


def _scan_case(batch: int, length: int, d_model: int, reps: int) -> dict:
    from mambapy.mamba import Mamba

    torch.manual_seed(0)
    ours = MambaStack(d_model, 2, d_state=16, scan="parallel").eval()
    peer = Mamba(ours.mamba_config).eval()
    peer.layers.load_state_dict(ours.blocks.state_dict())
    x = torch.randn(batch, length, d_model)
    with torch.no_grad():
        ours_out = ours(x)
        # neurofm's stack ends with a final RMSNorm; mambapy's Mamba does not: compare before it
        ours_blocks = x
        for block in ours.blocks:
            ours_blocks = block(ours_blocks)
        peer_out = peer(x)
        ours.set_scan("sequential")
        reference = ours(x)
        ours.set_scan("parallel")
    times = interleaved(
        {
            "ours": torch.no_grad()(lambda: ours(x)),
            "peer": torch.no_grad()(lambda: peer(x)),
        },
        reps=reps,
        warmup=1,
    )
    ours.set_scan("sequential")
    sequential = interleaved({"sequential": torch.no_grad()(lambda: ours(x))}, reps=reps)
    return {
        "shape": [batch, length, d_model],
        "max_abs_diff_vs_mambapy": float((ours_blocks - peer_out).abs().max()),
        "max_abs_diff_vs_sequential": float((ours_out - reference).abs().max()),
        "ours_s": median(times["ours"]),
        "peer_s": median(times["peer"]),
        "sequential_s": median(sequential["sequential"]),
    }


def _model_case(preset: str, window: int, batch: int, reps: int) -> dict:
    torch.manual_seed(0)
    sizes = NeuroFMXConfig.PRESETS[preset]
    config = NeuroFMXConfig(**{**sizes, "n_units": N_UNITS, "n_behaviour": 2, "scan": "parallel"})
    model = NeuroFMX(config).eval()
    one = torch.poisson(torch.full((1, window, N_UNITS), 1.0))
    many = torch.poisson(torch.full((batch, window, N_UNITS), 1.0))
    times = interleaved(
        {"one": torch.no_grad()(lambda: model(one)), "many": torch.no_grad()(lambda: model(many))},
        reps=reps,
        warmup=1,
    )
    latency, batch_time = median(times["one"]), median(times["many"])
    return {
        "parameters": model.count_parameters()["total"],
        "window_bins": window,
        "latency_ms_per_sample": 1e3 * latency,
        "batch": batch,
        "throughput_samples_per_s": batch / batch_time,
        "meets_latency_target_10ms": 1e3 * latency < 10.0,
        "meets_throughput_target_1000": batch / batch_time > 1000.0,
    }


def run(size: str) -> dict:
    """Time the scan and the presets; write ``results/P10.json``."""
    batch, length, d_model, window, reps = SIZES[check_size(size)]
    load_before = os.getloadavg()
    scan = _scan_case(batch, length, d_model, reps)
    presets = {
        "tiny": _model_case("tiny", window, 32, reps),
        "base": _model_case("base", window, 8, max(2, reps // 2)),
    }
    with torch.device("meta"):
        base_parameters = NeuroFMX(NeuroFMXConfig()).count_parameters()
    result = {
        "what": "selective scan (neurofm MambaStack, parallel) vs mambapy's Mamba (pscan); "
        "latency and throughput of the neurofm_x tiny and base presets on CPU",
        "size": size,
        "ours": scan["ours_s"],
        "peer": scan["peer_s"],
        "unit": "s per scan forward (median)",
        "speedup": scan["peer_s"] / scan["ours_s"],
        "target": 1.0,
        "parity_within_1e-5": max(
            scan["max_abs_diff_vs_mambapy"], scan["max_abs_diff_vs_sequential"]
        )
        < 1e-5,
        "scan": scan,
        "presets": presets,
        "base_parameters": base_parameters,
        "base_parameters_spec": 230_000_000,
        "device": "cpu",
        "cuda_path": "not run: no GPU on this machine",
        "threads": torch.get_num_threads(),
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
        "versions": versions("mambapy"),
    }
    write_result("P10", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run("smoke"), indent=1, default=str))
