"""The MEG-to-text objectives: phase schedule, masked autoencoding, RVQ phase, distillation."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("vector_quantize_pytorch")

from neurofm.errors import ConfigError  # noqa: E402
from neurofm.registry import MODELS, OBJECTIVES, create  # noqa: E402
from neurofm.training.pretrained import save_pretrained  # noqa: E402
from neurofm.types import Batch  # noqa: E402


def _model(**fields):
    torch.manual_seed(0)
    return create(MODELS, {"name": "meg_text", "preset": "tiny", **fields})


def _batch() -> Batch:
    gen = torch.Generator().manual_seed(0)
    text = torch.tensor([[7, 8, 9, 3, 0], [10, 11, 12, 13, 3]])
    return Batch(x=torch.randn(2, 4, 32, generator=gen) * 1e-12, target=text)


def test_multi_phase_schedule_trains_each_part_in_turn():
    model = _model()
    objective = create(
        OBJECTIVES, {"name": "meg_text", "mode": "multi_phase", "phase_steps": [2, 1, 5]}
    )
    objective.train()
    seen = []
    for _ in range(4):
        model.zero_grad()
        out = objective(model, _batch())
        out.loss.backward()
        seen.append(int(out.metrics["phase"]))
        grads = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
        if seen[-1] == 1:  # masked autoencoding: the encoder and its read-out only
            assert grads == {"stem", "blocks", "norm", "reconstruct"}
        elif seen[-1] == 2:  # the quantizer on frozen features
            assert grads == {"quantizer"}
        else:
            assert {"llm", "projector", "stem", "quantizer"} <= grads
    assert seen == [1, 1, 2, 3]
    assert int(objective.batches_seen) == 4
    objective.eval()  # validation batches do not advance the schedule
    objective(model, _batch())
    assert int(objective.batches_seen) == 4


def test_masked_autoencoding_learns_and_reads_tesla_scale_signals():
    model = _model()
    objective = create(OBJECTIVES, {"name": "masked_autoencoding", "mask_ratio": 0.5})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    t = torch.linspace(0, 6.28, 32)
    x = 1e-12 * torch.stack([torch.sin(t * (k + 1)) for k in range(4)])[None].repeat(2, 1, 1)
    torch.manual_seed(0)  # the masks
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        out = objective(model, Batch(x=x))
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10  # masks differ step to step
    assert last < 0.5 * first, (first, last)


def test_distillation_pulls_the_student_to_the_teacher(tmp_path):
    teacher = _model()
    save_pretrained(teacher, tmp_path / "teacher" / "model")
    student = _model(
        n_layers=1, llm_hidden=32, llm_layers=1, llm_intermediate=64, distill_hidden=64
    )
    section = {"name": "meg_text_distill", "teacher": str(tmp_path / "teacher"), "ce_weight": 0.0}
    objective = create(OBJECTIVES, section)
    assert not list(objective.parameters())  # the teacher is not trained with the student
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-2)
    kl, hidden = [], []
    for _ in range(30):
        optimizer.zero_grad()
        out = objective(student, _batch())
        out.loss.backward()
        optimizer.step()
        kl.append(float(out.metrics["kl_to_teacher"]))
        hidden.append(float(out.metrics["hidden_mse"]))
    assert kl[-1] < 0.5 * kl[0] and hidden[-1] < 0.5 * hidden[0]

    with pytest.raises(ValueError, match="distill_hidden"):
        objective(_model(), _batch())
    with pytest.raises(ConfigError, match="holds no trained model"):
        create(OBJECTIVES, {"name": "meg_text_distill", "teacher": str(tmp_path / "none")})
