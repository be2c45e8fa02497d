import numpy as np
import pytest
import torch

from neurofm.evaluation import metrics


def test_uniform_distribution_costs_log2_v_bits():
    v = 64
    targets = np.random.default_rng(0).integers(0, v, (3, 2, 10))
    logits = torch.zeros(3, 2, 10, v)
    bits = metrics.bits_per_channel_sample(metrics.log_softmax(logits), targets)
    assert bits == pytest.approx(np.log2(v), abs=1e-9)
    probs = np.full((3, 2, 10, v), 1.0 / v)
    assert metrics.bits_per_channel_sample(
        metrics.log_probabilities(probs), targets
    ) == pytest.approx(6.0)


def test_one_hot_on_target_costs_about_zero_bits_and_is_accurate():
    v = 16
    targets = np.random.default_rng(1).integers(0, v, (2, 3, 7))
    probs = np.eye(v)[targets]
    lp = metrics.log_probabilities(probs)
    assert metrics.bits_per_channel_sample(lp, targets) < 1e-9
    assert metrics.next_step_accuracy(lp, targets) == 1.0
    logits = torch.from_numpy(np.eye(v)[targets] * 50.0)
    assert metrics.bits_per_channel_sample(metrics.log_softmax(logits), targets) < 1e-9


def test_known_distribution_bits_equal_cross_entropy():
    p = np.array([0.5, 0.25, 0.125, 0.125])
    targets = np.array([[[0, 1, 2, 3]]])
    probs = np.broadcast_to(p, (1, 1, 4, 4))
    bits = metrics.bits_per_channel_sample(metrics.log_probabilities(probs), targets)
    assert bits == pytest.approx((1 + 2 + 3 + 3) / 4)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.log_probabilities(np.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="outside"):
        metrics.bits_per_channel_sample(np.zeros((1, 3)), np.array([3]))


def test_mse_r2_and_accumulator_agree():
    rng = np.random.default_rng(2)
    truth = rng.standard_normal((4, 3, 20)) + np.arange(3)[None, :, None]
    pred = truth + 0.1 * rng.standard_normal(truth.shape)
    assert metrics.r_squared(truth, truth) == 1.0
    r2 = metrics.r_squared(pred, truth)
    assert 0.95 < r2 < 1.0
    v = 8
    targets = rng.integers(0, v, truth.shape)
    lp = metrics.log_softmax(rng.standard_normal((*truth.shape, v)))
    acc = metrics.ForecastAccumulator(3)
    acc.update(lp[:2], targets[:2], pred[:2], truth[:2])
    acc.update(lp[2:], targets[2:], pred[2:], truth[2:])
    res = acc.result()
    assert res["bits_per_channel_sample"] == pytest.approx(
        metrics.bits_per_channel_sample(lp, targets)
    )
    assert res["next_step_accuracy"] == pytest.approx(metrics.next_step_accuracy(lp, targets))
    assert res["mse"] == pytest.approx(metrics.forecast_mse(pred, truth))
    assert res["r2"] == pytest.approx(r2)
    assert res["n_scored"] == truth.size


def test_rollout_error_and_expected_value():
    truth = np.ones((2, 2, 5))
    pred = truth + np.arange(5)[None, None, :]
    pred[1] += 1.0  # the second window is one off everywhere more
    err = metrics.rollout_error(pred, truth)
    assert err["mse"] == pytest.approx([0.5, 2.5, 6.5, 12.5, 20.5])
    assert err["window_mse"] == pytest.approx([6.0, 6.0 + 2 * 2 + 1])  # (0+1+4+9+16)/5; +2E+1
    lp = np.log(np.array([[0.25, 0.75]]))
    assert metrics.expected_value(lp, np.array([0.0, 4.0]))[0] == pytest.approx(3.0)
