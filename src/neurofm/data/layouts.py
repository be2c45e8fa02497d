"""2-D sensor layouts: project 3-D positions to a plane and place channels on an H x W grid.

:func:`project_2d` is an azimuthal equidistant projection about the top of a sphere fitted to the
sensors (the projection MNE uses for topomaps): a sensor at polar angle ``theta`` from the
vertical and azimuth ``phi`` lands at ``theta * (cos phi, sin phi)``.

:class:`SensorGrid` gives every sensor location its own grid cell (nearest free cell, collisions
resolved in a fixed order) and moves signals between ``(B, C, T)`` and ``(B, P, T, H, W)``.
Sensors that share a location (the two planar gradiometers of a Neuromag triplet) become ``P``
planes of the same cell; build one grid per channel type with :func:`sensor_grids`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from neurofm.types import SensorInfo


def fit_sphere(positions: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points.

    Parameters
    ----------
    positions : ndarray, shape (C, 3)
        Points (m), at least 4 not on one plane.

    Returns
    -------
    center : ndarray, shape (3,)
    radius : float
    """
    pos = np.asarray(positions, dtype=np.float64)
    # |p|^2 = 2 c . p + (r^2 - |c|^2): linear in (c, k)
    design = np.column_stack([2 * pos, np.ones(len(pos))])
    solution, *_ = np.linalg.lstsq(design, (pos**2).sum(axis=1), rcond=None)
    center = solution[:3]
    radius = float(np.sqrt(solution[3] + center @ center))
    return center, radius


def project_2d(positions: np.ndarray, *, origin: np.ndarray | None = None) -> np.ndarray:
    """Azimuthal equidistant projection of sensor positions seen from above.

    Parameters
    ----------
    positions : ndarray, shape (C, 3)
        Sensor positions (m), ``+z`` pointing up (head or MEG device frame).
    origin : ndarray, shape (3,), optional
        Centre of the projection sphere (default: :func:`fit_sphere` of the positions).

    Returns
    -------
    ndarray, shape (C, 2)
        Planar coordinates in radians of arc from the vertex (``x`` right, ``y`` front).
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or not np.isfinite(pos).all():
        raise ValueError(f"positions must be a finite (C, 3) array, got shape {pos.shape}")
    center = fit_sphere(pos)[0] if origin is None else np.asarray(origin, dtype=np.float64)
    rel = pos - center
    radius = np.linalg.norm(rel, axis=1)
    theta = np.arccos(np.clip(rel[:, 2] / np.maximum(radius, 1e-12), -1.0, 1.0))
    phi = np.arctan2(rel[:, 1], rel[:, 0])
    return np.column_stack([theta * np.cos(phi), theta * np.sin(phi)])


def assign_cells(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Give every point its own cell of an ``H x W`` grid, as close to it as possible.

    Points are scaled to fill the grid (``y`` up = row 0). Points whose nearest cell is closest
    to them choose first (ties: lower index); each takes the nearest free cell (ties: lower
    row-major cell index). The result is deterministic.

    Returns
    -------
    ndarray of int64, shape (n_points, 2)
        ``(row, col)`` of every point, all distinct.
    """
    height, width = shape
    n = len(xy)
    if n > height * width:
        raise ValueError(f"{n} locations do not fit in a {height} x {width} grid")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    col = (xy[:, 0] - lo[0]) / span[0] * (width - 1)
    row = (hi[1] - xy[:, 1]) / span[1] * (height - 1)
    cells_r, cells_c = np.divmod(np.arange(height * width), width)
    residual = np.hypot(row - np.round(row), col - np.round(col))
    free = np.ones(height * width, dtype=bool)
    out = np.zeros((n, 2), dtype=np.int64)
    for i in np.lexsort((np.arange(n), residual)):
        dist = np.hypot(cells_r - row[i], cells_c - col[i])
        dist[~free] = np.inf
        cell = int(np.argmin(dist))  # first minimum = lowest row-major index
        free[cell] = False
        out[i] = (cells_r[cell], cells_c[cell])
    return out


class SensorGrid:
    """Channels placed on an ``H x W`` grid, ``P`` co-located channels per cell.

    Parameters
    ----------
    names : sequence of str
        Channel names, in the order of the channel axis of the signals to map.
    positions : ndarray, shape (C, 3)
        Sensor positions (m).
    shape : (int, int), optional
        Grid size ``(H, W)`` (default: square, side ``ceil(1.5 * sqrt(n_locations))``).
    tolerance : float
        Sensors closer than this (m) share a location.

    Attributes
    ----------
    planes : ndarray of int64, shape (P, L)
        Channel index of plane ``p`` at location ``l`` (co-located channels in channel order).
    cells : ndarray of int64, shape (L, 2)
        ``(row, col)`` of every location.
    mask : ndarray of bool, shape (H, W)
        True on occupied cells.
    """

    def __init__(
        self,
        names: Sequence[str],
        positions: np.ndarray,
        *,
        shape: tuple[int, int] | None = None,
        tolerance: float = 1e-4,
    ) -> None:
        self.names = [str(n) for n in names]
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (len(self.names), 3):
            raise ValueError(f"positions must have shape ({len(self.names)}, 3), got {pos.shape}")
        unknown = [n for n, p in zip(self.names, pos) if not np.isfinite(p).all()]
        if unknown:
            raise ValueError(f"channels without a position cannot be placed on a grid: {unknown}")
        groups: list[list[int]] = []
        for i, p in enumerate(pos):
            for group in groups:
                if np.linalg.norm(pos[group[0]] - p) < tolerance:
                    group.append(i)
                    break
            else:
                groups.append([i])
        sizes = {len(g) for g in groups}
        if len(sizes) != 1:
            odd = [[self.names[i] for i in g] for g in groups if len(g) != len(groups[0])]
            raise ValueError(
                f"co-located channel groups differ in size {sorted(sizes)} (e.g. "
                f"{odd[:3]}); build one grid per channel type"
            )
        self.planes = np.array(groups, dtype=np.int64).T  # (P, L)
        locations = pos[self.planes[0]]
        side = int(np.ceil(1.5 * np.sqrt(len(groups))))
        self.shape = (side, side) if shape is None else (int(shape[0]), int(shape[1]))
        self.xy = project_2d(locations)
        self.cells = assign_cells(self.xy, self.shape)
        self.mask = np.zeros(self.shape, dtype=bool)
        self.mask[self.cells[:, 0], self.cells[:, 1]] = True
        self._flat = torch.as_tensor(self.cells[:, 0] * self.shape[1] + self.cells[:, 1])
        self._planes = torch.as_tensor(self.planes)

    @property
    def n_planes(self) -> int:
        return int(self.planes.shape[0])

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Place channels on the grid: ``(B, C, T)`` -> ``(B, P, T, H, W)``, zeros off-sensor."""
        if x.ndim != 3 or x.shape[1] != len(self.names):
            raise ValueError(f"expected (B, {len(self.names)}, T), got {tuple(x.shape)}")
        batch, _, n_times = x.shape
        height, width = self.shape
        out = x.new_zeros(batch, self.n_planes, n_times, height * width)
        out[..., self._flat.to(x.device)] = x[:, self._planes.to(x.device)].transpose(-1, -2)
        return out.reshape(batch, self.n_planes, n_times, height, width)

    def from_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """Read channels back: ``(B, P, T, H, W)`` -> ``(B, C, T)`` (exact inverse of to_grid)."""
        expected = (self.n_planes, *self.shape)
        if grid.ndim != 5 or (grid.shape[1], *grid.shape[3:]) != expected:
            raise ValueError(
                f"expected (B, {expected[0]}, T, {expected[1]}, {expected[2]}), "
                f"got {tuple(grid.shape)}"
            )
        batch, _, n_times = grid.shape[:3]
        flat = grid.reshape(batch, self.n_planes, n_times, -1)[..., self._flat.to(grid.device)]
        out = grid.new_empty(batch, len(self.names), n_times)
        values = flat.transpose(-1, -2).reshape(batch, -1, n_times)  # (B, P*L, T)
        out[:, self._planes.reshape(-1).to(grid.device)] = values
        return out


def sensor_grids(
    sensors: SensorInfo, *, types: Sequence[str] | None = None, shape: tuple[int, int] | None = None
) -> dict[str, tuple[np.ndarray, SensorGrid]]:
    """One :class:`SensorGrid` per channel type.

    Parameters
    ----------
    sensors : SensorInfo
        Channels with positions.
    types : sequence of str, optional
        Channel types to lay out (default: every type present with known positions).
    shape : (int, int), optional
        Grid size for every type.

    Returns
    -------
    dict of str to (ndarray, SensorGrid)
        Per type: indices of its channels in ``sensors`` (the channel axis of ``to_grid``'s input
        is ``x[:, indices]``) and its grid. For Neuromag MEG: ``mag`` has one plane, ``grad``
        two (the gradiometer pair at each location).
    """
    if sensors.positions is None:
        raise ValueError("the sensors have no positions; a layout needs 3-D positions")
    if types is None:
        known = np.isfinite(sensors.positions).all(axis=1)
        types = [
            t
            for t in sensors.counts_by_type()
            if all(known[i] for i, ti in enumerate(sensors.types) if ti == t)
        ]
    out = {}
    for ch_type in types:
        idx = np.array([i for i, t in enumerate(sensors.types) if t == ch_type], dtype=np.int64)
        if idx.size == 0:
            raise ValueError(f"no channel of type {ch_type!r}; types: {sensors.counts_by_type()}")
        out[ch_type] = (
            idx,
            SensorGrid([sensors.names[i] for i in idx], sensors.positions[idx], shape=shape),
        )
    return out
