"""Knowledge distillation of a MEG-to-text model from a trained teacher run (``meg_text_distill``).

The student (a ``meg_text`` model, usually smaller) reads the same batch as a frozen teacher
(the final model of a ``meg_text`` run folder, ``teacher``) and minimises

    ce_weight * CE(student, text)
    + kl_weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))
    + hidden_weight * MSE(distill_projection(student hidden), teacher hidden)

over the real text tokens, plus the student's quantizer losses. The hidden-state projection is
the student's ``distill_projection`` (set ``model.distill_hidden`` to the teacher's LLM width).
Teacher and student share the text vocabulary: ``neurofm fit`` gives the student the teacher
run's text tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.errors import ConfigError
from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.objectives.meg_text import check_text_batch, language_model_loss, text_mask
from neurofm.registry import MODELS, OBJECTIVES, create
from neurofm.types import Batch, ModelSpec


def load_teacher(run_dir: str | Path) -> nn.Module:
    """The final model of a ``meg_text`` run folder, frozen, in eval mode."""
    from safetensors.torch import load_file

    folder = Path(run_dir) / "model"
    config_path = folder / "config.json"
    try:
        meta = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"objective.teacher: {str(run_dir)!r} holds no trained model ({config_path}: {err})"
        ) from err
    if meta.get("name") != "meg_text":
        raise ConfigError(f"objective.teacher: {config_path} holds a {meta.get('name')!r} model")
    teacher = create(MODELS, {"name": meta["name"], **meta["config"]})
    teacher.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return teacher.eval().requires_grad_(False)


@dataclass
class MegTextDistillConfig:
    """Configuration of the ``meg_text_distill`` objective."""

    teacher: str = ""  # run folder of the teacher (a trained meg_text run)
    temperature: float = 2.0  # softening of both distributions in the KL term
    ce_weight: float = 1.0  # weight of the student's own cross-entropy
    kl_weight: float = 1.0  # weight of the logit KL to the teacher
    hidden_weight: float = 1.0  # weight of the hidden-state MSE
    pad_id: int = 0  # padding id of the text (when the batch has no text_mask)

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}}

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ValueError("teacher: the run folder of a trained meg_text model is required")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in ("ce_weight", "kl_weight", "hidden_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@OBJECTIVES.register("meg_text_distill", config=MegTextDistillConfig)
class MegTextDistillObjective(Objective):
    """Student cross-entropy + logit KL + hidden-state MSE to a frozen teacher."""

    name = "meg_text_distill"
    input_kinds = ("signal_text",)
    output_kinds = ("text",)

    def __init__(self, config: MegTextDistillConfig) -> None:
        super().__init__()
        self.config = config
        # kept out of the module tree: not trained, not in the run's checkpoints
        self._teacher = [load_teacher(config.teacher)]

    def forward(
        self, model: nn.Module, batch: Batch, *, spec: ModelSpec | None = None
    ) -> ObjectiveOutput:
        self.spec_of(model, spec)
        check_text_batch(batch, self.name)
        cfg = self.config
        teacher = self._teacher[0].to(batch.x.device)
        student = language_model_loss(model, batch, pad_id=cfg.pad_id)
        with torch.no_grad():
            taught = teacher(batch.x, batch.target)
        s_logits, t_logits = student.model_output.logits.float(), taught.logits.float()
        if s_logits.shape != t_logits.shape:
            raise ValueError(
                f"objective {self.name!r}: student logits {tuple(s_logits.shape)} and teacher "
                f"logits {tuple(t_logits.shape)} differ (the vocabularies must agree)"
            )
        mask = text_mask(batch, cfg.pad_id).float()
        n_tokens = mask.sum().clamp_min(1.0)
        t = cfg.temperature
        kl = F.kl_div(
            F.log_softmax(s_logits / t, dim=-1),
            F.log_softmax(t_logits / t, dim=-1),
            log_target=True,
            reduction="none",
        ).sum(-1)
        kl = (kl * mask).sum() / n_tokens * t * t
        projection = getattr(model, "distill_projection", None)
        if projection is None:
            raise ValueError(
                f"objective {self.name!r}: set model.distill_hidden to the teacher's LLM width "
                f"({taught.extras['hidden'].shape[-1]}) for the hidden-state loss"
            )
        hidden = projection(student.model_output.extras["hidden"].float())
        hidden_mse = ((hidden - taught.extras["hidden"].float()).square().mean(-1) * mask).sum()
        hidden_mse = hidden_mse / n_tokens
        loss = cfg.ce_weight * (student.loss) + cfg.kl_weight * kl + cfg.hidden_weight * hidden_mse
        metrics: dict[str, Tensor] = {
            **student.metrics,
            "kl_to_teacher": kl.detach(),
            "hidden_mse": hidden_mse.detach(),
        }
        return ObjectiveOutput(
            loss=loss, metrics=metrics, n_items=student.n_items, model_output=student.model_output
        )
