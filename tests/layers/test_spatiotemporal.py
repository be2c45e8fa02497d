"""Spatiotemporal block: channels unordered, causal in time, cached steps equal the full pass."""

from __future__ import annotations

import pytest
import torch

from neurofm.layers import KVCache, SpatioTemporalBlock, TransformerBlock


def _block() -> SpatioTemporalBlock:
    torch.manual_seed(0)
    return SpatioTemporalBlock(TransformerBlock(16, 2, activation="squared_relu")).eval()


def test_permuting_channels_permutes_the_output():
    block = _block()
    x = torch.randn(2, 5, 7, 16)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(block(x[:, perm]), block(x)[:, perm], rtol=1e-5, atol=1e-6)


def test_channels_interact_only_within_and_after_their_time_step():
    block = _block()
    x = torch.randn(1, 4, 8, 16)
    changed = x.clone()
    changed[:, 0, 5] += 1.0  # channel 0 at time 5
    a, b = block(x), block(changed)
    torch.testing.assert_close(a[:, :, :5], b[:, :, :5], rtol=0, atol=0)
    assert not torch.allclose(a[:, 1, 5], b[:, 1, 5])  # another channel, same step
    assert not torch.allclose(a[:, 2, 7], b[:, 2, 7])  # another channel, later step


def test_future_gradient_is_zero():
    block = _block()
    x = torch.randn(2, 3, 8, 16, requires_grad=True)
    block(x)[:, :, 4].sum().backward()
    assert torch.count_nonzero(x.grad[:, :, 5:]) == 0
    assert torch.count_nonzero(x.grad[:, :, :5]) > 0


def test_cached_steps_equal_the_full_forward():
    block = _block()
    x = torch.randn(2, 3, 10, 16)
    cache = KVCache(32)
    steps = [block(x[:, :, :6], cache=cache)]
    steps += [block(x[:, :, t : t + 1], cache=cache) for t in range(6, 10)]
    torch.testing.assert_close(torch.cat(steps, dim=2), block(x), rtol=1e-5, atol=1e-6)
    assert cache.offset == 10


def test_rejects_three_dimensional_input():
    with pytest.raises(ValueError, match=r"expected \(B, C, T, D\)"):
        _block()(torch.randn(2, 3, 16))


def test_bidirectional_time_block_sees_the_future():
    block = _block()
    x = torch.randn(1, 3, 6, 16)
    changed = x.clone()
    changed[:, 0, 5] += 1.0
    a, b = block(x, causal=False), block(changed, causal=False)
    assert not torch.allclose(a[:, 1, 0], b[:, 1, 0])
