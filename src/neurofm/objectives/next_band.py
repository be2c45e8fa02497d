"""Next-band prediction: MSE of the next cumulative frequency band, every stage in one step.

The batch carries cumulative bands ``x`` (B, L, C, T) (level ``k`` = bands ``0..k``). The model
receives the stack of current bands, ``[0, level 0, ..., level L-2]`` (zeros first: the start of
unconditional generation), and its prediction at stage ``k`` is compared with level ``k``. With
``include_first_stage: false`` stage 0 (zeros -> the lowest band, which nothing predicts) is left
out of the loss; it still goes through the model, so that stage ``k`` keeps its embedding.

Metrics: ``mse`` (the loss without auxiliary terms), ``mse_stage<k>`` per stage, and
``mse_no_new_band``, the error of the current band taken as the prediction (the baseline to
beat), over the same stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec


@dataclass
class NextBandObjectiveConfig:
    """Configuration of the next-band objective."""

    include_first_stage: bool = True  # also train zeros -> lowest band (unconditional start)
    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}


def current_bands(levels: Tensor) -> Tensor:
    """The stack fed for levels (B, L, C, T): zeros, then levels ``0..L-2``; same shape."""
    return torch.cat([torch.zeros_like(levels[:, :1]), levels[:, :-1]], dim=1)


@OBJECTIVES.register("next_band", config=NextBandObjectiveConfig)
class NextBandObjective(Objective):
    """MSE of the next cumulative band at every stage (all stages in one step)."""

    name = "next_band"
    input_kinds = ("band_stack",)
    output_kinds = ("prediction",)

    def __init__(self, config: NextBandObjectiveConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, model: torch.nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        spec = self.spec_of(model, spec)
        levels = batch.x
        if levels.ndim != 4 or not levels.is_floating_point():
            raise ValueError(
                "objective 'next_band' needs float cumulative bands (B, L, C, T) in batch.x, got "
                f"{tuple(levels.shape)} {levels.dtype}; set data.bands or data.format: band_npz"
            )
        inputs = current_bands(levels)
        output = model(inputs, **spec.context_of(batch.context))
        prediction = output.prediction
        if prediction is None or tuple(prediction.shape) != tuple(levels.shape):
            got = None if prediction is None else tuple(prediction.shape)
            raise ValueError(
                f"objective 'next_band': model prediction has shape {got}, "
                f"expected {tuple(levels.shape)}"
            )
        first = 0 if self.config.include_first_stage else 1
        if first >= levels.shape[1]:
            raise ValueError("objective 'next_band': one band and no first stage leave no target")
        target = levels[:, first:].float()
        error = (prediction[:, first:].float() - target) ** 2  # (B, L', C, T)
        per_stage = error.mean(dim=(0, 2, 3))
        loss = error.mean()
        metrics: dict[str, Tensor] = {
            "mse": loss.detach(),
            "mse_no_new_band": ((inputs[:, first:].float() - target) ** 2).mean().detach(),
        }
        for k, value in enumerate(per_stage.detach(), start=first):
            metrics[f"mse_stage{k}"] = value
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=target.numel(), model_output=output
        )
