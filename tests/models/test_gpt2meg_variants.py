"""GPT2MEG variants (config values of GPT2MEG_Trf behind their old names, and GPT2MEGMix):
learning on real EEG codes, conditioning, channel dropout, MoE loss, cache, option combinations,
aliases."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurofm.models.gpt2meg import GPT2MEG_Trf, GPT2MEGMix
from neurofm.registry import MODELS, OBJECTIVES, create

VARIANTS = ["gpt2meg_cond", "gpt2meg_mix", "gpt2meg_moe", "stgpt2meg"]
ALIASES = {
    "gpt2meg_cond": {
        "context_injection": "every_block",
        "n_conditions": 8,
        "n_cond_tokens": 2,
        "d_global": 16,
    },
    "gpt2meg_moe": {"mlp": "moe"},
    "stgpt2meg": {"block": "channel_time"},
}
EDF = Path(__file__).resolve().parents[2] / "data" / "sample" / "eegbci_S001" / "S001R04.edf"
EVENT_IDS = {"T0": 1, "T1": 2, "T2": 3}


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    if name == "gpt2meg_cond":  # the global descriptor of the real windows has 6 entries
        overrides = {"d_global": 6, **overrides}
    return create(MODELS, {"name": name, "preset": "tiny", **overrides})


@functools.lru_cache(maxsize=1)
def _real_windows(n_chans: int = 4, n_times: int = 48, n_levels: int = 64):
    """Mu-law codes (2, C, T) of two windows of S001R04 that straddle an event onset, with
    condition streams (2, 2, T): the event label (T0/T1/T2 -> 1/2/3) and an "onset phase" flag
    (1 during the first 0.25 s of an event), and a global descriptor (2, 6): log-variance of six
    channels over the window."""
    import mne

    raw = mne.io.read_raw_edf(EDF, preload=False, verbose="error")
    sfreq = raw.info["sfreq"]
    onsets = np.rint(raw.annotations.onset * sfreq).astype(int)
    labels = [EVENT_IDS[d] for d in raw.annotations.description]
    codes, conditions, globals_ = [], [], []
    for onset in onsets[[1, 3]]:
        start = onset - n_times // 2
        x = raw.get_data(picks=list(range(6)), start=start, stop=start + n_times)
        globals_.append(np.log(x.var(axis=1)) - np.log(x.var(axis=1)).mean())
        x = x[:n_chans] - np.median(x[:n_chans], axis=1, keepdims=True)
        x = np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)
        mu = n_levels - 1
        y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
        codes.append(np.rint((y + 1.0) / 2.0 * mu))
        samples = np.arange(start, start + n_times)
        current = np.searchsorted(onsets, samples, side="right") - 1
        label = np.asarray(labels)[current]
        phase = (samples - onsets[current]) < int(0.25 * sfreq)
        conditions.append(np.stack([label, phase.astype(int)]))
    return (
        torch.tensor(np.stack(codes), dtype=torch.long),
        torch.tensor(np.stack(conditions), dtype=torch.long),
        torch.tensor(np.stack(globals_), dtype=torch.float32),
    )


def _context(name: str, t_slice: slice = slice(None)) -> dict:
    """Subject, condition (and for the conditional model a global vector) for the real windows."""
    _, condition, global_embedding = _real_windows()
    kwargs = {"subject": torch.tensor([0, 1])}
    if name == "gpt2meg_cond":
        kwargs["condition"] = condition[..., t_slice]
        kwargs["global_embedding"] = global_embedding
    else:
        kwargs["condition"] = condition[:, 0, t_slice]
    return kwargs


@pytest.mark.parametrize("name", VARIANTS)
def test_overfits_real_eeg_codes_with_their_events(name):
    model = _tiny(name).train()
    codes = _real_windows()[0]
    kwargs = _context(name, slice(0, -1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        out = model(codes[..., :-1], **kwargs)
        loss = F.cross_entropy(out.logits.flatten(0, 2), codes[..., 1:].flatten())
        (loss + sum(out.aux_losses.values(), torch.zeros(()))).backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{name}: {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize("name", VARIANTS)
def test_cached_decoding_equals_the_full_forward(name):
    model = _tiny(name).eval()
    codes = _real_windows()[0][..., :12]
    with torch.no_grad():
        full = model(codes, **_context(name, slice(0, 12))).logits
        out = model(codes[..., :5], use_cache=True, **_context(name, slice(0, 5)))
        steps = [out.logits]
        for t in range(5, 12):
            kwargs = _context(name, slice(t, t + 1))
            out = model(codes[..., t : t + 1], past=out.past, use_cache=True, **kwargs)
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=2), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_cache_beyond_max_seq_len_is_refused(name):
    model = _tiny(name, max_seq_len=8).eval()
    out = model(torch.zeros(1, 2, 6, dtype=torch.long), use_cache=True)
    with pytest.raises(ValueError, match="10 time steps exceed max_seq_len=8"):
        model(torch.zeros(1, 2, 4, dtype=torch.long), past=out.past)


def test_conditioning_changes_outputs_from_its_time_step_on():
    model = _tiny("gpt2meg_cond").eval()
    codes = _real_windows()[0]
    kwargs = _context("gpt2meg_cond")
    base = model(codes, **kwargs).logits
    changed = {**kwargs, "condition": kwargs["condition"].clone()}
    changed["condition"][:, 1, 20] = 3 - changed["condition"][:, 1, 20]
    other = model(codes, **changed).logits
    torch.testing.assert_close(other[:, :, :20], base[:, :, :20], rtol=0, atol=0)
    assert not torch.allclose(other[:, :, 20], base[:, :, 20])
    for key, value in (
        ("global_embedding", kwargs["global_embedding"] + 1.0),
        ("subject", torch.tensor([1, 0])),
    ):
        assert not torch.allclose(model(codes, **{**kwargs, key: value}).logits, base)
    assert not torch.allclose(model(codes).logits, base)


def test_conditional_model_names_bad_condition_inputs():
    model = _tiny("gpt2meg_cond")
    codes = torch.zeros(2, 3, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"condition must be \(2, 2, 5\), got \(2, 5\)"):
        model(codes, condition=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"global_embedding must be \(2, 6\)"):
        model(codes, global_embedding=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="global_embedding given but d_global is 0"):
        _tiny("gpt2meg_cond", d_global=0)(codes, global_embedding=torch.zeros(2, 6))


def test_channel_dropout_only_in_training():
    model = _tiny("gpt2meg_mix", channel_dropout=0.5)
    codes = _real_windows()[0]
    model.eval()
    weights = model.channel_weights(64, 4, torch.device("cpu"))
    torch.testing.assert_close(weights, torch.full((64, 4), 0.5))
    with torch.no_grad():
        torch.testing.assert_close(model(codes).logits, model(codes).logits, rtol=0, atol=0)
    model.train()
    weights = model.channel_weights(64, 4, torch.device("cpu"))
    assert (weights == 0).any() and (weights > 0).any(dim=1).all()
    torch.testing.assert_close(weights.square().sum(dim=1), torch.ones(64))
    with torch.no_grad():
        assert not torch.allclose(model(codes).logits, model(codes).logits)


def test_a_dropped_channel_does_not_reach_the_output():
    model = _tiny("gpt2meg_mix", channel_dropout=0.5).train()
    codes = _real_windows()[0]
    torch.manual_seed(3)
    weights = model.channel_weights(2, 4, torch.device("cpu"))
    item, channel = (weights == 0).nonzero()[0].tolist()
    changed = codes.clone()
    changed[item, channel] = (changed[item, channel] + 7) % 64
    with torch.no_grad():
        torch.manual_seed(3)
        a = model(codes).logits
        torch.manual_seed(3)
        b = model(changed).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["gpt2meg_mix", "stgpt2meg"])
def test_channels_mix_without_seeing_the_future(name):
    model = _tiny(name).eval()
    codes = _real_windows()[0]
    changed = codes.clone()
    changed[:, 0, 20] = (changed[:, 0, 20] + 9) % 64
    a, b = model(codes).logits, model(changed).logits
    torch.testing.assert_close(a[:, :, :20], b[:, :, :20], rtol=0, atol=0)
    assert not torch.allclose(a[:, 1, 20], b[:, 1, 20])


def test_moe_load_balance_loss_is_weighted_and_one_for_a_uniform_router():
    model = _tiny("gpt2meg_moe", load_balance_weight=0.5)
    for block in model.blocks:
        torch.nn.init.zeros_(block.mlp.router.weight)
    out = model(_real_windows()[0])
    assert out.extras["router"]["load_balance"].item() == pytest.approx(1.0, abs=1e-5)
    assert out.aux_losses["load_balance"].item() == pytest.approx(0.5, abs=1e-5)
    assert "router_z" not in out.aux_losses
    weighted = _tiny("gpt2meg_moe", router_z_weight=1e-3)(_real_windows()[0])
    assert weighted.aux_losses["router_z"] > 0


@pytest.mark.parametrize("name", VARIANTS)
def test_one_step_of_the_real_trainer(name, tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from neurofm.training.config import OptimConfig
    from neurofm.training.module import FitModule
    from neurofm.types import Batch

    codes, condition, _ = _real_windows()
    batch = Batch(x=codes, context={"subject": torch.tensor([0, 1]), "condition": condition[:, 0]})
    if name == "gpt2meg_cond":  # one condition stream from the batch
        model = _tiny(name, n_cond_tokens=1, d_global=0)
    else:
        model = _tiny(name)
    module = FitModule(
        model=model,
        objective=create(OBJECTIVES, {"name": "next_token"}),
        optim=OptimConfig(lr=1e-3),
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer = pl.Trainer(
        fast_dev_run=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, train_dataloaders=DataLoader([batch], batch_size=None))
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_an_alias_builds_the_family_model_with_its_defaults(name):
    alias = _tiny(name, d_global=ALIASES[name].get("d_global", 0))
    family = _tiny("gpt2meg_trf", **ALIASES[name])
    assert type(alias) is GPT2MEG_Trf and alias.config == family.config
    assert MODELS.get(name).alias_of == "gpt2meg_trf"
    a, b = alias.state_dict(), family.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_moe_checkpoints_with_the_old_block_names_load():
    model = _tiny("gpt2meg_moe")
    old = {k.replace(".mlp.", ".moe."): v for k, v in model.state_dict().items()}
    assert any(".moe.router." in k for k in old)
    fresh = _tiny("gpt2meg_moe")
    for p in fresh.parameters():
        torch.nn.init.zeros_(p)
    fresh.load_state_dict(old, strict=True)
    codes = _real_windows()[0]
    torch.testing.assert_close(fresh.eval()(codes).logits, model.eval()(codes).logits)


def test_residual_projections_are_scaled_at_init():
    model = _tiny("gpt2meg_trf", d_model=64, n_layers=8, n_heads=2)
    assert model.blocks[0].attn.out_proj.weight.std().item() == pytest.approx(0.005, rel=0.1)
    assert model.blocks[0].attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.1)


OPTIONS = [
    (mlp, block, injection, ordinal)
    for mlp in ("dense", "moe")
    for block in ("time", "channel_time")
    for injection in ("input", "every_block")
    for ordinal in (False, True)
]


@pytest.mark.parametrize(("mlp", "block", "injection", "ordinal"), OPTIONS)
def test_every_option_combination_runs_and_decodes_with_a_cache(mlp, block, injection, ordinal):
    options = {"mlp": mlp, "context_injection": injection, "ordinal_head": ordinal}
    options |= {"n_cond_tokens": 2, "d_global": 6, "ar_order": 2 if ordinal else 0}
    names = ["gpt2meg_trf"] + (["gpt2meg_mix"] if block == "time" else [])
    codes, condition, global_embedding = _real_windows()
    codes, condition = codes[..., :10], condition[..., :10]
    for name in names:
        model = _tiny(name, block=block, **options).eval()
        context = {"subject": torch.tensor([0, 1]), "global_embedding": global_embedding}
        with torch.no_grad():
            out = model(codes, condition=condition, **context)
            assert out.logits.shape == (2, 4, 10, 64) and torch.isfinite(out.logits).all()
            assert ("load_balance" in out.aux_losses) == (mlp == "moe")
            step = model(codes[..., :7], condition=condition[..., :7], use_cache=True, **context)
            for t in range(7, 10):
                kwargs = {"condition": condition[..., t : t + 1], **context}
                step = model(codes[..., t : t + 1], past=step.past, use_cache=True, **kwargs)
        torch.testing.assert_close(step.logits[..., 0, :], out.logits[..., -1, :])


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ValueError, match="block='channel_time' needs a channel axis"):
        _tiny("gpt2meg_mix", block="channel_time")
    with pytest.raises(ValueError, match="mlp='moe' not available on the Hugging Face"):
        _tiny("gpt2meg", mlp="moe")
    assert isinstance(_tiny("gpt2meg_mix", mlp="moe"), GPT2MEGMix)
