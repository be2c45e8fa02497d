"""NeuroFM-X over spike events and field potentials: the event layout, masking, shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.data.spike_events import (
    bin_events,
    event_windows,
    pack_events,
    pool_steps,
    split_events,
)
from neurofm.io.spikes import spikes_to_recording
from neurofm.models.neurofm_x import NeuroFMX
from neurofm.models.neurofm_x.adapters import UnitAdaptedNeuroFMX
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective
from neurofm.registry import MODELS, create, model_spec
from neurofm.types import Batch


def _trains(n_units: int = 6, duration: float = 0.64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.uniform(0, duration, 12)) for _ in range(n_units)]


def _spike_model(**overrides) -> NeuroFMX:
    torch.manual_seed(0)
    return create(MODELS, {"name": "neurofm_x_spikes", "preset": "tiny", **overrides}).eval()


def test_specs_follow_the_modality():
    kinds = {
        name: model_spec(create(MODELS, {"name": name, "preset": "tiny"})).inputs
        for name in ("neurofm_x", "neurofm_x_spikes", "neurofm_x_lfp")
    }
    assert kinds == {
        "neurofm_x": "binned_counts",
        "neurofm_x_spikes": "spike_events",
        "neurofm_x_lfp": "field_potentials",
    }
    assert MODELS.get("neurofm_x").spec.inputs == "binned_counts"
    with pytest.raises(ValueError, match="modality='wave'"):
        NeuroFMX.from_config({"preset": "tiny", "modality": "wave"})


def test_bin_events_matches_the_recording_binning():
    trains = _trains()
    x = pack_events(event_windows(trains, [0.0], 0.64))
    units, times, _, valid = split_events(x, n_units=6, n_waveform_features=0, window=0.64)
    counts = bin_events(units, times, valid, n_units=6, n_bins=32, bin_size=0.02)
    rec = spikes_to_recording(trains, bin_size=0.02, t_stop=0.64)
    assert counts.shape == (1, 32, 6) and counts.sum() == 72
    np.testing.assert_array_equal(counts[0].T.numpy(), rec.data)


def test_event_windows_are_relative_and_sorted():
    trains = [np.array([0.05, 0.35]), np.array([0.05, 0.31, 0.7])]
    windows = event_windows(trains, [0.0, 0.3], 0.3)
    np.testing.assert_array_equal(windows[0][0], [0, 1])
    np.testing.assert_array_equal(windows[1][0], [1, 0])
    np.testing.assert_allclose(windows[1][1], [0.01, 0.05])
    x = pack_events(windows)
    assert x.shape == (2, 2, 2)


def test_bad_events_raise_naming_the_problem():
    kw = {"n_units": 3, "n_waveform_features": 0, "window": 1.0}
    good = torch.tensor([[[0.0, 0.1], [2.0, 0.5], [-1.0, 0.0]]])
    split_events(good, **kw)
    with pytest.raises(ValueError, match=r"unit id\) must hold integers in \[0, 3\)"):
        split_events(torch.tensor([[[3.0, 0.1]]]), **kw)
    with pytest.raises(ValueError, match=r"time\) must lie in \[0, 1\) s"):
        split_events(torch.tensor([[[0.0, 1.2]]]), **kw)
    with pytest.raises(ValueError, match="not sorted"):
        split_events(torch.tensor([[[0.0, 0.5], [1.0, 0.2]]]), **kw)
    with pytest.raises(ValueError, match="padding row .* comes before a spike"):
        split_events(torch.tensor([[[-1.0, 0.0], [1.0, 0.2]]]), **kw)
    with pytest.raises(ValueError, match=r"expected x \(B, N, 2\)"):
        split_events(torch.zeros(1, 2, 3), **kw)
    with pytest.raises(ValueError, match="not sorted"):
        pack_events([(np.array([0, 1]), np.array([0.3, 0.1]))])


def test_spike_model_ignores_padding_and_hidden_units():
    model = _spike_model()
    x = pack_events(event_windows(_trains(), [0.0, 0.32], 0.32))
    with torch.no_grad():
        out = model(x)
        padded = model(torch.cat([x, torch.tensor([-1.0, 0.0]).expand(2, 7, 2)], dim=1))
        assert out.prediction.shape == (2, 16, 6) and out.extras["counts"].shape == (2, 16, 6)
        torch.testing.assert_close(out.prediction, padded.prediction, atol=1e-5, rtol=1e-5)
        # unit 5 hidden: its spikes may change freely, the output does not
        observed = torch.tensor([True] * 5 + [False])
        hidden = model(x, observed=observed).prediction
        trains = _trains()
        trains[5] = np.sort(trains[5] * 0.5)
        moved = pack_events(event_windows(trains, [0.0, 0.32], 0.32))
        torch.testing.assert_close(
            hidden, model(moved, observed=observed).prediction, atol=1e-5, rtol=1e-5
        )
        assert not torch.allclose(hidden, out.prediction)
        empty = model(pack_events([(np.zeros(0, int), np.zeros(0))] * 2))
        assert torch.isfinite(empty.prediction).all()


def test_spike_model_waveforms_and_adapters():
    model = _spike_model(n_waveform_features=3)
    rng = np.random.default_rng(0)
    windows = [
        (u, t, rng.normal(size=(len(u), 3))) for u, t in event_windows(_trains(), [0.0], 0.32)
    ]
    x = pack_events(windows, n_waveform_features=3)
    assert x.shape[-1] == 5 and torch.isfinite(model(x).prediction).all()
    adapted = UnitAdaptedNeuroFMX.create(model, 4)  # waveforms still read by the base
    new = [(u, t, rng.normal(size=(len(u), 3))) for u, t in event_windows(_trains(4), [0.0], 0.32)]
    out = adapted(pack_events(new, n_waveform_features=3))
    assert out.prediction.shape == (1, 16, 4) and out.extras["counts"].shape == (1, 16, 4)
    lfp = create(MODELS, {"name": "neurofm_x_lfp", "preset": "tiny", "n_chans": 2})
    with pytest.raises(ValueError, match="Unit-ID adapters map new units' counts or spikes"):
        UnitAdaptedNeuroFMX.create(lfp, 4)


def test_multitask_trains_a_spike_model_against_its_binned_events():
    model = _spike_model(n_behaviour=1).train()
    x = pack_events(event_windows(_trains(), [0.0, 0.32], 0.32))
    target = torch.randn(2, 16, 1)
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.3))
    out = objective(model, Batch(x=x, target=target))
    assert set(out.metrics) >= {"poisson_deviance", "behaviour_mse", "aux_contrastive"}
    out.loss.backward()
    with pytest.raises(ValueError, match="per bin"):
        objective(model, Batch(x=x, target=torch.randn(2, 32, 1)))


def test_lfp_model_shapes_and_pooled_targets():
    torch.manual_seed(0)
    model = create(
        MODELS, {"name": "neurofm_x_lfp", "preset": "tiny", "n_chans": 3, "n_behaviour": 2}
    )
    x = torch.randn(2, 3, 200)
    out = model(x)
    assert out.prediction.shape == (2, 50, 15)  # 5 bands x 3 channels per 4-sample step
    assert out.extras["band_power"].shape == (2, 50, 15)
    assert out.extras["behaviour"].shape == (2, 50, 2)
    per_sample = torch.arange(8.0).reshape(1, 8, 1)
    torch.testing.assert_close(pool_steps(per_sample, 4), torch.tensor([[[1.5], [5.5]]]))
    with pytest.raises(ValueError, match="multiple of pool=4"):
        pool_steps(torch.zeros(1, 6, 1), 4)
    objective = MultitaskObjective(MultitaskConfig())
    target = pool_steps(torch.randn(2, 200, 2), 4)
    result = objective(model, Batch(x=x, target=target))
    assert set(result.metrics) >= {"band_power_mse", "behaviour_mse", "aux_contrastive"}
    with pytest.raises(ValueError, match=r"expected field potentials \(B, 3, T\)"):
        model(torch.randn(2, 2, 200))
    with pytest.raises(ValueError, match="does not apply to LFP"):
        model(x, observed=torch.ones(3, dtype=torch.bool))


def test_lfp_tokens_of_the_spec_example_shape():
    from neurofm.layers.neural_tokens import LFPEmbedding

    embed = LFPEmbedding(64, 768, sfreq=1000.0, pool=4)
    assert embed(torch.randn(2, 64, 1000)).shape == (2, 250, 768)
    assert [c.out_channels for c in LFPEmbedding(1, 16, sfreq=1000.0).convs] == [6, 5, 5]
