"""Mixture-of-experts feed-forward layer, the ``mlp`` of a :class:`~neurofm.layers.TransformerBlock`.

A linear router scores ``n_experts`` MLP experts for every token; each token is sent to its
``top_k`` experts and their outputs are summed, weighted by the router probabilities.

- Switch Transformer (Fedus et al. 2021, arXiv:2101.03961): load-balancing auxiliary loss
  ``n_experts * sum_e f_e * P_e`` (``f_e`` the fraction of routed slots given to expert e, ``P_e``
  its mean router probability); 1 for a perfectly uniform router, up to ``n_experts`` when
  everything collapses onto one expert. Top-1 gates are the raw router probability, as there.
- Top-k > 1 gates are renormalised over the chosen experts (as in Mixtral, arXiv:2401.04088).
- Router z-loss ``mean(logsumexp(router logits)^2)`` from ST-MoE (Zoph et al. 2022,
  arXiv:2202.08906), returned alongside; the model decides its weight (0 switches it off).

Dispatch is capacity-free: no token is ever dropped, whatever the imbalance. Each expert runs on
exactly the tokens routed to it (a gather, then an ``index_add_`` back), which equals the dense
sum ``sum_e gate_e(x) * expert_e(x)`` over all experts. Router logits and probabilities are
computed in float32 (softmax over a few logits is precision-sensitive under bf16 autocast).

The layer maps (..., D) to (..., D) like a dense MLP, so a block takes it as its ``mlp``. Its
auxiliary losses are kept, unweighted, in ``aux_losses`` after every call (the block exposes
them as ``TransformerBlock.aux_losses``); the model reads them after its forward and weights
them into ``ModelOutput.aux_losses``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurofm.layers.mlp import MLP, Activation


class MoEMLP(nn.Module):
    """Top-k routed mixture of :class:`~neurofm.layers.mlp.MLP` experts.

    Parameters
    ----------
    d_model : int
        Input and output feature size.
    n_experts : int
        Number of experts ``E``.
    top_k : int
        Experts per token (``1 <= top_k <= n_experts``).
    d_hidden : int or None
        Hidden size of each expert (default as :class:`~neurofm.layers.mlp.MLP`).
    activation : {"gelu", "squared_relu", "swiglu"}
        Expert non-linearity.
    dropout : float
        Dropout on each expert's output.
    bias : bool
        Biases in the expert linear layers (the router never has one).

    Attributes
    ----------
    aux_losses : dict of str to Tensor
        Unweighted scalars of the latest call: ``"load_balance"`` (Switch; 1 when uniform) and
        ``"router_z"``; empty before the first call.
    """

    def __init__(
        self,
        d_model: int,
        *,
        n_experts: int = 8,
        top_k: int = 2,
        d_hidden: int | None = None,
        activation: Activation = "gelu",
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if n_experts < 1:
            raise ValueError(f"MoEMLP: n_experts must be >= 1, got {n_experts}")
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"MoEMLP: top_k={top_k} must be in [1, n_experts={n_experts}]")
        self.n_experts = n_experts
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(
            MLP(d_model, d_hidden=d_hidden, activation=activation, dropout=dropout, bias=bias)
            for _ in range(n_experts)
        )
        self.aux_losses: dict[str, Tensor] = {}

    def route(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Router decisions for tokens ``x`` (N, d_model).

        Returns
        -------
        logits : Tensor, shape (N, E), float32
            Router scores.
        probs : Tensor, shape (N, E), float32
            Softmax of the scores.
        experts : LongTensor, shape (N, top_k)
            Chosen experts per token, best first.
        gates : Tensor, shape (N, top_k), float32
            Weight of each chosen expert's output.
        """
        logits = self.router(x).float()
        probs = logits.softmax(dim=-1)
        top_probs, experts = probs.topk(self.top_k, dim=-1)
        gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.top_k > 1 else top_probs
        return logits, probs, experts, gates

    def forward(self, x: Tensor) -> Tensor:
        """Mix the experts for every token of ``x`` (..., d_model); same shape out.

        The call's routing losses replace ``aux_losses``.
        """
        flat = x.reshape(-1, x.shape[-1])  # (N, D)
        logits, probs, experts, gates = self.route(flat)
        y = torch.zeros_like(flat)
        for index, expert in enumerate(self.experts):
            token, slot = (experts == index).nonzero(as_tuple=True)
            out = expert(flat[token]) * gates[token, slot].unsqueeze(-1).to(flat.dtype)
            y.index_add_(0, token, out)
        slots = torch.bincount(experts.flatten(), minlength=self.n_experts)  # (E,)
        fraction = slots.float() / experts.numel()
        load_balance = self.n_experts * (fraction * probs.mean(dim=0)).sum()
        router_z = torch.logsumexp(logits, dim=-1).square().mean()
        self.aux_losses = {"load_balance": load_balance, "router_z": router_z}
        return y.view_as(x)
