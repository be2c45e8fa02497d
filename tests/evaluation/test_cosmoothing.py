"""Co-smoothing bits per spike against hand-computed values, and the smoothed-spikes GLM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurofm.evaluation.cosmoothing import bits_per_spike, poisson_nll, smoothed_glm_rates


def test_bits_per_spike_matches_hand_computed_values():
    counts = np.array([[0.0, 1.0], [2.0, 1.0]])
    rates = np.array([[0.5, 1.0], [2.0, 1.0]])
    # nll = sum r - y log r + log y!
    model = (0.5 - 0) + (1 - 0) + (2 - 2 * math.log(2) + math.log(2)) + (1 - 0)
    assert poisson_nll(rates, counts) == pytest.approx(model)
    # null rates: unit means 1 and 1
    null = (1 - 0) + (1 - 0) + (1 - 0 + math.log(2)) + (1 - 0)
    expected = (null - model) / (4 * math.log(2))
    assert bits_per_spike(rates, counts) == pytest.approx(expected)
    assert bits_per_spike(np.ones_like(counts), counts) == pytest.approx(0.0)  # = the null
    with pytest.raises(ValueError, match="no spike"):
        bits_per_spike(rates, np.zeros_like(counts))
    with pytest.raises(ValueError, match="differ"):
        poisson_nll(rates[:1], counts)


def test_smoothed_glm_predicts_a_driven_unit():
    rng = np.random.default_rng(0)
    drive = np.abs(np.sin(np.arange(600) / 10.0))
    held_in = rng.poisson(3 * drive[:, None] * np.ones((1, 4)))
    held_out = rng.poisson(2 * drive[:, None] + 0.1 * np.ones((1, 2)))
    rates = smoothed_glm_rates(held_in[:400], held_out[:400], held_in[400:])
    assert rates.shape == (200, 2) and (rates > 0).all()
    assert bits_per_spike(rates, held_out[400:]) > 0.1


def test_poisson_glm_matches_sklearn():
    from sklearn.linear_model import PoissonRegressor

    from neurofm.evaluation.cosmoothing import fit_poisson_glm

    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 3))
    y = rng.poisson(np.exp(0.5 * x[:, :1] - 0.3 * x[:, 1:2] + 0.2))
    weights, intercept = fit_poisson_glm(x, y, 0.1)
    reference = PoissonRegressor(alpha=0.1, tol=1e-10, max_iter=1000).fit(x, y[:, 0])
    np.testing.assert_allclose(weights[:, 0], reference.coef_, atol=1e-4)
    assert intercept[0] == pytest.approx(reference.intercept_, abs=1e-4)
