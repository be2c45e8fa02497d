"""GPT2MEG (Hugging Face GPT-2) and GPT2MEG_Trf: channels, conditioning, cache, causal flag."""

from __future__ import annotations

import pytest
import torch

from neurofm.config import preset
from neurofm.models.gpt2meg import GPT2MEG, GPT2MEG_Trf, GPT2MEGConfig, GPT2MEGTrfConfig
from neurofm.registry import MODELS, create

MODELS_UNDER_TEST = {
    "gpt2meg": (GPT2MEG, GPT2MEGConfig),
    "gpt2meg_trf": (GPT2MEG_Trf, GPT2MEGTrfConfig),
}


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    return create(MODELS, {"name": name, "preset": "tiny", **overrides})


@pytest.mark.parametrize("name", sorted(MODELS_UNDER_TEST))
@pytest.mark.parametrize("size", ["tiny", "small", "base"])
def test_presets_are_valid(name, size):
    cfg = preset(MODELS_UNDER_TEST[name][1], size)
    assert cfg.d_model % cfg.n_heads == 0


def test_hf_backbone_is_built_locally_without_a_token_table():
    model = _tiny("gpt2meg")
    assert model.gpt2.wte is None
    assert model.gpt2.config.n_positions == model.config.max_seq_len


@pytest.mark.parametrize("name", sorted(MODELS_UNDER_TEST))
def test_channels_are_independent_sequences(name):
    model = _tiny(name).eval()
    x = torch.randint(0, 64, (2, 3, 10))
    changed = x.clone()
    changed[:, 1] = (changed[:, 1] + 5) % 64
    a, b = model(x).logits, model(changed).logits
    assert a.shape == (2, 3, 10, 64)
    torch.testing.assert_close(a[:, [0, 2]], b[:, [0, 2]], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 1], b[:, 1])


@pytest.mark.parametrize("name", sorted(MODELS_UNDER_TEST))
def test_subject_condition_and_channel_ids_change_the_output(name):
    model = _tiny(name).eval()
    x = torch.randint(0, 64, (2, 3, 8))
    base = model(x).logits
    for kwargs in (
        {"subject": torch.tensor([1, 1])},
        {"condition": torch.randint(1, 4, (2, 8))},
        {"channel_ids": torch.tensor([5, 6, 7])},
    ):
        assert not torch.allclose(model(x, **kwargs).logits, base)


@pytest.mark.parametrize("name", sorted(MODELS_UNDER_TEST))
def test_incremental_decoding_with_condition_matches_full_forward(name):
    model = _tiny(name).eval()
    x = torch.randint(0, 64, (2, 3, 9))
    cond = torch.randint(0, 4, (2, 9))
    subject = torch.tensor([0, 1])
    full = model(x, subject=subject, condition=cond).logits
    out = model(x[..., :4], subject=subject, condition=cond[:, :4], use_cache=True)
    parts = [out.logits]
    for t in range(4, 9):
        out = model(
            x[..., t : t + 1],
            subject=subject,
            condition=cond[:, t : t + 1],
            past=out.past,
            use_cache=True,
        )
        parts.append(out.logits)
    torch.testing.assert_close(torch.cat(parts, dim=2), full, atol=1e-5, rtol=1e-5)


def test_trf_accepts_precomputed_embeddings():
    model = _tiny("gpt2meg_trf").eval()
    x = torch.randint(0, 64, (1, 2, 6))
    from_codes = model(x).logits
    from_embeddings = model(model.embedding.token(x)).logits
    torch.testing.assert_close(from_codes, from_embeddings)


def test_trf_bidirectional_mode_sees_the_future_and_has_no_cache():
    model = _tiny("gpt2meg_trf", causal=False).eval()
    x = torch.randint(0, 64, (1, 2, 8))
    changed = x.clone()
    changed[..., -1] = (changed[..., -1] + 1) % 64
    assert not torch.allclose(model(x).logits[..., 0, :], model(changed).logits[..., 0, :])
    with pytest.raises(ValueError, match="needs causal=True"):
        model(x, use_cache=True)


@pytest.mark.parametrize("name", sorted(MODELS_UNDER_TEST))
def test_too_long_input_and_bad_shapes_are_rejected(name):
    model = _tiny(name, max_seq_len=6)
    with pytest.raises(ValueError, match="exceed max_seq_len=6"):
        model(torch.zeros(1, 2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        model(torch.zeros(2, 7, dtype=torch.long))
