"""Configuration of the NeuroFM-X family (:class:`~neurofm.models.neurofm_x.model.NeuroFMX`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neurofm import checks
from neurofm.layers.mamba import FUSIONS, SCANS


@dataclass
class NeuroFMXConfig:
    """Sizes of the tokens, the Mamba backbone, the Perceiver-IO fusion, PopT and the heads."""

    n_units: int = 96  # units of the binned counts (B, T, n_units)
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
        if self.scan not in SCANS:
            raise ValueError(f"scan={self.scan!r}; allowed: {', '.join(SCANS)}")
