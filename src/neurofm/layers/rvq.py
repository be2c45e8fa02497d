"""A residual vector quantizer with its own input/output projections and usage statistics.

Built on ``vector_quantize_pytorch.ResidualVQ`` (imported lazily: the ``vq`` extra): ``L``
codebooks quantize in turn what the previous ones left, codebooks are updated by exponential
moving averages (k-means initialised), codes whose EMA usage falls under
``dead_code_threshold`` are re-drawn from the batch, the commitment loss pulls the inputs
towards their codes and the codebook-diversity (usage entropy) loss spreads the assignments over
the codebook.

The projections ``d_model -> codebook_dim -> d_model`` are owned here (not left to the
library, which skips them when the sizes agree) so that a quantizer trained on frozen features
always has parameters to learn: the input projection (commitment) and the output projection
(reconstruction of the features).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ResidualQuantizer(nn.Module):
    """(B, N, d_model) features -> quantized features (B, N, d_model) and codes (B, L, N).

    Parameters
    ----------
    d_model : int
        Feature size of the inputs and outputs.
    n_quantizers : int
        Number of residual codebooks ``L``.
    codebook_size : int
        Codes per codebook.
    codebook_dim : int
        Size of a code vector.
    commitment_weight : float
        Weight of the commitment loss.
    entropy_weight : float
        Weight of the codebook-usage (diversity) loss.
    dead_code_threshold : float
        Codes with an EMA usage below this are replaced by batch vectors (0 disables it).
    decay : float
        EMA decay of the codebooks.
    kmeans_init : bool
        Initialise each codebook by k-means on its first batch.
    """

    def __init__(
        self,
        d_model: int,
        *,
        n_quantizers: int,
        codebook_size: int,
        codebook_dim: int,
        commitment_weight: float = 0.25,
        entropy_weight: float = 0.1,
        dead_code_threshold: float = 2.0,
        decay: float = 0.99,
        kmeans_init: bool = True,
    ) -> None:
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        self.n_quantizers = n_quantizers
        self.codebook_size = codebook_size
        self.project_in = nn.Linear(d_model, codebook_dim)
        self.project_out = nn.Linear(codebook_dim, d_model)
        self.rvq = ResidualVQ(
            dim=codebook_dim,
            num_quantizers=n_quantizers,
            codebook_size=codebook_size,
            decay=decay,
            kmeans_init=kmeans_init,
            kmeans_iters=10,
            threshold_ema_dead_code=dead_code_threshold,
            commitment_weight=commitment_weight,
            codebook_diversity_loss_weight=entropy_weight,
        )

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Quantize ``h`` (B, N, d_model).

        Returns
        -------
        quantized : Tensor, shape (B, N, d_model)
            The projected sum of the selected codes (straight-through gradients to ``h``).
        codes : Tensor, shape (B, L, N), int64
        losses : dict
            ``"rvq"``: the weighted commitment + usage losses summed over codebooks.
        """
        with torch.autocast(device_type=h.device.type, enabled=False):
            z = self.project_in(h.float())
            quantized, codes, losses = self.rvq(z)
        return self.project_out(quantized), codes.transpose(1, 2), {"rvq": losses.sum()}

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Codes (B, L, N) -> quantized features (B, N, d_model)."""
        return self.project_out(self.rvq.get_output_from_indices(codes.transpose(1, 2)))


def code_usage(codes: Tensor, codebook_size: int) -> dict[str, Tensor]:
    """Per-codebook usage of codes (B, L, N): mean perplexity and the fraction of codes used."""
    flat = codes.transpose(0, 1).reshape(codes.shape[1], -1)  # (L, B * N)
    counts = torch.stack([torch.bincount(row, minlength=codebook_size) for row in flat]).float()
    prob = counts / counts.sum(dim=1, keepdim=True)
    entropy = -(prob * prob.clamp_min(1e-12).log()).sum(dim=1)
    return {
        "code_perplexity": entropy.exp().mean(),
        "codes_used": (counts > 0).float().mean(),
        "code_entropy_bits": (entropy / math.log(2.0)).mean(),
    }
