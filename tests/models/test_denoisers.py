"""The flow-matching transformer and NTD: the reference call forms, denoiser shapes, samplers
that are deterministic for a seed, and conditional generation that keeps the known part."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurofm.models.flow_matching import FlowMatchingTransformer
from neurofm.models.gpt_causal import GPTCausal
from neurofm.registry import MODELS, create


def test_gpt_causal_reference_call_forms():
    torch.manual_seed(0)
    model = GPTCausal(vocab_size=32, n_embd=16, n_layer=1, n_head=2, dropout=0.0, max_seq_len=64)
    tokens = torch.randint(0, 32, (2, 8))
    logits, loss = model(tokens, targets=tokens)
    assert logits.shape == (2, 8, 32) and loss.ndim == 0
    out = model.generate(tokens[:, :3], max_new_tokens=4, temperature=0.8)
    assert out.shape == (2, 7) and torch.equal(out[:, :3], tokens[:, :3])
    assert create(MODELS, {"name": "gpt_causal", "preset": "base"}).config.d_model == 768


def test_flow_matching_reference_call_forms_and_soft_inputs():
    torch.manual_seed(0)
    model = FlowMatchingTransformer(
        vocab_size=16, n_embd=16, n_layer=1, n_head=2, dropout=0.0, max_seq_len=64
    ).eval()
    assert model.config.time_embed_dim == 256  # the reference default
    ids = torch.randint(0, 16, (2, 10))
    t = torch.rand(2)
    one_hot = F.one_hot(ids, 16).float()
    logits, loss = model(t, one_hot, targets=one_hot)  # target distributions
    assert logits.shape == (2, 10, 16) and loss.ndim == 0
    assert torch.allclose(logits, model(t, ids).logits)  # ids are read as one-hot
    tempered = model.sample(t, one_hot, temperature=0.5)
    assert torch.allclose(tempered, 2.0 * logits, atol=1e-5)
    soft = torch.softmax(torch.randn(2, 10, 16), dim=-1)
    assert torch.isfinite(model(t, soft).logits).all()
    with pytest.raises(ValueError, match="vocab_size"):
        FlowMatchingTransformer(n_embd=16)


def test_ntd_denoiser_shape_and_mask_use():
    torch.manual_seed(0)
    model = create(MODELS, {"name": "ntd", "preset": "tiny"}).eval()
    x = torch.randn(3, 4, 20)
    t = torch.tensor([0, 5, 50])
    eps = model(t, x).prediction
    assert eps.shape == x.shape and torch.isfinite(eps).all()
    mask = torch.zeros_like(x)
    mask[..., :10] = 1.0
    conditioned = model(t, x, observed=torch.randn_like(x) * mask, mask=mask).prediction
    assert conditioned.shape == x.shape and not torch.equal(conditioned, eps)
    with pytest.raises(ValueError, match="n_chans|x_t"):
        model(t, torch.randn(3, 5, 20))


@pytest.mark.parametrize("solver", ["euler", "library"])
def test_flow_sampler_is_deterministic_for_a_seed_and_keeps_the_prompt(solver):
    pytest.importorskip("flow_matching")
    from neurofm.generation.flow import sample_flow

    torch.manual_seed(0)
    model = create(MODELS, {"name": "flow_matching", "preset": "tiny"})
    vocab = model.config.vocab_size
    a = sample_flow(model, (2, 12), n_steps=5, vocab_size=vocab, seed=3, solver=solver)
    b = sample_flow(model, (2, 12), n_steps=5, vocab_size=vocab, seed=3, solver=solver)
    c = sample_flow(model, (2, 12), n_steps=5, vocab_size=vocab, seed=4, solver=solver)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (2, 12) and int(a.min()) >= 0 and int(a.max()) < vocab
    codes = torch.randint(0, vocab, (2, 12))
    known = torch.zeros(2, 12, dtype=torch.bool)
    known[:, :6] = True
    out = sample_flow(
        model,
        (2, 12),
        n_steps=5,
        vocab_size=vocab,
        codes=codes,
        known=known,
        seed=0,
        solver=solver,
    )
    assert torch.equal(out[:, :6], codes[:, :6])


class _ToyFlowDenoiser(torch.nn.Module):
    """Posterior logits that depend on both positions of x_t and on t: a CTMC whose end
    distribution depends on every detail of the jump rule."""

    def __init__(self, vocab: int = 4):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.own = torch.nn.Parameter(2 * torch.randn(vocab, vocab, generator=g))
        self.other = torch.nn.Parameter(2 * torch.randn(vocab, vocab, generator=g))
        self.time = torch.nn.Parameter(3 * torch.randn(vocab, generator=g))

    def forward(self, t, x):
        logits = self.own[x] + self.other[x.flip(1)] + t[:, None, None] * self.time
        return type("Out", (), {"logits": logits})()


def _joint_frequencies(ids, vocab):
    cells = torch.bincount(ids[:, 0] * vocab + ids[:, 1], minlength=vocab * vocab)
    return cells.double() / ids.shape[0]


@pytest.mark.parametrize("scheduler_power", [1.0, 2.0])
def test_lean_euler_solver_draws_the_same_process_as_the_library_solver(scheduler_power):
    """The fast path's parity test: same end distribution (joint over two interacting
    positions) as flow_matching's MixtureDiscreteEulerSolver, within sampling noise; a solver
    with a wrong jump rate is outside it (the check can fail)."""
    pytest.importorskip("flow_matching")
    from neurofm.generation import flow

    vocab, n = 4, 100_000
    model = _ToyFlowDenoiser(vocab)
    kw = dict(n_steps=3, vocab_size=vocab, scheduler_power=scheduler_power)
    lean = flow.sample_flow(model, (n, 2), seed=0, solver="euler", **kw)
    ref = flow.sample_flow(model, (n, 2), seed=1, solver="library", **kw)
    tv = 0.5 * (_joint_frequencies(lean, vocab) - _joint_frequencies(ref, vocab)).abs().sum()
    assert tv < 0.012, float(tv)

    class Doubled:  # a scheduler whose rate is twice the path's
        def __init__(self, path):
            self.path = path

        def scheduler(self, t):
            out = self.path.scheduler(t=t)
            return type("S", (), {"alpha_t": out.alpha_t, "d_alpha_t": 2 * out.d_alpha_t})()

    path = Doubled(flow.mixture_path(scheduler_power))
    with flow.seeded(0, torch.device("cpu")):
        x0 = torch.randint(0, vocab, (n, 2))
        wrong = flow._euler_solve(model, path, x0, torch.linspace(0, 1, 4), 1.0, None, None)
    tv_wrong = 0.5 * (_joint_frequencies(wrong, vocab) - _joint_frequencies(ref, vocab)).abs().sum()
    assert tv_wrong > 0.018, float(tv_wrong)


def test_inverse_cdf_draws_match_the_probabilities_and_never_pick_impossible_classes():
    from neurofm.generation.flow import categorical_inverse_cdf

    torch.manual_seed(0)
    probs = torch.tensor([0.0, 0.5, 0.0, 0.2, 0.3, 0.0]).expand(200_000, 6)
    draws = categorical_inverse_cdf(probs)
    freq = torch.bincount(draws, minlength=6).double() / draws.numel()
    assert freq[[0, 2, 5]].sum() == 0
    assert torch.allclose(freq, probs[0].double(), atol=0.005)
    unnormalised = torch.tensor([[0.0, 3.0, 1.0]]).expand(100_000, 3)
    freq = torch.bincount(categorical_inverse_cdf(unnormalised), minlength=3).double() / 1e5
    assert freq[0] == 0 and abs(float(freq[1]) - 0.75) < 0.01


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_diffusion_sampler_is_deterministic_for_a_seed_and_imputes(sampler):
    pytest.importorskip("diffusers")
    from neurofm.generation.diffusion import NoiseSchedule, sample_diffusion

    torch.manual_seed(0)
    model = create(MODELS, {"name": "ntd", "preset": "tiny"})
    schedule = NoiseSchedule(n_train_steps=50)
    shape = (2, 4, 16)
    run = {"n_steps": 6, "schedule": schedule, "sampler": sampler}
    a = sample_diffusion(model, shape, seed=1, **run)
    b = sample_diffusion(model, shape, seed=1, **run)
    c = sample_diffusion(model, shape, seed=2, **run)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == shape
    observed = torch.randn(shape)
    mask = torch.zeros(shape)
    mask[..., :8] = 1.0  # forecast the second half
    out = sample_diffusion(model, shape, seed=1, observed=observed, mask=mask, **run)
    assert torch.equal(out[..., :8], observed[..., :8]) and torch.isfinite(out).all()


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_known_samples_follow_the_forward_process_whatever_the_denoiser_predicts(sampler):
    """During imputation the known elements of x_t the denoiser reads are the noised true values
    at every step (as in training), even for a denoiser whose noise prediction is wrong there."""
    pytest.importorskip("diffusers")
    from neurofm.generation.diffusion import NoiseSchedule, alphas_cumprod, sample_diffusion
    from neurofm.types import ModelOutput

    schedule = NoiseSchedule(n_train_steps=200)
    abar = alphas_cumprod(schedule)
    seen = []

    class Wrong(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, t, xt, observed=None, mask=None):
            seen.append((int(t[0]), xt.clone()))
            return ModelOutput(prediction=torch.full_like(xt, 4.0))  # far from any true noise

    shape = (64, 2, 32)
    gen = torch.Generator().manual_seed(0)
    observed = 3.0 * torch.randn(shape, generator=gen)
    mask = torch.zeros(shape)
    mask[..., :16] = 1.0
    out = sample_diffusion(
        Wrong(),
        shape,
        n_steps=20,
        schedule=schedule,
        sampler=sampler,
        seed=0,
        observed=observed,
        mask=mask,
    )
    assert torch.equal(out[..., :16], observed[..., :16])
    for t, xt in seen:
        a = float(abar[t])
        z = (xt[..., :16] - a**0.5 * observed[..., :16]) / (1.0 - a) ** 0.5
        assert abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1.0) < 0.1, (t, z.std())


def test_ntd_gaussian_skip_is_the_optimal_denoiser_of_gaussian_data_at_start():
    """With the output layer at zero, ``skip: gaussian`` predicts E[eps | x_t] of N(0, data_std²)
    data exactly; the diffusion objective refuses a model whose schedule differs from its own."""
    pytest.importorskip("diffusers")
    from neurofm.generation.diffusion import NoiseSchedule, alphas_cumprod
    from neurofm.objectives.diffusion import DiffusionConfig, DiffusionObjective
    from neurofm.registry import MODELS, create
    from neurofm.types import Batch

    model = create(
        MODELS,
        {"name": "ntd", "preset": "tiny", "skip": "gaussian", "data_std": 0.5, "n_train_steps": 50},
    )
    torch.nn.init.zeros_(model.output.weight)
    torch.nn.init.zeros_(model.output.bias)
    abar = alphas_cumprod(NoiseSchedule(n_train_steps=50)).float()
    t = torch.tensor([0, 25, 49])
    xt = torch.randn(3, 4, 16)
    a = abar[t].view(3, 1, 1)
    expected = (1 - a).sqrt() * xt / (a * 0.25 + 1 - a)
    torch.testing.assert_close(model(t, xt).prediction, expected)
    batch = Batch(x=torch.randn(2, 4, 16))
    assert torch.isfinite(DiffusionObjective(DiffusionConfig(n_train_steps=50))(model, batch).loss)
    with pytest.raises(ValueError, match="schedule"):
        DiffusionObjective(DiffusionConfig(n_train_steps=100))(model, batch)
