"""The one configuration of the GPT2MEG family, its presets and its model spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from neurofm.checks import (
    at_least,
    divides,
    even_head_size,
    fraction,
    needs,
    non_negative,
    optional_positive,
    positive,
)
from neurofm.types import ModelSpec

_PRESETS: dict[str, dict] = {
    "tiny": {
        "vocab_size": 64,
        "n_chans": 8,
        "n_subjects": 2,
        "n_conditions": 4,
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 2,
        "max_seq_len": 1024,
        "n_experts": 4,
        "top_k": 2,
    },
    "small": {
        "vocab_size": 256,
        "n_chans": 306,
        "n_subjects": 64,
        "d_model": 256,
        "n_layers": 4,
        "n_heads": 4,
        "max_seq_len": 1024,
        "n_experts": 8,
        "top_k": 2,
        "d_hidden": 512,
    },
    "base": {
        "vocab_size": 256,
        "n_chans": 306,
        "n_subjects": 64,
        "d_model": 768,
        "n_layers": 12,
        "n_heads": 12,
        "max_seq_len": 2048,
        "n_experts": 8,
        "top_k": 2,
        "d_hidden": 1536,
    },
}


@dataclass
class GPT2MEGConfig:
    """Configuration of every GPT2MEG model (:class:`GPT2MEG_Trf`, :class:`GPT2MEGMix`,
    :class:`GPT2MEG`). Fields a model does not read are listed with it."""

    # data
    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 306  # size of the channel-id vocabulary
    n_subjects: int = 0  # number of subject ids (0: no subject embedding)
    n_conditions: int = 0  # condition labels per stream (0: no conditioning)
    n_cond_tokens: int = 1  # condition streams, condition shape (B, n_cond_tokens, T)
    d_global: int = 0  # size of a global conditioning vector (B, d_global) (0: none)
    # trunk
    d_model: int = 256  # embedding / residual width
    n_layers: int = 4  # blocks
    n_heads: int = 4  # attention heads (must divide d_model; head size even for RoPE)
    n_kv_heads: int = 0  # key/value heads, grouped-query attention (must divide n_heads; 0:
    # n_heads; 1: multi-query): the cache and what a decoding step reads shrink by n_heads / it
    dropout: float = 0.0  # dropout in attention, MLP and embeddings
    max_seq_len: int = 1024  # longest time axis (context + generated), in samples
    causal: bool = True  # causal attention over time (False: bidirectional encoder, no cache)
    cache_dtype: Literal["same", "bfloat16"] = "same"  # keys/values of the decoding
    # cache: as computed, or bfloat16 (halves what a streaming step reads; see KVCache)
    attn_window: int = 0  # sliding-window attention over the last attn_window time steps (0:
    # all); its cache keeps only those, so a streaming step's cost and memory stay bounded
    # and a cached stream may run past max_seq_len (gpt2meg_trf, gpt2meg_mix; not gpt2meg)
    activation: Literal["gelu", "squared_relu", "swiglu"] = "gelu"  # MLP non-linearity
    norm: Literal["rms", "layer"] = "rms"  # normalisation before each branch
    rope_base: float = 10000.0  # RoPE wavelength base
    # variants: what replaced the variant classes
    mlp: Literal["dense", "moe"] = "dense"  # block MLP: dense, or routed experts (gpt2meg_moe)
    block: Literal["time", "channel_time"] = "time"  # channel attention first (stgpt2meg)
    context_injection: Literal["input", "every_block"] = "input"  # per block (gpt2meg_cond)
    # mixture of experts (mlp="moe")
    n_experts: int = 8  # experts per MoE layer
    top_k: int = 2  # experts each token is routed to
    d_hidden: int = 0  # hidden size of each expert (0: the MLP default for the activation)
    load_balance_weight: float = 0.01  # weight of the Switch load-balancing loss
    router_z_weight: float = 0.0  # weight of the router z-loss (0: not added)
    # amplitude options (codes read as ordered amplitudes)
    value_embedding: bool = False  # add a linear map of each code's amplitude to its embedding
    ordinal_head: bool = False  # add a discretised Gaussian over the code values to the logits
    ar_order: int = 0  # linear filter over the last ar_order code values in the Gaussian's mean
    var_order: int = 0  # linear filter over every channel's last var_order values (a VAR) too
    amplitude: Literal["code", "mulaw"] = "code"  # the Gaussian's domain: evenly spaced code
    # values, or mu-law-expanded unit-scale amplitudes (bins of a mu-law tokenizer)
    mu: float | None = None  # mu-law strength of amplitude "mulaw" (None: vocab_size - 1)
    linear_init: Literal["zero", "train_ridge"] = "zero"  # VAR filter at init: zeros, or a
    # ridge fit on the train windows' codes before the first step (needs var_order > 0)
    linear_trainable: bool = True  # False: the VAR filter stays as initialised (not trained)
    volatility: bool = False  # log precision also falls with the log of each channel's recent
    # mean squared change over the VAR's window (fitted with the filter by linear_init)
    # GPT2MEGMix only
    channel_dropout: float = 0.1  # training only: probability of hiding each input channel

    PRESETS: ClassVar[dict[str, dict]] = _PRESETS

    def __post_init__(self) -> None:
        positive(self, "vocab_size", "n_chans", "d_model", "n_layers", "n_heads", "max_seq_len")
        positive(self, "n_cond_tokens")
        non_negative(self, "n_subjects", "n_conditions", "d_global", "ar_order", "var_order")
        non_negative(self, "attn_window", note="0: all positions")
        non_negative(self, "n_kv_heads", note="0: n_heads")
        if self.n_kv_heads and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads}")
        if self.attn_window and not self.causal:
            raise ValueError("attn_window is sliding-window causal attention: needs causal=True")
        non_negative(self, "d_hidden", note="0: default")
        non_negative(self, "load_balance_weight", "router_z_weight", note="0: not added")
        fraction(self, "dropout", "channel_dropout")
        divides(self, "n_heads", "d_model")
        even_head_size(self)
        needs(self, "ar_order", "ordinal_head", "it shifts its mean")
        needs(self, "var_order", "ordinal_head", "it shifts its mean")
        if self.volatility and self.var_order < 2:
            raise ValueError("volatility reads the VAR's history window: set var_order >= 2")
        optional_positive(self, "mu")
        if self.linear_init == "train_ridge" and not self.var_order:
            raise ValueError("linear_init='train_ridge' fits the VAR filter: set var_order > 0")
        at_least(self, 1, "n_experts", "top_k")
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k={self.top_k} must be in [1, n_experts={self.n_experts}]")


def channel_codes_spec(cfg: GPT2MEGConfig) -> ModelSpec:
    """The spec of a GPT2MEG model with config ``cfg``: codes (B, C, T) in, logits out, causal
    with a cache (unless ``causal`` is False), taking the context its tables exist for."""
    context = ["channel_ids"]
    context += ["subject"] if cfg.n_subjects else []
    context += ["condition"] if cfg.n_conditions else []
    context += ["global_embedding"] if cfg.d_global else []
    return ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=cfg.causal,
        cache=cfg.causal,
        context=tuple(context),
        sampling="autoregressive" if cfg.causal else "none",
        max_seq_len=cfg.max_seq_len,
        data_init=cfg.linear_init == "train_ridge",
    )
