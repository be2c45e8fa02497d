"""The Unit-ID adapter: a recording with other units (a new session, held-out units) read by a
frozen NeuroFM-X model.

A model trained on ``n_units`` units has three unit-specific parts: the count projection
(``embed``: sqrt counts -> d_model) of a counts model, or the unit identity embeddings
(``unit_embedding``: unit id -> d_model, added to each spike's time encoding) of a spike-event
model; PopT's unit identities (``unit_ids``); and the rate read-out (``rates_head``: d_latent ->
log rate per unit). :class:`UnitAdapter` holds new ones for ``n_units`` other units (and
optionally its own behaviour head, started from the model's); the spike model's time encoding
and waveform projection are not unit-specific and stay the model's;
:class:`UnitAdaptedNeuroFMX` runs the frozen model with them, so that training touches only the
adapter: the new units are mapped into the model's token and latent spaces
(``model(x, units=adapter)``).

LoRA over any linear layer of the model, and saving / loading an adapter alone onto a base
model, are in :mod:`neurofm.training.adapters`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from neurofm import checks
from neurofm.layers.neural_tokens import BinnedCountEmbedding
from neurofm.models.neurofm_x.config import NeuroFMXConfig
from neurofm.models.neurofm_x.model import NeuroFMX
from neurofm.types import ModelOutput

ADAPTED = ("counts", "spikes")
"""The modalities whose units a Unit-ID adapter maps."""


@dataclass
class UnitAdapterConfig:
    """Sizes of a Unit-ID adapter; all but ``n_units`` and ``behaviour_head`` come from the base."""

    n_units: int  # units of the new recording
    d_model: int  # the base model's token size
    d_latent: int  # the base model's latent size
    unit_ids: bool = True  # new PopT unit identities (the base has PopT)
    sqrt_transform: bool = True  # as the base model's count embedding
    n_behaviour: int = 0  # > 0: the adapter's own behaviour head (started from the base's)
    modality: str = "counts"  # the base model's input: counts or spikes

    def __post_init__(self) -> None:
        checks.positive(self, "n_units", "d_model", "d_latent")
        checks.non_negative(self, "n_behaviour")
        if self.modality not in ADAPTED:
            raise ValueError(
                f"UnitAdapterConfig: modality={self.modality!r}; allowed: {', '.join(ADAPTED)}"
            )

    @classmethod
    def for_model(
        cls, model: NeuroFMX, n_units: int, *, behaviour_head: bool = False
    ) -> UnitAdapterConfig:
        """The adapter config that fits ``model`` for a recording of ``n_units`` units."""
        cfg = model.config
        if cfg.modality not in ADAPTED:
            raise ValueError(
                f"UnitAdapterConfig: Unit-ID adapters map new units' counts or spikes; the model "
                f"reads {cfg.modality} (modality)"
            )
        if behaviour_head and not cfg.n_behaviour:
            raise ValueError("UnitAdapterConfig: behaviour_head=True but the model has none")
        return cls(
            n_units=n_units,
            d_model=cfg.d_model,
            d_latent=cfg.d_latent,
            unit_ids=model.popt is not None,
            sqrt_transform=cfg.sqrt_transform,
            n_behaviour=cfg.n_behaviour if behaviour_head else 0,
            modality=cfg.modality,
        )


class UnitAdapter(nn.Module):
    """New count embedding (counts) or unit identity embeddings (spikes), PopT unit identities
    and rate read-out (+ behaviour head) for new units."""

    def __init__(self, config: UnitAdapterConfig) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.modality == "spikes":
            self.unit_embedding = nn.Embedding(cfg.n_units, cfg.d_model)
        else:
            self.embed = BinnedCountEmbedding(
                cfg.n_units, cfg.d_model, sqrt_transform=cfg.sqrt_transform
            )
        self.unit_ids = nn.Embedding(cfg.n_units, cfg.d_latent) if cfg.unit_ids else None
        self.rates_head = nn.Linear(cfg.d_latent, cfg.n_units)
        self.behaviour_head = nn.Linear(cfg.d_latent, cfg.n_behaviour) if cfg.n_behaviour else None

    def check_fits(self, model: NeuroFMX) -> None:
        """Raise ``ValueError`` naming the field when this adapter was not made for ``model``."""
        if self.config.modality != model.config.modality:
            raise ValueError(
                f"UnitAdapter: modality={self.config.modality} but the model reads "
                f"{model.config.modality}"
            )
        want = UnitAdapterConfig.for_model(
            model, self.config.n_units, behaviour_head=bool(self.config.n_behaviour)
        )
        for name in ("d_model", "d_latent", "unit_ids", "sqrt_transform", "n_behaviour"):
            if getattr(want, name) != getattr(self.config, name):
                raise ValueError(
                    f"UnitAdapter: {name}={getattr(self.config, name)} but the model needs "
                    f"{getattr(want, name)}"
                )


class UnitAdaptedNeuroFMX(nn.Module):
    """A frozen NeuroFM-X model read through a :class:`UnitAdapter` (only the adapter trains).

    Parameters
    ----------
    base : NeuroFMX
        The pretrained model; its parameters are set to ``requires_grad=False``.
    adapter : UnitAdapter
        Made for ``base`` (see :meth:`UnitAdapterConfig.for_model`); when it has its own behaviour
        head and that head is freshly built, it starts from the base model's weights.
    """

    def __init__(self, base: NeuroFMX, adapter: UnitAdapter) -> None:
        super().__init__()
        adapter.check_fits(base)
        self.base, self.adapter = base, adapter
        base.requires_grad_(False)

    @classmethod
    def create(
        cls, base: NeuroFMX, n_units: int, *, behaviour_head: bool = False
    ) -> UnitAdaptedNeuroFMX:
        """A fresh adapter for ``n_units`` units on ``base`` (behaviour head copied from it)."""
        adapter = UnitAdapter(
            UnitAdapterConfig.for_model(base, n_units, behaviour_head=behaviour_head)
        )
        if adapter.behaviour_head is not None:
            adapter.behaviour_head.load_state_dict(base.behaviour_head.state_dict())
        return cls(base, adapter)

    @property
    def config(self) -> NeuroFMXConfig:
        """The base model's config (what it decodes, its sizes)."""
        return self.base.config

    @property
    def n_units(self) -> int:
        """The adapter's units (the unit ids / count columns the adapted model reads)."""
        return self.adapter.config.n_units

    def forward(self, x: Tensor, *, observed: Tensor | None = None) -> ModelOutput:
        """``base(x, observed=observed, units=adapter)``; ``x``: counts (B, T, adapter
        n_units) or spike events (B, N, 2 + F) with the adapter's unit ids."""
        return self.base(x, observed=observed, units=self.adapter)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The adapter's parameters (the only ones with ``requires_grad``)."""
        return [p for p in self.parameters() if p.requires_grad]


def count_trainable(module: nn.Module) -> int:
    """Parameters with ``requires_grad`` in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
