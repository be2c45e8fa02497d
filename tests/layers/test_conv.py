"""Causal convolutions: nothing after t reaches the output at t, and the receptive field is exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurofm.layers import CausalConv1d, DilatedResidualBlock, receptive_field
from neurofm.models.forecaster import ConvForecaster, ConvForecasterConfig


def _input_gradient(module: nn.Module, x: torch.Tensor, t: int) -> torch.Tensor:
    """|d out[..., t] / d x| summed over batch and channels, per input time step (T,)."""
    x = x.clone().requires_grad_(True)
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    out = getattr(out, "prediction", out)
    out[..., t].sum().backward()
    return x.grad.abs().sum(dim=(0, 1))


@pytest.mark.parametrize("kernel_size,dilation", [(2, 1), (3, 2), (2, 4)])
def test_causal_conv_sees_exactly_its_receptive_field(kernel_size, dilation):
    torch.manual_seed(0)
    conv = CausalConv1d(3, 5, kernel_size, dilation=dilation)
    x = torch.randn(2, 3, 20)
    assert conv(x).shape == (2, 5, 20)
    t = 15
    grad = _input_gradient(conv, x, t)
    taps = {t - k * dilation for k in range(kernel_size)}
    assert {int(i) for i in torch.nonzero(grad).flatten()} == taps
    assert conv.left_pad + 1 == receptive_field(kernel_size, [dilation])


def test_causal_conv_keeps_state_dict_names_of_conv1d():
    conv = CausalConv1d(2, 4, 3, dilation=2)
    assert set(conv.state_dict()) == {"weight", "bias"}
    assert conv.weight.shape == (4, 2, 3)


@pytest.mark.parametrize("activation", ["gelu", "gated"])
def test_residual_block_is_causal_with_the_stated_receptive_field(activation):
    torch.manual_seed(0)
    block = DilatedResidualBlock(4, 3, 2, activation=activation, skip_channels=6).eval()
    x = torch.randn(2, 4, 24)
    h, skip = block(x)
    assert h.shape == (2, 4, 24) and skip.shape == (2, 6, 24)
    t = 17
    grad = _input_gradient(block, x, t)
    reached = torch.nonzero(grad).flatten()
    assert int(reached.max()) == t  # nothing after t
    assert int(reached.min()) == t - block.receptive_field + 1  # the oldest tap, exactly
    x_future = x.clone()
    x_future[..., t + 1 :] = torch.randn_like(x_future[..., t + 1 :])
    torch.testing.assert_close(block(x_future)[0][..., : t + 1], h[..., : t + 1])


def test_residual_block_options_and_errors():
    gated = DilatedResidualBlock(4, 2, 1, activation="gated")
    assert gated.conv.weight.shape[0] == 8 and gated.skip is None
    assert gated(torch.randn(1, 4, 5))[1] is None
    with pytest.raises(ValueError, match="allowed: gelu, gated"):
        DilatedResidualBlock(4, 2, 1, activation="relu")
    with pytest.raises(ValueError, match="skip_channels"):
        DilatedResidualBlock(4, 2, 1, skip_channels=-1)
    with pytest.raises(ValueError, match="kernel_size and dilation"):
        CausalConv1d(1, 1, 2, dilation=0)


def test_conv_forecaster_receptive_field_is_exact():
    torch.manual_seed(0)
    config = ConvForecasterConfig(n_chans=2, d_model=4, n_layers=3, kernel_size=2)
    model = ConvForecaster(config).eval()
    assert config.receptive_field == 8
    x = torch.randn(1, 2, 30)
    t = 20
    reached = torch.nonzero(_input_gradient(model, x, t)).flatten()
    assert int(reached.max()) == t
    assert int(reached.min()) == t - config.receptive_field + 1
