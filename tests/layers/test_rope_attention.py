"""Rotary embeddings, attention masks and the key/value cache."""

from __future__ import annotations

import pytest
import torch

from neurofm.layers import KVCache, MultiHeadAttention, RotaryEmbedding, causal_mask


def test_rope_preserves_norm_and_depends_on_relative_position():
    torch.manual_seed(0)
    rope = RotaryEmbedding(8)
    q = torch.randn(1, 1, 1, 8).expand(1, 1, 6, 8)
    k = torch.randn(1, 1, 1, 8).expand(1, 1, 6, 8)
    rq, rk = rope(q, k)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))
    scores = rq[0, 0] @ rk[0, 0].T  # (6, 6): depends on i - j only
    torch.testing.assert_close(scores.diagonal(1)[:-1], scores.diagonal(1)[1:], atol=1e-5, rtol=0)


def test_rope_offset_equals_slice_of_full_sequence():
    rope = RotaryEmbedding(16)
    q, k = torch.randn(2, 3, 10, 16), torch.randn(2, 3, 10, 16)
    full_q, full_k = rope(q, k)
    part_q, part_k = rope(q[:, :, 7:], k[:, :, 7:], offset=7)
    torch.testing.assert_close(part_q, full_q[:, :, 7:])
    torch.testing.assert_close(part_k, full_k[:, :, 7:])


def test_rope_rejects_odd_head_size():
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)


def test_causal_mask_is_bottom_right_aligned():
    mask = causal_mask(2, 4, torch.device("cpu"))
    assert mask.tolist() == [[True, True, True, False], [True, True, True, True]]


@pytest.mark.parametrize("max_len", [None, 32])
def test_cached_attention_equals_full_attention(max_len):
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, rotary=True).eval()
    x = torch.randn(2, 12, 16)
    full = attn(x, causal=True)
    cache = KVCache(max_len)
    pieces = [attn(x[:, :5], causal=True, cache=cache)]
    pieces += [attn(x[:, i : i + 1], causal=True, cache=cache) for i in range(5, 9)]
    pieces.append(attn(x[:, 9:], causal=True, cache=cache))  # several tokens after a prefix
    assert cache.offset == 12
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-6, rtol=1e-5)


def test_kv_cache_rejects_overflow_and_batch_change():
    cache = KVCache(4)
    cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="exceed"):
        cache.update(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match="batch/head"):
        cache.update(torch.zeros(2, 2, 1, 4), torch.zeros(2, 2, 1, 4))


def test_full_attention_sees_the_future_and_causal_does_not():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 6, 8)
    y = x.clone()
    y[:, 4:] += 1.0
    assert torch.equal(attn(x, causal=True)[:, :4], attn(y, causal=True)[:, :4])
    assert not torch.allclose(attn(x)[:, :4], attn(y)[:, :4])


def test_attention_mask_and_cross_attention():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 3, 8)
    only_self = torch.eye(3, dtype=torch.bool)
    expected = attn.out_proj(attn.kv_proj(x).chunk(2, dim=-1)[1])  # softmax over one key
    torch.testing.assert_close(attn(x, attn_mask=only_self), expected, atol=1e-6, rtol=1e-5)
    cross = MultiHeadAttention(8, 2, d_context=5)
    assert cross(x, context=torch.randn(1, 7, 5)).shape == (1, 3, 8)
    with pytest.raises(ValueError, match="cannot be causal"):
        cross(x, context=torch.randn(1, 7, 5), causal=True)
