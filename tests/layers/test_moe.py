"""Mixture-of-experts MLP: routed dispatch equals the dense mixture, load-balancing loss values,
and as the MLP of a TransformerBlock (aux losses through the block, cache parity)."""

from __future__ import annotations

import math

import pytest
import torch

from neurofm.layers import KVCache, MoEMLP, SpatioTemporalBlock, TransformerBlock


def _moe(top_k: int = 2, n_experts: int = 4) -> MoEMLP:
    torch.manual_seed(0)
    moe = MoEMLP(8, n_experts=n_experts, top_k=top_k, d_hidden=16, activation="swiglu")
    torch.nn.init.normal_(moe.router.weight, std=1.0)  # a decisive router
    return moe


@pytest.mark.parametrize("top_k", [1, 2, 4])
def test_routed_dispatch_equals_the_dense_mixture(top_k):
    moe = _moe(top_k)
    x = torch.randn(3, 5, 8)
    y = moe(x)
    flat = x.reshape(-1, 8)
    probs = moe.router(flat).softmax(dim=-1)
    top, idx = probs.topk(top_k, dim=-1)
    if top_k > 1:
        top = top / top.sum(dim=-1, keepdim=True)
    dense_gates = torch.zeros_like(probs).scatter(-1, idx, top)  # (N, E)
    every_expert = torch.stack([expert(flat) for expert in moe.experts], dim=1)  # (N, E, D)
    expected = (dense_gates.unsqueeze(-1) * every_expert).sum(dim=1).view_as(x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)


def test_uniform_router_gives_load_balance_one():
    moe = _moe(top_k=2, n_experts=8)
    torch.nn.init.zeros_(moe.router.weight)  # every expert equally probable
    moe(torch.randn(64, 8))
    aux = moe.aux_losses
    assert aux["load_balance"].item() == pytest.approx(1.0, abs=1e-6)
    # z-loss of equal logits 0: logsumexp = log(E)
    assert aux["router_z"].item() == pytest.approx(math.log(8) ** 2, rel=1e-5)


def test_collapsed_router_gives_load_balance_n_experts():
    moe = _moe(top_k=1, n_experts=4)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[2] = 50.0  # every token with a positive feature sum goes to expert 2
    x = torch.rand(32, 8)  # positive features
    moe(x)
    aux = moe.aux_losses
    assert aux["load_balance"].item() == pytest.approx(4.0, rel=1e-4)


def test_router_learns_from_the_output_and_the_balance_loss():
    moe = _moe(top_k=1)
    y = moe(torch.randn(16, 8))
    aux = moe.aux_losses
    y.square().mean().backward(retain_graph=True)
    assert moe.router.weight.grad.abs().sum() > 0  # top-1 gate is the raw probability
    moe.zero_grad()
    aux["load_balance"].backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_bad_top_k_is_rejected():
    with pytest.raises(ValueError, match=r"top_k=5 must be in \[1, n_experts=4\]"):
        MoEMLP(8, n_experts=4, top_k=5)


def _moe_block() -> TransformerBlock:
    torch.manual_seed(0)
    return TransformerBlock(16, 2, mlp=MoEMLP(16, n_experts=4, top_k=2)).eval()


def test_moe_block_cached_steps_equal_the_full_forward():
    block = _moe_block()
    x = torch.randn(2, 9, 16)
    full = block(x)
    cache = KVCache(16)
    steps = [block(x[:, :4], cache=cache)]
    steps += [block(x[:, t : t + 1], cache=cache) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-6)


def test_blocks_pass_up_the_losses_of_their_latest_call():
    block = _moe_block()
    assert TransformerBlock(16, 2).aux_losses == {}
    block(torch.randn(2, 5, 16))
    first = block.aux_losses["load_balance"]
    assert set(block.aux_losses) == {"load_balance", "router_z"}
    block(torch.randn(2, 5, 16) * 3)
    assert block.aux_losses["load_balance"] is not first
    wrapped = SpatioTemporalBlock(block)
    wrapped(torch.randn(1, 3, 4, 16))
    assert wrapped.aux_losses is block.mlp.aux_losses


def test_moe_block_keeps_the_dense_block_names():
    names = {n.split(".")[0] for n, _ in _moe_block().named_parameters()}
    assert names == {"norm_attn", "attn", "norm_mlp", "mlp"}
