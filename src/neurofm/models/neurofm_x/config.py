"""Configuration of the NeuroFM-X family (:class:`~neurofm.models.neurofm_x.model.NeuroFMX`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neurofm import checks
from neurofm.layers.mamba import FUSIONS, SCANS

MODALITIES = ("counts", "spikes", "lfp")
"""The inputs a NeuroFM-X model takes: binned counts, spike events, field potentials."""


@dataclass
class NeuroFMXConfig:
    """Sizes of the tokens, the Mamba backbone, the Perceiver-IO fusion, PopT and the heads.

    ``modality`` chooses the input: ``counts`` (binned counts (B, T, n_units)), ``spikes``
    (spike events (B, N, 2 + n_waveform_features), read out on ``n_bins`` bins of ``bin_size``
    seconds) or ``lfp`` (field potentials (B, n_chans, T) at ``sfreq``, read out every
    ``lfp_pool`` samples).
    """

    modality: str = "counts"  # input: counts, spikes (events) or lfp (continuous)
    n_units: int = 96  # units of the binned counts (B, T, n_units) / unit ids of the events
    n_behaviour: int = 0  # behaviour variables decoded per bin (e.g. 2: hand velocity); 0: none
    sqrt_transform: bool = True  # square-root transform of the counts before the projection
    d_model: int = 768  # token / backbone feature size
    n_layers: int = 16  # Mamba blocks per rate stream
    d_state: int = 16  # SSM state size per channel
    d_conv: int = 4  # Mamba depthwise convolution width
    expand: int = 2  # Mamba inner width = expand * d_model
    rates: tuple[int, ...] = (1, 4, 16)  # bins pooled per step of each backbone stream
    fusion: str = "concat"  # how the rate streams combine: concat, add or attention
    scan: str = "auto"  # selective scan: auto, parallel, sequential (reference) or cuda
    n_latents: int = 128  # Perceiver-IO latent vectors
    d_latent: int = 512  # Perceiver-IO latent size
    n_fusion_layers: int = 3  # Perceiver-IO cross + self attention layers
    n_heads: int = 8  # attention heads of the fusion, PopT and read-out
    popt_layers: int = 3  # population transformer layers over the units (0: no PopT)
    popt_profile: int = 8  # time bins of each unit's activity profile read by PopT
    d_contrastive: int = 128  # size of the contrastive projection
    contrastive_weight: float = 0.1  # weight of the time-contrastive InfoNCE aux loss (0: off)
    temperature: float = 0.1  # InfoNCE temperature
    diffusion_weight: float = 0.0  # weight of the latent diffusion prior's loss (0: no prior)
    diffusion_steps: int = 1000  # steps of the prior's cosine noise schedule
    prior_layers: int = 2  # transformer layers of the prior's denoiser
    dropout: float = 0.0  # dropout in attention and MLPs
    # spike events (modality: spikes)
    n_bins: int = 50  # bins of a window: the read-out grid of the rates and behaviour
    bin_size: float = 0.02  # seconds per bin (a window lasts n_bins * bin_size seconds)
    n_waveform_features: int = 0  # features per spike after its unit id and time (0: none)
    freeze_units: bool = False  # keep the unit identity embeddings at their initialisation
    time_scale: float = 1e-3  # seconds per unit of the spike-time sinusoids
    # spikes: a bin query reads the spikes within this many bins (0: every spike); counts: a
    # bin query also reads the backbone features of the bins within this many bins on both
    # sides, later bins included (0: only its own causal feature, the default read-out)
    read_radius: int = 0
    # field potentials (modality: lfp)
    n_chans: int = 64  # channels of the field potentials (B, n_chans, T)
    sfreq: float = 1000.0  # sampling rate (Hz), for the band-power features
    lfp_pool: int = 4  # samples per step of the pooled grid (T must be a multiple)
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_units": 6,
            "d_model": 16,
            "n_layers": 1,
            "d_state": 4,
            "rates": (1, 4),
            "n_latents": 4,
            "d_latent": 16,
            "n_fusion_layers": 1,
            "n_heads": 2,
            "popt_layers": 1,
            "popt_profile": 4,
            "d_contrastive": 8,
            "n_bins": 16,
        },
        "small": {
            "d_model": 128,
            "n_layers": 4,
            "rates": (1, 4),
            "n_latents": 32,
            "d_latent": 128,
            "n_fusion_layers": 2,
            "n_heads": 4,
            "popt_layers": 2,
            "d_contrastive": 64,
        },
        "base": {},  # the spec's sizes: 768-d, 16 blocks x 3 rates, 128 x 512 x 3 fusion
    }

    def __post_init__(self) -> None:
        self.rates = tuple(int(r) for r in self.rates)
        checks.positive(
            self, "n_units", "d_model", "n_layers", "d_state", "d_conv", "expand", "n_latents"
        )
        checks.positive(self, "d_latent", "n_fusion_layers", "n_heads", "popt_profile")
        checks.positive(self, "d_contrastive", "temperature")
        checks.non_negative(self, "n_behaviour", "popt_layers", "contrastive_weight")
        checks.non_negative(self, "diffusion_weight")
        checks.positive(self, "diffusion_steps", "prior_layers")
        checks.fraction(self, "dropout")
        checks.divides(self, "n_heads", "d_latent")
        if self.d_model % 2:
            raise ValueError(f"d_model must be even (sinusoidal positions), got {self.d_model}")
        if not self.rates or len(set(self.rates)) != len(self.rates) or min(self.rates) < 1:
            raise ValueError(f"rates must be distinct integers >= 1, got {self.rates}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion={self.fusion!r}; allowed: {', '.join(FUSIONS)}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality={self.modality!r}; allowed: {', '.join(MODALITIES)}")
        checks.positive(self, "n_bins", "bin_size", "time_scale", "n_chans", "sfreq", "lfp_pool")
        checks.non_negative(self, "n_waveform_features", "read_radius")
        if self.scan not in SCANS:
            raise ValueError(f"scan={self.scan!r}; allowed: {', '.join(SCANS)}")
