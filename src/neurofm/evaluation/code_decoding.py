"""Decoding evaluation of classifiers over codes (spec inputs ``channel_codes``, outputs
``class_logits``): the run's tokenizer turns the held-out signal windows into codes, and the
window context the model takes (channel ids, sensor positions) comes from the run's data, the
same for every window of the store. Everything else is :func:`evaluate_decoding_run`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from neurofm.errors import ConfigError
from neurofm.evaluation.common import EvaluateConfig, EvaluationResult
from neurofm.evaluation.decoding import evaluate_decoding_run
from neurofm.registry import model_spec
from neurofm.types import ModelOutput


class TokenizedClassifier(nn.Module):
    """A classifier over codes seen as one over signals: ``forward(x (B, C, T) float)`` encodes
    ``x`` with ``tokenizer`` and calls ``model(codes, **context)``.

    Parameters
    ----------
    model : nn.Module
        Spec inputs ``channel_codes``, outputs ``class_logits``.
    tokenizer : Tokenizer
        Fitted; ``encode(x).codes`` (B, C, T).
    context : dict of str to Tensor
        The context fields the model's spec lists, with a batch axis of 1 (broadcast).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, context: dict[str, Tensor]) -> None:
        super().__init__()
        self.model, self.tokenizer, self.context = model, tokenizer, context

    def forward(self, x: Tensor) -> ModelOutput:
        codes = torch.as_tensor(self.tokenizer.encode(x).codes).long().to(x.device)
        return self.model(codes, **{k: v.to(x.device) for k, v in self.context.items()})


def evaluate_code_decoding_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """:func:`evaluate_decoding_run` for a classifier over codes, through
    :class:`TokenizedClassifier` with the context of the run's first held-out window."""
    if run.tokenizer is None:
        raise ConfigError(f"{run.run_dir}: a classifier over codes needs the run's tokenizer")
    cfg = config or EvaluateConfig()
    spec = model_spec(run.model)
    first = run.dataset(cfg.split)[0]
    context = {name: torch.as_tensor(first[name])[None] for name in spec.context}
    wrapped = TokenizedClassifier(run.model, run.tokenizer, context)
    return evaluate_decoding_run(
        replace(run, model=wrapped), config=cfg, out_dir=out_dir, checkpoint=checkpoint
    )
