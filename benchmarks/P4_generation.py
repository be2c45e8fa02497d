"""P4: autoregressive generation with the key/value cache vs recomputing the full context.

Greedy decoding from a prompt of real EEG codes (mu-law of the shipped S001R04 recording) up to a
512-step context, for GPTCausal (flat tokens), GPT2MEG (Hugging Face GPT-2) and GPT2MEG_Trf
(channels x time). Ours is ``neurofm.generation.generate(..., use_cache=True)``; the peer is the
same model and sampler recomputing the whole context at every step (``use_cache=False``). Both
run in the same process, interleaved, after a warm-up; we report medians, their ratio, whether
the greedy codes are identical and the largest logit difference (float32).

Run: ``python benchmarks/P4_generation.py --size full``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from benchmarks._common import check_size, interleaved, median, versions, write_result

from neurofm.generation import SamplingConfig, generate_with_logits
from neurofm.registry import MODELS, create

CONTEXT = 512
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "eegbci_S001" / "S001R04.edf"
SETTINGS = {  # size -> (preset, generated steps, channels for the channel-wise models)
    "smoke": ("tiny", 16, 2),
    "full": ("small", 64, 4),
}


def eeg_codes(n_chans: int, n_times: int, n_levels: int) -> torch.Tensor:
    """Mu-law codes (n_chans, n_times) of the shipped EEG sample, robustly scaled per channel."""
    import mne

    raw = mne.io.read_raw_edf(SAMPLE, preload=False, verbose="error")
    x = raw.get_data(picks=list(range(n_chans)), start=1600, stop=1600 + n_times)
    x = x - np.median(x, axis=1, keepdims=True)
    x = np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)
    mu = n_levels - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return torch.from_numpy(np.rint((y + 1.0) / 2.0 * mu).astype(np.int64))


def _bench_model(name: str, preset: str, n_new: int, n_chans: int, reps: int) -> dict:
    torch.manual_seed(0)
    model = create(MODELS, {"name": name, "preset": preset}).eval()
    n_prompt = CONTEXT - n_new
    codes = eeg_codes(n_chans, n_prompt, model.config.vocab_size)
    prompt = codes[:1] if name == "gpt_causal" else codes[None]  # (1, T0) or (1, C, T0)
    runs: dict[str, tuple] = {}

    def ours() -> None:
        runs["ours"] = generate_with_logits(model, prompt, n_new, SamplingConfig(temperature=0.0))

    def peer() -> None:
        runs["peer"] = generate_with_logits(
            model, prompt, n_new, SamplingConfig(temperature=0.0, use_cache=False)
        )

    times = interleaved({"ours": ours, "peer": peer}, reps=reps, warmup=1)
    (codes_ours, logits_ours), (codes_peer, logits_peer) = runs["ours"], runs["peer"]
    return {
        "ours_s": median(times["ours"]),
        "peer_s": median(times["peer"]),
        "speedup": median(times["peer"]) / median(times["ours"]),
        "identical_greedy_codes": bool(torch.equal(codes_ours, codes_peer)),
        "max_abs_logit_diff": float((logits_ours - logits_peer).abs().max()),
        "shape": {
            "prompt": list(prompt.shape),
            "generated_steps": n_new,
            "context": CONTEXT,
            "vocab_size": model.config.vocab_size,
            "d_model": model.config.d_model,
            "n_layers": model.config.n_layers,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "times_ours_s": times["ours"],
        "times_peer_s": times["peer"],
    }


def run(size: str = "smoke") -> dict:
    """Time cached vs uncached greedy generation for the three models; write ``results/P4.json``."""
    preset, n_new, n_chans = SETTINGS[check_size(size)]
    torch.set_num_threads(1)
    per_model = {
        name: _bench_model(name, preset, n_new, n_chans, reps=5)
        for name in ("gpt_causal", "gpt2meg", "gpt2meg_trf")
    }
    main = per_model["gpt_causal"]
    result = {
        "what": "greedy autoregressive generation up to a 512-step context: KV cache (ours) vs "
        "full recompute each step (peer), same model and sampler; gpt_causal headline, "
        "all three models under 'models'",
        "size": size,
        "ours": main["ours_s"],
        "peer": main["peer_s"],
        "unit": "s per generation (median of 5 after warm-up)",
        "speedup": main["speedup"],
        "target": 5.0,
        "identical_greedy_output": all(m["identical_greedy_codes"] for m in per_model.values()),
        "max_abs_logit_diff": max(m["max_abs_logit_diff"] for m in per_model.values()),
        "logit_tolerance": 1e-4,
        "shapes": {name: m["shape"] for name, m in per_model.items()},
        "models": {
            name: {k: v for k, v in m.items() if k != "shape"} for name, m in per_model.items()
        },
        "threads": torch.get_num_threads(),
        "versions": versions("transformers"),
    }
    write_result("P4", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="smoke", choices=("smoke", "full"))
    out = run(parser.parse_args().size)
    for name, m in out["models"].items():
        print(
            f"{name:<12} cached {m['ours_s']:.3f} s  full {m['peer_s']:.3f} s  "
            f"speedup {m['speedup']:.1f}x  identical {m['identical_greedy_codes']}  "
            f"max logit diff {m['max_abs_logit_diff']:.2e}"
        )
