"""Sensor layouts on real positions: the 64-channel EEG cap and Neuromag MEG (mag and grad)."""

from __future__ import annotations

import mne
import numpy as np
import pytest
import torch

from neurofm.data.layouts import SensorGrid, assign_cells, fit_sphere, project_2d, sensor_grids
from neurofm.types import SensorInfo


@pytest.fixture(scope="module")
def eeg_info(sample_dir):
    raw = mne.io.read_raw_edf(sample_dir / "eegbci_S001" / "S001R03.edf", verbose="error")
    mne.datasets.eegbci.standardize(raw)
    raw.set_montage("standard_1005", verbose="error")
    return raw.info


@pytest.fixture(scope="module")
def meg_info(test_data):
    path = test_data / "meg_evoked_as_raw.fif"
    return mne.io.read_raw_fif(path, verbose="error").pick("meg").info


def positions(info) -> np.ndarray:
    return np.array([ch["loc"][:3] for ch in info["chs"]])


def test_sphere_fit_and_projection_match_the_geometry():
    rng = np.random.default_rng(0)
    direction = rng.standard_normal((50, 3))
    direction[:, 2] = np.abs(direction[:, 2])
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    center = np.array([0.01, -0.02, 0.04])
    center_fit, radius = fit_sphere(center + 0.09 * direction)
    np.testing.assert_allclose(center_fit, center, atol=1e-9)
    assert radius == pytest.approx(0.09)
    xy = project_2d(center + 0.09 * direction)
    # azimuthal equidistant: distance from the centre = polar angle from the vertex
    np.testing.assert_allclose(np.hypot(*xy.T), np.arccos(direction[:, 2]), atol=1e-9)
    top = project_2d(np.array([[0, 0, 1.0], [1, 0, 0], [0, 1, 0], [-1, 0, 0]]), origin=np.zeros(3))
    np.testing.assert_allclose(
        top, [[0, 0], [np.pi / 2, 0], [0, np.pi / 2], [-np.pi / 2, 0]], atol=1e-12
    )


def test_eeg_cap_gets_unique_cells_in_head_order_and_round_trips(eeg_info):
    names = eeg_info["ch_names"]
    grid = SensorGrid(names, positions(eeg_info))
    assert grid.n_planes == 1 and grid.shape == (12, 12) and grid.mask.sum() == 64
    assert len({tuple(c) for c in grid.cells}) == 64
    cell = {n: tuple(c) for n, c in zip(names, grid.cells)}
    assert cell["Fpz"][0] < cell["Cz"][0] < cell["Oz"][0]  # front at the top
    assert cell["T7"][1] < cell["Cz"][1] < cell["T8"][1]  # left to right
    assert cell["C3"][0] == cell["Cz"][0] == cell["C4"][0]
    ours = project_2d(positions(eeg_info))
    theirs = mne.channels.layout._find_topomap_coords(eeg_info, None, sphere=None)
    for axis in (0, 1):
        assert np.corrcoef(ours[:, axis], theirs[:, axis])[0, 1] > 0.99
    x = torch.randn(3, 64, 10)
    gridded = grid.to_grid(x)
    assert gridded.shape == (3, 1, 10, 12, 12)
    assert torch.equal(grid.from_grid(gridded), x)
    assert torch.all(gridded[..., ~torch.as_tensor(grid.mask)] == 0)
    r, c = cell["Cz"]
    assert torch.equal(gridded[:, 0, :, r, c], x[:, names.index("Cz")])


def test_meg_magnetometers_and_gradiometer_pairs_by_type(meg_info):
    sensors = SensorInfo(
        meg_info["ch_names"], meg_info.get_channel_types(), positions=positions(meg_info)
    )
    grids = sensor_grids(sensors)
    assert set(grids) == {"mag", "grad"}
    mag_idx, mag = grids["mag"]
    grad_idx, grad = grids["grad"]
    assert mag_idx.size == 102 and mag.n_planes == 1 and mag.mask.sum() == 102
    assert grad_idx.size == 204 and grad.n_planes == 2 and grad.mask.sum() == 102
    pair = [grad.names[i] for i in grad.planes[:, 0]]
    assert pair[0][:-1] == pair[1][:-1]  # e.g. MEG 0113 / MEG 0112 share a cell
    x = torch.randn(2, 306, 5)
    planes = grad.to_grid(x[:, grad_idx])
    assert planes.shape == (2, 2, 5, 16, 16)
    assert torch.equal(grad.from_grid(planes), x[:, grad_idx])
    assert SensorGrid(sensors.names, sensors.positions).n_planes == 3  # whole triplets
    with pytest.raises(ValueError, match="one grid per channel type"):
        SensorGrid(sensors.names[1:], sensors.positions[1:])  # one triplet incomplete


def test_collisions_resolve_deterministically_and_errors_are_clear():
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.01, 0.0]])
    cells = assign_cells(xy, (3, 3))
    assert len({tuple(c) for c in cells}) == 4
    assert np.array_equal(cells, assign_cells(xy, (3, 3)))
    with pytest.raises(ValueError, match="do not fit"):
        assign_cells(xy, (1, 3))
    with pytest.raises(ValueError, match="without a position"):
        SensorGrid(["a", "b"], np.array([[0, 0, 1.0], [np.nan] * 3]))
