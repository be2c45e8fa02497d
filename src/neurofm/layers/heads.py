"""Output heads: :class:`MixtureSoftmaxHead`, a mixture of softmaxes over a vocabulary.

``log p(v | h) = logsumexp_k (log pi_k(h) + log softmax_v(W_k h)_v)``: K softmaxes mixed by
weights ``pi(h)`` (Yang et al. 2018, "Breaking the softmax bottleneck", arXiv:1711.03953). The
result is a normalised log-probability, usable as logits by any cross-entropy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MixtureSoftmaxHead(nn.Module):
    """Features (..., D) -> mixture log-probabilities (..., V).

    Parameters
    ----------
    d_model : int
        Feature size D.
    vocab_size : int
        Outputs V.
    n_mixtures : int
        Softmax components K (1: a plain log-softmax).
    """

    def __init__(self, d_model: int, vocab_size: int, n_mixtures: int) -> None:
        super().__init__()
        if n_mixtures < 1:
            raise ValueError(f"MixtureSoftmaxHead: n_mixtures must be >= 1, got {n_mixtures}")
        self.n_mixtures, self.vocab_size = n_mixtures, vocab_size
        self.components = nn.Linear(d_model, n_mixtures * vocab_size)
        self.weights = nn.Linear(d_model, n_mixtures)

    def forward(self, h: Tensor) -> Tensor:
        """Log-probabilities (..., V) in float32."""
        logits = self.components(h).float().unflatten(-1, (self.n_mixtures, self.vocab_size))
        log_weights = self.weights(h).float().log_softmax(dim=-1)[..., None]  # (..., K, 1)
        return torch.logsumexp(log_weights + logits.log_softmax(dim=-1), dim=-2)
