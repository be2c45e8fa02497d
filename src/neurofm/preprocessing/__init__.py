"""Preprocessing: pure functions ``Recording -> Recording`` and a fingerprinted Pipeline.

Steps (registered in :data:`STEPS` by short name): ``pick_types``, ``mark_bads``, ``drop_bads``,
``set_montage``, ``interpolate_bads``, ``notch``, ``bandpass``, ``highpass``, ``lowpass``,
``resample``, ``rereference``, ``clip``. Scaling statistics are fitted on the train split by
:class:`RobustScaler` and stored in the prepared store's manifest.
"""

from neurofm.preprocessing._base import as_float32, check_finite
from neurofm.preprocessing.channels import (
    drop_bads,
    interpolate_bads,
    mark_bads,
    pick_types,
    rereference,
    set_montage,
)
from neurofm.preprocessing.filters import bandpass, clip, notch
from neurofm.preprocessing.pipeline import Pipeline, filter_phase
from neurofm.preprocessing.resample import resample
from neurofm.preprocessing.scaling import RobustScaler
from neurofm.preprocessing.steps import STEPS, Step, register_step

__all__ = [
    "STEPS",
    "Pipeline",
    "RobustScaler",
    "Step",
    "as_float32",
    "bandpass",
    "check_finite",
    "clip",
    "drop_bads",
    "filter_phase",
    "interpolate_bads",
    "mark_bads",
    "notch",
    "pick_types",
    "register_step",
    "rereference",
    "resample",
    "set_montage",
]
