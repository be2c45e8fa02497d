"""Objectives of the MEG-to-text model (``meg_text``): masked autoencoding, residual-VQ
training, language modelling, and their phase schedule.

``meg_text`` with ``mode: full`` trains everything in one phase: the cross-entropy of the text
given the MEG span (teacher forced, padding excluded) plus the quantizer's losses. With
``mode: multi_phase`` the phase follows the number of training batches seen so far (a buffer,
saved in checkpoints, so a resumed run continues inside the right phase):

1. ``phase_steps[0]`` batches of masked autoencoding: a fraction ``mask_ratio`` of the encoder's
   tokens is zeroed and the signal patches under them are reconstructed (MSE on the masked
   patches of the per-channel standardised signal);
2. ``phase_steps[1]`` batches of residual-VQ training on the frozen encoder's features
   (reconstruction of the features from their codes + commitment + codebook usage);
3. the rest: end-to-end language modelling (encoder, quantizer, projector, LoRA).

Parameters that a phase does not reach get no gradient, so AdamW leaves them unchanged. In the
language-modelling phase a fraction ``meg_dropout`` of the batches is trained without the MEG
span, so that the decoder alone (the no-MEG control of the evaluation) is a fair text prior.

``masked_autoencoding`` is phase 1 alone (encoder pretraining of any ``meg_text`` model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers.rvq import code_usage
from neurofm.objectives.base import LN2, Objective, ObjectiveOutput
from neurofm.registry import OBJECTIVES
from neurofm.types import Batch, ModelSpec

PHASES = ("masked_autoencoding", "quantizer", "language_model")


def text_mask(batch: Batch, pad_id: int) -> Tensor:
    """(B, L) bool, True on real text tokens: ``meta["text_mask"]`` or ``target != pad_id``."""
    mask = batch.meta.get("text_mask") if isinstance(batch.meta, dict) else None
    if mask is None:
        return batch.target != pad_id
    return torch.as_tensor(mask, device=batch.target.device).bool()


def check_text_batch(batch: Batch, who: str) -> None:
    """Raise unless ``batch`` holds a float signal (B, C, T) and text ids (B, L)."""
    if batch.x.ndim != 3 or not batch.x.is_floating_point():
        raise ValueError(f"objective {who!r}: batch.x must be a float signal (B, C, T)")
    target = batch.target
    if target is None or target.ndim != 2 or target.is_floating_point():
        got = None if target is None else (tuple(target.shape), target.dtype)
        raise ValueError(f"objective {who!r}: batch.target must be text ids (B, L), got {got}")


def masked_autoencoding_loss(model: nn.Module, x: Tensor, mask_ratio: float) -> ObjectiveOutput:
    """Reconstruct the standardised signal under a random ``mask_ratio`` of encoder tokens."""
    b, _, t = x.shape
    n = t // model.config.patch
    mask = torch.rand(b, n, device=x.device) < mask_ratio
    mask[:, 0] |= ~mask.any(dim=1)  # at least one masked token per item
    h = model.encode(x, mask=mask)
    rec = model.reconstruct_signal(h)  # (B, C, T)
    target = model.standardise(x)
    per_sample = (rec - target).square()
    sample_mask = mask.repeat_interleave(model.config.patch, dim=1)[:, None, :]  # (B, 1, T)
    weight = sample_mask.expand_as(per_sample).float()
    loss = (per_sample * weight).sum() / weight.sum()
    return ObjectiveOutput(loss=loss, metrics={"mae_mse": loss.detach()}, n_items=b)


def quantizer_loss(model: nn.Module, x: Tensor) -> ObjectiveOutput:
    """Train the quantizer on frozen encoder features: reconstruction + its own losses."""
    with torch.no_grad():
        h = model.encode(x)
    quantized, codes, losses = model.quantizer(h)
    reconstruction = F.mse_loss(quantized, h)
    loss = reconstruction + losses["rvq"]
    metrics = {"rvq_mse": reconstruction.detach(), "aux_rvq": losses["rvq"].detach()}
    metrics.update(code_usage(codes, model.config.codebook_size))
    return ObjectiveOutput(loss=loss, metrics=metrics, n_items=x.shape[0])


def language_model_loss(
    model: nn.Module, batch: Batch, *, pad_id: int, use_meg: bool = True
) -> ObjectiveOutput:
    """Teacher-forced cross-entropy of the text given the MEG span (plus quantizer losses)."""
    output = model(batch.x, batch.target, use_meg=use_meg)
    mask = text_mask(batch, pad_id)
    logits = output.logits.float()
    target = batch.target
    vocab = logits.shape[-1]
    if int(target.max()) >= vocab:
        raise ValueError(f"text ids reach {int(target.max())} but the model has vocab_size={vocab}")
    per_token = F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1), reduction="none")
    weight = mask.reshape(-1).float()
    n_tokens = weight.sum().clamp_min(1.0)
    cross_entropy = (per_token * weight).sum() / n_tokens
    with torch.no_grad():
        correct = (logits.argmax(-1).reshape(-1) == target.reshape(-1)).float()
        accuracy = (correct * weight).sum() / n_tokens
    metrics: dict[str, Tensor] = {
        "cross_entropy": cross_entropy.detach(),
        "bits_per_token": (cross_entropy / LN2).detach(),
        "accuracy": accuracy,
    }
    loss = Objective.add_aux_losses(cross_entropy, output, metrics)
    if output.extras.get("codes") is not None:
        metrics.update(code_usage(output.extras["codes"], model.config.codebook_size))
    return ObjectiveOutput(loss=loss, metrics=metrics, n_items=int(n_tokens), model_output=output)


@dataclass
class MegTextObjectiveConfig:
    """Configuration of the ``meg_text`` objective."""

    mode: Literal["full", "multi_phase"] = "full"  # one phase, or the three phases in turn
    phase_steps: list[int] = field(default_factory=lambda: [50000, 30000, 100000])  # batches
    mask_ratio: float = 0.5  # fraction of encoder tokens masked in phase 1
    meg_dropout: float = 0.1  # fraction of LM batches trained without the MEG span
    pad_id: int = 0  # padding id of the text (when the batch has no text_mask)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"phase_steps": [4, 4, 8]},
        "multi_phase": {"mode": "multi_phase"},
    }

    def __post_init__(self) -> None:
        if len(self.phase_steps) != 3 or min(self.phase_steps) < 0:
            raise ValueError(
                f"phase_steps: three batch counts >= 0 (MAE, RVQ, LM), got {self.phase_steps}"
            )
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if not 0.0 <= self.meg_dropout < 1.0:
            raise ValueError(f"meg_dropout must be in [0, 1), got {self.meg_dropout}")


@OBJECTIVES.register("meg_text", config=MegTextObjectiveConfig)
class MegTextObjective(Objective):
    """Language modelling of text given MEG, alone (``full``) or after MAE and RVQ phases."""

    name = "meg_text"
    input_kinds = ("signal_text",)
    output_kinds = ("text",)

    def __init__(self, config: MegTextObjectiveConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.int64))

    def phase(self) -> int:
        """Index into :data:`PHASES` of the current training batch."""
        if self.config.mode == "full":
            return 2
        seen = int(self.batches_seen)
        ends = torch.tensor(self.config.phase_steps).cumsum(0).tolist()
        return next((i for i, end in enumerate(ends[:2]) if seen < end), 2)

    def forward(
        self, model: nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        self.spec_of(model, spec)
        check_text_batch(batch, self.name)
        phase = self.phase()
        if self.training:
            self.batches_seen += 1
        if phase == 0:
            out = masked_autoencoding_loss(model, batch.x, self.config.mask_ratio)
        elif phase == 1:
            out = quantizer_loss(model, batch.x)
        else:
            use_meg = True
            if self.training and self.config.meg_dropout > 0:
                use_meg = bool(torch.rand(()) >= self.config.meg_dropout)
            out = language_model_loss(model, batch, pad_id=self.config.pad_id, use_meg=use_meg)
        out.metrics["phase"] = torch.tensor(float(phase + 1))
        return out


@dataclass
class MaskedAutoencodingConfig:
    """Configuration of the ``masked_autoencoding`` objective."""

    mask_ratio: float = 0.5  # fraction of encoder tokens masked

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")


@OBJECTIVES.register("masked_autoencoding", config=MaskedAutoencodingConfig)
class MaskedAutoencodingObjective(Objective):
    """Encoder pretraining of a ``meg_text`` model: reconstruct masked signal patches."""

    name = "masked_autoencoding"
    input_kinds = ("signal_text",)
    output_kinds = ("text",)

    def __init__(self, config: MaskedAutoencodingConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, model: nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        self.spec_of(model, spec)
        if batch.x.ndim != 3 or not batch.x.is_floating_point():
            raise ValueError("objective 'masked_autoencoding': batch.x must be a float signal")
        return masked_autoencoding_loss(model, batch.x, self.config.mask_ratio)
