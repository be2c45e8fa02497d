"""Free-running text decoding of the MEG-to-text model: the KV-cache loop equals recomputing the
whole sequence each step and ``transformers``' ``generate``; the no-MEG prefix drops the span."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("vector_quantize_pytorch")

from neurofm.generation.text import (  # noqa: E402
    generate_text_ids,
    hf_generate_text_ids,
    prefix_embeddings,
)
from neurofm.registry import MODELS, create  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create(MODELS, {"name": "meg_text", "preset": "tiny"}).eval()


def test_cached_greedy_equals_generate_and_full_recompute(model):
    x = torch.randn(3, 4, 32, generator=torch.Generator().manual_seed(1))
    ours = generate_text_ids(model, x, max_new_tokens=6, eos_id=-1)
    theirs = hf_generate_text_ids(model, x, max_new_tokens=6, eos_id=-1, pad_id=0)
    assert ours == theirs and all(len(row) == 6 for row in ours)
    # full recompute: feed the tokens so far as text; logits[:, i] predicts text[:, i]
    tokens = torch.empty(3, 0, dtype=torch.long)
    for _ in range(6):
        probe = torch.cat([tokens, torch.zeros(3, 1, dtype=torch.long)], 1)
        with torch.no_grad():
            logits = model(x, probe).logits  # the last position reads only tokens so far
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert tokens.tolist() == ours


def test_decoding_stops_at_the_end_of_text_and_without_meg_ignores_the_signal(model):
    x = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(2))
    first = generate_text_ids(model, x, max_new_tokens=5, eos_id=-1)
    eos = first[0][2]
    cut = generate_text_ids(model, x, max_new_tokens=5, eos_id=eos)
    assert cut[0] == first[0][: first[0].index(eos)]
    other = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(3))
    assert generate_text_ids(model, x, max_new_tokens=4, eos_id=-1, use_meg=False) == (
        generate_text_ids(model, other, max_new_tokens=4, eos_id=-1, use_meg=False)
    )
    assert prefix_embeddings(model, x, use_meg=False).shape[1] == 1
    assert prefix_embeddings(model, x).shape[1] == 32 // model.config.patch + 3
