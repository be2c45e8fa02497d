"""The VAR variant of next band: the band_rvq residual quantizer over band stages, block-causal
attention across stages, stage-by-stage sampling, progressive stages, and a run through fit /
evaluate / generate on the synthetic band folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurofm.generation import generate_band_tokens
from neurofm.objectives.band_tokens import BandTokensObjective, BandTokensObjectiveConfig
from neurofm.registry import MODELS, TOKENIZERS, create
from neurofm.tokenizers.band_data import synthetic_band_folder
from neurofm.tokenizers.band_rvq import reconstruction_errors
from neurofm.types import Batch

pytest.importorskip("vector_quantize_pytorch")

BANDS = [[1.0, 8.0], [8.0, 20.0], [20.0, 40.0]]


def _model(**overrides):
    torch.manual_seed(0)
    return create(MODELS, {"name": "next_band_var", "preset": "tiny", **overrides}).eval()


def test_logits_of_a_stage_depend_on_earlier_stages_only():
    model = _model(n_layers=2)
    for block in model.blocks:  # open the AdaLN gates so every path carries signal
        torch.nn.init.normal_(block.modulation.weight, std=0.5)
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 16, (2, 16), generator=gen)
    bounds = [0, 4, 8, 16]  # tiny stage_tokens [4, 4, 8]
    with torch.no_grad():
        base = model(codes).logits
        for k in range(3):
            changed = codes.clone()
            changed[:, bounds[k] :] = (changed[:, bounds[k] :] + 5) % 16  # stages >= k
            out = model(changed).logits
            assert torch.equal(out[:, : bounds[k + 1]], base[:, : bounds[k + 1]]), k
            if k + 1 < 3:  # ... while stage k reaches every later stage
                assert not torch.allclose(out[:, bounds[k + 1] :], base[:, bounds[k + 1] :])
    with pytest.raises(ValueError, match=r"expected codes \(B, 16\)"):
        model(codes[:, :10])
    with pytest.raises(ValueError, match="n_classes=3"):
        model(codes, label=torch.tensor([0, 3]))


def test_sampling_stage_by_stage():
    model = _model()
    prompt = torch.randint(0, 16, (3, 4))
    drawn = generate_band_tokens(model, prompt=prompt, generator=torch.Generator().manual_seed(0))
    again = generate_band_tokens(model, prompt=prompt, generator=torch.Generator().manual_seed(0))
    assert (
        drawn.shape == (3, 16) and torch.equal(drawn[:, :4], prompt) and torch.equal(drawn, again)
    )
    greedy = generate_band_tokens(model, prompt=prompt, temperature=0.0)
    with torch.no_grad():  # a greedy stage is the argmax given the stages drawn before it
        assert torch.equal(model(greedy).logits.argmax(-1)[:, 4:], greedy[:, 4:])
    labels = torch.tensor([0, 1, 2])
    guided = generate_band_tokens(model, batch_size=3, label=labels, cfg_scale=2.0)
    assert guided.shape == (3, 16) and guided.max() < 16
    with pytest.raises(ValueError, match="whole stages"):
        generate_band_tokens(model, prompt=prompt[:, :3])


def test_progressive_stages_join_the_loss_and_the_counter_is_saved():
    model = _model()
    objective = BandTokensObjective(BandTokensObjectiveConfig(progressive_steps=6)).train()
    batch = Batch(x=torch.randint(0, 16, (2, 16)))
    active = [float(objective(model, batch).metrics["active_stages"]) for _ in range(7)]
    assert active == [1, 1, 2, 2, 3, 3, 3]
    assert int(objective.state_dict()["batches_seen"]) == 7
    with pytest.raises(ValueError, match="use_labels"):
        BandTokensObjective(BandTokensObjectiveConfig(use_labels=True))(model, batch)


def test_residual_quantizer_refines_stage_by_stage(tmp_path):
    from neurofm.tokenizers.band_data import BandFolder
    from neurofm.tokenizers.base import load_tokenizer

    synthetic_band_folder(tmp_path / "data", n_train=12, n_val=2, n_times=64, bands=BANDS)
    train = BandFolder(tmp_path / "data").dataset("train")
    stacks = np.stack([train[i]["x"].numpy() for i in range(len(train))])
    tok = create(
        TOKENIZERS,
        {"name": "band_rvq", "stage_tokens": [4, 8, 16], "codebook_size": 8, "bands": BANDS},
    )
    tok.fit(stacks, fitted_on="synthetic:train")
    assert (tok.config.n_chans, tok.config.n_times) == (4, 64)  # from the data
    codes = tok.encode(stacks).codes
    assert codes.shape == (12, 28) and codes.dtype == np.int64
    errors = reconstruction_errors(tok, [stacks])
    power = stacks.var(axis=(0, 2, 3))
    assert errors[-1] < errors[0] and errors[-1] < 0.5 * power[-1], (errors, power)
    tok.save(tmp_path / "tok")
    assert np.array_equal(load_tokenizer(tmp_path / "tok").encode(stacks).codes, codes)
    with pytest.raises(ValueError, match=r"\(B, 3, 4, 64\).*nothing is padded"):
        tok.encode(stacks[:, :, :, :60])


def test_fit_evaluate_generate_next_band_var_on_the_band_folder(tmp_path):
    from neurofm.evaluation.common import EvaluateConfig
    from neurofm.evaluation.evaluate import evaluate_run
    from neurofm.training.fit import fit
    from neurofm.workflows.generate import generate_run

    synthetic_band_folder(tmp_path / "data", n_train=8, n_val=3, n_times=32, bands=BANDS)
    run = fit(
        {
            "data": {"store": str(tmp_path / "data"), "format": "band_npz", "batch_size": 4},
            "tokenizer": {"name": "band_rvq", "preset": "tiny", "bands": BANDS},
            "model": {"name": "next_band_var", "preset": "tiny", "n_classes": 0},
            "objective": {"name": "band_tokens", "progressive_steps": 2},
            "trainer": {
                "max_steps": 4,
                "val_check_interval": 2,
                "accelerator": "cpu",
                "log_every_n_steps": 1,
                "enable_progress_bar": False,
            },
            "output": {"dir": str(tmp_path / "run"), "checkpoint_every_n_steps": 4},
        }
    )
    assert (run / "tokenizer" / "tokenizer.json").is_file()
    cfg = EvaluateConfig(split="val", n_bootstrap=20, plot_channel=1)
    report = evaluate_run(run, config=cfg, out_dir=tmp_path / "eval").report
    assert report["task"] == "band_tokens"
    assert set(report["one_step_ce"]) == {"stage0", "stage1", "stage2"}
    assert set(report["rollout_mse"]["stage2"]["scores"]) == {
        "rollout",
        "reconstruction",
        "no_new_band",
    }
    assert (tmp_path / "eval" / "rollout.png").is_file()
    paths = generate_run(run, prompt="val:1", output=tmp_path / "gen", seed=3)
    assert np.load(paths["npy"]).shape == (3, 4, 32)
    metrics = json.loads(paths["metrics"].read_text())
    assert set(metrics["all_channels"]["per_stage_mse"]) == {"stage1", "stage2"}
