"""Windows of binned spike counts in the layout of count models: ``x`` (T, n_units) and the
behaviour of the same bins as ``target`` (T, K).

A prepared store of binned spiking data holds the units as channels (type ``spikes``) and may
hold behaviour channels next to them (the monkey reach ``.mat`` reader writes the hand velocity
as channels ``velocity_x``, ``velocity_y``). :class:`CountWindows` wraps the store's windows
(``x`` (C, T)): the named behaviour channels become ``target`` (T, K) and the other channels
``x`` (T, n_units), time first, as :class:`~neurofm.types.ModelSpec` ``binned_counts`` models
read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from neurofm.errors import ConfigError


class CountWindows(torch.utils.data.Dataset):
    """Store windows as counts (T, n_units) and behaviour targets (T, K).

    Parameters
    ----------
    windows : WindowDataset
        Windows of a prepared store (item ``x`` (C, T)); other item fields are kept.
    behaviour : sequence of str
        Channel names moved from ``x`` into ``target``, in this order (empty: no target).
    """

    def __init__(self, windows: Any, behaviour: Sequence[str] = ()) -> None:
        names = list(windows.channel_names)
        missing = [name for name in behaviour if name not in names]
        if missing:
            raise ConfigError(
                f"data.behaviour: channels {missing} are not in the windows' channels "
                f"{names[:8]}{' ...' if len(names) > 8 else ''}"
            )
        self.windows = windows
        self.behaviour = [names.index(name) for name in behaviour]
        self.units = [i for i in range(len(names)) if i not in set(self.behaviour)]
        if not self.units:
            raise ConfigError("data.behaviour: every channel is behaviour; no unit is left")
        self.channel_names = [names[i] for i in self.units]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.windows[i])
        if "target" in item:
            raise ConfigError(
                "data.layout: counts windows take their target from data.behaviour; set "
                "data.target_length: 0"
            )
        x = item["x"]  # (C, T)
        item["x"] = x[self.units].T.contiguous()  # (T, n_units)
        if self.behaviour:
            item["target"] = x[self.behaviour].T.contiguous()  # (T, K)
        for key in ("channel_ids", "positions"):  # per channel of the store: the units' only
            if item.get(key) is not None:
                item[key] = item[key][self.units]
        return item
