"""The Unit-ID adapter of spike-event NeuroFM-X models: new unit ids mapped into a frozen model
by training only their identity embeddings, PopT identities and read-out heads; saved and
loaded alone; on real spikes (the grasshopper receptor split into pseudo-units)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mambapy")

from neurofm.data.spike_events import event_windows, pack_events  # noqa: E402
from neurofm.models.neurofm_x.adapters import UnitAdaptedNeuroFMX, count_trainable  # noqa: E402
from neurofm.objectives.multitask import MultitaskConfig, MultitaskObjective  # noqa: E402
from neurofm.registry import MODELS, create, model_spec  # noqa: E402
from neurofm.training.adapters import load_adapter, save_adapter  # noqa: E402
from neurofm.training.pretrained import from_pretrained, save_pretrained  # noqa: E402
from neurofm.types import Batch  # noqa: E402
from neurofm.workflows.spikes_lfp import bin_means, load_grasshopper  # noqa: E402


def _base(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = {"name": "neurofm_x_spikes", "preset": "tiny", "n_behaviour": 1, **overrides}
    return create(MODELS, {**spec, "scan": "parallel"})


def _events(n_units: int, n_windows: int = 4, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    trains = [np.sort(rng.uniform(0, 0.32 * n_windows, 20 * n_windows)) for _ in range(n_units)]
    return pack_events(event_windows(trains, 0.32 * np.arange(n_windows), 0.32))


SPEC = model_spec(create(MODELS, {"name": "neurofm_x_spikes", "preset": "tiny"}))


def _steps(model, batch: Batch, steps: int, lr: float = 1e-2) -> list[float]:
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.0))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    model.train()
    for _ in range(steps):
        loss = objective(model, batch, spec=SPEC).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_spike_adapter_trains_only_new_unit_parts_and_round_trips(tmp_path):
    base = _base()
    cfg = base.config
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    model = UnitAdaptedNeuroFMX.create(base, n_units=9, behaviour_head=True)
    # unit identities (9 x d_model) + PopT ids (9 x d_latent) + rates + behaviour head
    expected = 9 * cfg.d_model + 9 * cfg.d_latent + (cfg.d_latent + 1) * (9 + 1)
    assert count_trainable(model) == expected
    x = _events(9)
    out = model(x)
    assert out.prediction.shape == (4, cfg.n_bins, 9) and out.extras["counts"].shape[-1] == 9
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.3))
    batch = Batch(x=x, target=torch.randn(4, cfg.n_bins, 1))
    objective(model.train(), batch, spec=SPEC).loss.backward()
    assert all(p.grad is None for p in base.parameters())
    assert all(p.grad is not None for p in model.adapter.parameters())
    batch = Batch(x=x, target=torch.randn(4, cfg.n_bins, 1))
    losses = _steps(model, batch, 30)
    assert losses[-1] < 0.8 * losses[0]  # it learns the batch
    after = base.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # the trunk is unchanged

    save_pretrained(base, tmp_path / "base")
    save_adapter(model, tmp_path / "adapter")
    again = load_adapter(tmp_path / "adapter", from_pretrained(tmp_path / "base"))
    assert again.adapter.config.modality == "spikes"
    with torch.no_grad():
        a, b = model.eval()(x), again.eval()(x)
    assert torch.equal(a.prediction, b.prediction)
    assert torch.equal(a.extras["behaviour"], b.extras["behaviour"])
    with pytest.raises(ValueError, match=r"unit id\) must hold integers in \[0, 9\)"):
        model(_events(10))
    counts_model = create(MODELS, {"name": "neurofm_x", "preset": "tiny"})
    with pytest.raises(ValueError, match="modality=spikes but the model reads counts"):
        UnitAdaptedNeuroFMX(counts_model, model.adapter)


def test_spike_adapter_maps_real_pseudo_units_into_a_frozen_model(shared_data):
    """Real spikes, pseudo-units: the receptor's one spike train is split into two trains by
    alternating spikes (spike k goes to unit k mod 2), ids the 1-unit model never saw. The
    model is pretrained on the first 8 s as one unit, then only the adapter trains on the
    pseudo-units' first 8 s; its rates are scored on windows of the last 2 s."""
    spikes, stimulus, sfreq = load_grasshopper(shared_data / "spikes_grasshopper")
    bin_size, n_bins = 0.005, 32
    envelope = bin_means(stimulus, sfreq, bin_size)
    z = (envelope - envelope[:1600].mean()) / envelope[:1600].std()
    train_starts, test_starts = (
        np.arange(0, 1600 - n_bins + 1, 48),
        np.arange(1600, 2000 - n_bins + 1, n_bins),
    )

    def batch(trains, starts) -> Batch:
        x = pack_events(event_windows(trains, starts * bin_size, n_bins * bin_size))
        y = torch.from_numpy(np.stack([z[s : s + n_bins] for s in starts])).float()[..., None]
        return Batch(x=x, target=y)

    base = _base(n_units=1, n_bins=n_bins, bin_size=bin_size, popt_layers=0, read_radius=2)
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    _steps(base, batch([spikes], train_starts), 15)
    pretrained = {k: v.clone() for k, v in base.state_dict().items()}
    assert any(not torch.equal(frozen[k], pretrained[k]) for k in frozen)

    pseudo = [spikes[0::2], spikes[1::2]]
    model = UnitAdaptedNeuroFMX.create(base, n_units=2, behaviour_head=True)
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.0, behaviour_weight=0.0))
    held_out = batch(pseudo, test_starts)

    def deviance() -> float:
        with torch.no_grad():
            out = objective(model.eval(), held_out, spec=SPEC)
            return float(out.metrics["poisson_deviance"])

    before = deviance()
    _steps(model, batch(pseudo, train_starts), 15)
    after = deviance()
    assert after < before  # the new units' rates are learned through the frozen trunk
    assert all(torch.equal(pretrained[k], v) for k, v in base.state_dict().items())
