"""Discrete flow matching (Gat et al. 2024, arXiv:2407.15595), with the ``flow_matching`` library.

For clean codes ``x_1`` (the batch's tokens, (B, T)) a source ``x_0`` is drawn uniformly over the
vocabulary and a time ``t ~ U[0, 1 - t_epsilon]``; the library's mixture probability path with a
polynomial convex scheduler (``kappa_t = t ** scheduler_power``) gives ``x_t`` (each token is
``x_1`` with probability ``kappa_t``, else ``x_0``). The model, called as ``model(t, x_t)``,
predicts logits of ``p(x_1 | x_t)`` and is trained with the library's generalized KL loss of the
mixture path (``MixturePathGeneralizedKL``).

Metrics: ``generalized_kl`` (the loss), ``posterior_cross_entropy`` (nats, ``-log p(x_1 | x_t)``
averaged over the corrupted positions) and ``accuracy`` there. Neither is a likelihood of the
data: this objective reports no ``bits_per_channel_sample`` (no tractable bound is computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.errors import require_extra
from neurofm.generation.flow import mixture_path
from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec


@dataclass
class DiscreteFlowConfig:
    """Configuration of the discrete flow-matching objective."""

    scheduler_power: float = 1.0  # kappa_t = t ** power (1: linear)
    t_epsilon: float = 1e-3  # t is drawn from [0, 1 - t_epsilon] (the loss weight diverges at 1)

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}, "cubic": {"scheduler_power": 3.0}}

    def __post_init__(self) -> None:
        if not self.scheduler_power > 0:
            raise ValueError(f"scheduler_power must be > 0, got {self.scheduler_power}")
        if not 0 < self.t_epsilon < 1:
            raise ValueError(f"t_epsilon must be in (0, 1), got {self.t_epsilon}")


@OBJECTIVES.register("discrete_flow", config=DiscreteFlowConfig)
class DiscreteFlowObjective(Objective):
    """Generalized KL of the mixture path for a flow denoiser over token ids (B, T)."""

    name = "discrete_flow"
    input_kinds = ("token_sequence",)
    output_kinds = ("logits",)
    sampling_kinds = ("flow",)

    def __init__(self, config: DiscreteFlowConfig) -> None:
        super().__init__()
        self.config = config
        self.path = mixture_path(config.scheduler_power)
        self.kl = require_extra("flow_matching.loss", "flow").MixturePathGeneralizedKL(self.path)

    def forward(
        self, model: nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        self.spec_of(model, spec)
        x1 = batch.x
        if x1.is_floating_point() or x1.dim() != 2:
            raise ValueError(
                f"objective 'discrete_flow' needs token ids (B, T) in batch.x, got "
                f"{tuple(x1.shape)} {x1.dtype}; use a flat tokenizer"
            )
        vocab = model.config.vocab_size
        lo, hi = int(x1.min()), int(x1.max())
        if lo < 0 or hi >= vocab:
            raise ValueError(
                f"objective 'discrete_flow': codes span [{lo}, {hi}], model vocab_size={vocab}"
            )
        x0 = torch.randint_like(x1, vocab)
        t = torch.rand(x1.shape[0], device=x1.device) * (1.0 - self.config.t_epsilon)
        xt = self.path.sample(t=t, x_0=x0, x_1=x1).x_t
        output = model(t, xt)
        logits = output.logits
        if logits is None or tuple(logits.shape) != (*x1.shape, vocab):
            got = None if logits is None else tuple(logits.shape)
            raise ValueError(
                f"objective 'discrete_flow': model logits {got}, expected {(*x1.shape, vocab)}"
            )
        logits = logits.float()
        loss = self.kl(logits=logits, x_1=x1, x_t=xt, t=t)
        with torch.no_grad():
            corrupted = xt != x1
            ce = F.cross_entropy(logits.reshape(-1, vocab), x1.reshape(-1), reduction="none")
            weight = corrupted.reshape(-1).float()
            n = weight.sum().clamp_min(1.0)
            right = (logits.argmax(-1) == x1).reshape(-1).float()
        metrics: dict[str, Tensor] = {
            "generalized_kl": loss.detach(),
            "posterior_cross_entropy": (ce * weight).sum() / n,
            "accuracy": (right * weight).sum() / n,
        }
        loss = self.add_aux_losses(loss, output, metrics)
        return ObjectiveOutput(loss=loss, metrics=metrics, n_items=x1.numel(), model_output=output)
