"""Cross-entropy of every band stage's codes given the earlier stages (the VAR variant).

The batch carries ``band_rvq`` codes (B, N), stage after stage; a ``band_codes`` model returns
logits (B, N, V) where the logits of stage ``k`` depend on stages ``< k`` only, so one forward
scores every stage (VAR's teacher forcing). With ``use_labels`` the window labels
(``data.labels``) go to the model as ``label`` (AdaLN class conditioning).

Progressive training (VAR's ``--pg``): over the first ``progressive_steps`` training batches the
loss covers a growing number of stages, from the lowest one alone to all of them (stage ``k``
joins after ``k * progressive_steps / L`` batches). The batch counter is a buffer of the
objective, saved in the training checkpoint, so a resumed run continues the same schedule.

Metrics: ``ce`` (over the stages in the loss), ``ce_stage<k>`` and ``acc_stage<k>`` for every
stage, ``active_stages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from neurofm import checks
from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec


@dataclass
class BandTokensObjectiveConfig:
    """Configuration of the band-tokens objective."""

    use_labels: bool = False  # pass the batch's window labels to the model (class conditioning)
    progressive_steps: int = 0  # batches over which the stages join the loss; 0: all at once
    label_smoothing: float = 0.0  # of the cross-entropy

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}

    def __post_init__(self) -> None:
        checks.non_negative(self, "progressive_steps")
        checks.fraction(self, "label_smoothing")


@OBJECTIVES.register("band_tokens", config=BandTokensObjectiveConfig)
class BandTokensObjective(Objective):
    """Cross-entropy of each stage's codes given the earlier stages, all stages in one step."""

    name = "band_tokens"
    input_kinds = ("band_codes",)
    output_kinds = ("logits",)

    def __init__(self, config: BandTokensObjectiveConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def active_stages(self, n_stages: int) -> int:
        """Stages in the loss at the current batch of the progressive schedule."""
        total = self.config.progressive_steps
        if total == 0:
            return n_stages
        return min(n_stages, 1 + int(self.batches_seen) * n_stages // total)

    def forward(
        self, model: torch.nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        spec = self.spec_of(model, spec)
        codes = batch.x
        if codes.ndim != 2 or codes.is_floating_point():
            raise ValueError(
                "objective 'band_tokens' needs band_rvq codes (B, N) in batch.x, got "
                f"{tuple(codes.shape)} {codes.dtype}; add a tokenizer section with name: band_rvq"
            )
        kwargs = dict(spec.context_of(batch.context))
        if self.config.use_labels:
            if batch.label is None:
                raise ValueError(
                    "objective.use_labels: the batch has no labels; set data.labels "
                    "(e.g. events) or use_labels: false"
                )
            kwargs["label"] = batch.label
        output = model(codes, **kwargs)
        logits = output.logits
        if logits is None or tuple(logits.shape[:-1]) != tuple(codes.shape):
            got = None if logits is None else tuple(logits.shape)
            raise ValueError(
                f"objective 'band_tokens': logits {got} for codes {tuple(codes.shape)}"
            )
        stage_tokens = model.config.stage_tokens
        n_stages = len(stage_tokens)
        active = self.active_stages(n_stages)
        if self.training:
            self.batches_seen += 1
        ce = F.cross_entropy(
            logits.float().transpose(1, 2),
            codes,
            reduction="none",
            label_smoothing=self.config.label_smoothing,
        )  # (B, N)
        hits = (logits.argmax(-1) == codes).float()
        metrics: dict[str, Tensor] = {}
        start, in_loss = 0, []
        for k, n in enumerate(stage_tokens):
            part = slice(start, start + n)
            metrics[f"ce_stage{k}"] = ce[:, part].mean().detach()
            metrics[f"acc_stage{k}"] = hits[:, part].mean()
            if k < active:
                in_loss.append(ce[:, part])
            start += n
        loss = torch.cat(in_loss, dim=1).mean()
        metrics["ce"] = loss.detach()
        metrics["active_stages"] = torch.tensor(float(active))
        loss = self.add_aux_losses(loss, output, metrics)
        n_items = int(sum(stage_tokens[:active]) * codes.shape[0])
        return ObjectiveOutput(loss=loss, metrics=metrics, n_items=n_items, model_output=output)
