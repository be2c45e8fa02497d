"""The classification objective: cross-entropy, accuracy, balanced accuracy, label errors."""

from __future__ import annotations

import pytest
import torch

from neurofm.objectives.classification import balanced_accuracy
from neurofm.registry import MODELS, OBJECTIVES, create
from neurofm.types import Batch, ModelOutput, ModelSpec

LOGITS_SPEC = ModelSpec(inputs="signal", outputs="class_logits")


class _Logits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return ModelOutput(logits=self.logits)


def test_metrics():
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 0, 1])
    out = create(OBJECTIVES, {"name": "classification"})(
        _Logits(logits), Batch(x=torch.zeros(4, 1, 3), label=labels), spec=LOGITS_SPEC
    )
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(logits, labels))
    assert out.metrics["accuracy"].item() == 1.0 and out.n_items == 4


def test_balanced_accuracy_weighs_classes_equally():
    predicted = torch.tensor([0, 0, 0, 0])
    labels = torch.tensor([0, 0, 0, 1])
    assert balanced_accuracy(predicted, labels).item() == pytest.approx(0.5)


def test_unlabelled_windows_are_an_error():
    objective = create(OBJECTIVES, {"name": "classification"})
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="1 window\\(s\\) have labels outside 0..2 .*-1 means"):
        objective(
            _Logits(logits),
            Batch(x=torch.zeros(2, 1, 3), label=torch.tensor([0, -1])),
            spec=LOGITS_SPEC,
        )
    with pytest.raises(ValueError, match="needs batch.label"):
        objective(_Logits(logits), Batch(x=torch.zeros(2, 1, 3)), spec=LOGITS_SPEC)


def test_classifier_overfits_one_batch():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, 32, generator=g)
    labels = torch.arange(12) % 3
    x[labels == 1, 0] += 1.5  # a class-dependent offset to learn
    x[labels == 2, 1] -= 1.5
    model = create(MODELS, {"name": "classifier_continuous", "preset": "tiny", "dropout": 0.0})
    objective = create(OBJECTIVES, {"name": "classification"})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        out = objective(model, Batch(x=x, label=labels))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0] / 2
    assert out.metrics["accuracy"].item() == 1.0
