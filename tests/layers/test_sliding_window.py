"""Sliding-window attention and its ring cache: the band mask against a hand-written reference,
cached decoding (steps, chunks, prompts longer than the window, thousands of steps past the
window) equal to the full windowed forward, bounded memory, bfloat16 storage, the errors, and
gpt2meg_trf with ``attn_window`` streamed on real EEG past its ``max_seq_len``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from layer_streaming import real_eeg_codes, streamed

from neurofm.layers import KVCache, MultiHeadAttention, SlidingKVCache, causal_mask
from neurofm.registry import MODELS, create


def test_the_window_mask_sees_the_last_window_positions_bottom_right_aligned():
    mask = causal_mask(3, 6, torch.device("cpu"), window=2)  # queries at positions 3, 4, 5
    want = torch.tensor(
        [[0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(mask, want)
    assert torch.equal(causal_mask(4, 4, torch.device("cpu"), window=10), causal_mask(4, 4, "cpu"))


def _reference(attn: MultiHeadAttention, x: torch.Tensor, window: int) -> torch.Tensor:
    """Windowed attention written out: scores, a -inf band, softmax, weighted values."""
    b, t, _ = x.shape
    q = attn._heads(attn.q_proj(x))
    k, v = (attn._heads(part) for part in attn.kv_proj(x).chunk(2, dim=-1))
    q, k = attn.rotary(q, k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    scores = scores.masked_fill(~((j <= i) & (j > i - window)), -torch.inf)
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
    return attn.out_proj(out)


def test_windowed_attention_equals_the_written_out_band():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, rotary=True, window=4).eval()
    x = torch.randn(2, 11, 16)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, causal=True), _reference(attn, x, 4))
    full = MultiHeadAttention(16, 2, rotary=True).eval()
    full.load_state_dict(attn.state_dict())
    with torch.no_grad():  # a window as long as the input is plain causal attention
        torch.testing.assert_close(full(x[:, :4], causal=True), attn(x[:, :4], causal=True))
        assert not torch.allclose(full(x, causal=True), attn(x, causal=True))


@pytest.mark.parametrize(
    "pieces",
    [
        [1] * 23,  # steps from the start, the ring wrapping four times
        [3, 9, 1, 1, 1, 1, 7],  # chunks longer than the window into a filled ring
        [12, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # a prompt longer than the window
        [5, 5, 1, 2, 1, 9],
    ],
)
def test_cached_decoding_equals_the_full_windowed_forward(pieces):
    torch.manual_seed(1)
    attn = MultiHeadAttention(16, 2, rotary=True, window=5).eval()
    x = torch.randn(2, sum(pieces), 16)
    cache = SlidingKVCache(5)
    with torch.no_grad():
        want = attn(x, causal=True)
        got, start = [], 0
        for n in pieces:
            got.append(attn(x[:, start : start + n], causal=True, cache=cache))
            start += n
    torch.testing.assert_close(torch.cat(got, dim=1), want, atol=1e-6, rtol=1e-5)
    assert cache.offset == sum(pieces) and cache.held == 5 and cache.start == sum(pieces) - 5


def test_the_ring_keeps_the_last_positions_in_order_and_its_memory_bounded():
    cache = SlidingKVCache(4)
    keys = torch.arange(30.0).view(1, 1, 30, 1).expand(1, 2, 30, 3)
    cache.append(keys[:, :, :3], -keys[:, :, :3])
    assert torch.equal(cache.keys, keys[:, :, :3])
    held = cache.keys
    for t in range(3, 30):
        cache.append(keys[:, :, t : t + 1], -keys[:, :, t : t + 1])
        assert torch.equal(cache.keys, keys[:, :, max(0, t - 3) : t + 1])
        assert torch.equal(cache.values, -keys[:, :, max(0, t - 3) : t + 1])
    assert torch.equal(held, keys[:, :, :3])  # what keys returned is a copy
    assert cache._k.shape == (1, 2, 4, 3) and cache.segments()[0][0].shape == (1, 2, 4, 3)
    assert "window=4" in repr(cache) and "offset=30" in repr(cache)


def test_a_long_stream_costs_the_same_memory_and_stays_exact():
    """3,000 single steps through a window of 8: the ring never grows and the last steps
    equal a fresh forward over the last window (relative rotary angles)."""
    torch.manual_seed(2)
    attn = MultiHeadAttention(8, 2, rotary=True, window=8).eval()
    x = torch.randn(1, 3000, 8)
    cache = SlidingKVCache(8)
    with torch.no_grad():
        outs = [attn(x[:, t : t + 1], causal=True, cache=cache) for t in range(3000)]
        fresh = attn(x[:, -15:], causal=True)  # the last 8 outputs see only these positions
    assert cache._k.shape[2] == 8 and cache.offset == 3000
    torch.testing.assert_close(torch.cat(outs[-8:], dim=1), fresh[:, -8:], atol=1e-5, rtol=1e-4)


def test_a_bfloat16_ring_attends_within_bfloat16_precision():
    torch.manual_seed(3)
    attn = MultiHeadAttention(16, 2, rotary=True, window=6).eval()
    x = torch.randn(3, 20, 16)
    cache = SlidingKVCache(6, dtype=torch.bfloat16)
    with torch.no_grad():
        want = attn(x, causal=True)
        got = [attn(x[:, :9], causal=True, cache=cache)]
        got += [attn(x[:, t : t + 1], causal=True, cache=cache) for t in range(9, 20)]
    assert cache.keys.dtype == torch.bfloat16
    got = torch.cat(got, dim=1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=3e-2, rtol=3e-2)


def test_windowed_steps_pass_gradients():
    attn = MultiHeadAttention(8, 2, rotary=True, window=3)
    x = torch.randn(1, 6, 8, requires_grad=True)
    cache = SlidingKVCache(3)
    out = torch.cat([attn(x[:, t : t + 1], causal=True, cache=cache) for t in range(6)], dim=1)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[:, 0].abs().sum() > 0


def test_sliding_window_errors_name_the_problem():
    with pytest.raises(ValueError, match="window must be positive"):
        MultiHeadAttention(8, 2, window=0)
    with pytest.raises(ValueError, match="window must be positive"):
        SlidingKVCache(0)
    with pytest.raises(ValueError, match="floating-point"):
        SlidingKVCache(4, dtype=torch.int8)
    with pytest.raises(ValueError, match="not with a context"):
        MultiHeadAttention(8, 2, d_context=4, window=3)
    attn = MultiHeadAttention(8, 2, rotary=True, window=3)
    x = torch.randn(1, 4, 8)
    with pytest.raises(ValueError, match="causal=True"):
        attn(x)
    with pytest.raises(ValueError, match=r"SlidingKVCache\(3\)"):
        attn(x, causal=True, cache=KVCache())
    with pytest.raises(ValueError, match="window=None needs a KVCache"):
        MultiHeadAttention(8, 2)(x, causal=True, cache=SlidingKVCache(3))
    with pytest.raises(ValueError, match=r"SlidingKVCache\(3\)"):
        attn(x, causal=True, cache=SlidingKVCache(5))
    cache = SlidingKVCache(3)
    cache.append(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match="shape changed"):
        cache.append(torch.zeros(2, 2, 1, 4), torch.zeros(2, 2, 1, 4))
    with pytest.raises(ValueError, match="one query"):
        SlidingKVCache(3).attend(torch.zeros(1, 2, 1, 4))


@pytest.mark.parametrize("block", ["time", "channel_time"])
def test_gpt2meg_with_a_window_streams_real_eeg_past_its_max_seq_len(shared_data, block):
    """gpt2meg_trf with ``attn_window: 32`` and ``max_seq_len: 64``: 1 s of real EEG codes (160
    steps) streamed one step at a time after a 20-step prompt, far past max_seq_len; every step's
    logits equal a fresh forward over the window that step sees."""
    torch.manual_seed(0)
    cfg = {"name": "gpt2meg_trf", "preset": "tiny", "n_chans": 8, "block": block}
    model = create(MODELS, {**cfg, "attn_window": 32, "max_seq_len": 64}).eval()
    codes = real_eeg_codes(
        shared_data, 160, model.config.vocab_size, n_chans=8, start=400
    )  # (1, 8, 160)
    with torch.no_grad():
        logits, past = streamed(model, codes, 20)
        assert isinstance(past[0], SlidingKVCache) and past[0]._k.shape[2] == 32
        for t in (40, 63, 64, 100, 159):  # a fresh forward over the 64 steps ending at t
            start = max(0, t - 63)
            want = model(codes[..., start : t + 1]).logits[..., -1, :]
            torch.testing.assert_close(logits[..., t, :], want, atol=2e-5, rtol=1e-4)
        with pytest.raises(ValueError, match="max_seq_len"):
            model(codes[..., :65])  # one call still fits max_seq_len


def test_attn_window_is_checked_and_not_on_the_hugging_face_backbone():
    with pytest.raises(ValueError, match="attn_window"):
        create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "attn_window": -1})
    with pytest.raises(ValueError, match="causal=True"):
        create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "attn_window": 8, "causal": False})
    with pytest.raises(ValueError, match="attn_window"):
        create(MODELS, {"name": "gpt2meg", "preset": "tiny", "attn_window": 8})
    trained = create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "attn_window": 8})
    assert trained.blocks[0].attn.window == 8
    x = torch.randint(0, 64, (1, 8, 12))
    out = trained(x)
    out.logits.sum().backward()  # trains through the band mask
    assert trained.blocks[0].attn.q_proj.weight.grad is not None
    assert F.softmax(out.logits, -1).isfinite().all()
