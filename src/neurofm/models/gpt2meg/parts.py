"""What every GPT2MEG model assembles from ``neurofm.layers``: embeddings, the block stack, the
output head and the shared steps of a forward call (input checks, caches, routing losses)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from neurofm.layers import (
    ChannelTokenEmbedding,
    ContextEmbedding,
    KVCache,
    MoEMLP,
    SlidingKVCache,
    SpatioTemporalBlock,
    TransformerBlock,
    init_gpt2,
)
from neurofm.layers.ordinal import (
    VAR_GAIN,
    OrdinalLogits,
    code_history,
    join_past,
    ridge_var,
    split_past,
)
from neurofm.models.gpt2meg.config import GPT2MEGConfig
from neurofm.types import Batch, ModelOutput


def code_embedding(
    cfg: GPT2MEGConfig, *, channels: bool = True, context: bool = True
) -> ChannelTokenEmbedding:
    """The code embedding of ``cfg``, with the channel-id table and the context tables (subject,
    condition, global) unless ``channels`` / ``context`` is False."""
    return ChannelTokenEmbedding(
        cfg.vocab_size,
        cfg.d_model,
        n_chans=cfg.n_chans if channels else None,
        n_subjects=cfg.n_subjects if context else None,
        n_conditions=cfg.n_conditions if context else None,
        n_cond_tokens=cfg.n_cond_tokens if context else 1,
        d_global=cfg.d_global if context else None,
        dropout=cfg.dropout,
        value_embedding=cfg.value_embedding,
    )


def context_embedding(cfg: GPT2MEGConfig, who: str) -> ContextEmbedding:
    """The context tables of ``cfg`` on their own (subject, condition streams, global vector)."""
    return ContextEmbedding(
        cfg.d_model,
        n_subjects=cfg.n_subjects,
        n_conditions=cfg.n_conditions,
        n_cond_tokens=cfg.n_cond_tokens,
        d_global=cfg.d_global,
        who=who,
    )


def injections(cfg: GPT2MEGConfig) -> nn.ModuleList | None:
    """One projection of the context per block when ``context_injection="every_block"``."""
    if cfg.context_injection != "every_block":
        return None
    return nn.ModuleList(nn.Linear(cfg.d_model, cfg.d_model) for _ in range(cfg.n_layers))


def block(cfg: GPT2MEGConfig) -> nn.Module:
    """One block of ``cfg``: a pre-norm RoPE :class:`~neurofm.layers.TransformerBlock` over time
    with a dense or mixture-of-experts MLP, behind channel attention for
    ``block="channel_time"`` (:class:`~neurofm.layers.SpatioTemporalBlock`)."""
    mlp = None
    if cfg.mlp == "moe":
        mlp = MoEMLP(
            cfg.d_model,
            n_experts=cfg.n_experts,
            top_k=cfg.top_k,
            d_hidden=cfg.d_hidden or None,
            activation=cfg.activation,
            dropout=cfg.dropout,
        )
    time = TransformerBlock(
        cfg.d_model,
        cfg.n_heads,
        activation=cfg.activation,
        norm=cfg.norm,
        dropout=cfg.dropout,
        rotary=True,
        rope_base=cfg.rope_base,
        mlp=mlp,
        n_kv_heads=cfg.n_kv_heads or None,
        window=cfg.attn_window or None,
    )
    if cfg.block == "channel_time":
        return SpatioTemporalBlock(time, norm=cfg.norm, dropout=cfg.dropout)
    return time


def ordinal_head(cfg: GPT2MEGConfig) -> OrdinalLogits | None:
    """The ordinal head when ``ordinal_head`` is set (with the AR filter of ``ar_order``)."""
    if not cfg.ordinal_head:
        return None
    head = OrdinalLogits(
        cfg.d_model,
        cfg.vocab_size,
        ar_order=cfg.ar_order,
        var_order=cfg.var_order,
        n_chans=cfg.n_chans,
        amplitude=cfg.amplitude,
        mu=cfg.mu,
        volatility=cfg.volatility,
    )
    if head.var is not None and not cfg.linear_trainable:
        # a filter fitted in closed form is at its optimum: Adam's per-weight steps of about
        # the learning rate would only make it random-walk around it
        head.var.requires_grad_(False)
    return head


DATA_INIT_FREE_WEIGHT = 0.03
"""Weight of the free softmax in the ordinal head's mixture after ``init_from_data``."""


def init_linear_path(model: nn.Module, batch: Batch) -> dict[str, Any]:
    """Fit the ordinal head's VAR filter by ridge regression on the codes of ``batch``.

    ``batch.x`` holds train codes (N, C, T) of one channel set (``batch.context["channel_ids"]``,
    default ``0 .. C-1``); the filter's rows and columns of those channels are set to the
    closed-form fit (:func:`~neurofm.layers.ordinal.ridge_var`), the AR filter is zeroed (the
    VAR holds each channel's own lags), the Gaussian's mean starts at the filter's and its width
    at the fit's residual standard deviation of each channel. Returns the order, penalty, residual and number of windows.
    """
    ordinal, codes = model.ordinal, batch.x
    given = batch.context.get("channel_ids")
    if given is None:
        ids = torch.arange(codes.shape[1])
    else:
        ids = given.expand(codes.shape[0], -1)[0]
        if not bool((given == ids).all()):
            raise ValueError("init_from_data: every window must hold the same channels")
    values = ordinal.amplitudes(codes)
    weights, penalty, residual = ridge_var(values, model.config.var_order)
    with torch.no_grad():
        ids = ids.to(ordinal.var.device)
        ordinal.var[:, ids[:, None], ids[None, :]] = weights.to(ordinal.var) / VAR_GAIN
        if ordinal.ar is not None:
            ordinal.ar.zero_()
        # the mean starts at the VAR's and the width at its residual: the hidden state's change
        # and log-precision terms start at zero and are learned from there
        ordinal.proj.weight[:2].zero_()
        ordinal.proj.bias[:2] = 0.0
        # the fitted Gaussian carries most of the mass from the start; the free softmax keeps
        # DATA_INIT_FREE_WEIGHT of it for the tails
        ordinal.proj.bias[2] = math.log((1 - DATA_INIT_FREE_WEIGHT) / DATA_INIT_FREE_WEIGHT)
        ordinal.channel_log_precision[ids] = -residual.clamp_min(1e-6).log().to(ids.device)
        summary = {
            "var_order": model.config.var_order,
            "penalty": penalty,
            "residual": round(float(residual.mean()), 6),
            "windows": len(codes),
        }
        if ordinal.vol_gain is not None:
            summary["volatility_gain"] = fit_volatility(ordinal, codes, ids)
    return summary


def fit_volatility(ordinal: OrdinalLogits, codes: Tensor, ids: Tensor) -> float:
    """Fit the volatility term of the ordinal head on train codes (N, C, T) of channels ``ids``
    (the VAR filter already fitted): the floor of the energy, each channel's reference log
    energy, the gain ``g`` (slope of the log squared VAR residual on the centred log energy,
    pooled over channels, in [0, 2]) and each channel's log precision so that the residuals have
    unit variance on average under the scaled Gaussians. Positions with a full real history
    window only. Returns ``g``."""
    h = ordinal.history - 1
    values = ordinal.amplitudes(codes).float()
    ordinal.vol_floor.fill_(1e-3 * float(values.diff(dim=-1).square().mean()))
    log_e, residual = [], []
    for lo in range(0, len(codes), 64):
        part = codes[lo : lo + 64]
        padded = torch.cat((part[..., :1].expand(*part.shape[:2], h), part), dim=-1)
        anchor = ordinal.anchor(padded, ids)  # mean of the next value at each input
        log_e.append(ordinal.log_energy(padded)[..., h:-1])
        residual.append((values[lo : lo + 64, :, h + 1 :] - anchor[..., h:-1]).double())
    x, r = torch.cat(log_e).double(), torch.cat(residual)
    if x.shape[-1] < 2:
        raise ValueError(f"volatility: train windows of {codes.shape[-1]} codes are too short")
    ref = x.mean(dim=(0, 2))  # (C,)
    xc = x - ref[None, :, None]
    y = r.square().clamp_min(1e-12).log()
    y = y - y.mean(dim=(0, 2), keepdim=True)
    gain = float((xc * y).sum() / xc.square().sum().clamp_min(1e-12))
    gain = min(max(gain, 0.0), 2.0)
    scale = (r.square() * torch.exp(-gain * xc)).mean(dim=(0, 2))  # (C,)
    ordinal.vol_ref[ids] = ref.float().to(ordinal.vol_ref.device)
    ordinal.vol_gain.fill_(gain)
    ordinal.channel_log_precision[ids] = (-0.5 * scale.log()).float().to(ids.device)
    return round(gain, 4)


class LinearPathInit:
    """``init_from_data`` of every GPT2MEG class: the ridge fit of :func:`init_linear_path`
    (called by ``fit`` when the spec says ``data_init``, i.e. ``linear_init: train_ridge``)."""

    def init_from_data(self, batch: Batch) -> dict[str, Any]:
        """Fit the VAR filter of the ordinal head on train codes (see :func:`init_linear_path`)."""
        return init_linear_path(self, batch)


def history_order(cfg: GPT2MEGConfig) -> int:
    """Codes of history the linear filters of the ordinal head read (0: none)."""
    return max(cfg.ar_order, cfg.var_order)


def init_weights(model: nn.Module, n_layers: int) -> None:
    """GPT-2 init of ``model`` (:func:`~neurofm.layers.init_gpt2`), then the ordinal head's own
    (``model.ordinal``, None without it)."""
    init_gpt2(model, n_layers)
    if model.ordinal is not None:
        model.ordinal.reset_parameters()


def start(
    who: str, cfg: GPT2MEGConfig, x: Tensor, past: object | None, use_cache: bool
) -> tuple[int, int, int, list[KVCache] | None, Tensor | None]:
    """Check the input of a forward call on neurofm blocks.

    ``x`` must be codes (B, C, T) int or embeddings (B, C, T, d_model) float. Returns ``B, C,
    T``, the per-block caches to use (new ones when ``use_cache`` and no ``past``; the number and
    the time steps they would hold are checked) and the code history of the AR filter (see
    :func:`~neurofm.layers.ordinal.code_history`).
    """
    if (past is not None or use_cache) and not cfg.causal:
        raise ValueError(
            f"{who}: a cache needs causal=True (bidirectional attention cannot decode "
            "incrementally)"
        )
    codes = x.dim() == 3 and not x.is_floating_point()
    embeddings = x.dim() == 4 and x.is_floating_point() and x.shape[-1] == cfg.d_model
    if not (codes or embeddings):
        raise ValueError(
            f"{who}: expected codes (B, C, T) int64 or embeddings (B, C, T, {cfg.d_model}) float, "
            f"got {tuple(x.shape)} {x.dtype}"
        )
    b, c, t = x.shape[:3]
    layers = split_past(who, history_order(cfg), past)
    history = code_history(who, history_order(cfg), x, past)
    if layers is None and use_cache:
        dtype = None if cfg.cache_dtype == "same" else getattr(torch, cfg.cache_dtype)
        if cfg.attn_window:
            layers = [SlidingKVCache(cfg.attn_window, dtype=dtype) for _ in range(cfg.n_layers)]
        else:
            layers = [KVCache(cfg.max_seq_len, dtype=dtype) for _ in range(cfg.n_layers)]
    if layers is not None and len(layers) != cfg.n_layers:
        raise ValueError(f"{who}: past holds {len(layers)} caches for {cfg.n_layers} layers")
    # a windowed cache keeps the last attn_window steps: a cached stream has no end
    offset = 0 if layers is None or cfg.attn_window else layers[0].offset
    if offset + t > cfg.max_seq_len:
        raise ValueError(f"{who}: {offset + t} time steps exceed max_seq_len={cfg.max_seq_len}")
    return b, c, t, layers, history


def code_logits(
    head: nn.Linear,
    ordinal: OrdinalLogits | None,
    h: Tensor,
    x: Tensor,
    history: Tensor | None = None,
    channel_ids: Tensor | None = None,
    seen: int = 0,
) -> Tensor:
    """Logits (B, C, T, V) of the final hidden states ``h`` (B, C, T, D) (or (B*C, T, D)) for
    the inputs ``x`` (B, C, T[, D]).

    The free logits ``head(h)``, or with the ordinal head the mixture's log-probabilities,
    anchored on the input codes (and with the AR filter on them and the preceding codes
    ``history`` (B, C, p - 1), of which the last ``seen`` are real inputs) when ``x`` holds
    codes; with ``volatility`` the log precision also reads the recent changes of the codes.
    """
    b, c, t = x.shape[:3]
    h = h.reshape(b, c, t, -1)
    logits = head(h)
    if ordinal is None:
        return logits
    anchor = None
    precision = ordinal.channel_precision(b, c, channel_ids)
    if not x.dtype.is_floating_point:
        codes = x if history is None else torch.cat((history, x), dim=-1)
        anchor = ordinal.anchor(codes, channel_ids)
        volatility = ordinal.volatility(codes, seen, channel_ids)
        if volatility is not None:
            precision = volatility if precision is None else precision + volatility
    return ordinal(logits, h, anchor, precision)


def output(
    cfg: GPT2MEGConfig,
    logits: Tensor,
    blocks: nn.ModuleList,
    x: Tensor,
    history: Tensor | None,
    layers: list[KVCache] | None,
    use_cache: bool,
    seen: int = 0,
) -> ModelOutput:
    """The ``ModelOutput`` of a forward call on neurofm blocks.

    ``past`` holds the caches when ``use_cache`` (an :class:`~neurofm.layers.ordinal.ARPast`
    with the code history when ``ar_order > 0``). With ``mlp="moe"``, ``aux_losses`` holds
    ``load_balance_weight`` times the Switch load-balancing loss averaged over blocks (and
    ``"router_z"``, the weighted router z-loss, when ``router_z_weight > 0``), and
    ``extras["router"]`` the unweighted averages for logging.
    """
    past = join_past(layers, x, history, seen) if use_cache else None
    if cfg.mlp != "moe":
        return ModelOutput(logits=logits, past=past)
    load_balance = router_z = 0.0
    for block in blocks:
        load_balance = load_balance + block.aux_losses["load_balance"] / cfg.n_layers
        router_z = router_z + block.aux_losses["router_z"] / cfg.n_layers
    aux_losses = {"load_balance": cfg.load_balance_weight * load_balance}
    if cfg.router_z_weight > 0:
        aux_losses["router_z"] = cfg.router_z_weight * router_z
    router = {"load_balance": load_balance.detach(), "router_z": router_z.detach()}
    return ModelOutput(logits=logits, past=past, aux_losses=aux_losses, extras={"router": router})
