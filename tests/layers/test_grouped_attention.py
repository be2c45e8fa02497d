"""Grouped-query attention (``n_kv_heads``): the same function as full multi-head attention whose
key/value heads are repeated, in the full forward and in cached decoding with both caches (float32
and bfloat16), its smaller cache, its errors, and gpt2meg_trf with ``n_kv_heads`` streamed."""

from __future__ import annotations

import pytest
import torch
from layer_streaming import streamed

from neurofm.layers import KVCache, MultiHeadAttention, SlidingKVCache
from neurofm.registry import MODELS, create


def _pair(n_heads: int = 4, n_kv_heads: int = 2, window: int | None = None):
    """A grouped layer and the full multi-head layer with its key/value heads repeated."""
    torch.manual_seed(0)
    grouped = MultiHeadAttention(
        32, n_heads, rotary=True, n_kv_heads=n_kv_heads, window=window
    ).eval()
    full = MultiHeadAttention(32, n_heads, rotary=True, window=window).eval()
    d = 32 // n_heads
    with torch.no_grad():
        full.q_proj.weight.copy_(grouped.q_proj.weight)
        full.out_proj.weight.copy_(grouped.out_proj.weight)
        k, v = grouped.kv_proj.weight.view(2, n_kv_heads, d, 32)
        repeat = n_heads // n_kv_heads
        full.kv_proj.weight.copy_(
            torch.cat([k.repeat_interleave(repeat, 0), v.repeat_interleave(repeat, 0)]).view(-1, 32)
        )
    return grouped, full


@pytest.mark.parametrize("n_kv_heads", [1, 2])
def test_grouped_attention_is_full_attention_with_repeated_key_value_heads(n_kv_heads):
    grouped, full = _pair(n_kv_heads=n_kv_heads)
    assert grouped.kv_proj.weight.shape == (2 * n_kv_heads * 8, 32)
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        torch.testing.assert_close(grouped(x, causal=True), full(x, causal=True))
        torch.testing.assert_close(grouped(x), full(x))


@pytest.mark.parametrize(
    ("window", "dtype"),
    [(None, None), (None, torch.bfloat16), (5, None), (5, torch.bfloat16)],
)
def test_cached_grouped_decoding_equals_the_full_forward(window, dtype):
    grouped, full = _pair(n_kv_heads=1, window=window)
    x = torch.randn(2, 20, 32)
    cache = (
        KVCache(64, block_len=4, dtype=dtype)
        if window is None
        else SlidingKVCache(window, dtype=dtype)
    )
    with torch.no_grad():
        want = full(x, causal=True)
        got = [grouped(x[:, :7], causal=True, cache=cache)]
        got += [grouped(x[:, t : t + 1], causal=True, cache=cache) for t in range(7, 20)]
    assert cache.keys.shape[1] == 1  # one key/value head kept
    tol = 1e-5 if dtype is None else 3e-2
    torch.testing.assert_close(torch.cat(got, dim=1), want, atol=tol, rtol=tol)


def test_grouped_decoding_passes_gradients():
    grouped, _ = _pair(n_kv_heads=2)
    grouped.train()
    x = torch.randn(1, 5, 32, requires_grad=True)
    cache = KVCache()
    grouped(x[:, :4], causal=True, cache=cache)
    grouped(x[:, 4:], causal=True, cache=cache).sum().backward()  # a step reads the prompt
    assert torch.isfinite(x.grad).all() and grouped.kv_proj.weight.grad.abs().sum() > 0


def test_grouped_attention_errors_name_the_problem():
    with pytest.raises(ValueError, match="n_kv_heads=3 must divide n_heads=4"):
        MultiHeadAttention(32, 4, n_kv_heads=3)
    with pytest.raises(ValueError, match="n_kv_heads=0"):
        MultiHeadAttention(32, 4, n_kv_heads=0)
    cache = KVCache()
    cache.append(torch.zeros(1, 3, 2, 8), torch.zeros(1, 3, 2, 8))
    with pytest.raises(ValueError, match="4 query heads cannot share 3"):
        cache.attend(torch.zeros(1, 4, 1, 8))
    ring = SlidingKVCache(4)
    ring.append(torch.zeros(1, 3, 2, 8), torch.zeros(1, 3, 2, 8))
    with pytest.raises(ValueError, match="4 query heads cannot share 3"):
        ring.attend(torch.zeros(1, 4, 1, 8))
    with pytest.raises(ValueError, match="n_kv_heads=3 must divide n_heads=2"):
        create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "n_kv_heads": 3})
    with pytest.raises(ValueError, match="n_kv_heads"):
        create(MODELS, {"name": "gpt2meg", "preset": "tiny", "n_kv_heads": 1})


def test_gpt2meg_with_one_key_value_head_streams_like_its_full_forward():
    torch.manual_seed(0)
    cfg = {"name": "gpt2meg_trf", "preset": "tiny", "n_kv_heads": 1, "attn_window": 12}
    model = create(MODELS, cfg).eval()
    default = create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny"})
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < sum(p.numel() for p in default.parameters())
    x = torch.randint(0, 64, (1, 8, 40))
    with torch.no_grad():
        want = model(x).logits
    torch.testing.assert_close(streamed(model, x, 10)[0], want, atol=2e-5, rtol=1e-4)
