"""GPTCausal: config validation, shapes, own loss, cache, generate."""

from __future__ import annotations

import math

import pytest
import torch

from neurofm.config import preset
from neurofm.errors import ConfigError
from neurofm.models.gpt_causal import GPTCausal, GPTCausalConfig
from neurofm.registry import MODELS, create


def _tiny() -> GPTCausal:
    torch.manual_seed(0)
    return GPTCausal(preset(GPTCausalConfig, "tiny"))


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_presets_are_valid(name):
    cfg = preset(GPTCausalConfig, name)
    assert cfg.d_model % cfg.n_heads == 0


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="n_heads=3 must divide d_model=32"):
        create(MODELS, {"name": "gpt_causal", "preset": "tiny", "n_heads": 3})
    with pytest.raises(ValueError, match="dropout"):
        GPTCausalConfig(dropout=1.5)


def test_forward_shapes_and_loss():
    model = _tiny()
    tokens = torch.randint(0, 64, (2, 10))
    out = model(tokens, targets=tokens)
    assert out.logits.shape == (2, 10, 64)
    assert out.past is None
    assert abs(float(out.loss.detach()) - math.log(64)) < 0.5  # near uniform at init
    expected = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 64), tokens.reshape(-1))
    torch.testing.assert_close(out.loss, expected)


def test_incremental_decoding_matches_full_forward():
    model = _tiny().eval()
    tokens = torch.randint(0, 64, (2, 12))
    full = model(tokens).logits
    out = model(tokens[:, :7], use_cache=True)
    parts = [out.logits]
    for i in range(7, 12):
        out = model(tokens[:, i : i + 1], past=out.past, use_cache=True)
        parts.append(out.logits)
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


def test_sequence_longer_than_max_seq_len_is_rejected():
    model = create(MODELS, {"name": "gpt_causal", "preset": "tiny", "max_seq_len": 8})
    with pytest.raises(ValueError, match="exceed max_seq_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer ids \(B, T\)"):
        model(torch.zeros(1, 2, 3, dtype=torch.long))


def test_generate_is_seeded_and_greedy_is_deterministic():
    model = _tiny()
    prompt = torch.randint(0, 64, (2, 5))
    a = model.generate(
        prompt, 6, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(3)
    )
    b = model.generate(
        prompt, 6, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(3)
    )
    assert a.shape == (2, 11) and torch.equal(a, b) and torch.equal(a[:, :5], prompt)
    assert torch.equal(
        model.generate(prompt, 4, temperature=0.0), model.generate(prompt, 4, temperature=0.0)
    )
    assert model.training  # mode restored
