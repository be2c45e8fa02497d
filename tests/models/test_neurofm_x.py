"""NeuroFM-X: heads, co-smoothing mask, InfoNCE, the multi-task objective, the base size and a
short run on the real monkey reach counts."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("mambapy")

from neurofm.models.neurofm_x import NeuroFMX, NeuroFMXConfig, info_nce  # noqa: E402
from neurofm.objectives.multitask import (  # noqa: E402
    MultitaskConfig,
    MultitaskObjective,
    poisson_deviance,
)
from neurofm.registry import MODELS, create  # noqa: E402
from neurofm.types import Batch  # noqa: E402


def _tiny(**overrides) -> NeuroFMX:
    torch.manual_seed(0)
    return create(MODELS, {"name": "neurofm_x", "preset": "tiny", **overrides})


def test_behaviour_head_and_hidden_units_do_not_leak():
    model = _tiny(n_behaviour=2).eval()
    x = torch.poisson(torch.full((2, 16, 6), 2.0))
    observed = torch.tensor([True, True, True, True, False, False])
    out = model(x, observed=observed)
    assert out.extras["behaviour"].shape == (2, 16, 2)
    changed = x.clone()
    changed[..., 4:] += 5.0  # the hidden units' counts change
    with torch.no_grad():
        again = model(changed, observed=observed)
    assert torch.equal(out.prediction, again.prediction)  # their input never reaches the model
    with pytest.raises(ValueError, match=r"expected binned counts \(B, T, 6\)"):
        model(x[..., :5])


def test_info_nce_and_poisson_deviance_values():
    a = torch.eye(3)
    expected = -math.log(math.exp(10) / (math.exp(10) + 2))  # temperature 0.1, cosine 1 vs 0
    assert info_nce(a, a, 0.1).item() == pytest.approx(expected, rel=1e-3)
    counts = torch.tensor([0.0, 2.0])
    log_rate = torch.log(torch.tensor([1.0, 1.0]))
    # y log(y / r) - (y - r): 0 - (0 - 1) = 1;  2 log 2 - 1
    assert torch.allclose(
        poisson_deviance(log_rate, counts), torch.tensor([1.0, 2 * math.log(2) - 1])
    )


def test_multitask_objective_weights_and_errors():
    model = _tiny(n_behaviour=2)
    x = torch.poisson(torch.full((2, 16, 6), 2.0))
    target = torch.randn(2, 16, 2)
    objective = MultitaskObjective(MultitaskConfig(mask_fraction=0.5))
    out = objective(model, Batch(x=x, target=target))
    assert {"poisson_deviance", "behaviour_mse", "aux_contrastive"} <= set(out.metrics)
    expected = (
        out.metrics["poisson_deviance"]
        + out.metrics["behaviour_mse"]
        + out.metrics["aux_contrastive"]
    )
    assert torch.allclose(out.loss.detach(), expected)
    with pytest.raises(ValueError, match="batch.target is None"):
        objective(model, Batch(x=x))
    with pytest.raises(ValueError, match="does not match the decoded behaviour"):
        objective(model, Batch(x=x, target=target[..., :1]))


def test_base_preset_size_matches_the_spec():
    with torch.device("meta"):
        model = NeuroFMX(NeuroFMXConfig())
    counts = model.count_parameters()
    print(counts)
    assert 200e6 < counts["total"] < 260e6  # the spec's ~230 M


def test_reach_decoding_runs_on_the_real_counts(shared_data):
    from neurofm.workflows.reach import ReachConfig, reach_decoding

    model = {
        "d_model": 8,
        "n_layers": 1,
        "d_state": 2,
        "rates": (1,),
        "n_latents": 2,
        "d_latent": 8,
        "n_fusion_layers": 1,
        "n_heads": 2,
        "popt_layers": 0,
    }
    config = ReachConfig(steps=2, batch_size=2, window=16, n_bootstrap=20, model=model)
    report = reach_decoding(shared_data / "spikes_monkey_reach" / "chewie_demo.mat", config)
    assert (report["train_bins"], report["test_bins"], report["n_units"]) == (1200, 1818, 71)
    rows = report["results"]
    assert set(rows) == {
        "ridge (bin t)",
        "wiener (10 bins)",
        "neurofm_x",
        "neurofm_x (sliding, last 8 bins)",
    }
    cosmoothing = report["cosmoothing_bits_per_spike"]
    assert cosmoothing["held_out_units"] == 18  # 25% of 71
    assert cosmoothing["smoothed_spikes_glm"] > 0  # the GLM beats the mean rate
    assert rows["wiener (10 bins)"]["r2"] > 0.4  # linear decoding of velocity works on these bins
    low, high = rows["neurofm_x"]["r2_ci95"]
    assert low <= high


def test_sliding_read_out_gives_every_bin_its_history():
    from types import SimpleNamespace

    from neurofm.types import ModelOutput
    from neurofm.workflows.reach import predict_windows

    class Position(torch.nn.Module):  # behaviour = the bin's position in its window
        config = SimpleNamespace(n_behaviour=1)

        def forward(self, x, observed=None):
            b, t, u = x.shape
            position = torch.arange(t, dtype=torch.float32).expand(b, t)[..., None]
            return ModelOutput(prediction=torch.zeros(b, t, u), extras={"behaviour": position})

    counts = torch.zeros(30, 3).numpy()
    plain, _ = predict_windows(Position(), counts, 8)
    assert plain[:, 0].tolist()[:10] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    sliding, _ = predict_windows(Position(), counts, 8, keep=2)
    assert sliding[:8, 0].tolist() == list(range(8))  # the first window: all its bins
    assert (sliding[8:, 0] >= 6).all()  # later bins: read with >= 6 bins of history


def _zero_residuals(block: torch.nn.Module) -> None:
    """Make a cross-attention block the identity on its queries (outputs added: zero)."""
    with torch.no_grad():
        for layer in (block.attn.out_proj, block.mlp.fc_out):
            layer.weight.zero_()
            if layer.bias is not None:
                layer.bias.zero_()


def test_two_sided_count_read_out_shapes_and_off_is_the_old_model():
    off = _tiny(n_behaviour=2).eval()
    on = _tiny(n_behaviour=2, read_radius=2).eval()
    assert off.bin_window is None and on.bin_window is not None
    # built last: every shared part starts from the same values as the model without it
    shared = off.state_dict()
    assert {k: v for k, v in on.state_dict().items() if k in shared}.keys() == shared.keys()
    assert all(torch.equal(on.state_dict()[k], v) for k, v in shared.items())
    x = torch.poisson(torch.full((2, 16, 6), 2.0))
    out = on(x)
    assert out.prediction.shape == (2, 16, 6)
    assert out.extras["behaviour"].shape == (2, 16, 2)
    assert out.extras["features"].shape == (2, 16, 16)
    assert not torch.equal(out.prediction, off(x).prediction)
    _zero_residuals(on.bin_window)  # the window read adds nothing: the old read-out exactly
    assert torch.equal(on(x).prediction, off(x).prediction)
    assert torch.equal(on(x).extras["behaviour"], off(x).extras["behaviour"])


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_two_sided_count_read_out_reads_later_bins_within_the_radius(radius):
    # one rate: a causal backbone; the fusion's cross-attention adds nothing, so that the
    # latents do not depend on the input and only the read-out can carry a later bin back
    model = _tiny(rates=(1,), popt_layers=0, read_radius=radius).eval()
    for block in model.fusion.cross:
        _zero_residuals(block)
    x = torch.poisson(torch.full((1, 16, 6), 2.0))
    later = x.clone()
    later[0, 10] += 3.0
    with torch.no_grad():
        change = (model(x).prediction - model(later).prediction).abs().amax(dim=-1)[0]
    changed = [t for t in range(16) if change[t] > 0]
    assert changed == list(range(10 - radius, 16))  # bins t >= 10 - radius, no earlier one
