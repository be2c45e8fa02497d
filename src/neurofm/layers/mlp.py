"""Position-wise feed-forward layers selected by activation name.

- ``"gelu"``: Linear -> GELU -> Linear (GPT-2).
- ``"squared_relu"``: Linear -> relu(x)**2 -> Linear (So et al. 2021, Primer, arXiv:2109.08668).
- ``"swiglu"``: (silu(x W1) * x W3) W2 (Shazeer 2020, arXiv:2002.05202).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers.fused import fresh_gelu

Activation = Literal["gelu", "squared_relu", "swiglu"]
ACTIVATIONS = ("gelu", "squared_relu", "swiglu")


class MLP(nn.Module):
    """Feed-forward block ``d_model -> d_hidden -> d_model``.

    Parameters
    ----------
    d_model : int
        Input and output feature size.
    d_hidden : int or None
        Hidden size; default ``4 * d_model`` (``round(8/3 * d_model)`` for SwiGLU, which keeps the
        parameter count of a 4x GELU MLP).
    activation : {"gelu", "squared_relu", "swiglu"}
        The non-linearity.
    dropout : float
        Dropout on the output.
    bias : bool
        Biases in the linear layers.
    """

    def __init__(
        self,
        d_model: int,
        *,
        d_hidden: int | None = None,
        activation: Activation = "gelu",
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}"
            )
        if d_hidden is None:
            d_hidden = round(8 * d_model / 3) if activation == "swiglu" else 4 * d_model
        self.activation = activation
        self.fc_in = nn.Linear(d_model, d_hidden, bias=bias)
        self.fc_gate = nn.Linear(d_model, d_hidden, bias=bias) if activation == "swiglu" else None
        self.fc_out = nn.Linear(d_hidden, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` (..., d_model) to (..., d_model)."""
        h = self.fc_in(x)
        if self.activation == "gelu":
            h = fresh_gelu(h)  # in place without autograd: no second hidden-size buffer
        elif self.activation == "squared_relu":
            h = F.relu(h).square()
        else:
            h = F.silu(self.fc_gate(x)) * h
        return self.dropout(self.fc_out(h))
