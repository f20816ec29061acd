"""Cherenkov-telescope cameras built in code, the square-grid mappings of hexagonal images, and
the convolution over a neighbour table (checked against nn.Conv2d on a square lattice)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from astrocnn.layers.hexconv import NeighbourConv
from astrocnn.tasks.iact.camera import BilinearMapping, get_camera


@pytest.mark.parametrize(
    ("name", "pixels", "shape"),
    [("taiga", 560, "hexagon"), ("lst", 1855, "hexagon"), ("square", 2048, "square")],
)
def test_cameras_have_the_pixel_counts_and_spacing_of_their_instruments(name, pixels, shape):
    camera = get_camera(name)
    assert camera.n_pixels == pixels and camera.pixel_shape == shape
    assert len({tuple(p) for p in camera.lattice.tolist()}) == pixels
    xy = np.stack([camera.x, camera.y], axis=1)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(d.min(axis=1), camera.pitch, rtol=1e-9)  # every pixel touches one at the pitch
    neighbours = camera.neighbours()
    full = 6 if shape == "hexagon" else 4
    assert max(len(n) for n in neighbours) == full
    centre = int(np.argmin(np.hypot(camera.x, camera.y)))
    assert len(neighbours[centre]) == full
    np.testing.assert_allclose(d[centre, neighbours[centre]], camera.pitch, rtol=1e-9)


def test_taiga_pixels_are_about_a_third_of_a_degree():
    assert get_camera("taiga").pixel_degrees == pytest.approx(0.36, abs=0.01)
    assert get_camera("lst").pixel_degrees == pytest.approx(0.10, abs=0.005)


def test_kernel_sizes():
    hexagonal, square = get_camera("taiga"), get_camera("square")
    for r in range(4):
        assert len(hexagonal.offsets(r)) == 1 + 3 * r * (r + 1)
        assert len(square.offsets(r)) == (2 * r + 1) ** 2
    assert hexagonal.offsets(1)[0] == (0, 0)


@pytest.mark.parametrize("name", ["taiga", "lst", "square"])
def test_axial_addressing_is_exact_and_conserves_charge(name):
    camera = get_camera(name)
    values = np.random.default_rng(0).gamma(1.0, 10.0, size=(3, camera.n_pixels))
    images = camera.to_axial(values)
    assert images.shape == (3, *camera.axial_shape)
    np.testing.assert_array_equal(camera.from_axial(images), values)
    np.testing.assert_allclose(images.sum(axis=(1, 2)), values.sum(axis=1))


def test_axial_neighbours_are_image_neighbours():
    """In axial addressing the six hexagonal neighbours are the image's left, right, upper-left,
    upper, lower and lower-right pixels (rows shifted by half a pixel)."""
    camera = get_camera("taiga")
    centre = int(np.argmin(np.hypot(camera.x, camera.y)))
    values = np.zeros(camera.n_pixels)
    values[camera.neighbours()[centre]] = 1
    image = camera.to_axial(values)
    row, col = np.argwhere(camera.to_axial(np.eye(camera.n_pixels)[centre]) == 1)[0]
    expected = {(row + dr, col + dq) for dq, dr in ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))}
    assert {tuple(p) for p in np.argwhere(image == 1).tolist()} == expected


@pytest.mark.parametrize("name", ["taiga", "square"])
def test_bilinear_mapping_conserves_charge_and_inverts(name):
    camera = get_camera(name)
    mapping = BilinearMapping(camera)
    np.testing.assert_allclose(
        np.asarray(mapping.matrix.sum(axis=0)).ravel(), 1.0
    )  # each pixel's charge, all of it
    values = np.random.default_rng(1).gamma(1.0, 10.0, size=(4, camera.n_pixels))
    grid = mapping.to_grid(values)
    assert grid.shape == (4, mapping.size, mapping.size)
    np.testing.assert_allclose(grid.sum(axis=(1, 2)), values.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(mapping.from_grid(grid), values, atol=1e-9)


def test_bilinear_mapping_puts_the_charge_where_the_pixel_is():
    camera = get_camera("taiga")
    mapping = BilinearMapping(camera)
    for pixel in (0, 100, 559):
        grid = mapping.to_grid(np.eye(camera.n_pixels)[pixel])
        rows, cols = np.indices(grid.shape)
        x = mapping.origin[0] + mapping.step * (grid * cols).sum()
        y = mapping.origin[1] + mapping.step * (grid * rows).sum()
        assert (x, y) == pytest.approx((camera.x[pixel], camera.y[pixel]), abs=1e-12)


def test_neighbour_convolution_on_a_square_lattice_is_conv2d():
    """On the square camera, a 3 x 3 neighbour table and zero outside is nn.Conv2d with zero
    padding on the image whose missing corner modules hold zeros."""
    camera = get_camera("square")
    torch.manual_seed(0)
    layer = NeighbourConv(2, 3, camera.neighbour_table(1))
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        for k, (dq, dr) in enumerate(camera.offsets(1)):
            conv.weight[:, :, dr + 1, dq + 1] = layer.weight[:, :, k]
        conv.bias.copy_(layer.bias)
    values = torch.randn(4, 2, camera.n_pixels, dtype=torch.float64)
    layer, conv = layer.double(), conv.double()
    image = torch.from_numpy(camera.to_axial(values.numpy()))
    expected = torch.from_numpy(camera.from_axial(conv(image).detach().numpy()))
    torch.testing.assert_close(layer(values), expected)


def test_hexagonal_convolution_moves_with_the_image():
    """Translation equivariance on the lattice: an image moved by one pixel step gives the same
    output moved by the same step (away from the camera's edge)."""
    camera = get_camera("lst")
    index = {tuple(p): i for i, p in enumerate(camera.lattice.tolist())}
    torch.manual_seed(1)
    layer = NeighbourConv(1, 4, camera.neighbour_table(2))
    blob = np.exp(-0.5 * ((camera.x / 0.15) ** 2 + (camera.y / 0.15) ** 2))
    moved = np.zeros_like(blob)
    for i, (q, r) in enumerate(camera.lattice.tolist()):
        j = index.get((q - 1, r))  # the pixel one step back along +q
        moved[i] = blob[j] if j is not None else 0.0
    out = layer(torch.tensor(blob, dtype=torch.float32)[None, None])[0].detach().numpy()
    out_moved = layer(torch.tensor(moved, dtype=torch.float32)[None, None])[0].detach().numpy()
    inner = [
        i for i, (q, r) in enumerate(camera.lattice.tolist()) if math.hypot(camera.x[i], camera.y[i]) < 0.5
    ]
    for i in inner:
        j = index[tuple(camera.lattice[i] - (1, 0))]
        np.testing.assert_allclose(out_moved[:, i], out[:, j], atol=1e-5)


def test_neighbour_convolution_trains_and_refuses_wrong_input():
    camera = get_camera("taiga")
    layer = NeighbourConv(1, 2, camera.neighbour_table(1))
    x = torch.randn(3, 1, camera.n_pixels, requires_grad=True)
    layer(x).square().mean().backward()
    assert layer.weight.grad is not None and x.grad.shape == x.shape
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(3, 1, 100))
    with pytest.raises(ValueError, match="neighbour"):
        NeighbourConv(1, 1, np.array([[0, 5], [1, 0]]))


@pytest.mark.parametrize("name", ["taiga", "square"])
def test_camera_images_are_drawn_as_real_pixels(name, tmp_path):
    from matplotlib.path import Path as Outline

    from astrocnn.tasks import plotting
    from astrocnn.tasks.iact.plots import camera_images, draw_camera, pixel_polygons

    camera = get_camera(name)
    polygons = pixel_polygons(camera)
    assert polygons.shape == (camera.n_pixels, 6 if name == "taiga" else 4, 2)
    # the outlines tile the focal plane: their areas add up to the pixels' area, and a point
    # inside a pixel lies in its own outline only
    x, y = polygons[..., 0], polygons[..., 1]
    areas = 0.5 * np.abs(np.sum(x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y, axis=1))
    np.testing.assert_allclose(areas, camera.pixel_area, rtol=1e-12)
    centre = int(np.argmin(np.hypot(camera.x, camera.y)))
    point = (camera.x[centre] + 0.3 * camera.pitch, camera.y[centre] + 0.1 * camera.pitch)
    inside = [i for i in range(camera.n_pixels) if Outline(polygons[i]).contains_point(point)]
    assert inside == [centre]
    fig, ax = plotting.plt.subplots()
    cells = draw_camera(ax, camera, np.arange(camera.n_pixels, dtype=float))
    assert len(cells.get_paths()) == camera.n_pixels
    assert fig.axes[-1].get_ylabel() == "photoelectrons"  # the colour bar
    plotting.plt.close(fig)
    camera_images(camera, np.ones((2, camera.n_pixels)), ["a", "b"], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="pixels"):
        fig, ax = plotting.plt.subplots()
        draw_camera(ax, camera, np.ones(3))
