"""Next-band prediction: MSE of the next cumulative frequency band, every stage in one step.

The batch carries cumulative bands ``x`` (B, L, C, T) (level ``k`` = bands ``0..k``). The model
receives the stack of current bands, ``[0, level 0, ..., level L-2]`` (zeros first: the start of
unconditional generation), and its prediction at stage ``k`` is compared with level ``k``. With
``include_first_stage: false`` stage 0 (zeros -> the lowest band, which nothing predicts) is left
out of the loss; it still goes through the model, so that stage ``k`` keeps its embedding.

Metrics: ``mse`` (the loss without auxiliary terms), ``mse_stage<k>`` per stage, and
``mse_no_new_band``, the error of the true current band taken as the prediction (the baseline to
beat), over the same stages.

Training on the model's own rollouts (``rollout_training: p``, default 0: teacher forcing only).
Teacher forcing never shows the model its own outputs, but generation feeds them back: from the
true lowest band, stage 2 receives the predicted level 1, stage 3 the level 2 predicted from that,
and so on. With ``p > 0``, while the objective is in training mode, each window of the batch is
chosen independently with probability ``p``; for the chosen windows the inputs of stages
``k >= 2`` are replaced by the model's own chained rollout from the true lowest band, exactly
the inputs generation from the lowest band would give them: a first forward pass without
gradient over the chosen windows predicts level 1 from the true level 0 and puts it in as the
input of stage 2, the next pass (with that input) predicts level 2 and puts it in as the input of
stage 3, and so on. The model maps every stage of the stack in one call, so the chain needs
``L - 2`` passes (3 for five bands); each pass only fills one more stage. The targets stay the
true levels: the model learns to add the next band to its own imperfect level, and to correct it.
Stages 0 and 1 (zeros and the true lowest band) are the same either way. The predictions are
detached (no gradient through the chain: scheduled sampling, not backpropagation through the
rollout); the passes run in the model's current mode (dropout on, as in the training pass).

Why the chained rollout rather than one extra pass: one pass would feed stage ``k`` the model's
prediction of level ``k - 1`` from the *true* level ``k - 2``, which is close to the true level,
while the generated level at stage 3 and beyond lacks most of what the earlier stages failed to
add; only the chain shows the model the inputs it is scored on. Cost: ``L - 2`` forward passes
without gradient over about ``p * B`` windows, each about a third of a training step's compute
per window, i.e. roughly ``(L - 2) * p / 3`` of a step on top (+50% for five bands and
``p = 0.5``). Validation and evaluation stay teacher-forced (``val/loss`` keeps its meaning).
With ``p = 0`` nothing is drawn from the random generator and the step is exactly the
teacher-forced one. The metric ``rollout_fraction`` is the fraction of windows fed rollouts.
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
    # probability that a training window gets the model's own chained rollout (from the true
    # lowest band, no gradient) as the inputs of stages >= 2; 0: teacher forcing only
    rollout_training: float = 0.0
    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}

    def __post_init__(self) -> None:
        value = self.rollout_training
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0.0 <= value <= 1.0
        ):
            raise ValueError(
                f"rollout_training must be a probability in [0, 1] (0: teacher forcing only), "
                f"got {value!r}"
            )


def current_bands(levels: Tensor) -> Tensor:
    """The stack fed for levels (B, L, C, T): zeros, then levels ``0..L-2``; same shape."""
    return torch.cat([torch.zeros_like(levels[:, :1]), levels[:, :-1]], dim=1)


def rollout_inputs(model: torch.nn.Module, inputs: Tensor, context: dict) -> Tensor:
    """The stack ``inputs`` (B, L, C, T) with stages ``>= 2`` replaced by the model's own rollout.

    The rollout starts from ``inputs[:, 1]`` (the true lowest band) and is chained: the input of
    stage ``k`` is the model's prediction at stage ``k - 1``, computed with the already replaced
    input of stage ``k - 1``; ``L - 2`` forward passes without gradient. Returns a new, detached
    tensor; ``context`` (per-window tensors) is passed to every call.
    """
    fed = inputs.detach().clone()
    with torch.no_grad():
        for k in range(2, fed.shape[1]):
            prediction = model(fed, **context).prediction
            fed[:, k] = prediction[:, k - 1].to(fed.dtype)
    return fed


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
        context = spec.context_of(batch.context)
        fed = inputs
        metrics: dict[str, Tensor] = {}
        if self.training and self.config.rollout_training > 0 and levels.shape[1] > 2:
            chosen = (
                torch.rand(levels.shape[0], device=levels.device) < self.config.rollout_training
            )
            metrics["rollout_fraction"] = chosen.float().mean()
            items = chosen.nonzero().squeeze(1)
            if items.numel():
                sub_context = {name: value[items] for name, value in context.items()}
                fed = inputs.clone()
                fed[items] = rollout_inputs(model, inputs[items], sub_context)
        output = model(fed, **context)
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
        metrics["mse"] = loss.detach()
        metrics["mse_no_new_band"] = ((inputs[:, first:].float() - target) ** 2).mean().detach()
        for k, value in enumerate(per_stage.detach(), start=first):
            metrics[f"mse_stage{k}"] = value
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=target.numel(), model_output=output
        )
