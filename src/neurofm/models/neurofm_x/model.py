"""NeuroFM-X: spikes, binned counts or field potentials -> multi-rate Mamba -> Perceiver-IO
latents -> task heads.

One model takes one input kind, chosen by ``modality`` in the config (the registered aliases
``neurofm_x_spikes`` and ``neurofm_x_lfp`` set it):

- ``counts``: binned counts ``x`` (B, T, n_units) through
  :class:`~neurofm.layers.neural_tokens.BinnedCountEmbedding` (sqrt counts, linear projection,
  sinusoidal positions): one token per bin;
- ``spikes``: spike events ``x`` (B, N, 2 + F) (unit id, time in s, F waveform features; the
  layout of :mod:`neurofm.data.spike_events`, padding rows masked) through
  :class:`~neurofm.layers.neural_tokens.SpikeEventEmbedding`: one token per spike;
- ``lfp``: field potentials ``x`` (B, n_chans, T) through
  :class:`~neurofm.layers.neural_tokens.LFPEmbedding` (convolutions with kernels 3 / 5 / 7,
  band powers, pooled over ``lfp_pool`` samples): one token per pooled step.

Then, for every input kind:

1. backbone: :class:`~neurofm.layers.mamba.MultiRateMamba` (one Mamba stack per rate, fused)
   over the tokens;
2. population (counts, spikes): :class:`~neurofm.layers.perceiver.PopulationTransformer` over
   one token per unit (unit-identity embedding + the unit's binned activity profile), added to
   every latent;
3. fusion: :class:`~neurofm.layers.perceiver.PerceiverIO` (learned latents; padding spikes
   are never attended);
4. read-out (Perceiver-IO decoding): one query per output step attends to the latents. The
   output steps are the bins for counts (query: the backbone feature of the bin, which with
   ``read_radius`` set first attends to the features of the bins within ``read_radius`` on both
   sides, as a spike model's bin query reads the spikes there), the
   ``n_bins`` bins of ``bin_size`` s for spikes (query: the sinusoid of the bin-centre time,
   which first attends to the spike tokens, those within ``read_radius`` bins when set), the
   pooled steps for LFP (query: the backbone feature of the step; step k covers samples
   ``[k, k + 1) * lfp_pool``, so per-sample targets are averaged over those samples,
   :func:`neurofm.data.spike_events.pool_steps`);
5. heads: the ``prediction`` per output step, the behaviour decoder (``extras["behaviour"]``,
   (B, steps, n_behaviour)) and a time-contrastive InfoNCE between the two halves of each
   window (``aux_losses["contrastive"]``). For counts and spikes the prediction is the log
   firing rate of every unit per bin (the neural encoder, trained with a Poisson loss on units
   hidden from the input: co-smoothing); spike models also return the binned counts of their
   events, the encoder's target (``extras["counts"]``). For LFP the prediction is the log band
   power of every channel and band per pooled step, read back from the latents (its target:
   ``extras["band_power"]``, computed from the input).

Deviations from the NeuroFM-X description:

- one modality per model (a config value), not several input streams fused in one forward;
- LFP models have no PopT (it reads units) and no co-smoothing mask;
- the latent diffusion prior (:mod:`.prior`, ``diffusion_weight > 0``) learns the latents
  without a gradient into the encoder (a prior fitted to the encoder, trained jointly as an
  auxiliary loss term); :meth:`NeuroFMX.sample_latents` draws from it;
- PopT's population vector conditions the fusion latents (added to them), rather than being a
  separate stage after the fusion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.data.spike_events import bin_events, split_events
from neurofm.layers.mamba import MultiRateMamba
from neurofm.layers.neural_tokens import (
    BANDS_HZ,
    BinnedCountEmbedding,
    LFPEmbedding,
    SpikeEventEmbedding,
    sinusoidal_encoding,
)
from neurofm.layers.perceiver import CrossAttentionBlock, PerceiverIO, PopulationTransformer
from neurofm.models.neurofm_x.config import NeuroFMXConfig
from neurofm.models.neurofm_x.prior import LatentDiffusionPrior
from neurofm.registry import MODELS, create
from neurofm.types import ModelOutput, ModelSpec

INPUT_KINDS = {"counts": "binned_counts", "spikes": "spike_events", "lfp": "field_potentials"}
"""The spec input kind of each modality."""


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between paired rows of ``a`` and ``b`` (B, D): row i of each is a pair."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    logits = a @ b.T / temperature  # (B, B)
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


@dataclass(frozen=True)
class ModalitySpec(ModelSpec):
    """The spec of the default (counts) NeuroFM-X; called with a config, the spec of the model
    that config builds, whose input kind follows ``config.modality``."""

    def __call__(self, config: NeuroFMXConfig | None) -> ModelSpec:
        modality = getattr(config, "modality", "counts")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(ModelSpec)}
        return ModelSpec(**{**fields, "inputs": INPUT_KINDS[modality]})


@MODELS.register(
    "neurofm_x",
    config=NeuroFMXConfig,
    spec=ModalitySpec(inputs="binned_counts", outputs="prediction"),
)
class NeuroFMX(nn.Module):
    """Multi-rate Mamba + Perceiver-IO + PopT over counts, spikes or LFP: rates, behaviour."""

    def __init__(self, config: NeuroFMXConfig) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.modality == "counts":
            self.embed = BinnedCountEmbedding(
                cfg.n_units, cfg.d_model, sqrt_transform=cfg.sqrt_transform
            )
        elif cfg.modality == "spikes":
            self.embed = SpikeEventEmbedding(
                cfg.n_units,
                cfg.d_model,
                n_waveform_features=cfg.n_waveform_features,
                freeze_units=cfg.freeze_units,
                time_scale=cfg.time_scale,
            )
            # always attended next to the spikes (a window may have none)
            self.null = nn.Parameter(0.02 * torch.randn(cfg.d_model))
            self.bin_events = CrossAttentionBlock(
                cfg.d_latent, cfg.n_heads, d_context=cfg.d_model, dropout=cfg.dropout
            )
        else:
            self.embed = LFPEmbedding(cfg.n_chans, cfg.d_model, sfreq=cfg.sfreq, pool=cfg.lfp_pool)
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
        if cfg.popt_layers and cfg.modality != "lfp":
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
        if cfg.modality == "lfp":
            self.band_head = nn.Linear(cfg.d_latent, cfg.n_chans * len(BANDS_HZ))
        else:
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
        self.bin_window = None  # counts: a two-sided read of the bins near each bin
        if cfg.modality == "counts" and cfg.read_radius:
            # built last, so that every other part starts as in a model without it
            self.bin_window = CrossAttentionBlock(
                cfg.d_latent, cfg.n_heads, d_context=cfg.d_model, dropout=cfg.dropout
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
        if self.config.modality == "spikes":
            values = counts.sqrt()  # the events' binned counts
        else:
            values = parts.embed.transform(counts)
        profile = F.adaptive_avg_pool1d(
            values.transpose(1, 2), self.config.popt_profile
        )  # (B, U, popt_profile)
        ids = torch.arange(u, device=counts.device)
        tokens = parts.unit_ids(ids) + self.unit_profile(profile)  # (B, U, d_latent)
        return self.popt(tokens, mask=observed)

    def forward(
        self, x: Tensor, *, observed: Tensor | None = None, units: nn.Module | None = None
    ) -> ModelOutput:
        """Encode a window and read out every head.

        Parameters
        ----------
        x : Tensor
            ``counts``: non-negative binned spike counts (B, T, n_units) (float or integer);
            ``spikes``: spike events (B, N, 2 + n_waveform_features) (see
            :mod:`neurofm.data.spike_events`); ``lfp``: field potentials (B, n_chans, T).
        observed : BoolTensor, shape (B, n_units) or (n_units,), optional
            Units the model may see (default all; counts and spikes); the others are removed
            from the input and hidden from PopT, so their predicted rates are co-smoothed from
            the observed units.
        units : UnitAdapter, optional
            A Unit-ID adapter (:mod:`neurofm.models.neurofm_x.adapters`, counts and spikes
            models) for a recording with other units: its count embedding (counts) or unit
            identity embeddings (spikes), PopT unit identities, rate (and optionally
            behaviour) heads replace the model's, everything else is the model's; ``x`` then
            has the adapter's ``n_units`` (counts) or unit ids (spikes).

        Returns
        -------
        ModelOutput
            ``prediction`` (B, steps, n_units): log firing rate per bin of every unit (steps:
            T for counts, n_bins for spikes), or (B, T / lfp_pool, n_chans * 5) log band powers
            for LFP; ``extras["behaviour"]`` (B, steps, n_behaviour) when ``n_behaviour > 0``;
            ``extras["latents"]`` (B, n_latents, d_latent); ``extras["features"]`` (B, steps,
            d_latent), the read-out features per step; ``extras["counts"]`` (spikes) or
            ``extras["band_power"]`` (LFP), the target of the prediction;
            ``aux_losses["contrastive"]`` (weighted) when ``contrastive_weight > 0`` and B >= 2;
            ``aux_losses["diffusion_prior"]`` (weighted, in training mode) when
            ``diffusion_weight > 0``.
        """
        modality = self.config.modality
        if units is not None and modality == "lfp":
            raise ValueError(
                "neurofm_x: Unit-ID adapters map units (counts, spikes); this model reads lfp"
            )
        if modality == "spikes":
            return self._forward_spikes(x, observed, units)
        if modality == "lfp":
            if observed is not None:
                raise ValueError("neurofm_x: observed= (unit masking) does not apply to LFP input")
            return self._forward_lfp(x)
        parts = units if units is not None else self
        n_units = parts.embed.n_units
        if x.ndim != 3 or x.shape[-1] != n_units:
            raise ValueError(
                f"neurofm_x: expected binned counts (B, T, {n_units}), got {tuple(x.shape)}"
            )
        b, t, u = x.shape
        counts = x.to(parts.embed.proj.weight.dtype)
        observed = self._observed(observed, b, u, x.device)
        counts = counts * observed[:, None, :]
        h = self.backbone(parts.embed(counts))  # (B, T, d_model)
        extra = self.population(counts, observed, units) if self.popt is not None else None
        latents = self.fusion.encode(h, extra=extra)  # (B, n_latents, d_latent)
        features = self.readout(self.count_queries(h), latents)  # (B, T, d_latent)
        return self._heads(features, latents, parts.rates_head, units=units)

    def count_queries(self, h: Tensor) -> Tensor:
        """The read-out query of every bin (B, T, d_latent) from the backbone features ``h``
        (B, T, d_model): the bin's own (causal) feature, which with ``read_radius > 0`` then
        attends to the features of the bins ``t - read_radius .. t + read_radius`` (the same
        window of bins as a spike model's bin query)."""
        query = self.query(h)
        if self.bin_window is None:
            return query
        steps = torch.arange(h.shape[1], device=h.device)
        near = (steps[:, None] - steps[None, :]).abs() <= self.config.read_radius  # (T, T)
        return self.bin_window(query, h, attn_mask=near[None, None])

    @staticmethod
    def _observed(observed: Tensor | None, b: int, u: int, device: torch.device) -> Tensor:
        if observed is None:
            return torch.ones(b, u, dtype=torch.bool, device=device)
        return observed.to(device=device, dtype=torch.bool).expand(b, u)

    def _forward_spikes(
        self, x: Tensor, observed: Tensor | None, adapter: nn.Module | None = None
    ) -> ModelOutput:
        """Spike events (B, N, 2 + F) -> per-bin outputs on ``n_bins`` bins (unit ids of the
        adapter's units when one is given)."""
        cfg = self.config
        parts = adapter if adapter is not None else self
        n_units = cfg.n_units if adapter is None else adapter.config.n_units
        units, times, waveforms, valid = split_events(
            x,
            n_units=n_units,
            n_waveform_features=cfg.n_waveform_features,
            window=cfg.n_bins * cfg.bin_size,
        )
        b = x.shape[0]
        counts = bin_events(
            units, times, valid, n_units=n_units, n_bins=cfg.n_bins, bin_size=cfg.bin_size
        )  # (B, n_bins, n_units): every spike, the encoder's target
        observed = self._observed(observed, b, n_units, x.device)
        seen = valid & observed.gather(1, units)  # (B, N)
        # the spikes of hidden units leave the sequence (the others keep their order), so that
        # not even their count or timing reaches the model
        order = torch.sort((~seen).to(torch.int8), dim=1, stable=True).indices
        units, times, seen = units.gather(1, order), times.gather(1, order), seen.gather(1, order)
        dtype = self.null.dtype
        if waveforms is not None:
            waveforms = waveforms.gather(1, order[..., None].expand_as(waveforms)).to(dtype)
        table = None if adapter is None else adapter.unit_embedding
        tokens = self.embed(units, times.to(dtype), waveforms, table=table) * seen[..., None]
        # pad to a multiple of the coarsest rate, so that trailing padding rows never enter the
        # pooled block of a spike (the backbone is causal across blocks)
        step = max(cfg.rates)
        pad = (-tokens.shape[1]) % step or (step if tokens.shape[1] == 0 else 0)
        tokens = F.pad(tokens, (0, 0, 0, pad))
        seen, times = F.pad(seen, (0, pad), value=False), F.pad(times, (0, pad))
        h = self.backbone(tokens)  # (B, N', d_model)
        context = torch.cat([self.null.expand(b, 1, -1), h], dim=1)
        mask = torch.cat([seen.new_ones(b, 1), seen], dim=1)  # (B, 1 + N')
        extra = None
        if self.popt is not None:
            extra = self.population(counts * observed[:, None, :], observed, adapter)
        latents = self.fusion.encode(context, extra=extra, mask=mask)
        centres = (torch.arange(cfg.n_bins, device=x.device, dtype=torch.float64) + 0.5) * (
            cfg.bin_size / cfg.time_scale
        )
        query = self.query(sinusoidal_encoding(centres, cfg.d_model).to(dtype))
        read = mask[:, None, None]  # (B, 1, 1, 1 + N')
        if cfg.read_radius:  # each bin reads the spikes near it (and the null token)
            bins = torch.floor(torch.round(times.double() / cfg.bin_size, decimals=9))
            near = (bins[:, None, :] - torch.arange(cfg.n_bins, device=x.device)[:, None]).abs()
            near = torch.cat([mask.new_ones(b, cfg.n_bins, 1), near <= cfg.read_radius], dim=2)
            read = read & near[:, None]  # (B, 1, n_bins, 1 + N')
        query = self.bin_events(query.expand(b, -1, -1), context, attn_mask=read)
        features = self.readout(query, latents)  # (B, n_bins, d_latent)
        return self._heads(
            features, latents, parts.rates_head, units=adapter, extras={"counts": counts}
        )

    def _forward_lfp(self, x: Tensor) -> ModelOutput:
        """Field potentials (B, n_chans, T) -> per-step outputs on the pooled grid."""
        cfg = self.config
        if x.ndim != 3 or x.shape[1] != cfg.n_chans:
            raise ValueError(
                f"neurofm_x: expected field potentials (B, {cfg.n_chans}, T), got {tuple(x.shape)}"
            )
        x = x.to(self.band_head.weight.dtype)
        h = self.backbone(self.embed(x))  # (B, T / lfp_pool, d_model)
        latents = self.fusion.encode(h)
        features = self.readout(self.query(h), latents)
        band_power = self.embed.band_power(x).detach().to(features.dtype)
        return self._heads(features, latents, self.band_head, extras={"band_power": band_power})

    def _heads(
        self,
        features: Tensor,
        latents: Tensor,
        head: nn.Module,
        *,
        units: nn.Module | None = None,
        extras: dict[str, Tensor] | None = None,
    ) -> ModelOutput:
        """The prediction ``head(features)``, behaviour, contrastive and prior terms."""
        cfg = self.config
        b, t = features.shape[:2]
        extras = {"latents": latents, "features": features, **(extras or {})}
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
        return ModelOutput(prediction=head(features), aux_losses=aux, extras=extras)

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
            "readout": nn.ModuleList([self.query, self.readout, self.bin_window]),
        }
        out = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
        counted = {id(p) for m in parts.values() for p in m.parameters()}
        out["popt_and_heads"] = sum(p.numel() for p in self.parameters() if id(p) not in counted)
        out["total"] = sum(p.numel() for p in self.parameters())
        return out


MODELS.alias("neurofm_x_spikes", "neurofm_x", defaults={"modality": "spikes"})
MODELS.alias("neurofm_x_lfp", "neurofm_x", defaults={"modality": "lfp"})
