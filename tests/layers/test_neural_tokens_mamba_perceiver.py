"""NeuroFM-X layers: spike / binned / LFP embeddings, Mamba scans (parallel vs sequential
reference), multi-rate fusion, Perceiver-IO and the population transformer's invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mambapy")

from neurofm.layers.mamba import MambaStack, MultiRateMamba  # noqa: E402
from neurofm.layers.neural_tokens import (  # noqa: E402
    BinnedCountEmbedding,
    LFPEmbedding,
    SpikeEventEmbedding,
    sinusoidal_encoding,
)
from neurofm.layers.perceiver import PerceiverIO, PopulationTransformer  # noqa: E402


def test_sinusoidal_encoding_values():
    enc = sinusoidal_encoding(torch.tensor([0.0, 1.0]), 4)
    assert torch.allclose(enc[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    expected = [np.sin(1.0), np.sin(1e-2), np.cos(1.0), np.cos(1e-2)]
    assert torch.allclose(enc[1], torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_spike_event_embedding_shapes_frozen_units_and_errors():
    torch.manual_seed(0)
    emb = SpikeEventEmbedding(10, 8, n_waveform_features=3, freeze_units=True)
    units = torch.randint(0, 10, (2, 100))
    times = torch.rand(2, 100).sort(dim=1).values
    out = emb(units, times, torch.randn(2, 100, 3))
    assert out.shape == (2, 100, 8)
    out.sum().backward()
    assert emb.units.weight.grad is None and emb.waveform.weight.grad is not None
    with pytest.raises(ValueError, match=r"unit ids must lie in \[0, 10\)"):
        emb(torch.full((1, 2), 10), torch.zeros(1, 2), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="waveforms"):
        emb(units, times)


def test_binned_embedding_sqrt_and_multi_rate():
    torch.manual_seed(0)
    emb = BinnedCountEmbedding(5, 8)
    counts = torch.poisson(torch.full((2, 10, 5), 3.0))
    out = emb(counts)
    assert out.shape == (2, 10, 8)
    positions = sinusoidal_encoding(torch.arange(10), 8)
    assert torch.allclose(out, emb.proj(counts.sqrt()) + positions, atol=1e-6)
    fine, coarse = emb.multi_rate(counts, (1, 4))
    assert fine.shape == (2, 10, 8) and coarse.shape == (2, 3, 8)  # ceil(10 / 4) bins
    summed = counts[:, 4:8].sum(dim=1)  # second coarse bin: bins 4..7 summed
    step = sinusoidal_encoding(torch.tensor([4]), 8)[0]
    assert torch.allclose(coarse[:, 1], emb.proj(summed.sqrt()) + step, atol=1e-5)
    with pytest.raises(ValueError, match="negative counts"):
        emb(-counts)
    with pytest.raises(ValueError, match=r"expected counts \(B, T, 5\)"):
        emb(counts[..., :4])


def test_lfp_embedding_shape_and_band_power_finds_the_rhythm():
    torch.manual_seed(0)
    emb = LFPEmbedding(64, 768, sfreq=1000.0, pool=4)
    assert emb(torch.randn(2, 64, 1000)).shape == (2, 250, 768)
    small = LFPEmbedding(1, 6, sfreq=1000.0, pool=100)
    t = torch.arange(2000) / 1000.0
    beta = torch.sin(2 * torch.pi * 20.0 * t)[None, None]  # a 20 Hz rhythm
    power = small.band_power(beta)[0]  # (20, 5 bands)
    assert (power.argmax(dim=-1) == 3).all()  # beta is the strongest band everywhere
    with pytest.raises(ValueError, match="not a multiple of pool"):
        small(torch.randn(1, 1, 150))


@pytest.mark.parametrize("length", [16, 13])
def test_mamba_parallel_scan_matches_the_sequential_reference(length):
    torch.manual_seed(0)
    stack = MambaStack(8, 2, d_state=4, scan="parallel").double()
    x = torch.randn(2, length, 8, dtype=torch.float64, requires_grad=True)
    fast = stack(x)
    grad_fast = torch.autograd.grad(fast.square().sum(), x)[0]
    stack.set_scan("sequential")
    slow = stack(x)
    grad_slow = torch.autograd.grad(slow.square().sum(), x)[0]
    assert torch.allclose(fast, slow, atol=1e-10)
    assert torch.allclose(grad_fast, grad_slow, atol=1e-9)


def test_mamba_is_causal_and_rejects_unknown_scans():
    torch.manual_seed(0)
    stack = MambaStack(8, 1, d_state=4, scan="parallel")
    x = torch.randn(1, 12, 8)
    changed = x.clone()
    changed[:, 7:] += 1.0
    assert torch.equal(stack(x)[:, :7], stack(changed)[:, :7])
    with pytest.raises(ValueError, match="allowed: auto, parallel, sequential, cuda"):
        stack.set_scan("fast")
    if not torch.cuda.is_available():
        with pytest.raises(ImportError, match="mamba-ssm"):
            stack.set_scan("cuda")


@pytest.mark.parametrize("fusion", ["concat", "add", "attention"])
def test_multi_rate_fusions(fusion):
    torch.manual_seed(0)
    backbone = MultiRateMamba(8, 1, rates=(1, 4, 16), fusion=fusion, d_state=4, scan="parallel")
    x = torch.randn(2, 37, 8)  # 37 bins: neither 4 nor 16 divides it
    out = backbone(x)
    assert out.shape == (2, 37, 8) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="fusion="):
        MultiRateMamba(8, 1, fusion="mean")


def test_perceiver_io_shapes():
    torch.manual_seed(0)
    perceiver = PerceiverIO(24, n_latents=8, d_latent=16, n_layers=2, n_heads=2)
    assert perceiver.encode(torch.randn(2, 50, 24)).shape == (2, 8, 16)


def test_population_transformer_is_invariant_to_unit_order_and_count():
    torch.manual_seed(0)
    popt = PopulationTransformer(16, n_layers=2, n_heads=2).eval()
    tokens = torch.randn(2, 7, 16)
    out = popt(tokens)
    perm = torch.randperm(7)
    assert torch.allclose(popt(tokens[:, perm]), out, atol=1e-5)
    # 5 units, then the same 5 padded with 2 masked-out units: the same population vector
    padded = torch.cat([tokens[:, :5], torch.randn(2, 2, 16)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 2] * 2)
    assert torch.allclose(popt(padded, mask=mask), popt(tokens[:, :5]), atol=1e-5)
    assert popt(tokens[:, :3]).shape == (2, 16)  # any count of units
