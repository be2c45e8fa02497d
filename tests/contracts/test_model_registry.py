"""Contract tests over the whole model registry (STYLE rules 7-9).

Every registered model builds from its ``tiny`` preset, runs forward on its kind of input with
finite outputs, gives every parameter a gradient, round-trips its weights through safetensors,
passes the future-independence test when causal, and overfits a small batch of real data when
its ``ModelCase`` names one. Test recipes live in ``model_cases.CASES``.
"""

from __future__ import annotations

import pytest
import torch
from model_cases import CASES
from safetensors.torch import load_file, save_file

from neurofm.registry import MODELS, OBJECTIVES, create

NAMES = MODELS.names()
CAUSAL = [n for n in NAMES if n in CASES and CASES[n].causal]
FLOAT_CAUSAL = [n for n in CAUSAL if CASES[n].float_inputs is not None]
OVERFIT = [n for n in NAMES if n in CASES and CASES[n].overfit is not None]


def _build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create(MODELS, {"name": name, "preset": "tiny"})


def _inputs(name: str, model: torch.nn.Module, seed: int = 1):
    return CASES[name].inputs(model, torch.Generator().manual_seed(seed))


def _output(name: str, model: torch.nn.Module, x, kwargs):
    out = model(x, **kwargs)
    value = getattr(out, CASES[name].output)
    assert value is not None, f"{name}: ModelOutput.{CASES[name].output} is None"
    return out, value


def test_every_registered_model_has_a_case():
    missing = sorted(set(NAMES) - set(CASES))
    assert not missing, f"add a ModelCase to tests/contracts/model_cases.py for: {missing}"
    stale = sorted(set(CASES) - set(NAMES))
    assert not stale, f"ModelCase rows for models that are not registered: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_finite_and_every_parameter_learns(name):
    model = _build(name)
    model.train()
    x, kwargs = _inputs(name, model)
    out, value = _output(name, model, x, kwargs)
    assert value.shape[0] == x.shape[0]
    assert torch.isfinite(value).all()
    if CASES[name].output == "logits" and value.dim() >= 3:
        assert value.shape[:-1] == x.shape, (
            f"{name}: logits {tuple(value.shape)} for x {tuple(x.shape)}"
        )
    loss = value.float().square().mean() + sum(out.aux_losses.values(), torch.zeros(()))
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: parameters without a gradient: {no_grad}"
    bad = [
        n
        for n, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    assert not bad, f"{name}: non-finite gradients: {bad}"


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip_gives_identical_output(name, tmp_path):
    model = _build(name, seed=0).eval()
    x, kwargs = _inputs(name, model)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    other = _build(name, seed=123).eval()
    other.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        expected = _output(name, model, x, kwargs)[1]
        got = _output(name, other, x, kwargs)[1]
    assert torch.equal(expected, got)


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_output_ignores_the_future(name):
    """Changing every input after time t leaves the outputs up to t exactly unchanged."""
    model = _build(name).eval()
    x, kwargs = _inputs(name, model)
    t = x.shape[-1] // 2
    future = x[..., t + 1 :]
    changed = x.clone()
    if x.is_floating_point():
        changed[..., t + 1 :] = future + 1.0
    else:
        changed[..., t + 1 :] = (future + 1) % (int(x.max()) + 1)
    assert not torch.equal(changed, x)
    axis = CASES[name].output_time_axis
    with torch.no_grad():
        a = _output(name, model, x, kwargs)[1].narrow(axis, 0, t + 1)
        b = _output(name, model, changed, kwargs)[1].narrow(axis, 0, t + 1)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", FLOAT_CAUSAL)
def test_causal_future_gradient_is_zero(name):
    """d output[t] / d input[t' > t] is exactly zero (and not zero for t' <= t)."""
    model = _build(name).eval()
    x, kwargs, in_axis = CASES[name].float_inputs(model, torch.Generator().manual_seed(2))
    x.requires_grad_(True)
    _, value = _output(name, model, x, kwargs)
    t = x.shape[in_axis] // 2
    value.select(CASES[name].output_time_axis, t).sum().backward()
    grad = x.grad
    assert torch.count_nonzero(grad.narrow(in_axis, t + 1, x.shape[in_axis] - t - 1)) == 0
    assert torch.count_nonzero(grad.narrow(in_axis, 0, t + 1)) > 0


@pytest.mark.parametrize("name", OVERFIT)
def test_overfits_one_batch_of_real_data(name):
    model = _build(name)
    objective_name, batch = CASES[name].overfit(model)
    objective = create(OBJECTIVES, {"name": objective_name})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        out = objective(model, batch)
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
