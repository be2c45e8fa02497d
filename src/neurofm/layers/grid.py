"""Channels on a sensor grid inside a model: cells from sensor positions, scatter and gather.

:class:`PositionGrid` places the channels of every window on an ``H x W`` grid from their 3-D
positions (the ``positions`` context, (B, C, 3)), with the layout neurofm computes for topomaps
and grids (:func:`~neurofm.data.layouts.project_2d`, :func:`~neurofm.data.layouts.assign_cells`:
each channel its own cell). Layouts are computed once per distinct set of positions and kept.
Channels must have distinct, finite positions; cells without a channel hold zeros.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from neurofm.data.layouts import assign_cells, project_2d


class PositionGrid:
    """Flat cell index of every channel on an ``height x width`` grid.

    Parameters
    ----------
    height, width : int
        Grid size; it must hold every channel of a window.
    where : str
        Name used in error messages (the model).
    """

    def __init__(self, height: int, width: int, *, where: str) -> None:
        self.shape = (int(height), int(width))
        self.where = where
        self._layouts: dict[bytes, np.ndarray] = {}

    def _layout(self, positions: np.ndarray) -> np.ndarray:
        key = positions.tobytes()
        if key not in self._layouts:
            bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
            if bad.size:
                raise ValueError(
                    f"{self.where}: channels {bad.tolist()} have no finite position; a sensor "
                    "grid needs the positions of every channel"
                )
            if len(positions) > self.shape[0] * self.shape[1]:
                raise ValueError(
                    f"{self.where}: {len(positions)} channels do not fit on a {self.shape[0]} x "
                    f"{self.shape[1]} grid; raise grid_size"
                )
            xy = project_2d(positions)
            if not np.isfinite(xy).all():  # too few sensors to fit a sphere: view from above
                xy = positions[:, :2]
            cells = assign_cells(xy, self.shape)
            self._layouts[key] = cells[:, 0] * self.shape[1] + cells[:, 1]
        return self._layouts[key]

    def cells(self, positions: Tensor) -> Tensor:
        """Flat cell index (B, C) int64 of the channels at ``positions`` (B, C, 3) or (C, 3)."""
        pos = positions.detach().cpu().double().numpy()
        if pos.ndim == 2:
            pos = pos[None]
        if pos.ndim != 3 or pos.shape[-1] != 3:
            raise ValueError(f"{self.where}: positions must be (B, C, 3), got {pos.shape}")
        flat = np.stack([self._layout(np.ascontiguousarray(p)) for p in pos])
        return torch.as_tensor(flat, device=positions.device)

    def scatter(self, h: Tensor, cells: Tensor) -> Tensor:
        """Channel features ``h`` (B, C, T, D) onto the grid: (B, D, T, H, W), zeros elsewhere."""
        b, c, t, d = h.shape
        height, width = self.shape
        cells = cells.expand(b, c)
        grid = h.new_zeros(b, height * width, t, d)
        grid = grid.scatter(1, cells[:, :, None, None].expand(b, c, t, d), h)
        return grid.permute(0, 3, 2, 1).reshape(b, d, t, height, width)

    def gather(self, grid: Tensor, cells: Tensor) -> Tensor:
        """Features of the channels' cells: ``grid`` (B, D, T, H, W) -> (B, C, T, D)."""
        b, d, t = grid.shape[:3]
        flat = grid.reshape(b, d, t, -1).permute(0, 3, 2, 1)  # (B, H*W, T, D)
        c = cells.shape[-1]
        return flat.gather(1, cells.expand(b, c)[:, :, None, None].expand(b, c, t, d))
