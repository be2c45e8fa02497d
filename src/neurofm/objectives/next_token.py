"""Next-token prediction: cross-entropy of a model's logits against the next code.

The model receives the codes without their last time step, ``x[..., :-1]`` ((B, C, T-1) or
(B, T-1)), and its logits at time t ((B, C, T-1, V) or (B, T-1, V)) are scored against
``x[..., t + 1]``. When the batch carries an explicit ``target`` (codes shaped like ``x``) the
model receives the whole of ``x`` and is scored against ``target`` instead.

The batch's context fields that the model's spec lists are passed to it as keywords (per-time
fields such as ``condition`` sliced like ``x``).

Metrics: ``cross_entropy`` (nats), ``bits_per_channel_sample`` (= cross-entropy / ln 2, per
predicted channel-sample), ``accuracy`` (argmax equals the target), plus the model's auxiliary
losses, which are added to the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.objectives.base import LN2, Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec


@dataclass
class NextTokenConfig:
    """Configuration of the next-token objective."""

    label_smoothing: float = 0.0  # cross-entropy label smoothing (metrics use the plain CE)

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}, "smoothed": {"label_smoothing": 0.1}}

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@OBJECTIVES.register("next_token", config=NextTokenConfig)
class NextTokenObjective(Objective):
    """Cross-entropy of logits (B, C, T, V) or (B, T, V) against the codes one step ahead."""

    name = "next_token"
    input_kinds = ("channel_codes", "token_sequence")
    output_kinds = ("logits",)

    def __init__(self, config: NextTokenConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, model: nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        """Run ``model`` on ``batch.x`` codes and score its next-code logits."""
        spec = self.spec_of(model, spec)
        x = batch.x
        if x.is_floating_point() or x.dim() not in (2, 3):
            raise ValueError(
                f"objective 'next_token' needs integer codes (B, C, T) or (B, T) in "
                f"batch.x, got {tuple(x.shape)} {x.dtype}; tokenize the signal first"
            )
        stop = None
        if batch.target is None:
            if x.shape[-1] < 2:
                raise ValueError(f"objective 'next_token' needs >= 2 time steps, got {x.shape[-1]}")
            inputs, target = x[..., :-1], x[..., 1:]
            stop = inputs.shape[-1]
        else:
            inputs, target = x, batch.target
            if tuple(target.shape) != tuple(x.shape):
                raise ValueError(
                    f"objective 'next_token': batch.target has shape "
                    f"{tuple(target.shape)}, expected {tuple(x.shape)}"
                )
        output = model(inputs, **spec.context_of(batch.context, stop=stop))
        logits = output.logits
        if logits is None or tuple(logits.shape[:-1]) != tuple(target.shape):
            got = None if logits is None else tuple(logits.shape)
            raise ValueError(
                f"objective 'next_token': model logits have shape {got}, expected "
                f"{tuple(target.shape)} + (V,)"
            )
        vocab = logits.shape[-1]
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= vocab:
            raise ValueError(
                f"objective 'next_token': target codes span [{lo}, {hi}] but the "
                f"model has vocab_size={vocab}"
            )
        flat_logits = logits.float().reshape(-1, vocab)
        flat_target = target.reshape(-1)
        cross_entropy = F.cross_entropy(flat_logits, flat_target)
        if self.config.label_smoothing:
            loss = F.cross_entropy(
                flat_logits, flat_target, label_smoothing=self.config.label_smoothing
            )
        else:
            loss = cross_entropy
        with torch.no_grad():
            accuracy = (flat_logits.argmax(dim=-1) == flat_target).float().mean()
        metrics: dict[str, Tensor] = {
            "cross_entropy": cross_entropy.detach(),
            "bits_per_channel_sample": (cross_entropy / LN2).detach(),
            "accuracy": accuracy,
        }
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=flat_target.numel(), model_output=output
        )
