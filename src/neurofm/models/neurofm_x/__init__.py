"""NeuroFM-X: a foundation model of binned counts, spike events or field potentials (multi-rate
Mamba, Perceiver-IO, PopT, behaviour / neural-encoder / contrastive heads). See :mod:`.model`."""

from neurofm.models.neurofm_x.config import NeuroFMXConfig
from neurofm.models.neurofm_x.model import NeuroFMX, info_nce

__all__ = ["NeuroFMX", "NeuroFMXConfig", "info_nce"]
