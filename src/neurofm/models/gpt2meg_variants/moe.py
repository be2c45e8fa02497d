"""GPT2MEG-MoE: GPT2MEG whose block MLPs are top-k routed mixtures of experts.

After the MEG model zoo's mixture-of-experts GPT2MEG variant (brain-gen; Csaky et al. 2024,
"Foundational GPT model for MEG") with the routing of the Switch Transformer (Fedus et al. 2021,
arXiv:2101.03961). Channels are independent sequences over time sharing all weights: codes
(B, C, T) run as B*C sequences and come back as logits (B, C, T, V), time t predicting t+1.
Every (channel, time) token is routed on its own, so the model stays exactly causal.

``ModelOutput.aux_losses["load_balance"]`` is ``load_balance_weight`` times the Switch
load-balancing loss averaged over blocks (and ``"router_z"`` the weighted router z-loss when
``router_z_weight > 0``); ``extras["router"]`` holds the unweighted averages for logging.

Deviations from the reference code:

- capacity-free dispatch (no token is dropped), see :mod:`neurofm.layers.moe`;
- RoPE over time, RMSNorm, neurofm argument names (``d_model``, ``n_layers``, ``n_heads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from neurofm.layers import KVCache, make_norm
from neurofm.layers.moe import MoEBlock
from neurofm.models.gpt2meg import channel_codes_spec
from neurofm.models.gpt2meg_variants._common import (
    ChannelCodesConfig,
    extend_presets,
    init_weights,
    prepare,
    require,
    token_embedding,
)
from neurofm.registry import MODELS
from neurofm.types import ModelOutput


@dataclass
class GPT2MEGMoEConfig(ChannelCodesConfig):
    """Configuration of :class:`GPT2MEGMoE`."""

    n_experts: int = 8  # experts per MoE layer
    top_k: int = 2  # experts each token is routed to
    d_hidden: int = 0  # hidden size of each expert (0: the MLP default for the activation)
    load_balance_weight: float = 0.01  # weight of the Switch load-balancing loss
    router_z_weight: float = 0.0  # weight of the router z-loss (0: not added)

    PRESETS: ClassVar[dict[str, dict]] = extend_presets(
        tiny={"n_experts": 4, "top_k": 2},
        small={"n_experts": 8, "top_k": 2, "d_hidden": 512},
        base={"n_experts": 8, "top_k": 2, "d_hidden": 1536},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, ("n_experts",), lambda v: v >= 1, ">= 1")
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k={self.top_k} must be in [1, n_experts={self.n_experts}]")
        require(self, ("d_hidden",), lambda v: v >= 0, ">= 0 (0: default)")
        require(self, ("load_balance_weight", "router_z_weight"), lambda v: v >= 0, ">= 0")


@MODELS.register("gpt2meg_moe", config=GPT2MEGMoEConfig, spec=channel_codes_spec)
class GPT2MEGMoE(nn.Module):
    """GPT2MEG with mixture-of-experts MLPs; codes (B, C, T) -> logits (B, C, T, V).

    Parameters
    ----------
    config : GPT2MEGMoEConfig
    """

    def __init__(self, config: GPT2MEGMoEConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = token_embedding(config)
        self.blocks = nn.ModuleList(
            MoEBlock(
                config.d_model,
                config.n_heads,
                n_experts=config.n_experts,
                top_k=config.top_k,
                d_hidden=config.d_hidden or None,
                activation=config.activation,
                norm=config.norm,
                dropout=config.dropout,
                rope_base=config.rope_base,
            )
            for _ in range(config.n_layers)
        )
        self.norm = make_norm(config.norm, config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self, config.n_layers)

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: list[KVCache] | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits for every channel and time step, plus the routing losses.

        Parameters
        ----------
        x : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, d_model) float; with ``past``,
            the time steps following the cached ones.
        subject : LongTensor (B,), optional
        condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
        channel_ids : LongTensor (B, C) or (C,), optional
        past : list of KVCache, optional
            Per-block caches (batch B*C) from an earlier call, updated in place.
        use_cache : bool
            Return the caches in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``, ``aux_losses`` (``load_balance`` and, when
            weighted, ``router_z``), ``extras["router"]`` (unweighted losses).
        """
        cfg = self.config
        b, c, t, past = prepare("GPT2MEGMoE", cfg, x, past, use_cache)
        h = self.embedding(x, channel_ids=channel_ids, subject=subject, condition=condition)
        h = h.reshape(b * c, t, -1)  # channels as independent sequences
        load_balance = router_z = 0.0
        for i, block in enumerate(self.blocks):
            h, aux = block(h, causal=True, cache=None if past is None else past[i])
            load_balance = load_balance + aux["load_balance"] / cfg.n_layers
            router_z = router_z + aux["router_z"] / cfg.n_layers
        logits = self.head(self.norm(h)).view(b, c, t, -1)
        aux_losses = {"load_balance": cfg.load_balance_weight * load_balance}
        if cfg.router_z_weight > 0:
            aux_losses["router_z"] = cfg.router_z_weight * router_z
        return ModelOutput(
            logits=logits,
            past=past if use_cache else None,
            aux_losses=aux_losses,
            extras={
                "router": {"load_balance": load_balance.detach(), "router_z": router_z.detach()}
            },
        )
