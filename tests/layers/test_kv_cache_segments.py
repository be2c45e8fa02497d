"""The segmented key/value cache: what it stores, its decoding attention, and a streamed
gpt2meg_trf run on real EEG codes that equals the full recomputation step by step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from layer_streaming import real_eeg_codes, streamed

from neurofm.layers import KVCache, MultiHeadAttention
from neurofm.registry import MODELS, create


def _appended(cache: KVCache, pieces: list[int], gen: torch.Generator) -> tuple:
    """Append random (B=3, H=2, n, Dh=8) pieces; return all keys and values appended."""
    keys, values = [], []
    for n in pieces:
        k, v = torch.randn(3, 2, n, 8, generator=gen), torch.randn(3, 2, n, 8, generator=gen)
        cache.append(k, v)
        keys.append(k)
        values.append(v)
    return torch.cat(keys, dim=2), torch.cat(values, dim=2)


@pytest.mark.parametrize("pieces", [[5, 1, 1, 1, 1, 1, 1], [1] * 11, [6, 1, 1, 3, 1, 1, 1, 1, 1]])
def test_cache_holds_every_position_in_order(pieces):
    cache = KVCache(64, block_len=4)
    keys, values = _appended(cache, pieces, torch.Generator().manual_seed(0))
    assert cache.offset == sum(pieces)
    assert torch.equal(cache.keys, keys) and torch.equal(cache.values, values)
    segments = cache.segments()
    assert torch.equal(torch.cat([k for k, _ in segments], dim=2), keys)
    assert torch.equal(torch.cat([v for _, v in segments], dim=2), values)


@pytest.mark.parametrize("grad", [True, False])  # autograd path / in-place scratch path
@pytest.mark.parametrize("pieces", [[5, 1, 1, 1, 1, 1, 1], [1] * 11, [6, 1, 1, 3, 1, 1, 1]])
@pytest.mark.parametrize("max_len", [None, 64])
def test_attend_equals_attention_over_all_keys(pieces, grad, max_len):
    gen = torch.Generator().manual_seed(1)
    cache = KVCache(max_len, block_len=4)
    keys, values = _appended(cache, pieces[:3], gen)
    with torch.set_grad_enabled(grad):
        for _ in range(2):  # attend, grow, attend again (the scratch is reused or regrown)
            q = torch.randn(3, 2, 1, 8, generator=gen)
            want = F.scaled_dot_product_attention(q, keys, values)
            torch.testing.assert_close(cache.attend(q), want, atol=1e-6, rtol=1e-5)
            want = F.scaled_dot_product_attention(q, keys, values, scale=0.3)
            got = cache.attend(q, scale=0.3)
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
            more = _appended(cache, pieces[3:], gen)
            keys, values = torch.cat((keys, more[0]), 2), torch.cat((values, more[1]), 2)


def test_attend_passes_gradients():
    gen = torch.Generator().manual_seed(2)
    cache = KVCache(block_len=4)
    keys = torch.randn(2, 2, 7, 8, generator=gen, requires_grad=True)
    values = torch.randn(2, 2, 7, 8, generator=gen, requires_grad=True)
    cache.append(keys[:, :, :5], values[:, :, :5])
    cache.append(keys[:, :, 5:6], values[:, :, 5:6])
    cache.append(keys[:, :, 6:], values[:, :, 6:])
    q = torch.randn(2, 2, 1, 8, generator=gen, requires_grad=True)
    got = torch.autograd.grad(cache.attend(q).square().sum(), (q, keys, values))
    out = F.scaled_dot_product_attention(q, keys, values)
    want = torch.autograd.grad(out.square().sum(), (q, keys, values))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_attend_rejects_an_empty_cache_and_several_queries():
    cache = KVCache()
    with pytest.raises(ValueError, match="0 positions"):
        cache.attend(torch.zeros(1, 1, 1, 4))
    cache.append(torch.zeros(1, 1, 3, 4), torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="2 queries"):
        cache.attend(torch.zeros(1, 1, 2, 4))
    with pytest.raises(ValueError, match="block_len"):
        KVCache(block_len=0)


def test_decoding_steps_across_blocks_equal_full_attention():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, rotary=True).eval()
    x = torch.randn(2, 23, 16)
    full = attn(x, causal=True)
    cache = KVCache(32, block_len=4)
    pieces = [attn(x[:, :6], causal=True, cache=cache)]
    pieces += [attn(x[:, i : i + 1], causal=True, cache=cache) for i in range(6, 15)]
    pieces.append(attn(x[:, 15:18], causal=True, cache=cache))  # a chunk between steps
    pieces += [attn(x[:, i : i + 1], causal=True, cache=cache) for i in range(18, 23)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-6, rtol=1e-5)


def test_streamed_gpt2meg_steps_equal_the_full_recomputation_on_real_eeg(shared_data):
    """1 s prompt of 16 real EEG channels (mu-law codes), then 140 single steps (three blocks of
    the cache and part of a fourth): every step's logits equal those of the full forward."""
    torch.manual_seed(0)
    model = create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "n_chans": 16}).eval()
    codes = real_eeg_codes(shared_data, 300, model.config.vocab_size)  # (1, 16, 300)
    prompt, n_steps = 160, 140
    with torch.no_grad():
        full = model(codes).logits  # (1, 16, 300, V)
    logits, past = streamed(model, codes[..., : prompt + n_steps], prompt)
    assert past[0].offset == prompt + n_steps
    assert (logits - full).abs().max() <= 1e-5


@pytest.mark.parametrize("grad", [True, False])
def test_a_bfloat16_cache_attends_within_bfloat16_precision(grad):
    """Keys/values stored in bfloat16: a decoding step equals float32 attention over the
    rounded keys and values to bfloat16 precision of the scores and weights, and comes back in
    float32."""
    gen = torch.Generator().manual_seed(3)
    cache = KVCache(64, block_len=4, dtype=torch.bfloat16)
    keys, values = _appended(cache, [6, 1, 1, 1, 1, 1], gen)
    assert cache.keys.dtype == torch.bfloat16 and cache.values.dtype == torch.bfloat16
    with torch.set_grad_enabled(grad):
        for _ in range(3):
            rounded = keys.to(torch.bfloat16).float(), values.to(torch.bfloat16).float()
            assert torch.equal(cache.keys.float(), rounded[0])
            q = torch.randn(3, 2, 1, 8, generator=gen)
            got = cache.attend(q)
            assert got.dtype == torch.float32
            want = F.scaled_dot_product_attention(q, *rounded)
            torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)
            more = _appended(cache, [1], gen)
            keys, values = torch.cat((keys, more[0]), 2), torch.cat((values, more[1]), 2)
    with pytest.raises(ValueError, match="floating-point"):
        KVCache(dtype=torch.int8)


def test_streamed_gpt2meg_with_a_bfloat16_cache_stays_close_on_real_eeg(shared_data):
    """``cache_dtype: bfloat16`` on real EEG codes: 60 streamed steps after a 1 s prompt give
    next-code log-probabilities within 0.01 nats of the float32 full forward and the same most
    likely code at >= 99% of (channel, step) cells."""
    torch.manual_seed(0)
    exact = create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "n_chans": 16}).eval()
    low = create(
        MODELS,
        {"name": "gpt2meg_trf", "preset": "tiny", "n_chans": 16, "cache_dtype": "bfloat16"},
    ).eval()
    low.load_state_dict(exact.state_dict())
    codes = real_eeg_codes(shared_data, 220, exact.config.vocab_size)  # (1, 16, 220)
    prompt = 160
    with torch.no_grad():
        full = exact(codes).logits[..., prompt:, :].log_softmax(-1)
    logits, past = streamed(low, codes, prompt)
    assert past[0].keys.dtype == torch.bfloat16
    streamed_lp = logits[..., prompt:, :].log_softmax(-1)
    assert streamed_lp.dtype == torch.float32
    assert (streamed_lp - full).abs().max() <= 0.01
    agree = (streamed_lp.argmax(-1) == full.argmax(-1)).float().mean()
    assert agree >= 0.99, float(agree)
