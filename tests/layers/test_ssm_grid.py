"""The oscillator SSM equals its recurrence (reference twin), and the position grid places every
channel on its own cell and reads it back."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurofm.layers import OscillatorSSM, PositionGrid


def _recurrence(ssm: OscillatorSSM, u: torch.Tensor) -> torch.Tensor:
    """The damped-oscillator state recurrence run step by step in complex128."""
    decay = F.softplus(ssm.decay_raw.double())
    freq = math.pi * torch.sigmoid(ssm.freq_raw.double())
    modes = torch.exp(torch.complex(-decay, freq))  # (D, N)
    readout = torch.complex(ssm.cos_weight.double(), -ssm.sin_weight.double())
    state = torch.zeros(u.shape[0], *modes.shape, dtype=torch.complex128)
    out = []
    for t in range(u.shape[-1]):
        state = modes * state + u[..., t, None].double()
        out.append((readout * state).real.sum(-1) + ssm.skip.double() * u[..., t].double())
    return torch.stack(out, dim=-1)


def test_oscillator_ssm_equals_its_recurrence():
    torch.manual_seed(0)
    ssm = OscillatorSSM(3, 4)
    u = torch.randn(2, 3, 40)
    with torch.no_grad():
        assert torch.allclose(ssm(u).double(), _recurrence(ssm, u), atol=1e-4)


def test_position_grid_round_trip_and_errors():
    grid = PositionGrid(4, 4, where="model")
    positions = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(0))
    cells = grid.cells(positions)
    assert cells.shape == (2, 6) and all(len(set(row.tolist())) == 6 for row in cells)
    h = torch.randn(2, 6, 5, 3)
    assert torch.equal(grid.gather(grid.scatter(h, cells), cells), h)
    bad = positions.clone()
    bad[0, 2] = float("nan")
    with pytest.raises(ValueError, match=r"channels \[2\]"):
        grid.cells(bad)
