"""P2: mu-law tokenizer encode and encode+decode against a plain numpy mu-law.

Input: 306 channels x 150,000 samples (``full``; ``smoke`` uses 30,000) of float32, a random walk
per channel with channel-specific scales (seeded). Both sides do the same work: per-channel
centre and scale (fitted once, outside the timing), clip to [-1, 1], compress, quantize to 256
levels (and, for encode+decode, expand back to the signal's units). Timed interleaved in one
process after a warm-up; the codes of both are compared element by element.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from benchmarks._common import (
    check_size,
    interleaved,
    median,
    speedup,
    versions,
    write_result,
)

from neurofm.registry import TOKENIZERS, create

N_LEVELS = 256
SHAPES = {"smoke": (306, 30_000), "full": (306, 150_000)}


def numpy_encode(x: np.ndarray, center: np.ndarray, scale: np.ndarray, mu: float) -> np.ndarray:
    """Plain numpy mu-law: scale, clip, compress, quantize to ``N_LEVELS`` int64 codes."""
    y = np.clip((x - center[:, None]) / scale[:, None], -1.0, 1.0)
    y = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    return np.round((y + 1.0) * ((N_LEVELS - 1) / 2.0)).astype(np.int64)


def numpy_decode(codes: np.ndarray, center: np.ndarray, scale: np.ndarray, mu: float) -> np.ndarray:
    """Plain numpy inverse: code centre, expand, rescale (float32)."""
    y = codes.astype(np.float32) * np.float32(2.0 / (N_LEVELS - 1)) - np.float32(1.0)
    x = np.sign(y) * np.expm1(np.abs(y) * np.float32(math.log1p(mu))) / np.float32(mu)
    return x * scale[:, None].astype(np.float32) + center[:, None].astype(np.float32)


def run(size: str = "smoke", reps: int = 7) -> dict:
    """Time ours vs numpy on ``size`` data; write ``benchmarks/results/P2.json``."""
    check_size(size)
    n_chans, n_times = SHAPES[size]
    rng = np.random.default_rng(0)
    scales = np.exp(rng.uniform(-2, 2, n_chans))[:, None]
    x = (np.cumsum(rng.standard_normal((n_chans, n_times)), axis=1) * scales).astype(np.float32)
    tok = create(TOKENIZERS, {"name": "mulaw", "n_levels": N_LEVELS})
    tok.fit(x[:, : min(n_times, 20_000)], fitted_on="benchmark:first-20000-samples")
    center = tok.center.numpy().astype(np.float32)
    scale = tok.scale.numpy().astype(np.float32)
    mu = tok.mu

    ours_codes = tok.encode(x).codes
    peer_codes = numpy_encode(x, center, scale, mu)
    identical = float((ours_codes == peer_codes).mean())
    recon_gap = float(
        np.abs(tok.decode(ours_codes) - numpy_decode(peer_codes, center, scale, mu)).max()
    )

    enc = interleaved(
        {"ours": lambda: tok.encode(x), "peer": lambda: numpy_encode(x, center, scale, mu)},
        reps=reps,
    )
    both = interleaved(
        {
            "ours": lambda: tok.decode(tok.encode(x).codes),
            "peer": lambda: numpy_decode(numpy_encode(x, center, scale, mu), center, scale, mu),
        },
        reps=reps,
    )
    result = {
        "what": "mu-law tokenizer (256 levels, per-channel scaling) encode and encode+decode vs plain numpy",
        "ours": {"encode": median(enc["ours"]), "encode_decode": median(both["ours"])},
        "peer": {"encode": median(enc["peer"]), "encode_decode": median(both["peer"])},
        "unit": "s (median)",
        "speedup": min(speedup(enc["ours"], enc["peer"]), speedup(both["ours"], both["peer"])),
        "speedup_encode": speedup(enc["ours"], enc["peer"]),
        "speedup_encode_decode": speedup(both["ours"], both["peer"]),
        "target": 1.0,
        "identical_codes": identical,
        "identical_codes_target": 0.9999,
        "max_abs_reconstruction_gap": recon_gap,
        "samples_per_s_encode": n_chans * n_times / median(enc["ours"]),
        "shapes": {"x": [n_chans, n_times], "dtype": "float32", "n_levels": N_LEVELS},
        "reps": reps,
        "torch_threads": torch.get_num_threads(),
        "size": size,
        "versions": versions(),
    }
    write_result("P2", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=("smoke", "full"))
    args = parser.parse_args()
    out = run(args.size)
    print(
        {
            k: out[k]
            for k in ("ours", "peer", "speedup_encode", "speedup_encode_decode", "identical_codes")
        }
    )
