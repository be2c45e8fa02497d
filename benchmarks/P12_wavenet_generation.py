"""P12: WaveNet generation with cached convolution states vs recomputing the receptive field.

Greedy decoding of ``wavenet`` (WavenetFullChannel) from a prompt of real EEG codes (mu-law of the
shipped S001R04 recording). Ours is ``neurofm.generation.generate_with_logits`` with the model's
cache: the sampler streams the model (``WavenetFullChannel.stream``: ring buffers and weights
prepared once), every step feeds the newest code and each block combines it with its stored
inputs (a few matrix products per block). The peer is the same model, at every step, run on the last
``receptive_field`` codes (all the output depends on) and read at the last step: the competent
way to generate without a cache. Both run in the same process, interleaved, after a warm-up;
we report medians, their ratio, whether the greedy codes are identical and the largest logit
difference (float32).

Run: ``python -m benchmarks.P12_wavenet_generation full`` (``smoke``: the same model, 100 steps).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from benchmarks._common import check_size, interleaved, median, versions, write_result
from benchmarks.P4_generation import eeg_codes

from neurofm.generation import SamplingConfig, generate_with_logits
from neurofm.registry import MODELS, create

SETTINGS = {  # size -> (preset, generated steps, channels, timed repetitions)
    "smoke": ("small", 100, 8, 3),
    "full": ("small", 1000, 8, 5),
}


@torch.no_grad()
def recompute_receptive_field(
    model: torch.nn.Module, prompt: torch.Tensor, n_new: int, field: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy generation running ``model`` on the last ``field`` codes at every step."""
    codes, logits = prompt, []
    for _ in range(n_new):
        step = model(codes[..., -field:]).logits[..., -1, :].float()  # (B, C, V)
        logits.append(step)
        codes = torch.cat((codes, step.argmax(dim=-1, keepdim=True)), dim=-1)
    return codes, torch.stack(logits, dim=-2)


def run(size: str = "smoke") -> dict:
    """Time cached vs receptive-field recompute generation; write ``results/P12.json``."""
    preset, n_new, n_chans, reps = SETTINGS[check_size(size)]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create(MODELS, {"name": "wavenet", "preset": preset}).eval()
    field = model.config.receptive_field
    prompt = eeg_codes(n_chans, field, model.config.vocab_size)[None]  # (1, C, field)
    runs: dict[str, tuple] = {}

    def ours() -> None:
        runs["ours"] = generate_with_logits(model, prompt, n_new, SamplingConfig(temperature=0.0))

    def peer() -> None:
        runs["peer"] = recompute_receptive_field(model, prompt, n_new, field)

    times = interleaved({"ours": ours, "peer": peer}, reps=reps, warmup=1)
    (codes_ours, logits_ours), (codes_peer, logits_peer) = runs["ours"], runs["peer"]
    result = {
        "what": f"greedy WaveNet generation of {n_new} steps: cached convolution states (ours) "
        "vs the same model recomputing its receptive field each step (peer)",
        "size": size,
        "ours": median(times["ours"]),
        "peer": median(times["peer"]),
        "unit": f"s per generation of {n_new} steps (median of {reps} after warm-up)",
        "speedup": median(times["peer"]) / median(times["ours"]),
        "target": 10.0,
        "identical_greedy_output": bool(torch.equal(codes_ours, codes_peer)),
        "max_abs_logit_diff": float((logits_ours - logits_peer).abs().max()),
        "logit_tolerance": 1e-4,
        "shapes": {
            "prompt": list(prompt.shape),
            "generated_steps": n_new,
            "receptive_field": field,
            "vocab_size": model.config.vocab_size,
            "d_model": model.config.d_model,
            "d_skip": model.config.d_skip,
            "n_layers": model.config.n_layers,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "times_ours_s": times["ours"],
        "times_peer_s": times["peer"],
        "threads": torch.get_num_threads(),
        "versions": versions(),
    }
    write_result("P12", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", nargs="?", default="smoke", choices=("smoke", "full"))
    parser.add_argument("--size", dest="size_option", choices=("smoke", "full"))
    args = parser.parse_args()
    out = run(args.size_option or args.size)
    print(
        f"cached {out['ours']:.3f} s  recompute {out['peer']:.3f} s  speedup "
        f"{out['speedup']:.1f}x  identical {out['identical_greedy_output']}  max logit diff "
        f"{out['max_abs_logit_diff']:.2e}"
    )
