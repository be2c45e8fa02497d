"""WaveNet's streamed generation: feeding codes in chunks through the cached convolution states
gives the logits of one forward pass over the whole sequence (both classes), and bad caches are
refused."""

from __future__ import annotations

import pytest
import torch

from neurofm.registry import MODELS, create, model_spec


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create(MODELS, {"name": name, "preset": "tiny"}).eval()


def _context(name: str, n_chans: int) -> dict:
    if name == "wavenet3d":
        return {
            "positions": 0.1
            * torch.randn(2, n_chans, 3, generator=torch.Generator().manual_seed(3))
        }
    return {"channel_ids": torch.tensor([5, 1, 7])}


@pytest.mark.parametrize("name", ["wavenet", "wavenet3d"])
def test_chunked_cached_forward_equals_one_pass(name):
    model = _model(name)
    x = torch.randint(
        0, model.config.vocab_size, (2, 3, 20), generator=torch.Generator().manual_seed(1)
    )
    context = _context(name, 3)
    with torch.no_grad():
        full = model(x, **context).logits
        parts, past = [], None
        for lo, hi in ((0, 5), (5, 6), (6, 9), (9, 20)):
            out = model(x[..., lo:hi], past=past, use_cache=True, **context)
            parts.append(out.logits)
            past = out.past
    assert torch.allclose(torch.cat(parts, dim=-2), full, atol=1e-5)
    # one state per block, each holding (kernel_size - 1) * dilation past inputs
    assert [s.shape[2] for s in past] == model.config.dilations


def test_receptive_field_of_the_presets():
    model = _model("wavenet")
    assert model.config.receptive_field == 1 + sum(model.config.dilations)
    x = torch.randint(0, model.config.vocab_size, (1, 2, 16))
    with torch.no_grad():
        ref = model(x).logits[..., -1, :]
        window = model(x[..., -model.config.receptive_field :]).logits[..., -1, :]
    assert torch.allclose(ref, window, atol=1e-5)


def test_a_foreign_cache_is_refused():
    model = _model("wavenet")
    x = torch.randint(0, model.config.vocab_size, (1, 2, 4))
    with pytest.raises(ValueError, match="list of 3 block states"):
        model(x, past=[torch.zeros(1)], use_cache=True)


def test_wavenet3d_names_the_missing_positions_and_a_small_grid():
    model = _model("wavenet3d")
    x = torch.randint(0, model.config.vocab_size, (1, 20, 4))
    with pytest.raises(ValueError, match="positions"):
        model(x)
    with pytest.raises(ValueError, match="grid_size"):
        model(x, positions=torch.randn(1, 20, 3))


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_the_stream_samples_what_the_cached_forward_samples(kernel_size):
    """The sampler streams ``wavenet`` (ring buffers, folded gate): identical greedy codes and
    logits within 1e-4 of generation through the cached forward, for several windows with
    their own channel ids."""
    from neurofm.generation import SamplingConfig, generate_with_logits

    torch.manual_seed(0)
    model = create(MODELS, {"name": "wavenet", "preset": "tiny", "kernel_size": kernel_size}).eval()
    prompt = torch.randint(0, model.config.vocab_size, (2, 3, 11))
    ids = torch.tensor([[5, 1, 7], [0, 2, 3]])
    greedy = SamplingConfig(temperature=0.0)
    codes, logits = generate_with_logits(model, prompt, 30, greedy, context={"channel_ids": ids})

    class Plain(torch.nn.Module):  # the same model without its stream method
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x, **kw):
            return self.inner(x, **kw)

    plain_codes, plain_logits = generate_with_logits(
        Plain(), prompt, 30, greedy, context={"channel_ids": ids}, spec=model_spec(model)
    )
    assert torch.equal(codes, plain_codes)
    assert (logits - plain_logits).abs().max() < 1e-4
    stream = model.stream(prompt, channel_ids=ids)
    assert stream.logits.shape == (2, 3, model.config.vocab_size)
