"""The Objective interface shared by every training objective."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from neurofm.registry import model_spec
from neurofm.types import ModelOutput, ModelSpec

LN2 = math.log(2.0)
DENOISING = ("diffusion", "flow")
"""Sampling kinds of denoisers: models called as ``model(t, x_t)``, trained by denoising
objectives only."""


@dataclass
class ObjectiveOutput:
    """What an objective returns for one batch.

    Attributes
    ----------
    loss : Tensor
        Scalar to minimise (auxiliary losses of the model already added).
    metrics : dict of str to float Tensor
        Detached scalars to log, e.g. ``bits_per_channel_sample``, ``accuracy``, ``mse``.
    n_items : int
        How many items (channel-samples, windows) the metrics average over, for exact
        aggregation across batches.
    model_output : ModelOutput or None
        The model's raw output (for evaluation).
    """

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)
    n_items: int = 1
    model_output: ModelOutput | None = None


class Objective(nn.Module):
    """Base class: ``objective(model, batch) -> ObjectiveOutput``; subclasses define ``forward``.

    An objective decides what the model is fed (codes, signals, noisy signals) and what the target
    is; it calls the model, computes the loss, adds the model's ``aux_losses`` and reports metrics.
    Likelihood objectives report ``bits_per_channel_sample`` so that families compare on one scale.

    What the model is comes from its :class:`~neurofm.types.ModelSpec` (``spec`` argument, else
    the registry's entry for the model); an objective declares the input and output kinds it
    trains in ``input_kinds`` / ``output_kinds``, which ``fit`` checks before training starts.
    """

    name: str = ""
    input_kinds: tuple[str, ...] = ()
    output_kinds: tuple[str, ...] = ()
    sampling_kinds: tuple[str, ...] = ()  # denoising objectives: the denoisers they train

    @classmethod
    def problems_with(cls, spec: ModelSpec) -> list[str]:
        """Why a model with ``spec`` cannot be trained by this objective (empty: it can)."""
        problems = []
        if cls.input_kinds and spec.inputs not in cls.input_kinds:
            problems.append(
                f"objective {cls.name!r} trains models over {' or '.join(cls.input_kinds)}, "
                f"the model takes {spec.inputs}"
            )
        if cls.output_kinds and spec.outputs not in cls.output_kinds:
            problems.append(
                f"objective {cls.name!r} needs outputs {' or '.join(cls.output_kinds)}, "
                f"the model gives {spec.outputs}"
            )
        if cls.sampling_kinds and spec.sampling not in cls.sampling_kinds:
            problems.append(
                f"objective {cls.name!r} trains denoisers (sampling "
                f"{' or '.join(cls.sampling_kinds)}), the model's sampling is {spec.sampling!r}"
            )
        if not cls.sampling_kinds and spec.sampling in DENOISING:
            problems.append(
                f"objective {cls.name!r} does not train denoisers; the model's sampling is "
                f"{spec.sampling!r} (train it with a denoising objective)"
            )
        return problems

    def spec_of(self, model: nn.Module, spec: ModelSpec | None) -> ModelSpec:
        """``spec`` or the registered spec of ``model``; raise when they cannot be trained here."""
        spec = spec if spec is not None else model_spec(model)
        problems = self.problems_with(spec)
        if problems:
            raise ValueError("; ".join(problems))
        return spec

    @staticmethod
    def add_aux_losses(loss: Tensor, output: ModelOutput, metrics: dict[str, Any]) -> Tensor:
        """Add a model's auxiliary losses to ``loss`` and log each of them."""
        for name, value in output.aux_losses.items():
            loss = loss + value
            metrics[f"aux_{name}"] = value.detach()
        return loss
