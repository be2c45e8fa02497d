"""A window classifier on the trunk of a pretrained forecaster (``backbone_classifier``).

A forecaster over channel codes trained by ``neurofm fit`` (e.g. ``gpt2meg_trf`` or ``gpt2meg``)
is read from its run folder together with its tokenizer. A window (B, C, T) of float signal is
tokenized, run through the forecaster, and the final hidden states (the input of its ``head``,
(B, C, T, D)) are averaged over channels and time; dropout and a linear layer give the class
logits (B, n_classes). The forecaster's own head is not used.

Fine-tuning (``finetune``):

- ``frozen``: the backbone's parameters are fixed (no gradients, kept in eval mode); only the
  linear head learns;
- ``lora``: low-rank adapters (Hu et al. 2021, arXiv:2106.09685) are added by ``peft`` to every
  linear layer of the backbone's blocks; only they and the head learn (``peft`` is imported only
  then: ``pip install neurofm[text]``);
- ``full``: every parameter of the trunk that the pooled hidden states depend on learns (its
  own head and the tables of context the classifier does not pass stay fixed).

Windows longer than the backbone's ``max_seq_len`` are cut into consecutive pieces of at most
``max_seq_len`` samples (all samples are used; the last piece may be shorter) whose hidden
states are pooled together.

Without a run folder (``backbone=None``) the trunk is a fresh ``backbone_model`` at
``backbone_preset`` and the codes come from a fixed mu-law companding of ``x / input_scale``
(clipped to [-1, 1]): a randomly initialised baseline, and what the contract tests build.

Reading the run folder: ``model/config.json`` (registered name and config), ``model/
model.safetensors`` and ``tokenizer/`` (the layout ``neurofm fit`` writes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm import checks
from neurofm.errors import CheckpointError
from neurofm.registry import MODELS, create
from neurofm.types import ModelOutput, ModelSpec

FINETUNE_MODES = ("frozen", "lora", "full")


@dataclass
class BackboneClassifierConfig:
    """Configuration of :class:`BackboneClassifier`."""

    n_chans: int = 64  # input channels C (at most the backbone's n_chans)
    n_classes: int = 2  # number of classes
    backbone: str | None = None  # run folder of a forecaster over channel codes (neurofm fit)
    backbone_model: str = "gpt2meg_trf"  # without a run folder: the fresh trunk's family ...
    backbone_preset: str = "tiny"  # ... and preset
    vocab_size: int = 256  # without a run folder: mu-law levels of the codes
    input_scale: float = 4.0  # without a run folder: |x| mapped to the end codes
    finetune: Literal["frozen", "lora", "full"] = "frozen"
    lora_rank: int = 4  # rank of the adapters (finetune="lora")
    dropout: float = 0.1  # dropout on the pooled features

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "n_classes": 3,
            "vocab_size": 32,
            "finetune": "full",
            "dropout": 0.0,
        },
        "small": {},
        "base": {"finetune": "lora", "lora_rank": 8},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "vocab_size", "input_scale", "lora_rank")
        checks.at_least(self, 2, "n_classes")
        checks.fraction(self, "dropout")
        if self.finetune not in FINETUNE_MODES:
            raise ValueError(
                f"finetune must be one of {', '.join(FINETUNE_MODES)}, got {self.finetune!r}"
            )
        if self.backbone is not None and not (Path(self.backbone) / "model").is_dir():
            raise ValueError(
                f"backbone: {self.backbone!r} is not a run folder of neurofm fit (no model/)"
            )


def read_backbone(run_dir: str | Path) -> tuple[nn.Module, Any]:
    """The model (eval mode) and tokenizer (None when it has none) of a ``neurofm fit`` run."""
    from safetensors.torch import load_file

    from neurofm.tokenizers.base import load_tokenizer

    folder = Path(run_dir)
    path = folder / "model" / "config.json"
    try:
        meta = json.loads(path.read_text())
        name, config = meta["name"], meta["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not a saved model config ({err})") from err
    model = create(MODELS, {"name": name, **config}, key="model")
    weights = folder / "model" / "model.safetensors"
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except (OSError, RuntimeError) as err:
        raise CheckpointError(f"{weights}: cannot load the backbone's weights: {err}") from err
    tokenizer = load_tokenizer(folder / "tokenizer") if (folder / "tokenizer").is_dir() else None
    return model.eval(), tokenizer


@MODELS.register(
    "backbone_classifier",
    config=BackboneClassifierConfig,
    spec=ModelSpec(inputs="signal", outputs="class_logits"),
)
class BackboneClassifier(nn.Module):
    """Pretrained forecaster trunk + pooled linear head: (B, C, T) signal -> (B, n_classes)."""

    def __init__(self, config: BackboneClassifierConfig) -> None:
        super().__init__()
        self.config = config
        if config.backbone is None:
            trunk = create(
                MODELS,
                {
                    "name": config.backbone_model,
                    "preset": config.backbone_preset,
                    "n_chans": config.n_chans,
                    "vocab_size": config.vocab_size,
                },
                key="backbone_model",
            )
            self.tokenizer = None
        else:
            trunk, self.tokenizer = read_backbone(config.backbone)
            if self.tokenizer is None:
                raise ValueError(f"backbone: run {config.backbone!r} has no tokenizer (codes)")
        head = getattr(trunk, "head", None)
        if not isinstance(head, nn.Linear):
            raise ValueError(
                f"backbone: {type(trunk).__name__} has no linear 'head' reading its hidden "
                "states (B, C, T, D); use a forecaster over channel codes such as gpt2meg_trf"
            )
        n_trunk = getattr(trunk.config, "n_chans", config.n_chans)
        if config.n_chans > n_trunk:
            raise ValueError(
                f"n_chans: {config.n_chans} channels, but the backbone reads {n_trunk}"
            )
        self.max_len = getattr(trunk.config, "max_seq_len", None)
        self.backbone = trunk
        self.dropout = nn.Dropout(config.dropout)
        self.classify = nn.Linear(head.in_features, config.n_classes)
        self._hidden: list[Tensor] = []
        head.register_forward_pre_hook(self._keep_hidden)
        if config.finetune == "lora":
            self._add_adapters()
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(
                config.finetune == "full" or (config.finetune == "lora" and "lora_" in name)
            )
        if config.finetune == "full":
            self._freeze_unread()

    def _freeze_unread(self) -> None:
        """Fix the trunk's parameters the pooled hidden states do not depend on (its own head,
        tables of context the classifier never passes), found by one backward pass on a
        two-step window of zero codes."""
        codes = torch.zeros(1, self.config.n_chans, 2, dtype=torch.long)
        self._hidden.clear()
        self.backbone(codes)
        self._hidden.pop().sum().backward()
        self._hidden.clear()
        for p in self.backbone.parameters():
            if p.grad is None:
                p.requires_grad_(False)
            p.grad = None

    def _keep_hidden(self, module: nn.Module, args: tuple) -> None:
        self._hidden.append(args[0])

    def _add_adapters(self) -> None:
        """LoRA adapters (``peft``) on every linear layer inside the backbone's blocks."""
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as err:
            raise ImportError("finetune='lora' needs peft: pip install 'neurofm[text]'") from err
        targets = [
            name
            for name, m in self.backbone.named_modules()
            if isinstance(m, nn.Linear) and name.split(".")[0] in ("blocks", "gpt", "transformer")
        ]
        if not targets:
            raise ValueError(
                f"finetune='lora': {type(self.backbone).__name__} has no linear layer in its "
                "blocks to adapt"
            )
        lora = LoraConfig(
            r=self.config.lora_rank,
            lora_alpha=2 * self.config.lora_rank,
            target_modules=targets,
            lora_dropout=0.0,
        )
        self.backbone = inject_adapter_in_model(lora, self.backbone)

    def train(self, mode: bool = True) -> BackboneClassifier:
        """As ``nn.Module.train``; a frozen backbone stays in eval mode (no dropout)."""
        super().train(mode)
        if self.config.finetune == "frozen":
            self.backbone.eval()
        return self

    def codes(self, x: Tensor) -> Tensor:
        """Codes (B, C, T) of the signal ``x`` (B, C, T): the run's tokenizer, or mu-law."""
        if self.tokenizer is not None:
            return torch.as_tensor(self.tokenizer.encode(x.detach().cpu()).codes).to(x.device)
        v, mu = self.config.vocab_size, self.config.vocab_size - 1
        y = (x / self.config.input_scale).clamp(-1.0, 1.0)
        y = torch.sign(y) * torch.log1p(mu * y.abs()) / math.log1p(mu)
        return ((y + 1) / 2 * (v - 1)).round().long().clamp(0, v - 1)

    def features(self, x: Tensor) -> Tensor:
        """Hidden states of the backbone averaged over channels, time and pieces: (B, D)."""
        if x.ndim != 3 or not x.dtype.is_floating_point:
            raise ValueError(
                f"backbone_classifier: expected a float signal (B, C, T), got "
                f"{tuple(x.shape)} {x.dtype}"
            )
        if x.shape[1] != self.config.n_chans:
            raise ValueError(
                f"backbone_classifier: {x.shape[1]} channels, n_chans={self.config.n_chans}"
            )
        codes = self.codes(x)
        step = self.max_len or codes.shape[-1]
        total, n = 0, 0
        for start in range(0, codes.shape[-1], step):
            piece = codes[..., start : start + step]
            self._hidden.clear()
            with torch.set_grad_enabled(
                torch.is_grad_enabled() and self.config.finetune != "frozen"
            ):
                self.backbone(piece)
            hidden = self._hidden[-1]  # (B, C, t, D)
            self._hidden.clear()
            total = total + hidden.reshape(hidden.shape[0], -1, hidden.shape[-1]).sum(dim=1)
            n += hidden[0].numel() // hidden.shape[-1]
        return total / n

    def forward(self, x: Tensor) -> ModelOutput:
        """Class logits (B, n_classes) of the windows ``x`` (B, C, T)."""
        return ModelOutput(logits=self.classify(self.dropout(self.features(x))))
