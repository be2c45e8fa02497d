"""P2: mu-law tokenizer encode and encode+decode against a competent plain numpy mu-law.

Input: 306 channels x 150,000 samples (``full``; ``smoke`` uses 30,000) of float32, a random walk
per channel with channel-specific scales (seeded). The per-channel centre and scale are fitted
once, outside the timing, on the whole series (so that about 0.1% of the samples are clipped, as
the 0.999 quantile scale intends, not half of them).

The peer is the numpy version a good engineer would write: float32 throughout (no promotion to
float64 by a Python or NumPy float64 scalar), in place after the first subtraction, with the same
work as ours: a finite check of the input, the count of clipped samples, clip, compress, quantize
to 256 int64 codes (and, for encode+decode, expand back to the signal's units in float32). Two
formulations of the compression are timed and the faster one is the peer: ``np.log1p(mu |y|)``
(numpy's float32 ``log1p`` is not vectorised) and ``np.log(1 + mu |y|)``; likewise ``np.expm1``
and ``np.exp(..) - 1`` when decoding. Both sides run on one thread (``torch.set_num_threads(1)``;
numpy's element-wise functions use one). Timed interleaved in one process after a warm-up, the
order alternating; the codes of both are compared element by element.
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
THREADS = 1


def numpy_encode(
    x: np.ndarray, center: np.ndarray, scale: np.ndarray, mu: float, *, log1p: bool = False
) -> tuple[np.ndarray, int]:
    """Competent numpy mu-law of float32 ``x``: ``(codes int64, n_clipped)``."""
    if not np.isfinite(x).all():
        raise ValueError("x: non-finite values")
    y = x - center[:, None]  # float32: center and scale are float32 arrays
    y /= scale[:, None]
    sign = np.sign(y)
    np.abs(y, out=y)
    n_clipped = int(np.count_nonzero(y > np.float32(1.0)))
    np.minimum(y, np.float32(1.0), out=y)
    y *= np.float32(mu)
    if log1p:
        np.log1p(y, out=y)
    else:
        y += np.float32(1.0)
        np.log(y, out=y)
    y *= np.float32(1.0 / math.log1p(mu))
    y *= sign
    y += np.float32(1.0)
    y *= np.float32((N_LEVELS - 1) / 2.0)
    np.rint(y, out=y)
    return y.astype(np.int64), n_clipped


def numpy_decode(
    codes: np.ndarray, center: np.ndarray, scale: np.ndarray, mu: float, *, expm1: bool = False
) -> np.ndarray:
    """Competent numpy inverse (float32, in place): bin centre, expand, rescale."""
    y = codes.astype(np.float32)
    y *= np.float32(2.0 / (N_LEVELS - 1))
    y -= np.float32(1.0)
    sign = np.sign(y)
    np.abs(y, out=y)
    y *= np.float32(math.log1p(mu))
    if expm1:
        np.expm1(y, out=y)
    else:
        np.exp(y, out=y)
        y -= np.float32(1.0)
    y *= np.float32(1.0 / mu)
    y *= sign
    y *= scale[:, None]
    y += center[:, None]
    return y


def run(size: str = "smoke", reps: int = 7) -> dict:
    """Time ours vs numpy on ``size`` data; write ``benchmarks/results/P2.json``."""
    check_size(size)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _run(size, reps)
    finally:
        torch.set_num_threads(threads_before)


def _run(size: str, reps: int) -> dict:
    n_chans, n_times = SHAPES[size]
    rng = np.random.default_rng(0)
    scales = np.exp(rng.uniform(-2, 2, n_chans))[:, None]
    x = (np.cumsum(rng.standard_normal((n_chans, n_times)), axis=1) * scales).astype(np.float32)
    tok = create(TOKENIZERS, {"name": "mulaw", "n_levels": N_LEVELS})
    tok.fit(x, fitted_on="benchmark:whole-series")
    center = tok.center.numpy().astype(np.float32)
    scale = tok.scale.numpy().astype(np.float32)
    mu = tok.mu

    ours_out = tok.encode(x)
    peer_codes, peer_clipped = numpy_encode(x, center, scale, mu)
    log1p_codes, _ = numpy_encode(x, center, scale, mu, log1p=True)
    identical = float((ours_out.codes == peer_codes).mean())
    identical_log1p = float((ours_out.codes == log1p_codes).mean())
    recon_gap = float(
        np.abs(tok.decode(ours_out.codes) - numpy_decode(peer_codes, center, scale, mu)).max()
    )

    variants = interleaved(
        {
            "log": lambda: numpy_encode(x, center, scale, mu),
            "log1p": lambda: numpy_encode(x, center, scale, mu, log1p=True),
            "exp": lambda: numpy_decode(peer_codes, center, scale, mu),
            "expm1": lambda: numpy_decode(peer_codes, center, scale, mu, expm1=True),
        },
        reps=3,
    )
    log1p = median(variants["log1p"]) < median(variants["log"])
    expm1 = median(variants["expm1"]) < median(variants["exp"])

    def peer_encode():
        return numpy_encode(x, center, scale, mu, log1p=log1p)

    def peer_both():
        codes, _ = numpy_encode(x, center, scale, mu, log1p=log1p)
        return numpy_decode(codes, center, scale, mu, expm1=expm1)

    enc = interleaved({"ours": lambda: tok.encode(x), "peer": peer_encode}, reps=reps)
    both = interleaved(
        {"ours": lambda: tok.decode(tok.encode(x).codes), "peer": peer_both}, reps=reps
    )
    result = {
        "what": "mu-law tokenizer (256 levels, per-channel scaling) encode and encode+decode vs "
        "a competent numpy mu-law (float32, in place, same finite check and clip count, "
        "one thread each)",
        "ours": {"encode": median(enc["ours"]), "encode_decode": median(both["ours"])},
        "peer": {"encode": median(enc["peer"]), "encode_decode": median(both["peer"])},
        "peer_variant": {
            "compress": "np.log1p" if log1p else "np.log(1 + .)",
            "expand": "np.expm1" if expm1 else "np.exp(.) - 1",
            "median_s": {k: median(v) for k, v in variants.items()},
        },
        "unit": "s (median)",
        "speedup": min(speedup(enc["ours"], enc["peer"]), speedup(both["ours"], both["peer"])),
        "speedup_encode": speedup(enc["ours"], enc["peer"]),
        "speedup_encode_decode": speedup(both["ours"], both["peer"]),
        "target": 1.0,
        "identical_codes": identical,
        "identical_codes_vs_log1p_peer": identical_log1p,
        "identical_codes_target": 0.9999,
        "clipped_fraction": ours_out.n_clipped / x.size,
        "clipped_equal": ours_out.n_clipped == peer_clipped,
        "max_abs_reconstruction_gap": recon_gap,
        "samples_per_s_encode": n_chans * n_times / median(enc["ours"]),
        "shapes": {"x": [n_chans, n_times], "dtype": "float32", "n_levels": N_LEVELS},
        "scale_fitted_on": "the whole series (0.999 quantile of |x - median| per channel)",
        "reps": reps,
        "order": "alternating (ours, peer), (peer, ours), ...",
        "threads": {"torch": THREADS, "numpy": 1},
        "raw_times": {"encode": enc, "encode_decode": both},
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
            for k in (
                "ours",
                "peer",
                "peer_variant",
                "speedup_encode",
                "speedup_encode_decode",
                "identical_codes",
                "clipped_fraction",
            )
        }
    )
