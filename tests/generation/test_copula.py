"""The channel copula: its validation, correlated uniforms, inverse-CDF sampling that keeps each
row's distribution, the fit on a VAR with known correlated innovations and on real EEG, and
generation whose channels move together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.generation import ChannelCopula, SamplingConfig, generate, sample_logits
from neurofm.generation.copula import sample_inverse_cdf
from neurofm.registry import MODELS, create


def _normal_scores(u: torch.Tensor) -> np.ndarray:
    return (torch.erfinv(2 * u.double() - 1) * 2**0.5).numpy()


def test_uniforms_are_uniform_with_the_asked_normal_score_correlation():
    r = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, -0.5], [0.0, -0.5, 1.0]])
    copula = ChannelCopula(r)
    u = copula.uniforms(40_000, generator=torch.Generator().manual_seed(0))
    assert u.shape == (40_000, 3) and 0 < float(u.min()) and float(u.max()) < 1
    for c in range(3):  # uniform marginals: deciles within 0.01
        deciles = torch.quantile(u[:, c], torch.linspace(0.1, 0.9, 9))
        assert (deciles - torch.linspace(0.1, 0.9, 9)).abs().max() < 0.01
    np.testing.assert_allclose(np.corrcoef(_normal_scores(u).T), r, atol=0.02)


def test_inverse_cdf_sampling_keeps_each_rows_distribution():
    gen = torch.Generator().manual_seed(1)
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2], [0.7, 0.0, 0.1, 0.2, 0.0]])
    u = torch.rand(50_000, 2, generator=gen)
    ids = sample_inverse_cdf(probs.expand(50_000, 2, 5), u)
    for row in range(2):
        freq = torch.bincount(ids[:, row], minlength=5).double() / 50_000
        assert (freq - probs[row]).abs().max() < 0.01
        assert freq[probs[row] == 0].sum() == 0  # never a code of zero probability
    edge = sample_inverse_cdf(probs[:1], torch.zeros(1))  # u = 0 still lands on an allowed code
    assert int(edge) == 1
    logits = probs.clamp_min(1e-12).log()
    with pytest.raises(ValueError, match="uniforms"):
        sample_logits(logits, uniforms=torch.rand(3))
    # temperature / top-p filtering applies before the inverse CDF
    ids = sample_logits(logits.expand(4000, 2, 5), top_p=0.6, uniforms=torch.rand(4000, 2))
    assert set(ids[:, 0].tolist()) == {1, 3} and set(ids[:, 1].tolist()) == {0}


def test_the_fit_recovers_the_innovation_correlation_of_a_var():
    rng = np.random.default_rng(2)
    r = np.array([[1.0, 0.7, 0.3], [0.7, 1.0, 0.5], [0.3, 0.5, 1.0]])
    a = np.array([[0.5, 0.3, 0.0], [-0.2, 0.6, 0.1], [0.0, 0.4, 0.3]])
    noise = rng.standard_normal((20_000, 3)) @ np.linalg.cholesky(r).T
    x = np.zeros((20_000, 3))
    for t in range(1, 20_000):
        x[t] = a @ x[t - 1] + noise[t]
    windows = [x[i : i + 500].T for i in range(0, 20_000, 500)]
    fitted = ChannelCopula.fit(windows, order=2).correlation.numpy()
    np.testing.assert_allclose(fitted, r, atol=0.03)
    # the raw signal's correlation differs: the fit is of the innovations, not of the signal
    assert np.abs(np.corrcoef(x.T) - r).max() > 0.05


def test_the_fit_on_real_eeg_finds_correlated_innovations(shared_data):
    import mne

    raw = mne.io.read_raw_edf(
        shared_data / "eegbci_S001" / "S001R04.edf", preload=True, verbose="error"
    )
    x = raw.get_data(picks="eeg")[:, :8000] * 1e6
    copula = ChannelCopula.fit([x[:, i : i + 320] for i in range(0, 8000, 320)])
    r = copula.correlation.numpy()
    assert r.shape == (64, 64)
    np.testing.assert_allclose(np.diag(r), 1.0, atol=1e-6)
    assert np.abs(r[~np.eye(64, dtype=bool)]).mean() > 0.2
    assert np.linalg.eigvalsh(r).min() > 0


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (np.ones((2, 3)), r"must be \(C, C\)"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "non-finite"),
        (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
        (np.array([[2.0, 0.0], [0.0, 1.0]]), "unit diagonal"),
        (np.array([[1.0, 1.0], [1.0, 1.0]]), "positive definite"),
    ],
)
def test_a_bad_correlation_is_rejected(matrix, match):
    with pytest.raises(ValueError, match=match):
        ChannelCopula(matrix)


def test_bad_fit_windows_are_rejected():
    with pytest.raises(ValueError, match="no training windows"):
        ChannelCopula.fit([])
    with pytest.raises(ValueError, match=r"window 1 has shape \(3, 5\)"):
        ChannelCopula.fit([np.zeros((3, 50)), np.zeros((3, 5))], order=8)
    bad = np.zeros((3, 50))
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="window 0 holds non-finite"):
        ChannelCopula.fit([bad])


def test_generated_channels_move_together_under_a_copula():
    """An untrained tiny gpt2meg_trf (near-uniform predictive distributions) over 8 channels:
    independently drawn codes barely correlate across channels; with a copula of correlation 0.9
    their normal scores correlate strongly; each channel's codes still spread over the vocabulary."""
    torch.manual_seed(0)
    model = create(MODELS, {"name": "gpt2meg_trf", "preset": "tiny"}).eval()
    prompt = torch.randint(0, 64, (2, 8, 4), generator=torch.Generator().manual_seed(0))
    r = np.full((8, 8), 0.9)
    np.fill_diagonal(r, 1.0)
    runs = {}
    for name, copula in (("independent", None), ("copula", ChannelCopula(r))):
        out = generate(model, prompt, 120, SamplingConfig(seed=3), copula=copula)[..., 4:]
        codes = out.permute(1, 0, 2).reshape(8, -1).double()
        runs[name] = np.corrcoef(codes.numpy())[~np.eye(8, dtype=bool)].mean()
        assert codes.std(dim=1).min() > 5  # not collapsed onto a few codes
    assert abs(runs["independent"]) < 0.2
    assert runs["copula"] > 0.6
    with pytest.raises(ValueError, match="copula is over 8 channels"):
        generate(model, prompt[:, :4], 3, copula=ChannelCopula(r))
