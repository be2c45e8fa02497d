"""GPT2MEG_Cond: GPT2MEG with conditioning injected into every block.

After the MEG model zoo's conditional GPT2MEG (brain-gen, ``GPT2MEG_Cond`` with
``TransformerBlockCond``; Csaky et al. 2024, "Foundational GPT model for MEG"). Channels are
independent sequences over time sharing all weights, as in :class:`GPT2MEG_Trf`: codes
(B, C, T) run as B*C sequences and come back as logits (B, C, T, V), time t predicting t+1.

Conditioning: a per-time context ``c[b, t]`` (B, T, D) is the sum of the embeddings of the
condition tokens (``n_cond_tokens`` label streams, e.g. event labels, one table per stream), of
the subject id and of a projected global vector (B, d_global) (subject / trial descriptors). Each
block l receives ``h + W_l silu(c)`` (broadcast over channels) before its attention, so every
layer sees the condition through its own projection.

Deviations from the reference code:

- the injection is an added per-block projection (not an adaptive norm), which keeps the shared
  pre-norm :class:`~neurofm.layers.TransformerBlock` and its KV cache unchanged;
- blocks use RoPE over time and RMSNorm; argument names follow neurofm (``d_model``,
  ``n_layers``, ``n_heads``, ``n_chans``, ``d_global``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers import KVCache, make_norm
from neurofm.models.gpt2meg import channel_codes_spec
from neurofm.models.gpt2meg_variants._common import (
    ChannelCodesConfig,
    ContextEmbedding,
    extend_presets,
    init_weights,
    prepare,
    require,
    rope_blocks,
    token_embedding,
)
from neurofm.registry import MODELS
from neurofm.types import ModelOutput


@dataclass
class GPT2MEGCondConfig(ChannelCodesConfig):
    """Configuration of :class:`GPT2MEG_Cond`."""

    d_global: int = 0  # size of the global conditioning vector (0: none)

    PRESETS: ClassVar[dict[str, dict]] = extend_presets(
        tiny={"n_cond_tokens": 2, "d_global": 6},
        small={"n_conditions": 8, "n_cond_tokens": 2, "d_global": 16},
        base={"n_conditions": 8, "n_cond_tokens": 2, "d_global": 16},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, ("d_global",), lambda v: v >= 0, ">= 0 (0 disables it)")


@MODELS.register("gpt2meg_cond", config=GPT2MEGCondConfig, spec=channel_codes_spec)
class GPT2MEG_Cond(nn.Module):  # noqa: N801 (the family's published name)
    """GPT2MEG with condition tokens and a global vector injected in every block.

    Parameters
    ----------
    config : GPT2MEGCondConfig
    """

    def __init__(self, config: GPT2MEGCondConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.embedding = token_embedding(config, context=False)
        self.context = ContextEmbedding(
            "GPT2MEG_Cond",
            d,
            n_subjects=config.n_subjects,
            n_conditions=config.n_conditions,
            n_cond_tokens=config.n_cond_tokens,
            d_global=config.d_global,
        )
        self.inject = nn.ModuleList(nn.Linear(d, d) for _ in range(config.n_layers))
        self.blocks = rope_blocks(config)
        self.norm = make_norm(config.norm, d)
        self.head = nn.Linear(d, config.vocab_size, bias=False)
        init_weights(self, config.n_layers)

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: list[KVCache] | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits for every channel and time step.

        Parameters
        ----------
        x : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, d_model) float; with ``past``,
            the time steps following the cached ones.
        subject : LongTensor (B,), optional
        condition : LongTensor (B, n_cond_tokens, T) or (B, T) for one stream, optional
            Condition tokens aligned with the time axis of ``x``.
        global_embedding : Tensor (B, d_global), optional
            Subject / trial descriptors.
        channel_ids : LongTensor (B, C) or (C,), optional
            Default ``0 .. C-1``.
        past : list of KVCache, optional
            Per-block caches (batch B*C) from an earlier call, updated in place.
        use_cache : bool
            Return the caches in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``.
        """
        b, c, t, past = prepare("GPT2MEG_Cond", self.config, x, past, use_cache)
        h = self.embedding(x, channel_ids=channel_ids).reshape(b * c, t, -1)
        context = self.context(
            b, t, subject=subject, condition=condition, global_embedding=global_embedding
        )
        context = None if context is None else F.silu(context)  # (B, T or 1, D)
        for i, block in enumerate(self.blocks):
            if context is not None:
                h = (h.view(b, c, t, -1) + self.inject[i](context)[:, None]).view(b * c, t, -1)
            h = block(h, causal=True, cache=None if past is None else past[i])
        logits = self.head(self.norm(h)).view(b, c, t, -1)
        return ModelOutput(logits=logits, past=past if use_cache else None)
