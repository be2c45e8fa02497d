"""GPT2MEG_Trf: the GPT2MEG family on neurofm's blocks, its variants as config values.

After the MEG model zoo's GPT-2 forecasters (brain-gen; Csaky et al. 2024, "Foundational GPT
model for MEG"). Every (channel, time) cell is a token: code, channel-id and context embeddings
summed. With ``block="time"`` channels are independent sequences over time that share all
weights: a batch (B, C, T) runs as B*C sequences of length T and comes back as logits
(B, C, T, V), time t predicting the code at t+1 (when ``causal``).

The variants of the reference code are config values of this one class (registered names kept
as aliases, so configs and checkpoints that name them keep loading):

- ``mlp="moe"`` (``gpt2meg_moe``): block MLPs are top-k routed mixtures of experts
  (:class:`~neurofm.layers.MoEMLP`, Switch Transformer routing, Fedus et al. 2021,
  arXiv:2101.03961); every token is routed on its own, so the model stays exactly causal;
- ``block="channel_time"`` (``stgpt2meg``): each block first attends over the channels of the
  same time step, then over time within each channel (:class:`~neurofm.layers.SpatioTemporalBlock`,
  divided space-time attention as in TimeSformer, Bertasius et al. 2021, arXiv:2102.05095):
  channels exchange information at every layer, yet time t reads only times <= t;
- ``context_injection="every_block"`` (``gpt2meg_cond``): the context ``c`` (B, T, D), the sum of
  the subject, condition-stream and projected global embeddings, is not added to the input but
  before every block l as ``h + W_l silu(c)`` (broadcast over channels), so every layer sees the
  condition through its own projection.

Deviations from the reference code:

- pre-norm blocks with RoPE over time and RMSNorm (``norm``), a chosen MLP ``activation``, and a
  ``causal`` flag (False: a bidirectional encoder without cache);
- GPT-2's token table is replaced by :class:`~neurofm.layers.ChannelTokenEmbedding`; inputs are
  codes (B, C, T) or precomputed token embeddings (B, C, T, D);
- MoE dispatch is capacity-free (no token is dropped);
- the per-block conditioning is an added projection, not an adaptive norm, which keeps the shared
  block and its KV cache unchanged;
- STGPT2MEG has no positional encoding across channels (an unordered set identified by the
  channel-id embedding) and decodes incrementally with a KV cache (batch B*C) per block.

Checkpoints of the former ``GPT2MEGMoE`` (``gpt2meg_moe``) named each block's MLP ``moe``; they
load into ``mlp`` (see :func:`rename_moe_keys`).
"""

from __future__ import annotations

import re
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers import KVCache, make_norm
from neurofm.layers.ordinal import ARPast, seen_of
from neurofm.models.gpt2meg import parts
from neurofm.models.gpt2meg.config import GPT2MEGConfig, channel_codes_spec
from neurofm.registry import MODELS
from neurofm.types import ModelOutput

_OLD_MOE_KEY = re.compile(r"(blocks\.\d+\.)moe\.")


def rename_moe_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Load-state-dict pre-hook: rename ``blocks.<i>.moe.*`` (the MoE block of checkpoints saved
    before the MoE MLP became an option of ``TransformerBlock``) to ``blocks.<i>.mlp.*``."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = prefix + _OLD_MOE_KEY.sub(r"\1mlp.", key[len(prefix) :], count=1)
        if new != key:
            state_dict[new] = state_dict.pop(key)


@MODELS.register("gpt2meg_trf", config=GPT2MEGConfig, spec=channel_codes_spec)
class GPT2MEG_Trf(parts.LinearPathInit, nn.Module):  # noqa: N801 (the family's published name)
    """GPT2MEG on neurofm's blocks; codes (B, C, T) or embeddings (B, C, T, D) -> (B, C, T, V).

    Parameters
    ----------
    config : GPT2MEGConfig
    """

    def __init__(self, config: GPT2MEGConfig) -> None:
        super().__init__()
        self.config = config
        self.max_seq_len = config.max_seq_len
        every_block = config.context_injection == "every_block"
        self.embedding = parts.code_embedding(config, context=not every_block)
        if every_block:
            self.context = parts.context_embedding(config, type(self).__name__)
        self.inject = parts.injections(config)
        self.blocks = nn.ModuleList(parts.block(config) for _ in range(config.n_layers))
        self.norm = make_norm(config.norm, config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.ordinal = parts.ordinal_head(config)
        parts.init_weights(self, config.n_layers)
        self.register_load_state_dict_pre_hook(rename_moe_keys)

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: list[KVCache] | ARPast | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Logits for every channel and time step (next-code logits when ``causal``).

        Parameters
        ----------
        x : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, d_model) float (channel and
            context embeddings are still added); with ``past``, the time steps following the
            cached ones.
        subject : LongTensor (B,), optional
        condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
            Per-time labels aligned with ``x``.
        global_embedding : Tensor (B, d_global), optional
            Subject / trial descriptors.
        channel_ids : LongTensor (B, C) or (C,), optional
            Ids in ``[0, n_chans)``; default ``0 .. C-1``.
        past : list of KVCache or ARPast, optional
            Per-block caches (batch B*C) from an earlier call with ``use_cache=True``, updated in
            place (with the code history in an :class:`ARPast` when ``ar_order > 0``).
        use_cache : bool
            Return the caches in ``past`` (causal models only).

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``; with ``mlp="moe"`` the routing losses in
            ``aux_losses`` and ``extras["router"]`` (see :func:`parts.output`).
        """
        cfg = self.config
        b, c, t, layers, history = parts.start(type(self).__name__, cfg, x, past, use_cache)
        context = {"subject": subject, "condition": condition, "global_embedding": global_embedding}
        if self.inject is None:
            h = self.embedding(x, channel_ids=channel_ids, **context)  # (B, C, T, D)
            injected = None
        else:
            h = self.embedding(x, channel_ids=channel_ids)
            injected = self.context(b, t, **context)
            injected = None if injected is None else F.silu(injected)  # (B, T or 1, D)
        for i, block in enumerate(self.blocks):
            if injected is not None:
                h = h + self.inject[i](injected)[:, None]
            cache = None if layers is None else layers[i]
            if cfg.block == "time":  # channels as independent sequences
                h = block(h.reshape(b * c, t, -1), causal=cfg.causal, cache=cache)
            else:
                h = block(h, causal=cfg.causal, cache=cache)
            h = h.view(b, c, t, -1)
        h = self.norm(h)
        seen = seen_of(past)
        logits = parts.code_logits(self.head, self.ordinal, h, x, history, channel_ids, seen)
        return parts.output(cfg, logits, self.blocks, x, history, layers, use_cache, seen)


MODELS.alias("gpt2meg_moe", "gpt2meg_trf", defaults={"mlp": "moe"})
MODELS.alias("stgpt2meg", "gpt2meg_trf", defaults={"block": "channel_time"})
# the conditional model's sizes (the presets of the former GPT2MEGCondConfig for small / base)
MODELS.alias(
    "gpt2meg_cond",
    "gpt2meg_trf",
    defaults={
        "context_injection": "every_block",
        "n_conditions": 8,
        "n_cond_tokens": 2,
        "d_global": 16,
    },
)
