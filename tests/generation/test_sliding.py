"""Generation past ``max_seq_len``: the context slides, with and without the cache alike.

(a) within ``max_seq_len`` the result is that of the plain sampling loop; (b) beyond it, cached
sliding generation equals a step-by-step recomputation over the sliding window; (c) a run
folder whose model holds 128 time steps generates 10 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurofm.config import save_yaml
from neurofm.data.synthetic import synthetic_store
from neurofm.generation import SamplingConfig, generate, generate_with_logits
from neurofm.generation.sampling import autoregress
from neurofm.registry import MODELS, TOKENIZERS, create
from neurofm.training.pretrained import save_pretrained
from neurofm.workflows.generate import generate_run

MAX_LEN = 16
PROMPTS = {"gpt_causal": (1, 5), "gpt2meg": (1, 2, 5), "gpt2meg_trf": (1, 2, 5)}


def _model(name: str, max_len: int = MAX_LEN):
    torch.manual_seed(0)
    return create(MODELS, {"name": name, "preset": "tiny", "max_seq_len": max_len})


def _prompt(name: str) -> torch.Tensor:
    return torch.randint(0, 64, PROMPTS[name], generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def _reference(model, prompt: torch.Tensor, n_new: int, stride: int) -> torch.Tensor:
    """Greedy decoding that recomputes the sliding window ``codes[..., w0:]`` at every step."""
    model.eval()
    codes, start = prompt, 0
    for _ in range(n_new):
        if codes.shape[-1] - start > model.max_seq_len:
            start = codes.shape[-1] - (model.max_seq_len - stride)
        nxt = model(codes[..., start:]).logits[..., -1, :].argmax(-1)
        codes = torch.cat((codes, nxt.unsqueeze(-1)), dim=-1)
    return codes


@pytest.mark.parametrize("name", ["gpt_causal", "gpt2meg_trf"])
def test_within_max_seq_len_nothing_changes(name):
    model, prompt = _model(name), _prompt(name)
    n_new = MAX_LEN - prompt.shape[-1] + 1  # the longest generation without sliding
    ours = generate_with_logits(model, prompt, n_new, SamplingConfig(seed=3, top_k=20))
    plain = autoregress(
        model,
        prompt,
        n_new,
        SamplingConfig(top_k=20),
        generator=torch.Generator().manual_seed(3),
        keep_logits=True,
    )
    assert torch.equal(ours[0], plain.codes)
    assert torch.equal(ours[1], plain.logits)


@pytest.mark.parametrize("name", sorted(PROMPTS))
@pytest.mark.parametrize("stride", [3, None])
def test_cached_sliding_generation_equals_the_recomputed_window(name, stride):
    model, prompt = _model(name), _prompt(name)
    n_new = 3 * MAX_LEN + 7
    cached, cached_logits = generate_with_logits(
        model, prompt, n_new, SamplingConfig(temperature=0.0, stride=stride)
    )
    full, full_logits = generate_with_logits(
        model, prompt, n_new, SamplingConfig(temperature=0.0, stride=stride, use_cache=False)
    )
    assert cached.shape[-1] == prompt.shape[-1] + n_new
    assert cached_logits.shape[-2] == n_new
    assert torch.equal(cached, full)
    assert (cached_logits - full_logits).abs().max() <= 1e-4
    assert torch.equal(cached, _reference(model, prompt, n_new, stride or MAX_LEN // 4))


def test_sliding_sampling_is_seeded_and_follows_the_condition():
    model = _model("gpt2meg_trf")
    prompt, n_new = _prompt("gpt2meg_trf"), 40
    cond = torch.randint(0, 4, (1, prompt.shape[-1] + n_new - 1))
    seeded, uncached = SamplingConfig(seed=5), SamplingConfig(seed=5, use_cache=False)
    a = generate(model, prompt, n_new, seeded, context={"condition": cond})
    b = generate(model, prompt, n_new, uncached, context={"condition": cond})
    c = generate(model, prompt, n_new, seeded, context={"condition": torch.zeros_like(cond)})
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="condition covers"):
        generate(model, prompt, n_new, context={"condition": cond[..., :-1]})


def _run_folder(root: Path, max_len: int) -> Path:
    """A synthetic store with splits and a scaler, and an untrained run folder over it."""
    n_chans, window = 3, 64
    store = synthetic_store(
        root / "store", n_subjects=2, n_chans=n_chans, sfreq=100.0, duration=12.0, seed=1
    )
    n = store.recordings[0].n_times
    store.manifest["splits"] = {
        "train": [{"recording": store.recordings[0].id, "start": 0, "stop": n}],
        "test": [{"recording": store.recordings[1].id, "start": 0, "stop": n}],
    }
    train = np.asarray(store.recordings[0].array, dtype=np.float64)  # (T, C)
    center, scale = np.median(train, axis=0), np.subtract(*np.percentile(train, [75, 25], 0))
    store.manifest["scaler"] = {
        "kind": "robust",
        "fitted_on": "train",
        "channels": store.recordings[0].sensors.names,
        "center": center.tolist(),
        "scale": scale.tolist(),
    }
    store.save_manifest()
    run = root / "run"
    model_spec = {
        "name": "gpt2meg_trf",
        "preset": "tiny",
        "vocab_size": 16,
        "n_chans": n_chans,
        "n_subjects": 0,
        "n_conditions": 0,
        "max_seq_len": max_len,
    }
    tok_spec = {"name": "mulaw", "preset": "tiny"}
    windows = ((train - center) / scale)[: n // window * window].T.reshape(n_chans, -1, window)
    create(TOKENIZERS, tok_spec).fit(windows.transpose(1, 0, 2)).save(run / "tokenizer")
    torch.manual_seed(0)
    save_pretrained(create(MODELS, model_spec), run / "model")
    data = {"store": str(root / "store"), "window_length": window, "normalize": True}
    save_yaml(
        {
            "data": data,
            "tokenizer": tok_spec,
            "model": model_spec,
            "objective": {"name": "next_token"},
        },
        run / "config.yaml",
    )
    return run


def test_generate_run_writes_ten_seconds_from_a_128_step_model(tmp_path):
    run = _run_folder(tmp_path, max_len=128)
    paths = generate_run(run, prompt="test:0", seconds=10.0, seed=2, output=tmp_path / "gen")
    signal = np.load(paths["npy"])
    sidecar = json.loads(Path(paths["json"]).read_text())
    assert signal.shape == (3, 64 + 1000)
    assert sidecar["n_prompt"] == 64 and sidecar["n_generated"] == 1000
    assert np.isfinite(signal).all() and signal[:, 64:].std(axis=1).min() > 0


def test_generate_run_in_bfloat16_precision(tmp_path):
    run = _run_folder(tmp_path, max_len=128)
    out = tmp_path / "gen"
    paths = generate_run(run, prompt="test:0", seconds=1.0, seed=2, precision="bf16", output=out)
    signal = np.load(paths["npy"])
    assert signal.shape == (3, 64 + 100) and np.isfinite(signal).all()
    assert json.loads(Path(paths["json"]).read_text())["precision"] == "bf16"


def test_generate_run_with_the_channel_copula_fitted_on_train(tmp_path):
    run = _run_folder(tmp_path, max_len=128)
    out = tmp_path / "gen"
    paths = generate_run(
        run, prompt="test:0", seconds=1.0, seed=2, top_p=0.9, channel_copula=True, output=out
    )
    assert np.isfinite(np.load(paths["npy"])).all()
    copula = json.loads(Path(paths["json"]).read_text())["channel_copula"]
    assert 0.0 <= copula["mean_abs_correlation"] < 1.0 and "ridge VAR" in copula["fitted_on"]
