"""Pieces shared by the GPT2MEG variants: the base config, weight init, caches, context input."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm.layers import KVCache

BASE_PRESETS: dict[str, dict] = {
    "tiny": {
        "vocab_size": 64,
        "n_chans": 8,
        "n_subjects": 2,
        "n_conditions": 4,
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 2,
        "max_seq_len": 1024,
    },
    "small": {
        "vocab_size": 256,
        "n_chans": 306,
        "n_subjects": 64,
        "d_model": 256,
        "n_layers": 4,
        "n_heads": 4,
        "max_seq_len": 1024,
    },
    "base": {
        "vocab_size": 256,
        "n_chans": 306,
        "n_subjects": 64,
        "d_model": 768,
        "n_layers": 12,
        "n_heads": 12,
        "max_seq_len": 2048,
    },
}


@dataclass
class ChannelCodesConfig:
    """Fields every GPT2MEG variant shares (codes (B, C, T) in, logits (B, C, T, V) out)."""

    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 306  # size of the channel-id vocabulary
    n_subjects: int = 0  # number of subject ids (0: no subject embedding)
    n_conditions: int = 0  # condition labels per stream (0: no conditioning)
    n_cond_tokens: int = 1  # condition streams, condition shape (B, n_cond_tokens, T)
    d_model: int = 256  # embedding / residual width
    n_layers: int = 4  # blocks
    n_heads: int = 4  # attention heads (must divide d_model; head size even for RoPE)
    dropout: float = 0.0  # dropout in attention, MLP and embeddings
    max_seq_len: int = 1024  # longest time axis (context + generated), in samples
    activation: Literal["gelu", "squared_relu", "swiglu"] = "gelu"  # MLP non-linearity
    norm: Literal["rms", "layer"] = "rms"  # normalisation before each branch
    rope_base: float = 10000.0  # RoPE wavelength base

    PRESETS: ClassVar[dict[str, dict]] = BASE_PRESETS

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "n_chans",
            "d_model",
            "n_layers",
            "n_heads",
            "max_seq_len",
            "n_cond_tokens",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("n_subjects", "n_conditions"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 disables it), got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"head size d_model/n_heads={self.d_model // self.n_heads} must be even (RoPE)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def init_weights(model: nn.Module, n_layers: int) -> None:
    """GPT-2 init: N(0, 0.02) weights, zero biases, residual output projections scaled down."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    for name, p in model.named_parameters():
        if name.endswith(("out_proj.weight", "fc_out.weight")):
            nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layers))


def check_input(who: str, x: Tensor, d_model: int) -> None:
    """Raise unless ``x`` is codes (B, C, T) int or embeddings (B, C, T, d_model) float."""
    codes = x.dim() == 3 and not x.is_floating_point()
    embeddings = x.dim() == 4 and x.is_floating_point() and x.shape[-1] == d_model
    if not (codes or embeddings):
        raise ValueError(
            f"{who}: expected codes (B, C, T) int64 or embeddings (B, C, T, {d_model}) float, "
            f"got {tuple(x.shape)} {x.dtype}"
        )


def caches(
    who: str,
    past: list[KVCache] | None,
    use_cache: bool,
    n_layers: int,
    max_seq_len: int,
    n_new: int,
) -> list[KVCache] | None:
    """The per-layer caches to use (new ones when ``use_cache`` and no ``past``), length-checked."""
    if past is None and use_cache:
        past = [KVCache(max_seq_len) for _ in range(n_layers)]
    if past is not None and len(past) != n_layers:
        raise ValueError(f"{who}: past holds {len(past)} caches for {n_layers} layers")
    offset = 0 if past is None else past[0].offset
    if offset + n_new > max_seq_len:
        raise ValueError(f"{who}: {offset + n_new} time steps exceed max_seq_len={max_seq_len}")
    return past


def check_ids(who: str, what: str, ids: Tensor, size: int) -> None:
    """Raise unless ``ids`` are integers in ``[0, size)``, naming ``what`` and the range seen."""
    if ids.is_floating_point():
        raise ValueError(f"{who}: {what} must be integer ids, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ValueError(
            f"{who}: {what} out of range [0, {size}): min {int(ids.min())}, max {int(ids.max())}"
        )


class ContextEmbedding(nn.Module):
    """Per-time context (B, T, D): subject + condition streams + projected global vector.

    Parameters
    ----------
    who : str
        Model name used in error messages.
    d_model : int
        Output size ``D``.
    n_subjects : int
        Subject ids (0 disables the subject table).
    n_conditions : int
        Labels per condition stream (0 disables conditioning).
    n_cond_tokens : int
        Condition streams, each with its own table; their embeddings are summed.
    d_global : int
        Size of a global vector (B, d_global) projected to ``D`` (0 disables it).
    """

    def __init__(
        self,
        who: str,
        d_model: int,
        *,
        n_subjects: int,
        n_conditions: int,
        n_cond_tokens: int,
        d_global: int = 0,
    ) -> None:
        super().__init__()
        self.who = who
        self.n_conditions = n_conditions
        self.n_cond_tokens = n_cond_tokens
        self.subject = nn.Embedding(n_subjects, d_model) if n_subjects else None
        self.condition = (
            nn.Embedding(n_conditions * n_cond_tokens, d_model) if n_conditions else None
        )
        self.global_proj = nn.Linear(d_global, d_model) if d_global else None

    def forward(
        self,
        b: int,
        t: int,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
    ) -> Tensor | None:
        """Sum of the given context embeddings, (B, T, D) or (B, 1, D); None when none given.

        Parameters
        ----------
        b, t : int
            Batch size and number of time steps of the input.
        subject : LongTensor (B,), optional
        condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
        global_embedding : Tensor (B, d_global), optional
        """
        parts = []
        if subject is not None:
            if self.subject is None:
                raise ValueError(f"{self.who}: subject given but n_subjects is 0")
            check_ids(self.who, "subject", subject, self.subject.num_embeddings)
            parts.append(self.subject(subject.reshape(b))[:, None])
        if condition is not None:
            if self.condition is None:
                raise ValueError(f"{self.who}: condition given but n_conditions is 0")
            given = tuple(condition.shape)
            if condition.dim() == 2:
                condition = condition.unsqueeze(1)
            if tuple(condition.shape) != (b, self.n_cond_tokens, t):
                raise ValueError(
                    f"{self.who}: condition must be ({b}, {self.n_cond_tokens}, {t})"
                    + (f" or ({b}, {t})" if self.n_cond_tokens == 1 else "")
                    + f", got {given}"
                )
            check_ids(self.who, "condition", condition, self.n_conditions)
            stream = torch.arange(self.n_cond_tokens, device=condition.device)[None, :, None]
            parts.append(self.condition(condition + stream * self.n_conditions).sum(dim=1))
        if global_embedding is not None:
            if self.global_proj is None:
                raise ValueError(f"{self.who}: global_embedding given but d_global is 0")
            if tuple(global_embedding.shape) != (b, self.global_proj.in_features):
                raise ValueError(
                    f"{self.who}: global_embedding must be ({b}, {self.global_proj.in_features}),"
                    f" got {tuple(global_embedding.shape)}"
                )
            parts.append(self.global_proj(global_embedding)[:, None])
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out
