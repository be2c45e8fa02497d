"""The shared autoregressive sampler: filters, seeding, cache fallback, recorded prompts."""

from __future__ import annotations

import mne
import numpy as np
import pytest
import torch
from torch import nn

from neurofm.generation import (
    SamplingConfig,
    filter_logits,
    generate,
    generate_from_window,
    generate_with_logits,
    sample_logits,
)
from neurofm.registry import MODELS, create
from neurofm.types import ModelOutput, ModelSpec


def _model(name: str = "gpt2meg_trf"):
    torch.manual_seed(0)
    return create(MODELS, {"name": name, "preset": "tiny"})


def test_top_k_and_top_p_keep_the_right_entries():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [
        [True, False, False, False]
    ]
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()


def test_sampling_follows_the_distribution_and_greedy_takes_argmax():
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1])).expand(20000, 3)
    draws = sample_logits(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).float() / draws.numel()
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.02, rtol=0)
    assert torch.equal(sample_logits(logits[:2], temperature=0.0), torch.zeros(2, dtype=torch.long))


def test_same_seed_same_samples_and_prompt_kept():
    model = _model()
    prompt = torch.randint(0, 64, (2, 3, 5))
    a = generate(model, prompt, 7, SamplingConfig(temperature=1.0, top_p=0.9, seed=11))
    b = generate(model, prompt, 7, SamplingConfig(temperature=1.0, top_p=0.9, seed=11))
    c = generate(model, prompt, 7, SamplingConfig(temperature=1.0, top_p=0.9, seed=12))
    assert a.shape == (2, 3, 12) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[..., :5], prompt)


def test_seeded_samples_match_with_and_without_cache():
    model = _model()
    prompt = torch.randint(0, 64, (1, 2, 4))
    cond = torch.randint(0, 4, (1, 4 + 10 - 1))
    a = generate(model, prompt, 10, SamplingConfig(seed=5), context={"condition": cond})
    b = generate(
        model, prompt, 10, SamplingConfig(seed=5, use_cache=False), context={"condition": cond}
    )
    assert torch.equal(a, b)


class _NoCache(nn.Module):
    """A model whose spec declares no cache: the sampler must recompute the full context."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[int] = []

    def forward(self, x, *, past=None, use_cache=False):
        self.calls.append(x.shape[-1])
        return ModelOutput(logits=self.inner(x).logits)


NO_CACHE = ModelSpec(
    inputs="token_sequence", outputs="logits", causal=True, sampling="autoregressive"
)


def test_models_without_cache_get_full_recompute():
    inner = _model("gpt_causal")
    wrapped = _NoCache(inner)
    prompt = torch.randint(0, 64, (1, 3))
    greedy = SamplingConfig(temperature=0.0)
    out = generate(wrapped, prompt, 4, greedy, spec=NO_CACHE)
    assert wrapped.calls == [3, 4, 5, 6]
    assert torch.equal(out, generate(inner, prompt, 4, greedy))


def test_a_model_that_does_not_sample_autoregressively_is_rejected():
    spec = ModelSpec(inputs="token_sequence", outputs="logits")
    with pytest.raises(ValueError, match="samples by 'none'"):
        generate(_NoCache(_model("gpt_causal")), torch.zeros(1, 3, dtype=torch.long), 2, spec=spec)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 1.5}, "top_p"),
        ({"precision": "fp16"}, "precision must be '32' or 'bf16'"),
    ],
)
def test_bad_sampling_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SamplingConfig(**kwargs)


@pytest.mark.parametrize(
    ("context", "match"),
    [
        ({"condition": torch.zeros(1, 5, dtype=torch.long)}, "condition covers 5"),
        ({"global_embedding": torch.zeros(1, 3)}, "takes no context"),
    ],
)
def test_bad_context_is_rejected(context, match):
    with pytest.raises(ValueError, match=match):
        generate(_model(), torch.zeros(1, 2, 4, dtype=torch.long), 3, context=context)


def test_a_prompt_longer_than_the_model_or_a_bad_stride_is_rejected():
    with pytest.raises(ValueError, match="max_seq_len=1024"):
        generate(_model(), torch.zeros(1, 1, 1030, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="stride must be in"):
        generate(_model(), torch.zeros(1, 1, 4, dtype=torch.long), 3, SamplingConfig(stride=1024))


class _MuLaw:
    """A minimal duck-typed tokenizer: fixed-scale mu-law with 64 levels."""

    def __init__(self, scale: float, levels: int = 64) -> None:
        self.scale, self.mu = scale, levels - 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(x / self.scale, -1, 1)
        y = torch.sign(y) * torch.log1p(self.mu * y.abs()) / np.log1p(self.mu)
        return torch.round((y + 1) / 2 * self.mu).long()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        y = codes.float() / self.mu * 2 - 1
        return torch.sign(y) * torch.expm1(y.abs() * np.log1p(self.mu)) / self.mu * self.scale


def test_generate_from_a_real_recording_window(sample_dir):
    raw = mne.io.read_raw_edf(
        sample_dir / "eegbci_S001" / "S001R04.edf", preload=False, verbose="error"
    )
    window = raw.get_data(picks=[0, 1, 2], start=800, stop=864)  # (3, 64) in volts
    tokenizer = _MuLaw(scale=float(np.abs(window).max()))
    model = _model()
    subject = {"subject": torch.tensor([1])}
    first = generate_from_window(
        model, tokenizer, window, 16, SamplingConfig(seed=0), context=subject
    )
    again = generate_from_window(
        model, tokenizer, window, 16, SamplingConfig(seed=0), context=subject
    )
    assert first.codes.shape == (3, 80) and first.signal.shape == (3, 80)
    assert first.n_prompt == 64
    assert torch.equal(first.codes, again.codes)
    assert torch.equal(
        first.codes[:, :64], tokenizer.encode(torch.as_tensor(window, dtype=torch.float32))
    )
    decoded_prompt = tokenizer.decode(first.codes[None, :, :64])[0].numpy()
    np.testing.assert_array_equal(first.signal[:, :64], decoded_prompt)
    assert np.corrcoef(decoded_prompt.ravel(), window.ravel())[0, 1] > 0.99
    with pytest.raises(ValueError, match=r"window must be \(C, T\)"):
        generate_from_window(model, tokenizer, window[0], 4)


def test_bfloat16_precision_runs_the_projections_in_bfloat16_and_samples_in_float32():
    """``precision: bf16`` on a streaming configuration (1 s window, bfloat16 ring cache): the
    model's linear layers return bfloat16, the logits handed back are float32 and within 0.05
    nats of a float32 forward over the same codes, with the same most likely code nearly
    everywhere."""
    torch.manual_seed(0)
    model = create(
        MODELS,
        {"name": "gpt2meg_trf", "preset": "tiny", "attn_window": 16, "cache_dtype": "bfloat16"},
    ).eval()
    seen = []
    model.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    prompt = torch.randint(0, 64, (1, 8, 24), generator=torch.Generator().manual_seed(1))
    greedy = {"temperature": 0.0}
    generate_with_logits(model, prompt, 40, SamplingConfig(**greedy))
    assert set(seen) == {torch.float32}
    seen.clear()
    got = generate_with_logits(model, prompt, 40, SamplingConfig(**greedy, precision="bf16"))
    assert set(seen) == {torch.bfloat16}
    assert got[1].dtype == torch.float32
    # the logits each bf16 step drew from are those of a float32 forward over its own codes
    with torch.no_grad():
        exact = model(got[0][..., :-1]).logits[..., 23:, :]
    gap = (exact.log_softmax(-1) - got[1].log_softmax(-1)).abs().max()
    assert gap <= 0.05, float(gap)
    assert (got[1].argmax(-1) == exact.argmax(-1)).float().mean() >= 0.95
