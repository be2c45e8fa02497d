"""NeuroFM-X: binned spike counts -> multi-rate Mamba -> Perceiver-IO latents -> task heads.

The pipeline of one window of counts ``x`` (B, T, n_units):

1. tokens: :class:`~neurofm.layers.neural_tokens.BinnedCountEmbedding` (sqrt counts, linear
   projection, sinusoidal positions);
2. backbone: :class:`~neurofm.layers.mamba.MultiRateMamba` (one Mamba stack per rate, fused);
3. population: :class:`~neurofm.layers.perceiver.PopulationTransformer` over one token per
   unit (unit-identity embedding + the unit's activity profile), added to every latent;
4. fusion: :class:`~neurofm.layers.perceiver.PerceiverIO` (learned latents);
5. read-out: per-bin queries from the backbone attend to the latents (Perceiver-IO decoding),
   then the heads: the neural encoder (log firing rate of every unit, the ``prediction``,
   trained with a Poisson loss on units hidden from the input: co-smoothing), the behaviour
   decoder (``extras["behaviour"]``, (B, T, n_behaviour)) and a time-contrastive InfoNCE
   between the two halves of each window (``aux_losses["contrastive"]``).

Deviations from the NeuroFM-X description:

- the family takes binned counts; the spike-event and LFP embeddings
  (:mod:`neurofm.layers.neural_tokens`) are shared layers, not yet inputs of this family;
- the latent diffusion prior (:mod:`.prior`, ``diffusion_weight > 0``) learns the latents
  without a gradient into the encoder (a prior fitted to the encoder, trained jointly as an
  auxiliary loss term); :meth:`NeuroFMX.sample_latents` draws from it;
- PopT's population vector conditions the fusion latents (added to them), rather than being a
  separate stage after the fusion.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers.mamba import MultiRateMamba
from neurofm.layers.neural_tokens import BinnedCountEmbedding
from neurofm.layers.perceiver import CrossAttentionBlock, PerceiverIO, PopulationTransformer
from neurofm.models.neurofm_x.config import NeuroFMXConfig
from neurofm.models.neurofm_x.prior import LatentDiffusionPrior
from neurofm.registry import MODELS, create
from neurofm.types import ModelOutput, ModelSpec


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between paired rows of ``a`` and ``b`` (B, D): row i of each is a pair."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    logits = a @ b.T / temperature  # (B, B)
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


@MODELS.register(
    "neurofm_x",
    config=NeuroFMXConfig,
    spec=ModelSpec(inputs="binned_counts", outputs="prediction"),
)
class NeuroFMX(nn.Module):
    """Multi-rate Mamba + Perceiver-IO + PopT over binned counts: unit rates, behaviour."""

    def __init__(self, config: NeuroFMXConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.embed = BinnedCountEmbedding(
            cfg.n_units, cfg.d_model, sqrt_transform=cfg.sqrt_transform
        )
        self.backbone = MultiRateMamba(
            cfg.d_model,
            cfg.n_layers,
            rates=cfg.rates,
            fusion=cfg.fusion,
            d_state=cfg.d_state,
            d_conv=cfg.d_conv,
            expand=cfg.expand,
            scan=cfg.scan,
        )
        self.popt = None
        if cfg.popt_layers:
            self.unit_ids = nn.Embedding(cfg.n_units, cfg.d_latent)
            self.unit_profile = nn.Linear(cfg.popt_profile, cfg.d_latent)
            self.popt = PopulationTransformer(
                cfg.d_latent, n_layers=cfg.popt_layers, n_heads=cfg.n_heads, dropout=cfg.dropout
            )
        self.fusion = PerceiverIO(
            cfg.d_model,
            n_latents=cfg.n_latents,
            d_latent=cfg.d_latent,
            n_layers=cfg.n_fusion_layers,
            n_heads=cfg.n_heads,
            dropout=cfg.dropout,
        )
        self.query = nn.Linear(cfg.d_model, cfg.d_latent)
        self.readout = CrossAttentionBlock(
            cfg.d_latent, cfg.n_heads, d_context=cfg.d_latent, dropout=cfg.dropout
        )
        self.rates_head = nn.Linear(cfg.d_latent, cfg.n_units)
        self.behaviour_head = nn.Linear(cfg.d_latent, cfg.n_behaviour) if cfg.n_behaviour else None
        self.contrastive = (
            nn.Linear(cfg.d_latent, cfg.d_contrastive) if cfg.contrastive_weight else None
        )
        self.prior = None
        if cfg.diffusion_weight:
            self.prior = LatentDiffusionPrior(
                cfg.n_latents,
                cfg.d_latent,
                n_layers=cfg.prior_layers,
                n_heads=cfg.n_heads,
                n_train_steps=cfg.diffusion_steps,
            )

    @classmethod
    def from_config(cls, config: NeuroFMXConfig | dict[str, Any]) -> NeuroFMX:
        """Build from a config or a dict of its fields (``{"preset": "tiny", ...}`` allowed)."""
        if isinstance(config, NeuroFMXConfig):
            return cls(config)
        return create(MODELS, {"name": "neurofm_x", **config}, key="model")

    def population(
        self, counts: Tensor, observed: Tensor, units: nn.Module | None = None
    ) -> Tensor:
        """PopT's population vector (B, d_latent) over the observed units of ``counts``."""
        parts = units if units is not None else self
        b, t, u = counts.shape
        profile = F.adaptive_avg_pool1d(
            parts.embed.transform(counts).transpose(1, 2), self.config.popt_profile
        )  # (B, U, popt_profile)
        ids = torch.arange(u, device=counts.device)
        tokens = parts.unit_ids(ids) + self.unit_profile(profile)  # (B, U, d_latent)
        return self.popt(tokens, mask=observed)

    def forward(
        self, x: Tensor, *, observed: Tensor | None = None, units: nn.Module | None = None
    ) -> ModelOutput:
        """Encode a window of counts and read out every head.

        Parameters
        ----------
        x : Tensor, shape (B, T, n_units)
            Non-negative binned spike counts (float or integer).
        observed : BoolTensor, shape (B, n_units) or (n_units,), optional
            Units the model may see (default all); the others are zeroed at the input and hidden
            from PopT, so their predicted rates are co-smoothed from the observed units.
        units : UnitAdapter, optional
            A Unit-ID adapter (:mod:`neurofm.models.neurofm_x.adapters`) for a recording with
            other units: its count embedding, unit identities, rate (and optionally behaviour)
            heads replace the model's, everything else is the model's; ``x`` then has the
            adapter's ``n_units``.

        Returns
        -------
        ModelOutput
            ``prediction`` (B, T, n_units): log firing rate per bin of every unit;
            ``extras["behaviour"]`` (B, T, n_behaviour) when ``n_behaviour > 0``;
            ``extras["latents"]`` (B, n_latents, d_latent); ``extras["features"]`` (B, T,
            d_latent), the read-out features per bin; ``aux_losses["contrastive"]`` (weighted)
            when ``contrastive_weight > 0`` and B >= 2; ``aux_losses["diffusion_prior"]``
            (weighted, in training mode) when ``diffusion_weight > 0``.
        """
        cfg = self.config
        parts = units if units is not None else self
        n_units = parts.embed.n_units
        if x.ndim != 3 or x.shape[-1] != n_units:
            raise ValueError(
                f"neurofm_x: expected binned counts (B, T, {n_units}), got {tuple(x.shape)}"
            )
        b, t, u = x.shape
        counts = x.to(parts.embed.proj.weight.dtype)
        if observed is None:
            observed = torch.ones(b, u, dtype=torch.bool, device=x.device)
        observed = observed.to(device=x.device, dtype=torch.bool).expand(b, u)
        counts = counts * observed[:, None, :]
        h = self.backbone(parts.embed(counts))  # (B, T, d_model)
        extra = self.population(counts, observed, units) if self.popt is not None else None
        latents = self.fusion.encode(h, extra=extra)  # (B, n_latents, d_latent)
        features = self.readout(self.query(h), latents)  # (B, T, d_latent)
        extras = {"latents": latents, "features": features}
        behaviour_head = self.behaviour_head
        if units is not None and units.behaviour_head is not None:
            behaviour_head = units.behaviour_head
        if behaviour_head is not None:
            extras["behaviour"] = behaviour_head(features)
        aux = {}
        if self.contrastive is not None and b >= 2 and t >= 2:
            half = t // 2
            first = self.contrastive(features[:, :half].mean(dim=1))
            second = self.contrastive(features[:, half:].mean(dim=1))
            aux["contrastive"] = cfg.contrastive_weight * info_nce(first, second, cfg.temperature)
        if self.prior is not None and self.training:
            # the prior models the latents as the encoder makes them: no gradient into it
            aux["diffusion_prior"] = cfg.diffusion_weight * self.prior.loss(latents.detach())
        return ModelOutput(prediction=parts.rates_head(features), aux_losses=aux, extras=extras)

    def sample_latents(
        self, n: int, *, n_steps: int = 50, sampler: str = "ddim", seed: int | None = None
    ) -> Tensor:
        """``n`` latent sets (n, n_latents, d_latent) from the diffusion prior."""
        if self.prior is None:
            raise ValueError("neurofm_x: no diffusion prior (set diffusion_weight > 0)")
        return self.prior.sample(n, n_steps=n_steps, sampler=sampler, seed=seed)

    def count_parameters(self) -> dict[str, int]:
        """Trainable parameters per part and in total."""
        parts = {
            "tokens": self.embed,
            "backbone": self.backbone,
            "fusion": self.fusion,
            "readout": nn.ModuleList([self.query, self.readout]),
        }
        out = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
        counted = {id(p) for m in parts.values() for p in m.parameters()}
        out["popt_and_heads"] = sum(p.numel() for p in self.parameters() if id(p) not in counted)
        out["total"] = sum(p.numel() for p in self.parameters())
        return out
