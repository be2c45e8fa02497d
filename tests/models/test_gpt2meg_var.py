"""The VAR filter of the GPT2MEG ordinal head, its amplitude domain and its ridge initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from neurofm.generation import SamplingConfig, generate_with_logits
from neurofm.layers.ordinal import VAR_GAIN, OrdinalLogits, ridge_var
from neurofm.registry import MODELS, create, model_spec
from neurofm.types import Batch

OPTIONS = {"ordinal_head": True, "var_order": 3, "amplitude": "mulaw", "vocab_size": 64}


def _model(name: str = "gpt2meg_trf", **extra):
    torch.manual_seed(0)
    return create(MODELS, {"name": name, "preset": "tiny", **OPTIONS, **extra})


def _var_process(n_windows: int, n_chans: int, n_times: int, seed: int = 0) -> torch.Tensor:
    """A coupled VAR(1) process in [-1, 1]: x_t = A x_{t-1} + noise."""
    gen = torch.Generator().manual_seed(seed)
    eye = torch.eye(n_chans, dtype=torch.float64)
    a = 0.5 * eye + 0.3 * torch.roll(eye, 1, dims=1)
    x = torch.zeros(n_windows, n_chans, n_times, dtype=torch.float64)
    for t in range(1, n_times):
        noise = 0.05 * torch.randn(n_windows, n_chans, generator=gen, dtype=torch.float64)
        x[..., t] = x[..., t - 1] @ a.T + noise
    return x, a


def test_ridge_var_recovers_a_coupled_process():
    x, a = _var_process(40, 3, 200)
    weights, penalty, residual = ridge_var(x, 2, penalties=(1e-6, 1e-4))
    # the filter predicts the change x_{t+1} - x_t: lag 0 holds A - I, lag 1 nothing
    torch.testing.assert_close(
        weights[0].double(), a - torch.eye(3, dtype=torch.float64), atol=0.05, rtol=0
    )
    assert weights[1].abs().max() < 0.05
    torch.testing.assert_close(
        residual.double(), torch.full((3,), 0.05, dtype=torch.float64), rtol=0.05, atol=0
    )


def test_mulaw_gaussian_puts_on_each_code_about_its_bin_mass():
    """With sigma wide against the bins, density x width matches Phi(b) - Phi(a) per code."""
    head = OrdinalLogits(8, 64, amplitude="mulaw")
    head.reset_parameters()
    mean = torch.tensor([0.0, -0.3, 0.2])
    sigma = 0.1
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.copy_(torch.tensor([0.0, -math.log(sigma), 30.0]))  # Gaussian only
        log_p = head(torch.zeros(3, 64), torch.zeros(3, 8), mean)
    centres = head.values.double()
    mids = (centres[1:] + centres[:-1]) / 2
    edges = torch.cat((torch.tensor([-math.inf]), mids, torch.tensor([math.inf])))
    z = (edges[None] - mean[:, None].double()) / sigma
    exact = torch.special.ndtr(z[:, 1:]) - torch.special.ndtr(z[:, :-1])
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(3))
    assert (log_p.exp().double() - exact).abs().max() < 0.01
    assert head.amplitudes(torch.tensor([0, 63])).tolist() == pytest.approx([-1.0, 1.0])


@pytest.mark.parametrize("name", ["gpt2meg_trf", "gpt2meg_mix", "gpt2meg"])
def test_var_path_is_causal_and_cached_generation_matches(name):
    model = _model(name).eval()
    with torch.no_grad():
        model.ordinal.var.normal_(0, 0.5)  # a non-trivial filter
    x = torch.randint(0, 64, (2, 3, 10), generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[..., 6:] = (x[..., 6:] + 5) % 64
    with torch.no_grad():
        a, b = model(x).logits[..., :6, :], model(changed).logits[..., :6, :]
    assert torch.equal(a, b)
    greedy = SamplingConfig(temperature=0.0)
    codes, logits = generate_with_logits(model, x[..., :2], 8, greedy)  # prompt < filter order
    full, full_logits = generate_with_logits(
        model, x[..., :2], 8, SamplingConfig(temperature=0.0, use_cache=False)
    )
    assert torch.equal(codes, full)
    assert (logits - full_logits).abs().max() <= 1e-4


def test_init_from_data_sets_the_filter_of_the_given_channels_and_the_gaussian():
    model = _model(linear_init="train_ridge", var_order=2, ar_order=2)
    assert model_spec(model).data_init
    x, a = _var_process(30, 3, 64, seed=2)
    y = torch.sign(x) * torch.log1p(63 * x.abs().clamp(max=1)) / math.log1p(63)  # mu-law
    codes = torch.round((y + 1) / 2 * 63).long()
    ids = torch.tensor([5, 1, 6])
    summary = model.init_from_data(Batch(x=codes, context={"channel_ids": ids.expand(30, 3)}))
    assert summary["var_order"] == 2 and summary["windows"] == 30
    var = VAR_GAIN * model.ordinal.var.detach()
    picked = var[0][ids[:, None], ids[None, :]]
    assert torch.allclose(picked.double(), a - torch.eye(3, dtype=torch.float64), atol=0.1)
    others = torch.ones(8, dtype=torch.bool)
    others[ids] = False
    assert var[:, others].abs().max() == 0 and var[:, :, others].abs().max() == 0
    assert model.ordinal.ar.abs().max() == 0
    # the Gaussian's mean starts at the filter's: no change term from the hidden state
    assert model.ordinal.proj.weight[:2].abs().max() == 0
    assert model.ordinal.proj.bias[1].item() == 0.0
    width = (-model.ordinal.channel_log_precision.detach()[ids]).exp()
    assert width.mean().item() == pytest.approx(summary["residual"], rel=1e-4)
    assert model.ordinal.channel_log_precision.detach()[others].abs().max() == 0


def test_bad_settings_are_refused():
    with pytest.raises(Exception, match="var_order"):
        create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "linear_init": "train_ridge"})
    with pytest.raises(Exception, match="ordinal_head"):
        create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny", "var_order": 2})


@pytest.mark.parametrize("name", ["gpt2meg_trf", "gpt2meg_mix", "gpt2meg"])
def test_volatility_is_causal_and_cached_generation_matches(name):
    model = _model(name, volatility=True).eval()
    with torch.no_grad():
        model.ordinal.var.normal_(0, 0.5)
        model.ordinal.vol_gain.fill_(0.8)
        model.ordinal.vol_ref.normal_(-6.0, 1.0)
    x = torch.randint(0, 64, (2, 3, 10), generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[..., 6:] = (x[..., 6:] + 5) % 64
    with torch.no_grad():
        a, b = model(x).logits[..., :6, :], model(changed).logits[..., :6, :]
    assert torch.equal(a, b)
    greedy = SamplingConfig(temperature=0.0)
    codes, logits = generate_with_logits(model, x[..., :2], 8, greedy)  # prompt < window
    full, full_logits = generate_with_logits(
        model, x[..., :2], 8, SamplingConfig(temperature=0.0, use_cache=False)
    )
    assert torch.equal(codes, full)
    assert (logits - full_logits).abs().max() <= 1e-4


def test_log_energy_counts_real_changes_only():
    head = OrdinalLogits(8, 64, var_order=3, n_chans=1, volatility=True)
    codes = torch.tensor([[[5, 5, 10, 20, 20]]])  # 2 history codes, then 3 inputs
    values = head.amplitudes(codes)[0, 0]
    d2 = values.diff().square()
    no_real = head.log_energy(codes, seen=0)[0, 0]
    assert torch.isnan(no_real[0])  # no real change ends at the first input yet
    expected = (d2[2] + head.vol_floor).log()  # only 10 -> 20 is between real inputs
    torch.testing.assert_close(no_real[1], expected)
    one_real = head.log_energy(codes, seen=1)[0, 0]  # the code 5 before the inputs is real
    torch.testing.assert_close(one_real[0], (d2[1] + head.vol_floor).log())


def test_volatility_fit_finds_the_gain_of_a_heteroscedastic_process():
    """Noise whose scale switches between bursts: the fitted gain is clearly positive and the
    scaled Gaussians give a lower NLL than the fixed width."""
    gen = torch.Generator().manual_seed(0)
    n, c, t = 40, 2, 120
    scale = torch.where(torch.rand(n, 1, 1, generator=gen) < 0.5, 0.01, 0.06)
    scale = scale * torch.ones(n, c, t)
    scale[:, :, t // 2 :] = scale.flip(0)[:, :, t // 2 :]  # a switch within some windows
    x = (scale * torch.randn(n, c, t, generator=gen)).cumsum(-1).clamp(-0.9, 0.9) * 0.5
    model = _model(linear_init="train_ridge", var_order=8, volatility=True, n_chans=c)
    mu = model.ordinal.mu
    codes = ((torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu) + 1) / 2 * 63).round()
    codes = codes.long()
    summary = model.init_from_data(Batch(x=codes))
    assert summary["volatility_gain"] > 0.3

    def nll(m):
        with torch.no_grad():
            lp = m(codes[..., :-1]).logits.log_softmax(-1)
        return -lp.gather(-1, codes[..., 1:, None])[..., 16:, :].mean()

    with_vol = nll(model)
    with torch.no_grad():
        model.ordinal.vol_gain.zero_()
    assert with_vol < nll(model)
