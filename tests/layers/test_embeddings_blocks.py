"""Channel-token embeddings and the pre-norm transformer block."""

from __future__ import annotations

import pytest
import torch

from neurofm.layers import (
    ChannelTokenEmbedding,
    ContextEmbedding,
    KVCache,
    TransformerBlock,
    init_gpt2,
)


def _embedding() -> ChannelTokenEmbedding:
    torch.manual_seed(0)
    return ChannelTokenEmbedding(
        10, 8, n_chans=5, n_subjects=3, n_conditions=4, n_cond_tokens=2, d_global=6
    )


def test_embedding_is_the_sum_of_its_parts():
    emb = _embedding()
    codes = torch.randint(0, 10, (2, 3, 7))
    subject = torch.tensor([1, 2])
    cond = torch.randint(0, 4, (2, 2, 7))
    glob = torch.randn(2, 6)
    out = emb(codes, subject=subject, condition=cond, global_embedding=glob)
    expected = (
        emb.token(codes)
        + emb.channel(torch.arange(3))[None, :, None]
        + emb.subject(subject)[:, None, None]
        + (emb.condition(cond[:, 0]) + emb.condition(cond[:, 1] + 4))[:, None]
        + emb.global_proj(glob)[:, None, None]
    )
    torch.testing.assert_close(out, expected)
    assert out.shape == (2, 3, 7, 8)


def test_embedding_per_item_channel_ids_and_float_tokens():
    emb = _embedding()
    ids = torch.tensor([[4, 0], [1, 2]])
    tokens = torch.randn(2, 2, 5, 8)
    out = emb(tokens, channel_ids=ids)
    torch.testing.assert_close(out, tokens + emb.channel(ids)[:, :, None])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subject": torch.tensor([0, 3])}, "subject out of range"),
        ({"condition": torch.zeros(2, 7, dtype=torch.long)}, "condition must be"),
        ({"channel_ids": torch.arange(4)}, "4 entries for 3 channels"),
    ],
)
def test_embedding_errors_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _embedding()(torch.randint(0, 10, (2, 3, 7)), **kwargs)


def test_embedding_rejects_codes_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"codes out of range \[0, 10\)"):
        _embedding()(torch.full((1, 2, 3), 10))


@pytest.mark.parametrize("activation", ["gelu", "squared_relu", "swiglu"])
def test_block_cache_matches_full_forward(activation):
    torch.manual_seed(0)
    block = TransformerBlock(16, 2, activation=activation).eval()
    x = torch.randn(3, 9, 16)
    cache = KVCache()
    steps = [block(x[:, :4], cache=cache)] + [
        block(x[:, i : i + 1], cache=cache) for i in range(4, 9)
    ]
    torch.testing.assert_close(torch.cat(steps, 1), block(x), atol=1e-6, rtol=1e-5)


def test_block_with_cross_attention_needs_a_context():
    block = TransformerBlock(8, 2, cross_attention=True, d_context=4, norm="layer")
    x = torch.randn(2, 5, 8)
    assert block(x, context=torch.randn(2, 3, 4)).shape == x.shape
    with pytest.raises(ValueError, match="pass a context"):
        block(x)
    with pytest.raises(ValueError, match="cross_attention=False"):
        TransformerBlock(8, 2)(x, context=torch.randn(2, 3, 8))


def test_context_embedding_is_the_context_part_of_the_channel_embedding():
    emb = _embedding()
    context = ContextEmbedding(8, n_subjects=3, n_conditions=4, n_cond_tokens=2, d_global=6)
    context.load_state_dict(
        {
            k: v
            for k, v in emb.state_dict().items()
            if k.split(".")[0] in dict(context.named_children())
        }
    )
    subject, cond, glob = torch.tensor([1, 2]), torch.randint(0, 4, (2, 2, 7)), torch.randn(2, 6)
    codes = torch.randint(0, 10, (2, 3, 7))
    out = emb(codes, subject=subject, condition=cond, global_embedding=glob)
    expected = (
        emb(codes) + context(2, 7, subject=subject, condition=cond, global_embedding=glob)[:, None]
    )
    torch.testing.assert_close(out, expected)
    assert context(2, 7) is None


def test_init_gpt2_scales_the_residual_projections():
    torch.manual_seed(0)
    block = TransformerBlock(64, 2, d_hidden=256)
    init_gpt2(block, n_layers=8)
    assert block.attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert block.attn.out_proj.weight.std().item() == pytest.approx(0.02 / 4, rel=0.1)
    assert block.mlp.fc_out.weight.std().item() == pytest.approx(0.02 / 4, rel=0.1)
    assert torch.equal(block.norm_attn.weight, torch.ones(64))
