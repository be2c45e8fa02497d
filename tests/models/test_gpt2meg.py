"""GPT2MEG (Hugging Face GPT-2) and GPT2MEG_Trf: channels, conditioning, cache, causal flag; the
amplitude options (value embedding, ordinal head, AR filter) on every class and variant."""

from __future__ import annotations

import pytest
import torch

from neurofm.config import preset
from neurofm.layers.ordinal import AR_GAIN
from neurofm.models.gpt2meg import GPT2MEGConfig
from neurofm.registry import MODELS, create

MODELS_UNDER_TEST = ["gpt2meg", "gpt2meg_trf"]
# every GPT2MEG name: the amplitude options work on all of them
FAMILY = ["gpt2meg", "gpt2meg_cond", "gpt2meg_mix", "gpt2meg_moe", "gpt2meg_trf", "stgpt2meg"]


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    return create(MODELS, {"name": name, "preset": "tiny", **overrides})


@pytest.mark.parametrize("size", ["tiny", "small", "base"])
def test_presets_are_valid(size):
    cfg = preset(GPT2MEGConfig, size)
    assert cfg.d_model % cfg.n_heads == 0


def test_hf_backbone_is_built_locally_without_a_token_table():
    model = _tiny("gpt2meg")
    assert model.gpt2.wte is None
    assert model.gpt2.config.n_positions == model.config.max_seq_len


@pytest.mark.parametrize("name", MODELS_UNDER_TEST)
def test_channels_are_independent_sequences(name):
    model = _tiny(name).eval()
    x = torch.randint(0, 64, (2, 3, 10))
    changed = x.clone()
    changed[:, 1] = (changed[:, 1] + 5) % 64
    a, b = model(x).logits, model(changed).logits
    assert a.shape == (2, 3, 10, 64)
    torch.testing.assert_close(a[:, [0, 2]], b[:, [0, 2]], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 1], b[:, 1])


@pytest.mark.parametrize("name", MODELS_UNDER_TEST)
def test_subject_condition_and_channel_ids_change_the_output(name):
    model = _tiny(name).eval()
    x = torch.randint(0, 64, (2, 3, 8))
    base = model(x).logits
    for kwargs in (
        {"subject": torch.tensor([1, 1])},
        {"condition": torch.randint(1, 4, (2, 8))},
        {"channel_ids": torch.tensor([5, 6, 7])},
    ):
        assert not torch.allclose(model(x, **kwargs).logits, base)


@pytest.mark.parametrize("name", MODELS_UNDER_TEST)
def test_incremental_decoding_with_condition_matches_full_forward(name):
    model = _tiny(name).eval()
    x = torch.randint(0, 64, (2, 3, 9))
    cond = torch.randint(0, 4, (2, 9))
    subject = torch.tensor([0, 1])
    full = model(x, subject=subject, condition=cond).logits
    out = model(x[..., :4], subject=subject, condition=cond[:, :4], use_cache=True)
    parts = [out.logits]
    for t in range(4, 9):
        out = model(
            x[..., t : t + 1],
            subject=subject,
            condition=cond[:, t : t + 1],
            past=out.past,
            use_cache=True,
        )
        parts.append(out.logits)
    torch.testing.assert_close(torch.cat(parts, dim=2), full, atol=1e-5, rtol=1e-5)


def test_trf_accepts_precomputed_embeddings():
    model = _tiny("gpt2meg_trf").eval()
    x = torch.randint(0, 64, (1, 2, 6))
    from_codes = model(x).logits
    from_embeddings = model(model.embedding.token(x)).logits
    torch.testing.assert_close(from_codes, from_embeddings)


def test_trf_bidirectional_mode_sees_the_future_and_has_no_cache():
    model = _tiny("gpt2meg_trf", causal=False).eval()
    x = torch.randint(0, 64, (1, 2, 8))
    changed = x.clone()
    changed[..., -1] = (changed[..., -1] + 1) % 64
    assert not torch.allclose(model(x).logits[..., 0, :], model(changed).logits[..., 0, :])
    with pytest.raises(ValueError, match="needs causal=True"):
        model(x, use_cache=True)


@pytest.mark.parametrize("name", MODELS_UNDER_TEST)
def test_too_long_input_and_bad_shapes_are_rejected(name):
    model = _tiny(name, max_seq_len=6)
    with pytest.raises(ValueError, match="exceed max_seq_len=6"):
        model(torch.zeros(1, 2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        model(torch.zeros(2, 7, dtype=torch.long))


@pytest.mark.parametrize("name", FAMILY)
def test_ordinal_options_are_off_by_default(name):
    model = _tiny(name)
    assert model.ordinal is None and model.embedding.value is None
    assert not any("ordinal" in k or "embedding.value" in k for k in model.state_dict())


def _with_ar_weights(model, ar_order: int):
    """Non-zero AR filter weights, so that the filter matters in the comparisons."""
    if ar_order:
        with torch.no_grad():
            model.ordinal.ar.copy_(torch.linspace(0.5, -0.3, ar_order) / AR_GAIN)
    return model


@pytest.mark.parametrize("ar_order", [0, 1, 4])
@pytest.mark.parametrize("name", FAMILY)
def test_ordinal_options_keep_causality_and_the_cache(name, ar_order):
    model = _tiny(name, value_embedding=True, ordinal_head=True, ar_order=ar_order).eval()
    _with_ar_weights(model, ar_order)
    x = torch.randint(0, 64, (2, 3, 9))
    changed = x.clone()
    changed[..., 5:] = (changed[..., 5:] + 7) % 64
    a, b = model(x).logits, model(changed).logits
    torch.testing.assert_close(a[..., :5, :], b[..., :5, :], atol=1e-6, rtol=0)
    assert not torch.allclose(a[..., 5:, :], b[..., 5:, :])
    out = model(x[..., :4], use_cache=True)
    parts = [out.logits]
    for t in range(4, 9):
        out = model(x[..., t : t + 1], past=out.past, use_cache=True)
        parts.append(out.logits)
    torch.testing.assert_close(torch.cat(parts, dim=2), a, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FAMILY)
def test_ar_filter_generation_with_cache_equals_full_recompute(name):
    from neurofm.generation import SamplingConfig, generate_with_logits

    model = _with_ar_weights(_tiny(name, ordinal_head=True, ar_order=6), 6)
    prompt = torch.randint(0, 64, (2, 3, 3))  # shorter than the filter: edge padding in use
    codes, logits = generate_with_logits(model, prompt, 8, SamplingConfig(temperature=0.0))
    full_codes, full_logits = generate_with_logits(
        model, prompt, 8, SamplingConfig(temperature=0.0, use_cache=False)
    )
    assert torch.equal(codes, full_codes)
    torch.testing.assert_close(logits, full_logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", FAMILY)
def test_ar_filter_starts_as_the_plain_ordinal_head_and_reads_the_history(name):
    x = torch.randint(0, 64, (1, 2, 12))
    plain = _tiny(name, ordinal_head=True).eval()
    model = _tiny(name, ordinal_head=True, ar_order=3).eval()
    torch.testing.assert_close(model(x).logits, plain(x).logits, atol=1e-6, rtol=0)
    _with_ar_weights(model, 3)
    changed = x.clone()
    changed[..., 4] = (changed[..., 4] + 9) % 64
    # time 4 is read at times 4, 5, 6 by the filter and through attention later on
    diff = (model(x).logits - model(changed).logits).abs().amax(dim=(0, 1, 3))
    assert (diff[:4] == 0).all() and (diff[4:7] > 0).all()


def test_ar_filter_needs_the_ordinal_head_and_its_own_cache():
    with pytest.raises(ValueError, match="ar_order=2 needs ordinal_head=True"):
        GPT2MEGConfig(ar_order=2)
    with pytest.raises(ValueError, match="ar_order must be >= 0"):
        GPT2MEGConfig(ar_order=-1, ordinal_head=True)
    model = _tiny("gpt2meg_trf", ordinal_head=True, ar_order=2)
    x = torch.randint(0, 64, (1, 2, 4))
    layers = model(x, use_cache=True).past.layers
    with pytest.raises(ValueError, match="past must be the ARPast"):
        model(x[..., :1], past=layers, use_cache=True)


def test_ordinal_head_starts_as_a_gaussian_over_the_code_values():
    model = _tiny("gpt2meg_trf", ordinal_head=True)
    with torch.no_grad():
        model.head.weight.zero_()
    probs = model(torch.randint(0, 64, (1, 2, 5))).logits.softmax(-1)
    peak = probs.argmax(-1)
    # unimodal: probabilities fall off monotonically on both sides of the peak
    for p, k in zip(probs.reshape(-1, 64), peak.reshape(-1)):
        assert (p[: k + 1].diff() >= 0).all() and (p[k:].diff() <= 0).all()


@pytest.mark.parametrize(
    ("name", "ar_order"), [("gpt2meg", 0), ("gpt2meg_trf", 4), ("gpt2meg_mix", 4)]
)
def test_ordinal_options_learn_real_eeg(name, ar_order, sample_dir):
    import mne
    import numpy as np

    from neurofm.registry import OBJECTIVES
    from neurofm.types import Batch

    raw = mne.io.read_raw_edf(sample_dir / "eegbci_S001" / "S001R04.edf", verbose="error")
    x = raw.get_data(picks=[0, 1, 2, 3], start=1600, stop=1600 + 128)
    x = np.clip((x - np.median(x, 1, keepdims=True)) / np.abs(x).max(1, keepdims=True), -1, 1)
    y = np.sign(x) * np.log1p(63 * np.abs(x)) / np.log1p(63)  # mu-law, 64 levels
    codes = torch.from_numpy(np.rint((y + 1) / 2 * 63).astype(np.int64)).view(4, 2, 64)
    codes = codes.transpose(0, 1).reshape(2, 4, 64)  # two 64-sample windows of 4 channels
    model = _tiny(name, value_embedding=True, ordinal_head=True, ar_order=ar_order)
    batch = Batch(x=codes, context={"subject": torch.tensor([0, 1])})
    objective = create(OBJECTIVES, {"name": "next_token"})
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = objective(model, batch).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.85 * losses[0], losses[::10]
    params = [model.ordinal.proj.weight, model.embedding.value.weight]
    grads = [p.grad for p in params + ([model.ordinal.ar] if ar_order else [])]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
