"""``backbone_classifier``: a forecaster's trunk under a pooled linear head. What each fine-tuning
mode trains, long windows read in pieces, a run folder read back with its tokenizer, and
``neurofm decode --model backbone_classifier`` on real EEGBCI runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurofm.cli.main import main
from neurofm.registry import MODELS, TOKENIZERS, create


def _tiny(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create(MODELS, {"name": "backbone_classifier", "preset": "tiny", **overrides})


def _one_step(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters before one AdamW step on a random batch (the model is stepped in place)."""
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    x, y = torch.randn(3, 4, 24), torch.tensor([0, 1, 2])
    model.train()
    torch.nn.functional.cross_entropy(model(x).logits, y).backward()
    optimizer.step()
    return before


@pytest.mark.parametrize("finetune", ["frozen", "lora", "full"])
def test_what_each_finetune_mode_trains(finetune):
    if finetune == "lora":
        pytest.importorskip("peft")
    model = _tiny(finetune=finetune)
    before = _one_step(model)
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert {"classify.weight", "classify.bias"} <= changed
    trunk = {k for k in changed if k.startswith("backbone.")}
    if finetune == "frozen":
        assert trunk == set()
        assert not model.backbone.training  # no dropout in a frozen trunk
    elif finetune == "lora":
        assert trunk and all("lora_" in k for k in trunk)
    else:
        assert any("lora_" not in k for k in trunk)


def test_long_windows_are_read_in_pieces_of_max_seq_len():
    model = _tiny(finetune="frozen").eval()
    max_len = model.max_len
    x = torch.randn(2, 4, 2 * max_len + 5)
    with torch.no_grad():
        whole = model.features(x)
        pieces = [model.features(x[..., a : a + max_len]) for a in (0, max_len, 2 * max_len)]
    # the mean over all samples = the sample-weighted mean of the pieces' means
    weights = torch.tensor([max_len, max_len, 5.0]) / x.shape[-1]
    assert torch.allclose(whole, sum(w * p for w, p in zip(weights, pieces)), atol=1e-5)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="backbone.*not a run folder"):
        _tiny(backbone=str(tmp_path))
    with pytest.raises(ValueError, match="finetune"):
        _tiny(finetune="partly")
    with pytest.raises(ValueError, match="5 channels"):
        _tiny()(torch.randn(1, 5, 8))


def _run_folder(tmp_path, n_chans: int = 64):
    """A run folder as ``neurofm fit`` writes it: a gpt2meg_trf trunk and a fitted mu-law."""
    from neurofm.training.pretrained import save_pretrained

    torch.manual_seed(0)
    trunk = create(
        MODELS,
        {
            "name": "gpt2meg_trf",
            "preset": "tiny",
            "n_chans": n_chans,
            "vocab_size": 64,
            "max_seq_len": 64,
        },
    )
    save_pretrained(trunk, tmp_path / "run" / "model")
    tokenizer = create(TOKENIZERS, {"name": "mulaw", "n_levels": 64})
    tokenizer.fit([np.random.default_rng(0).standard_normal((n_chans, 500))])
    tokenizer.save(tmp_path / "run" / "tokenizer")
    return tmp_path / "run", trunk


def test_a_run_folder_gives_its_trunk_and_tokenizer(tmp_path):
    run, trunk = _run_folder(tmp_path, n_chans=4)
    model = create(MODELS, {"name": "backbone_classifier", "n_chans": 4, "backbone": str(run)})
    for (k, v), (k0, v0) in zip(model.backbone.state_dict().items(), trunk.state_dict().items()):
        assert k == k0 and torch.equal(v, v0)
    x = torch.randn(2, 4, 100)
    assert model.eval()(x).logits.shape == (2, 2)
    assert model.codes(x).max() < 64  # the run's 64-level tokenizer


def test_decode_command_with_a_backbone(shared_data, tmp_path, capsys):
    run, _ = _run_folder(tmp_path)
    argv = ["decode", str(shared_data / "eegbci_S001"), "--runs", "[3, 7]", "--window", "[0, 1]"]
    argv += ["--model", "backbone_classifier", "--backbone", str(run), "--epochs", "1"]
    argv += ["--n_permutations", "5", "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "decoding.json").read_text())
    assert report["model"]["backbone"] == str(run) and report["model"]["finetune"] == "frozen"
    scores = report["decoders"]["model"]
    assert set(scores["per_run_accuracy"]) == {"3", "7"}
    low, high = scores["accuracy_95ci"]
    assert 0.0 <= low <= scores["accuracy"] <= high <= 1.0
