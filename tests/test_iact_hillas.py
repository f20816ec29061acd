"""Hillas parameters against the analytic moments of a known 2-D Gaussian, and tail-cuts
cleaning against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from astrocnn.tasks.iact.camera import get_camera
from astrocnn.tasks.iact.hillas import (
    FEATURES,
    border_rings,
    hillas_features,
    hillas_parameters,
    tailcuts_clean,
)


def gaussian(camera, x0, y0, sigma_l, sigma_w, psi_deg, total=1000.0):
    """Charges of an elliptical Gaussian sampled at the pixel centres, summing to ``total``."""
    psi = math.radians(psi_deg)
    dx, dy = camera.x - x0, camera.y - y0
    along = dx * math.cos(psi) + dy * math.sin(psi)
    across = -dx * math.sin(psi) + dy * math.cos(psi)
    values = np.exp(-0.5 * ((along / sigma_l) ** 2 + (across / sigma_w) ** 2))
    return total * values / values.sum()


@pytest.mark.parametrize(
    ("name", "psi"), [("square", 30.0), ("square", -60.0), ("lst", 75.0), ("taiga", 10.0)]
)
def test_moments_of_a_gaussian(name, psi):
    camera = get_camera(name)
    # well inside the camera (its radius is 13 pitches for taiga), and over a few pixels, where
    # moments of a Gaussian sampled at pixel centres equal the continuous ones
    x0, y0 = 1.5 * camera.pitch, -1.0 * camera.pitch
    sigma_l, sigma_w = 2.5 * camera.pitch, 1.2 * camera.pitch
    params = hillas_parameters(camera, gaussian(camera, x0, y0, sigma_l, sigma_w, psi))
    assert params["size"] == pytest.approx(1000.0)
    assert (params["x"], params["y"]) == pytest.approx((x0, y0), abs=1e-3 * camera.pitch)
    assert params["length"] == pytest.approx(sigma_l, rel=2e-3)
    assert params["width"] == pytest.approx(sigma_w, rel=2e-3)
    assert params["psi"] == pytest.approx(psi, abs=0.05)
    assert params["skewness"] == pytest.approx(0.0, abs=1e-3)
    assert params["kurtosis"] == pytest.approx(3.0, abs=0.01)  # a Gaussian's
    assert params["r"] == pytest.approx(math.hypot(x0, y0), rel=1e-3)
    phi = math.degrees(math.atan2(y0, x0))
    expected_alpha = abs(phi - psi) % 180
    assert params["alpha"] == pytest.approx(min(expected_alpha, 180 - expected_alpha), abs=0.05)
    to_deg = 180 / math.pi / camera.focal_length
    assert params["length_deg"] == pytest.approx(sigma_l * to_deg, rel=2e-3)
    assert params["leakage1"] < 1e-3  # well inside the camera


def test_skewness_sign_follows_the_tail():
    """A tail towards +l (along psi) gives positive skewness."""
    camera = get_camera("square")
    core = gaussian(camera, 0, 0, 4 * camera.pitch, 2 * camera.pitch, 0.0)
    tail = gaussian(camera, 8 * camera.pitch, 0, 4 * camera.pitch, 2 * camera.pitch, 0.0, total=300.0)
    params = hillas_parameters(camera, core + tail)
    assert params["psi"] == pytest.approx(0.0, abs=0.5)
    assert params["skewness"] > 0.2


def test_leakage_of_an_image_at_the_edge():
    camera = get_camera("taiga")
    first, second = border_rings(camera)
    assert 0 < first.sum() < second.sum() < camera.n_pixels
    image = np.zeros(camera.n_pixels)
    image[first] = 1.0
    image[~second] = 1.0
    params = hillas_parameters(camera, image)
    assert params["leakage1"] == pytest.approx(first.sum() / (first.sum() + (~second).sum()))


def test_tailcuts_cleaning():
    camera = get_camera("taiga")
    centre = int(np.argmin(np.hypot(camera.x, camera.y)))
    ring = camera.neighbours()[centre]
    image = np.zeros(camera.n_pixels)
    image[centre] = 10.0
    image[ring[0]] = 8.0  # a picture pixel next to another: kept
    image[ring[1]] = 4.0  # boundary next to a picture pixel: kept
    far = int(np.argmax(np.hypot(camera.x, camera.y)))
    image[far] = 20.0  # an isolated bright pixel: removed
    outer = [j for j in camera.neighbours()[ring[3]] if j != centre and j not in ring]
    image[outer[0]] = 4.0  # boundary not next to a picture pixel: removed
    kept = set(np.flatnonzero(tailcuts_clean(camera, image)).tolist())
    assert kept == {centre, ring[0], ring[1]}


def test_features_of_empty_and_bright_images():
    camera = get_camera("taiga")
    images = np.stack(
        [np.zeros(camera.n_pixels), gaussian(camera, 0.05, 0.02, 0.06, 0.02, 40.0, total=3000.0)]
    )
    features = hillas_features(camera, images)
    assert features.shape == (2, len(FEATURES))
    assert np.isnan(features[0, FEATURES.index("length")]) and features[0, FEATURES.index("size")] == 0
    assert np.isfinite(features[1]).all()
    assert features[1, FEATURES.index("psi")] == pytest.approx(40.0, abs=2.0)
