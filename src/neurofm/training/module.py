"""FitModule: the generic LightningModule (a registered model + an objective + AdamW).

Lightning is only the system layer: the model is a plain ``nn.Module`` and the objective owns the
loss and its metrics. Train metrics are logged per step as ``train/<name>`` (with
``train/grad_norm``, the gradient norm before any clipping), validation metrics
per epoch as ``val/<name>`` (averaged over batches weighted by their item counts).
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn

from neurofm.errors import TrainingError
from neurofm.objectives.base import Objective, ObjectiveOutput
from neurofm.registry import model_spec
from neurofm.training.config import OptimConfig
from neurofm.types import Batch


class WarmupCosine:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to ``min_ratio`` (or constant).

    A callable object rather than a closure so that its fields travel in the scheduler's
    ``state_dict`` as plain numbers.
    """

    def __init__(
        self, *, warmup_steps: int, total_steps: int, min_ratio: float, cosine: bool
    ) -> None:
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_ratio = float(min_ratio)
        self.cosine = bool(cosine)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if not self.cosine:
            return 1.0
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices and conv kernels, none on biases, norms and 1-D tensors."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class FitModule(pl.LightningModule):
    """Train ``model`` with ``objective`` and AdamW + warm-up/cosine from ``optim``.

    Parameters
    ----------
    model : nn.Module
        A registered model.
    objective : Objective
        A registered objective; ``objective(model, batch)`` gives the loss.
    optim : OptimConfig
        Optimizer and schedule settings.
    """

    def __init__(self, *, model: nn.Module, objective: Objective, optim: OptimConfig) -> None:
        super().__init__()
        self.model = model
        self.objective = objective
        self.optim = optim
        self.spec = model_spec(model)

    def forward(self, batch: Batch) -> ObjectiveOutput:
        return self.objective(self.model, batch, spec=self.spec)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out = self(batch)
        if not bool(torch.isfinite(out.loss)):
            raise TrainingError(
                f"non-finite training loss {out.loss.item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); training stopped, the last "
                "complete checkpoint is kept (lower optim.lr or set trainer.gradient_clip_val)"
            )
        n = len(batch)
        self.log(
            "train/loss",
            out.loss.detach(),
            on_step=True,
            on_epoch=False,
            prog_bar=True,
            batch_size=n,
        )
        for name, value in out.metrics.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, batch_size=n)
        return out.loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [
            p.grad.detach().float().norm() for p in self.model.parameters() if p.grad is not None
        ]
        if grads:
            norm = torch.linalg.vector_norm(torch.stack(grads))
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self(batch)
        n = out.n_items
        self.log(
            "val/loss",
            out.loss.detach(),
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=n,
            sync_dist=True,
        )
        for name, value in out.metrics.items():
            self.log(
                f"val/{name}", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True
            )

    def configure_optimizers(self) -> dict:
        optim = self.optim
        optimizer = torch.optim.AdamW(
            parameter_groups(self.model, optim.weight_decay),
            lr=optim.lr,
            betas=tuple(optim.betas),
            eps=optim.eps,
        )
        total = int(self.trainer.estimated_stepping_batches)
        factor = WarmupCosine(
            warmup_steps=optim.warmup_steps,
            total_steps=total,
            min_ratio=optim.min_lr_ratio,
            cosine=optim.schedule == "cosine",
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }
