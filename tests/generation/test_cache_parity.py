"""R10: generation with the key/value cache equals full recomputation over 512 steps.

Greedy decoding from the same prompt with and without the cache must give identical codes, and
the logits of every step must agree within 1e-4 (float32).
"""

from __future__ import annotations

import pytest
import torch

from neurofm.generation import SamplingConfig, generate_with_logits
from neurofm.registry import MODELS, create

N_STEPS = 512
PROMPTS = {"gpt_causal": (1, 8), "gpt2meg": (1, 2, 8), "gpt2meg_trf": (1, 2, 8)}


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_cached_greedy_generation_equals_full_recompute(name):
    torch.manual_seed(0)
    model = create(MODELS, {"name": name, "preset": "tiny"})
    prompt = torch.randint(
        0, model.config.vocab_size, PROMPTS[name], generator=torch.Generator().manual_seed(1)
    )
    context = {} if name == "gpt_causal" else {"subject": torch.tensor([1])}
    cached_codes, cached_logits = generate_with_logits(
        model, prompt, N_STEPS, SamplingConfig(temperature=0.0), context=context
    )
    full_codes, full_logits = generate_with_logits(
        model, prompt, N_STEPS, SamplingConfig(temperature=0.0, use_cache=False), context=context
    )
    assert cached_codes.shape[-1] == PROMPTS[name][-1] + N_STEPS
    assert torch.equal(cached_codes, full_codes)
    assert cached_logits.dtype == torch.float32
    assert (cached_logits - full_logits).abs().max() <= 1e-4
