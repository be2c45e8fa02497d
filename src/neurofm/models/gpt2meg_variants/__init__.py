"""GPT2MEG variants over channel-wise codes (B, C, T) -> logits (B, C, T, V).

- ``gpt2meg_cond`` (:class:`GPT2MEG_Cond`): condition tokens and a global vector in every block;
- ``gpt2meg_mix`` (:class:`GPT2MEGMix`): all channels of a time step in one token;
- ``stgpt2meg`` (:class:`STGPT2MEG`): channel attention then causal time attention per block;
- ``gpt2meg_moe`` (:class:`GPT2MEGMoE`): mixture-of-experts MLPs with a load-balancing loss.

Each module's docstring names its paper and its deviations.
"""

from neurofm.models.gpt2meg_variants.cond import GPT2MEG_Cond, GPT2MEGCondConfig
from neurofm.models.gpt2meg_variants.mix import GPT2MEGMix, GPT2MEGMixConfig
from neurofm.models.gpt2meg_variants.moe import GPT2MEGMoE, GPT2MEGMoEConfig
from neurofm.models.gpt2meg_variants.st import STGPT2MEG, STGPT2MEGConfig

__all__ = [
    "GPT2MEGCondConfig",
    "GPT2MEGMix",
    "GPT2MEGMixConfig",
    "GPT2MEGMoE",
    "GPT2MEGMoEConfig",
    "GPT2MEG_Cond",
    "STGPT2MEG",
    "STGPT2MEGConfig",
]
