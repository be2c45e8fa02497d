"""Window classification: cross-entropy on ``batch.label`` with accuracy and balanced accuracy.

The model maps a window ``batch.x`` (B, C, T) to class logits ``ModelOutput.logits``
(B, n_classes). Every window must carry a label in ``0 .. n_classes - 1``: a window labelled -1
(no label) is an error, never silently dropped.

``balanced_accuracy`` is the mean recall over the classes present in the batch; validation logs
it averaged over batches, weighted by batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec


@dataclass
class ClassificationConfig:
    """Configuration of the window classification objective."""

    label_smoothing: float = 0.0  # cross-entropy label smoothing in [0, 1)
    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def balanced_accuracy(predicted: Tensor, labels: Tensor) -> Tensor:
    """Mean per-class recall over the classes present in ``labels`` (both (B,) int64)."""
    classes = torch.unique(labels)
    recalls = torch.stack([(predicted[labels == c] == c).float().mean() for c in classes])
    return recalls.mean()


@OBJECTIVES.register("classification", config=ClassificationConfig)
class ClassificationObjective(Objective):
    """Window classification with cross-entropy; reports accuracy and balanced accuracy."""

    name = "classification"
    output_kinds = ("class_logits",)

    def __init__(self, config: ClassificationConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, model: torch.nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        spec = self.spec_of(model, spec)
        labels = batch.label
        if labels is None:
            raise ValueError(
                "objective 'classification' needs batch.label; the dataset gave none "
                "(configure the window labels in the data section)"
            )
        labels = labels.long()
        output = model(batch.x, **spec.context_of(batch.context))
        logits = output.logits
        if logits is None or logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
            got = None if logits is None else tuple(logits.shape)
            raise ValueError(
                f"objective 'classification': model logits have shape {got}, "
                f"expected ({labels.shape[0]}, n_classes)"
            )
        n_classes = logits.shape[1]
        bad = (labels < 0) | (labels >= n_classes)
        if bool(bad.any()):
            raise ValueError(
                f"objective 'classification': {int(bad.sum())} window(s) have labels outside "
                f"0..{n_classes - 1} (first: {int(labels[bad][0])}); -1 means the window has no label"
            )
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)
        predicted = logits.argmax(dim=1)
        metrics = {
            "cross_entropy": loss.detach(),
            "accuracy": (predicted == labels).float().mean().detach(),
            "balanced_accuracy": balanced_accuracy(predicted, labels).detach(),
        }
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=int(labels.shape[0]), model_output=output
        )
