"""NeuroFM-X on real spike events (grasshopper auditory receptor) and real LFP (human M1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.data.spike_events import event_windows, pack_events
from neurofm.models.neurofm_x import NeuroFMX, NeuroFMXConfig
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective
from neurofm.registry import TOKENIZERS, create
from neurofm.types import Batch
from neurofm.workflows.spikes_lfp import (
    StimulusConfig,
    bin_means,
    load_grasshopper,
    stimulus_decoding,
    two_sided_lags,
)

TINY = {
    "d_model": 16,
    "n_layers": 1,
    "d_state": 4,
    "rates": (1, 4),
    "n_latents": 4,
    "d_latent": 16,
    "n_fusion_layers": 1,
    "n_heads": 2,
    "d_contrastive": 8,
    "scan": "parallel",
}


def _fit(model, batch, steps, lr=1e-2):
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        out = objective(model, batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    return losses, out.metrics, out.model_output


def test_spike_event_model_decodes_the_stimulus_envelope_per_bin(shared_data):
    spikes, stimulus, sfreq = load_grasshopper(shared_data / "spikes_grasshopper")
    assert spikes.size == 929 and sfreq == 20000.0
    bin_size, n_bins = 0.005, 64
    envelope = bin_means(stimulus, sfreq, bin_size)  # (2000,) one value per 5 ms
    assert envelope.shape == (2000,)
    starts = np.arange(6) * n_bins
    x = pack_events(event_windows([spikes], starts * bin_size, n_bins * bin_size))
    z = (envelope - envelope.mean()) / envelope.std()
    target = torch.from_numpy(np.stack([z[s : s + n_bins] for s in starts])).float()[..., None]
    torch.manual_seed(0)
    model = NeuroFMX(
        NeuroFMXConfig(
            modality="spikes",
            n_units=1,
            n_behaviour=1,
            n_bins=n_bins,
            bin_size=bin_size,
            popt_layers=0,
            read_radius=2,
            **TINY,
        )
    )
    losses, metrics, out = _fit(model, Batch(x=x, target=target), steps=10)
    assert out.extras["behaviour"].shape == (6, n_bins, 1)
    assert out.prediction.shape == (6, n_bins, 1)
    in_windows = ((spikes >= 0) & (spikes < 6 * n_bins * bin_size)).sum()
    assert out.extras["counts"].sum() == in_windows
    assert "behaviour_mse" in metrics and "aux_contrastive" in metrics
    assert losses[-1] < 0.8 * losses[0], losses


def test_stimulus_decoding_report_and_its_baseline(shared_data):
    counts = np.array([[0.0], [1.0], [2.0], [3.0]])
    lags = two_sided_lags(counts, 1)  # t, t-1, t+1
    np.testing.assert_array_equal(lags, [[0, 0, 1], [1, 0, 2], [2, 1, 3], [3, 2, 0]])
    with pytest.raises(ValueError, match="whole number of samples"):
        bin_means(np.zeros(100), 20000.0, 0.00001)
    report = stimulus_decoding(
        shared_data / "spikes_grasshopper", StimulusConfig(steps=2, n_bootstrap=20, stride=64)
    )
    assert (report["train_bins"], report["test_bins"]) == (1600, 400)
    assert report["train_spikes"] + report["test_spikes"] == 929
    ridge = report["results"]["ridge (binned counts)"]
    assert ridge["r2_ci95"][0] <= ridge["r2"] <= ridge["r2_ci95"][1]
    assert "neurofm_x (spike events)" in report["results"]


def test_lfp_model_trains_with_the_contrastive_term_on_m1(shared_data):
    from neurofm.io import read_recording

    rec = read_recording(
        shared_data / "lfp_human_m1" / "sample_data_1.npy", sfreq=1000, ch_types="ecog"
    )
    data = np.asarray(rec.data, dtype=np.float64)  # (1, 10000)
    tokenizer = create(TOKENIZERS, {"name": "lfp_tokens", "n_chans": 1, "d_model": 3})
    tokenizer.fit(data[:, :8000], fitted_on="m1:train")  # the first 8 s only
    assert tokenizer.center.item() == pytest.approx(np.median(data[:, :8000]))
    assert tokenizer.center.item() != pytest.approx(np.median(data))
    scaled = tokenizer.normalize(data)
    x = torch.from_numpy(np.stack([scaled[:, s : s + 400] for s in range(0, 8000, 1000)])).float()
    torch.manual_seed(0)
    model = NeuroFMX(
        NeuroFMXConfig(modality="lfp", n_chans=1, sfreq=1000.0, contrastive_weight=0.5, **TINY)
    )
    losses, metrics, out = _fit(model, Batch(x=x), steps=8, lr=2e-2)
    assert x.shape == (8, 1, 400)
    assert out.prediction.shape == (8, 100, 5) and out.extras["band_power"].shape == (8, 100, 5)
    assert metrics["aux_contrastive"] > 0
    assert losses[-1] < 0.5 * losses[0], losses
