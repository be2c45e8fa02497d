"""P11: text generation of the MEG-to-text decoder vs the same model's ``transformers`` generate.

Greedy decoding of ``n_new`` text tokens after the MEG prefix ``[<s>, <meg>, MEG tokens,
</meg>]`` of a ``meg_text`` model, at batch 1 and 16. Ours is
:func:`neurofm.generation.text.generate_text_ids` (a plain loop over the LLM with its key/value
cache); the peer is the same LLM's ``generate`` (greedy, KV cache) from the same prefix
embeddings. Both run in the same process, interleaved, after a warm-up; no end-of-text id, so
both produce exactly ``n_new`` tokens, and we check that the greedy tokens are identical. Also
timed: the MEG encoder + residual VQ (segments/s and MEG tokens/s, batch 16).

Run: ``python benchmarks/P11_text_generation.py --size full``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from benchmarks._common import check_size, interleaved, median, versions, write_result

from neurofm.generation.text import generate_text_ids, prefix_embeddings
from neurofm.registry import MODELS, create

NEVER = -1  # an end-of-text id no token has: every run generates n_new tokens
SETTINGS = {  # size -> (preset, channels, samples per segment, generated tokens)
    "smoke": ("tiny", 8, 160, 8),
    "full": ("small", 208, 800, 32),
}


def _bench_batch(model, x: torch.Tensor, n_new: int, reps: int) -> dict:
    prefix = prefix_embeddings(model, x)
    runs: dict[str, list] = {}

    def ours() -> None:
        runs["ours"] = generate_text_ids(
            model, x, max_new_tokens=n_new, eos_id=NEVER, prefix=prefix
        )

    def peer() -> None:
        with torch.no_grad():
            ids = model.llm.generate(
                inputs_embeds=prefix,
                attention_mask=torch.ones(prefix.shape[:2], dtype=torch.long),
                max_new_tokens=n_new,
                min_new_tokens=n_new,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        runs["peer"] = ids.tolist()

    times = interleaved({"ours": ours, "peer": peer}, reps=reps, warmup=1)
    n_tokens = x.shape[0] * n_new
    return {
        "ours_s": median(times["ours"]),
        "peer_s": median(times["peer"]),
        "ours_tokens_per_s": n_tokens / median(times["ours"]),
        "peer_tokens_per_s": n_tokens / median(times["peer"]),
        "speedup": median(times["peer"]) / median(times["ours"]),
        "identical_greedy_tokens": runs["ours"] == runs["peer"],
        "prefix_tokens": int(prefix.shape[1]),
        "times_ours_s": times["ours"],
        "times_peer_s": times["peer"],
    }


def _bench_encoder(model, x: torch.Tensor, reps: int) -> dict:
    def encode() -> None:
        with torch.no_grad():
            model.quantizer(model.encode(x))

    times = interleaved({"encoder_rvq": encode}, reps=reps, warmup=1)["encoder_rvq"]
    n_tokens = x.shape[0] * (x.shape[-1] // model.config.patch)
    return {
        "s_per_batch": median(times),
        "segments_per_s": x.shape[0] / median(times),
        "meg_tokens_per_s": n_tokens / median(times),
        "batch": int(x.shape[0]),
        "times_s": times,
    }


def run(size: str = "smoke") -> dict:
    """Time our cached decoding against ``generate`` at batch 1 and 16; write ``P11.json``."""
    preset, n_chans, n_times, n_new = SETTINGS[check_size(size)]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create(MODELS, {"name": "meg_text", "preset": preset, "n_chans": n_chans}).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, n_chans, n_times, generator=gen)
    batches = {str(b): _bench_batch(model, x[:b], n_new, reps=5) for b in (1, 16)}
    encoder = _bench_encoder(model, x, reps=5)
    main = batches["16"]
    cfg = model.config
    result = {
        "what": "greedy text decoding after the MEG prefix: our loop with the LLM's KV cache vs "
        "the same LLM's transformers generate (same prefix embeddings), batch 1 and 16; "
        "batch 16 headline; plus MEG encoder + residual VQ throughput",
        "size": size,
        "ours": main["ours_tokens_per_s"],
        "peer": main["peer_tokens_per_s"],
        "unit": "generated text tokens per second (median of 5 after warm-up)",
        "speedup": main["speedup"],
        "target": 0.9,
        "identical_greedy_output": all(b["identical_greedy_tokens"] for b in batches.values()),
        "batches": batches,
        "encoder_rvq": encoder,
        "shapes": {
            "segment": [n_chans, n_times],
            "generated_tokens": n_new,
            "meg_tokens": n_times // cfg.patch,
            "encoder": {"d_model": cfg.d_model, "n_layers": cfg.n_layers},
            "rvq": [cfg.n_quantizers, cfg.codebook_size, cfg.codebook_dim],
            "llm": {"hidden": cfg.llm_hidden, "layers": cfg.llm_layers, "vocab": cfg.vocab_size},
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "threads": torch.get_num_threads(),
        "versions": versions("transformers", "peft", "vector-quantize-pytorch"),
    }
    write_result("P11", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="smoke", choices=("smoke", "full"))
    out = run(parser.parse_args().size)
    for batch, b in out["batches"].items():
        print(
            f"batch {batch:>2}: ours {b['ours_tokens_per_s']:.1f} tok/s  generate "
            f"{b['peer_tokens_per_s']:.1f} tok/s  speedup {b['speedup']:.2f}x  "
            f"identical {b['identical_greedy_tokens']}"
        )
    enc = out["encoder_rvq"]
    print(
        f"encoder + RVQ: {enc['segments_per_s']:.1f} segments/s, {enc['meg_tokens_per_s']:.0f} MEG tokens/s"
    )
