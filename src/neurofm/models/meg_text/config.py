"""Configuration of the MEG-to-text model (:class:`MegTextConfig`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from neurofm import checks


@dataclass
class MegTextConfig:
    """Configuration of :class:`~neurofm.models.meg_text.MegToText`."""

    n_chans: int = 208  # MEG channels C
    strides: list[int] = field(default_factory=lambda: [5, 2, 2, 2])  # stem strides per layer
    d_model: int = 768  # encoder width
    n_layers: int = 12  # encoder transformer blocks
    n_heads: int = 12  # encoder attention heads
    dropout: float = 0.0  # dropout in the encoder blocks
    quantize: bool = True  # feed the projector the residual-VQ codes (False: continuous features)
    n_quantizers: int = 8  # residual codebooks L
    codebook_size: int = 8192  # codes per codebook
    codebook_dim: int = 256  # size of a code vector
    commitment_weight: float = 0.25  # weight of the commitment loss
    entropy_weight: float = 0.1  # weight of the codebook-usage (diversity) loss
    dead_code_threshold: float = 2.0  # EMA usage under which a code is re-drawn (0: never)
    codebook_decay: float = 0.99  # EMA decay of the codebooks
    vocab_size: int = 32002  # text vocabulary (special tokens included)
    llm_path: str | None = None  # local folder of a pretrained causal LM (weights + tokenizer)
    llm_hidden: int = 4096  # hidden size of a randomly initialised LLaMA (no llm_path)
    llm_layers: int = 32  # layers of a randomly initialised LLaMA
    llm_heads: int = 32  # attention heads of a randomly initialised LLaMA
    llm_intermediate: int = 11008  # MLP size of a randomly initialised LLaMA
    max_positions: int = 4096  # longest prefix + text the LLM accepts
    llm_training: Literal["lora", "full", "frozen"] = "lora"  # how the LLM's own weights learn
    lora_r: int = 8  # LoRA rank
    lora_alpha: int = 16  # LoRA scaling numerator
    lora_dropout: float = 0.05  # dropout on the LoRA branch
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])  # adapted
    lora_modules_to_save: list[str] = field(
        default_factory=lambda: ["embed_tokens", "lm_head"]
    )  # trained in full next to LoRA (the new <meg> tokens need their embeddings)
    distill_hidden: int | None = None  # width of a teacher's LLM: adds distill_projection

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "strides": [2, 2],
            "d_model": 32,
            "n_layers": 2,
            "n_heads": 2,
            "n_quantizers": 2,
            "codebook_size": 16,
            "codebook_dim": 16,
            "vocab_size": 64,
            "llm_hidden": 64,
            "llm_layers": 2,
            "llm_heads": 4,
            "llm_intermediate": 128,
            "max_positions": 256,
            "lora_dropout": 0.0,
        },
        "small": {
            "strides": [2, 2, 2],
            "d_model": 256,
            "n_layers": 4,
            "n_heads": 4,
            "n_quantizers": 4,
            "codebook_size": 1024,
            "codebook_dim": 64,
            "vocab_size": 4096,
            "llm_hidden": 256,
            "llm_layers": 4,
            "llm_heads": 4,
            "llm_intermediate": 688,
            "max_positions": 1024,
        },
        "base": {},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "d_model", "n_layers", "n_heads", "n_quantizers")
        checks.positive(self, "codebook_size", "codebook_dim", "vocab_size", "llm_hidden")
        checks.positive(self, "llm_layers", "llm_heads", "llm_intermediate", "max_positions")
        checks.positive(self, "lora_r", "lora_alpha")
        checks.optional_positive(self, "distill_hidden")
        checks.divides(self, "n_heads", "d_model")
        checks.even_head_size(self)
        checks.fraction(self, "dropout", "lora_dropout")
        checks.non_negative(self, "commitment_weight", "entropy_weight", "dead_code_threshold")
        checks.fraction(self, "codebook_decay")
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be a non-empty list of integers >= 1: {self.strides}")
        if self.llm_hidden % self.llm_heads:
            raise ValueError(f"llm_heads={self.llm_heads} must divide llm_hidden={self.llm_hidden}")
        if self.vocab_size <= 6:
            raise ValueError(f"vocab_size must exceed the 6 special tokens, got {self.vocab_size}")
        if self.llm_training == "lora" and not self.lora_targets:
            raise ValueError("lora_targets: name at least one module (e.g. q_proj, v_proj)")

    @property
    def patch(self) -> int:
        """Signal samples per MEG token (the product of the stem strides)."""
        return math.prod(self.strides)
