"""neurofm: foundation models of electrophysiology (MEG, EEG, iEEG/LFP, spikes).

The package follows the data flow: io -> preprocessing -> data -> tokenizers -> layers ->
models -> objectives -> training -> generation / evaluation -> cli. ``import neurofm`` stays
light: heavy dependencies (torch, mne, lightning) are imported by the subpackages that need them.
"""

from neurofm._version import __version__
from neurofm.errors import ConfigError, NeuroFMError, RecordingError

__all__ = ["ConfigError", "NeuroFMError", "RecordingError", "__version__"]
