"""Pieces shared by the GPT2MEG variants: the base config, layers, weight init, forward checks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm.layers import ChannelTokenEmbedding, KVCache, TransformerBlock
from neurofm.models.gpt2meg import _PRESETS as BASE_PRESETS
from neurofm.models.gpt2meg import _init_weights


def require(cfg: object, names: Iterable[str], ok: Callable[[float], bool], rule: str) -> None:
    """Raise ``ValueError("<name> must be <rule>, got <value>")`` for the first field not ``ok``."""
    for name in names:
        value = getattr(cfg, name)
        if not ok(value):
            raise ValueError(f"{name} must be {rule}, got {value}")


def extend_presets(*, tiny: dict, small: dict, base: dict) -> dict[str, dict]:
    """``BASE_PRESETS`` with each preset updated by the fields given under its name."""
    extra = {"tiny": tiny, "small": small, "base": base}
    return {name: {**preset, **extra[name]} for name, preset in BASE_PRESETS.items()}


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
        positive = ("vocab_size", "n_chans", "d_model", "n_layers", "n_heads", "max_seq_len")
        require(self, (*positive, "n_cond_tokens"), lambda v: v > 0, "positive")
        require(self, ("n_subjects", "n_conditions"), lambda v: v >= 0, ">= 0 (0 disables it)")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"head size d_model/n_heads={self.d_model // self.n_heads} must be even (RoPE)"
            )
        require(self, ("dropout",), lambda v: 0.0 <= v < 1.0, "in [0, 1)")


def token_embedding(
    cfg: ChannelCodesConfig, *, channels: bool = True, context: bool = True
) -> ChannelTokenEmbedding:
    """The code embedding of ``cfg``, with the channel-id table and the subject / condition
    tables unless ``channels`` / ``context`` is False."""
    return ChannelTokenEmbedding(
        cfg.vocab_size,
        cfg.d_model,
        n_chans=cfg.n_chans if channels else None,
        n_subjects=cfg.n_subjects if context else None,
        n_conditions=cfg.n_conditions if context else None,
        n_cond_tokens=cfg.n_cond_tokens if context else 1,
        dropout=cfg.dropout,
    )


def rope_blocks(cfg: ChannelCodesConfig) -> nn.ModuleList:
    """``n_layers`` pre-norm RoPE :class:`~neurofm.layers.TransformerBlock` of ``cfg``."""
    return nn.ModuleList(
        TransformerBlock(
            cfg.d_model,
            cfg.n_heads,
            activation=cfg.activation,
            norm=cfg.norm,
            dropout=cfg.dropout,
            rotary=True,
            rope_base=cfg.rope_base,
        )
        for _ in range(cfg.n_layers)
    )


def init_weights(model: nn.Module, n_layers: int) -> None:
    """GPT-2 init: N(0, 0.02) weights, zero biases, residual output projections scaled down."""
    model.apply(_init_weights)
    for name, p in model.named_parameters():
        if name.endswith(("out_proj.weight", "fc_out.weight")):
            nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layers))


def prepare(
    who: str,
    cfg: ChannelCodesConfig,
    x: Tensor,
    past: list[KVCache] | None,
    use_cache: bool,
) -> tuple[int, int, int, list[KVCache] | None]:
    """Check the input of a forward call; return ``B, C, T`` and the per-layer caches to use.

    ``x`` must be codes (B, C, T) int or embeddings (B, C, T, d_model) float. The caches are new
    ones when ``use_cache`` and no ``past``; their number and the time steps they would hold
    (cached + ``T``) are checked against ``n_layers`` and ``max_seq_len``.
    """
    codes = x.dim() == 3 and not x.is_floating_point()
    embeddings = x.dim() == 4 and x.is_floating_point() and x.shape[-1] == cfg.d_model
    if not (codes or embeddings):
        raise ValueError(
            f"{who}: expected codes (B, C, T) int64 or embeddings (B, C, T, {cfg.d_model}) float, "
            f"got {tuple(x.shape)} {x.dtype}"
        )
    b, c, t = x.shape[:3]
    if past is None and use_cache:
        past = [KVCache(cfg.max_seq_len) for _ in range(cfg.n_layers)]
    if past is not None and len(past) != cfg.n_layers:
        raise ValueError(f"{who}: past holds {len(past)} caches for {cfg.n_layers} layers")
    offset = 0 if past is None else past[0].offset
    if offset + t > cfg.max_seq_len:
        raise ValueError(f"{who}: {offset + t} time steps exceed max_seq_len={cfg.max_seq_len}")
    return b, c, t, past


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
