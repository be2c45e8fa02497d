"""RMSNorm, the norm factory and the MLP variants."""

from __future__ import annotations

import pytest
import torch

from neurofm.layers import MLP, RMSNorm, make_norm


def test_rmsnorm_matches_formula_and_keeps_dtype():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16)
    norm = RMSNorm(16)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(norm(x), expected)
    assert norm(x.bfloat16()).dtype == torch.bfloat16


def test_rmsnorm_bf16_is_computed_in_float32():
    x = torch.randn(4, 64) * 300.0
    out = RMSNorm(64)(x.bfloat16()).float()
    torch.testing.assert_close(out, RMSNorm(64)(x), atol=2e-2, rtol=1e-2)


def test_make_norm_names():
    assert isinstance(make_norm("rms", 8), RMSNorm)
    assert isinstance(make_norm("layer", 8), torch.nn.LayerNorm)
    with pytest.raises(ValueError, match="allowed: rms, layer"):
        make_norm("batch", 8)


@pytest.mark.parametrize("activation", ["gelu", "squared_relu", "swiglu"])
def test_mlp_shapes_and_gradients(activation):
    mlp = MLP(12, activation=activation)
    x = torch.randn(2, 7, 12, requires_grad=True)
    y = mlp(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert all(p.grad is not None for p in mlp.parameters())


def test_mlp_squared_relu_is_relu_squared():
    mlp = MLP(4, d_hidden=6, activation="squared_relu")
    x = torch.randn(3, 4)
    expected = mlp.fc_out(torch.relu(mlp.fc_in(x)) ** 2)
    torch.testing.assert_close(mlp(x), expected)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        MLP(4, activation="tanh")
