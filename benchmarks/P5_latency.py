"""P5: single-window inference latency, 1 s of 306 channels at 250 Hz, batch 1.

Ours: the compact window decoders (``classifier_continuous``, ``cnn_multivariate``,
``cnn_univariate``, ``cnnlstm_classifier`` on the float signal and ``classifier_quantized`` on
mu-law codes, preset ``small``), one forward pass of a (1, 306, 250) window each, eval mode, no
gradient, one torch thread. Peer: the real braindecode ``EEGNet`` (and ``ShallowFBCSPNet``) at the
same input shape, default hyper-parameters, run the same way in the benchmark environment
(:mod:`benchmarks._peer`; left out with the reason in the JSON when that environment is absent).

Foundation-model streaming step: ``gpt2meg_trf`` (preset ``small``) over the codes of 306
channels: a 1 s prompt (250 steps) is encoded once with the key/value cache, then each timed step
feeds the 306 newest codes (one time step) with the cache, as a streaming decoder would: with the
float32 cache, with ``cache_dtype: bfloat16`` (keys and values stored in bfloat16: a step reads
half the bytes), both attending to every step so far, and with ``attn_window: 250`` and the
bfloat16 cache (sliding-window attention over the last 1 s, kept in a ring: the step's cost no
longer grows with the stream, as an open-ended streaming decoder needs), the last also with the
sampler's ``precision: bf16`` (the projections under bfloat16 autocast), and that again with one
key/value head (``n_kv_heads: 1``, multi-query attention: a quarter of the cache to read; a
different model, with fewer parameters); the bfloat16 variants' log-probabilities are compared
with the float32 forward's.

``python -m benchmarks.P5_latency full --device cuda`` times the streaming step alone on a GPU
(``benchmarks/results/P5_cuda.json``; target p99 <= 10 ms on H100).

Reported: p50 and p99 of the per-call wall-clock times (the p99 of ``reps`` calls), and the
machine's load average, since other jobs share these cores.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch
from benchmarks._common import check_size, machine_info, versions, write_result
from benchmarks._peer import find_peer, run_peer

N_CHANS, SFREQ, N_TIMES = 306, 250.0, 250
DECODERS = (
    "classifier_continuous",
    "cnn_multivariate",
    "cnn_univariate",
    "cnnlstm_classifier",
    "classifier_quantized",
)
SIZES = {"smoke": {"reps": 50, "steps": 20}, "full": {"reps": 1000, "steps": 200}}


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 / p99 / mean of per-call times, in milliseconds."""
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "n_calls": int(ms.size),
    }


def _timed(fn, reps: int) -> list[float]:
    for _ in range(max(3, reps // 10)):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def decoder_latency(name: str, reps: int) -> dict:
    """Batch-1 latency of one registered window decoder at (1, 306, 250)."""
    from neurofm.registry import MODELS, create

    torch.manual_seed(0)
    model = create(MODELS, {"name": name, "preset": "small", "n_chans": N_CHANS}).eval()
    if name == "classifier_quantized":
        x = torch.randint(0, model.config.vocab_size, (1, N_CHANS, N_TIMES))
    else:
        x = torch.randn(1, N_CHANS, N_TIMES)
    with torch.no_grad():
        times = _timed(lambda: model(x), reps)
    return {**percentiles(times), "n_params": int(sum(p.numel() for p in model.parameters()))}


STREAMS = {  # the streamed model variants: name -> gpt2meg_trf options
    "gpt2meg_trf": {},
    "gpt2meg_trf_bf16_cache": {"cache_dtype": "bfloat16"},
    "gpt2meg_trf_window_1s_bf16": {"cache_dtype": "bfloat16", "attn_window": N_TIMES},
    "gpt2meg_trf_window_1s_bf16_autocast": {
        "cache_dtype": "bfloat16",
        "attn_window": N_TIMES,
        "precision": "bf16",
    },
    "gpt2meg_trf_window_1s_mqa_bf16_autocast": {
        "cache_dtype": "bfloat16",
        "attn_window": N_TIMES,
        "n_kv_heads": 1,
        "precision": "bf16",
    },
}


def streaming_step_latency(steps: int, device: str = "cpu", **options) -> dict:
    """Per-step latency of cached gpt2meg_trf generation over 306 channels after a 1 s prompt,
    with the model ``options`` (``cache_dtype``, ``attn_window``, ``n_kv_heads``) and the sampler's
    ``precision`` (``bf16``: the steps run under bfloat16 autocast, as ``generate`` runs them);
    with a bfloat16 cache or autocast, how far its next-code log-probabilities are from the
    float32 full forward of the same model. On ``device`` (a CUDA device is synchronised around
    each step)."""
    from neurofm.generation.sampling import precision_context
    from neurofm.registry import MODELS, create

    torch.manual_seed(0)
    config = {"name": "gpt2meg_trf", "preset": "small", "n_chans": N_CHANS}
    config.update({k: v for k, v in options.items() if k not in ("cache_dtype", "precision")})
    cache_dtype = options.get("cache_dtype", "same")
    precision = options.get("precision", "32")
    model = create(MODELS, {**config, "cache_dtype": cache_dtype}).eval().to(device)
    v = model.config.vocab_size
    prompt = torch.randint(0, v, (1, N_CHANS, N_TIMES)).to(device)
    new = torch.randint(0, v, (1, N_CHANS, steps + 5)).to(device)
    sync = torch.cuda.synchronize if prompt.device.type == "cuda" else (lambda: None)
    times, logits = [], []
    with torch.no_grad(), precision_context(precision, prompt.device):
        past = model(prompt, use_cache=True).past
        for t in range(steps + 5):
            sync()
            start = time.perf_counter()
            out = model(new[..., t : t + 1], past=past, use_cache=True)
            past = out.past
            sync()
            if t >= 5:  # the first steps warm up
                times.append(time.perf_counter() - start)
            logits.append(out.logits.float())
    window = options.get("attn_window")
    result = {
        **percentiles(times),
        "cache_dtype": cache_dtype,
        "attn_window": window,
        "device": str(prompt.device),
        "n_kv_heads": options.get("n_kv_heads", model.config.n_heads),
        "precision": precision,
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "context": f"{N_TIMES}-step prompt, then steps {N_TIMES + 5}..{N_TIMES + steps + 4}; "
        + (
            f"each step attends to the last {window} steps ({window / SFREQ:g} s, a ring cache)"
            if window
            else "each step attends to every step so far (the cache grows)"
        ),
    }
    if cache_dtype != "same" or precision != "32":
        exact = create(MODELS, config).eval().to(device)
        exact.load_state_dict(model.state_dict())
        with torch.no_grad():
            want = exact(torch.cat((prompt, new), dim=-1)).logits[..., N_TIMES:, :]
        diff = (torch.cat(logits, dim=2).log_softmax(-1) - want.log_softmax(-1)).abs()
        result["logprob_vs_float32"] = {
            "max_abs_nats": float(diff.max()),
            "mean_abs_nats": float(diff.mean()),
            "what": "next-code log-probabilities of every streamed step vs the float32 full "
            "forward of the same (untrained, seeded) model",
        }
    return result


def run(size: str = "smoke") -> dict:
    """Run P5 at ``size`` and write ``benchmarks/results/P5.json``."""
    cfg = SIZES[check_size(size)]
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    ours = {name: decoder_latency(name, cfg["reps"]) for name in DECODERS}
    streaming = {name: streaming_step_latency(cfg["steps"], **o) for name, o in STREAMS.items()}
    python, info = find_peer()
    peer: dict = {"braindecode": info}
    if python is not None:
        answer = run_peer(
            ["latency", str(N_CHANS), str(N_TIMES), str(SFREQ), str(cfg["reps"])], python=python
        )
        for name, got in answer["models"].items():
            peer[name] = {**percentiles(got["seconds"]), "n_params": got["n_params"]}
    worst = max(v["p99_ms"] for v in ours.values())
    result = {
        "what": "batch-1 inference latency of one 1 s window (306 channels, 250 Hz): neurofm's "
        "compact decoders vs the real braindecode EEGNet at the same shape; and one cached "
        "streaming step of gpt2meg_trf over 306 channels",
        "size": size,
        "unit": "milliseconds per call (p50, p99)",
        "ours": ours,
        "streaming_step": streaming,
        "peer": peer,
        "peer_is": (
            f"braindecode {info['versions']['braindecode']} EEGNet (torch "
            f"{info['versions']['torch']}) in the benchmark environment"
            if python is not None
            else f"braindecode skipped: {info['reason']}"
        ),
        "speedup": (peer["EEGNet"]["p50_ms"] / ours["cnn_multivariate"]["p50_ms"])
        if "EEGNet" in peer
        else None,
        "speedup_is": "p50 of braindecode EEGNet / p50 of cnn_multivariate",
        "target": {
            "compact_decoders_p99_ms": "<= 20 on CPU",
            "streaming_step_p99_ms": "<= 80 on CPU, <= 10 on H100",
        },
        "met": {
            "compact_decoders_p99": worst <= 20.0,
            "p99_within_20ms": {name: v["p99_ms"] <= 20.0 for name, v in ours.items()},
            **{f"streaming_step_p99_{k}": v["p99_ms"] <= 80.0 for k, v in streaming.items()},
        },
        "shapes": {
            "n_chans": N_CHANS,
            "n_times": N_TIMES,
            "sfreq": SFREQ,
            "batch": 1,
            "reps": cfg["reps"],
            "streaming_steps": cfg["steps"],
        },
        "versions": versions(),
        "machine": {**machine_info(), "load_average_before": list(load_before)},
    }
    write_result("P5", result)
    return result


def run_streaming_on(device: str, size: str = "smoke") -> dict:
    """The streaming step alone on ``device`` (e.g. ``cuda``: the <= 10 ms H100 target), every
    variant of :data:`STREAMS`; writes ``benchmarks/results/P5_<device type>.json``."""
    cfg = SIZES[check_size(size)]
    streaming = {
        name: streaming_step_latency(cfg["steps"], device=device, **o)
        for name, o in STREAMS.items()
    }
    kind = torch.device(device).type
    limit = 10.0 if kind == "cuda" else 80.0
    result = {
        "what": f"one cached streaming step of gpt2meg_trf over 306 channels on {kind}",
        "size": size,
        "unit": "milliseconds per call (p50, p99)",
        "streaming_step": streaming,
        "target": {"streaming_step_p99_ms": f"<= {limit:g} on {kind}"},
        "met": {f"streaming_step_p99_{k}": v["p99_ms"] <= limit for k, v in streaming.items()},
        "device_name": torch.cuda.get_device_name(device) if kind == "cuda" else None,
        "versions": versions(),
    }
    write_result(f"P5_{kind}", result)
    return result


if __name__ == "__main__":
    import json

    args = sys.argv[1:]
    device = None
    if "--device" in args:
        at = args.index("--device")
        device = args[at + 1]
        del args[at : at + 2]
    size = args[0] if args else "smoke"
    if device is None:
        res = run(size)
        print(json.dumps({k: res[k] for k in ("ours", "streaming_step", "peer", "met")}, indent=1))
    else:
        res = run_streaming_on(device, size)
        print(json.dumps({k: res[k] for k in ("streaming_step", "met")}, indent=1))
