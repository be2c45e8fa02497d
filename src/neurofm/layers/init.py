"""GPT-2 weight initialisation (Radford et al. 2019), the one routine of neurofm's GPT models.

Weights of every ``nn.Linear`` and ``nn.Embedding`` are drawn from N(0, 0.02), biases are zero,
and the output projections of the residual branches (attention ``out_proj``, MLP and expert
``fc_out``) are drawn with the standard deviation scaled by ``1 / sqrt(2 n_layers)``, so that the
residual stream's variance does not grow with depth. Norms keep their unit gains. Modules with
an init of their own (the ordinal head, per-channel gains) reset it after this call.
"""

from __future__ import annotations

import math

from torch import nn

RESIDUAL_OUTPUTS = ("out_proj.weight", "fc_out.weight")
"""Names ending the parameters that write into the residual stream."""


def init_gpt2(module: nn.Module, n_layers: int) -> None:
    """Initialise ``module`` and its children in place as GPT-2 does.

    Parameters
    ----------
    module : nn.Module
        The model (or a part of it).
    n_layers : int
        Number of residual blocks of the model, for the residual-projection scaling.
    """
    if n_layers <= 0:
        raise ValueError(f"init_gpt2: n_layers must be positive, got {n_layers}")
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.normal_(sub.weight, std=0.02)
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            nn.init.zeros_(sub.bias)
    for name, p in module.named_parameters():
        if name.endswith(RESIDUAL_OUTPUTS):
            nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layers))
