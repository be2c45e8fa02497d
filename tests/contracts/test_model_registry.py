"""Contract tests over the whole model registry, built from each model's spec (STYLE 7-9).

Every registered model builds from its ``tiny`` preset, runs forward on the inputs of its spec's
input kind (with the context fields its spec lists) with finite outputs of its output kind, gives
every parameter a gradient, round-trips its weights through safetensors, overfits a small batch of
real EEG with the objective of its output kind; causal models ignore the future (exactly, and
with a zero gradient for float inputs); models with a cache generate the same greedy samples
with and without it. Builders live in ``model_cases``.
"""

from __future__ import annotations

import pytest
import torch
from model_cases import (
    CONTEXT,
    INPUT_TIME_AXIS,
    INPUTS,
    LEARNING,
    LEARNING_BY_INPUT,
    OUTPUT_TIME_AXIS,
    build_inputs,
    call_model,
    prediction_shape,
)
from safetensors.torch import load_file, save_file

from neurofm.objectives.base import Objective
from neurofm.registry import MODELS, OBJECTIVES, create, model_spec

NAMES = MODELS.names()


def _build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create(MODELS, {"name": name, "preset": "tiny"})


def _spec(name: str):
    return model_spec(_build(name))


def _names(predicate) -> list[str]:
    return [n for n in NAMES if predicate(_spec(n))]


CAUSAL = _names(lambda s: s.causal)
FLOAT_CAUSAL = _names(lambda s: s.causal and s.inputs == "signal")
CACHED = _names(lambda s: s.cache)


def _value(out, spec):
    value = out.logits if spec.outputs in ("logits", "class_logits", "text") else out.prediction
    assert value is not None, f"ModelOutput has no {spec.outputs}"
    return value


def test_every_spec_has_builders():
    missing = []
    for name in NAMES:
        spec = _spec(name)
        if spec.inputs not in INPUTS:
            missing.append(f"{name}: input kind {spec.inputs!r}")
        if spec.outputs not in LEARNING:
            missing.append(f"{name}: output kind {spec.outputs!r}")
        missing += [f"{name}: context {c!r}" for c in spec.context if c not in CONTEXT]
    assert not missing, f"add builders to tests/contracts/model_cases.py for: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_spec_matches_the_config(name):
    model = _build(name)
    spec = model_spec(model)
    if spec.max_seq_len is not None:
        assert spec.max_seq_len == model.config.max_seq_len
    objectives = [OBJECTIVES.get(n).obj for n in OBJECTIVES.names()]
    trainable = [
        o.name for o in objectives if issubclass(o, Objective) and not o.problems_with(spec)
    ]
    assert trainable, f"{name}: no registered objective trains a model with {spec}"


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_finite_and_every_parameter_learns(name):
    model = _build(name).train()
    spec = model_spec(model)
    x, context = build_inputs(model, spec)
    out = call_model(model, spec, x, context)
    value = _value(out, spec)
    assert value.shape[0] == x.shape[0] and torch.isfinite(value).all()
    if spec.outputs == "logits":
        assert value.shape[:-1] == x.shape, f"logits {tuple(value.shape)} for x {tuple(x.shape)}"
    if spec.outputs in ("prediction", "noise"):
        assert value.shape == prediction_shape(model, spec, x)
        if spec.variance:
            assert out.extras["log_variance"].shape == x.shape
    if spec.outputs == "class_logits":
        assert value.shape == (x.shape[0], model.config.n_classes)
    loss = value.float().square().mean() + sum(out.aux_losses.values(), torch.zeros(()))
    if out.prediction is not None and out.prediction is not value:  # a second output head
        loss = loss + out.prediction.float().square().mean()
    if spec.variance:
        loss = loss + out.extras["log_variance"].float().square().mean()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: parameters without a gradient: {no_grad}"
    bad = [
        n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()
    ]
    assert not bad, f"{name}: non-finite gradients: {bad}"


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip_gives_identical_output(name, tmp_path):
    model = _build(name, seed=0).eval()
    spec = model_spec(model)
    x, context = build_inputs(model, spec)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    other = _build(name, seed=123).eval()
    other.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        assert torch.equal(
            _value(call_model(model, spec, x, context), spec),
            _value(call_model(other, spec, x, context), spec),
        )


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_output_ignores_the_future(name):
    """Changing every input (and per-time context) after t leaves the outputs up to t unchanged."""
    model = _build(name).eval()
    spec = model_spec(model)
    x, context = build_inputs(model, spec)
    t = x.shape[INPUT_TIME_AXIS[spec.inputs]] // 2
    changed = x.clone()
    if x.is_floating_point():
        changed[..., t + 1 :] += 1.0
    else:
        changed[..., t + 1 :] = (x[..., t + 1 :] + 1) % model.config.vocab_size
    changed_context = dict(context)
    if "condition" in context:
        cond = context["condition"].clone()
        cond[..., t + 1 :] = (cond[..., t + 1 :] + 1) % model.config.n_conditions
        changed_context["condition"] = cond
    axis = OUTPUT_TIME_AXIS[spec.outputs]
    with torch.no_grad():
        a = _value(model(x, **context), spec).narrow(axis, 0, t + 1)
        b = _value(model(changed, **changed_context), spec).narrow(axis, 0, t + 1)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", FLOAT_CAUSAL)
def test_causal_future_gradient_is_zero(name):
    """d output[t] / d input[t' > t] is exactly zero (and not zero for t' <= t)."""
    model = _build(name).eval()
    spec = model_spec(model)
    x, context = build_inputs(model, spec, seed=2)
    x.requires_grad_(True)
    in_axis = INPUT_TIME_AXIS[spec.inputs]
    t = x.shape[in_axis] // 2
    _value(model(x, **context), spec).select(OUTPUT_TIME_AXIS[spec.outputs], t).sum().backward()
    assert torch.count_nonzero(x.grad.narrow(in_axis, t + 1, x.shape[in_axis] - t - 1)) == 0
    assert torch.count_nonzero(x.grad.narrow(in_axis, 0, t + 1)) > 0


@pytest.mark.parametrize("name", CACHED)
def test_cached_generation_equals_full_recompute(name):
    """Greedy samples with the cache equal recomputing the context; logits within 1e-4."""
    from neurofm.generation import SamplingConfig, generate_with_logits

    model = _build(name).eval()
    spec = model_spec(model)
    x, context = build_inputs(model, spec)
    n_new, prompt = x.shape[-1] - 3, x[..., :4]  # per-time context covers every input
    greedy = SamplingConfig(temperature=0.0)
    codes, logits = generate_with_logits(model, prompt, n_new, greedy, context=context)
    full_codes, full_logits = generate_with_logits(
        model, prompt, n_new, SamplingConfig(temperature=0.0, use_cache=False), context=context
    )
    assert torch.equal(codes, full_codes)
    assert (logits - full_logits).abs().max() <= 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_batch_of_real_data(name):
    model = _build(name)
    spec = model_spec(model)
    recipe = LEARNING_BY_INPUT.get(spec.inputs, LEARNING[spec.outputs])
    objective_section, batch = recipe(model, spec)
    objective = create(OBJECTIVES, objective_section)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        out = objective(model, batch)
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    drop = losses[0] - losses[-1]
    assert drop > 0.5 * abs(losses[0]), f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
