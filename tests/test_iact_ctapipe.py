"""astrocnn's tail-cuts cleaning, Hillas parameters and leakage against ctapipe's, on astrocnn's own
simulated events (issue 9); ``benchmarks/check_iact_ctapipe.py`` prints the measured differences.

Skipped unless ctapipe can be imported. ctapipe must not enter astrocnn's environment (ctapipe 0.28,
the last release for Python 3.11, pins astropy<8), and this file needs neither torch nor the astrocnn
package: it loads ``camera.py``, ``simulation.py`` and ``hillas.py`` by path (NumPy and SciPy only).
Run it in ctapipe's own environment, without the repository's conftest.py (which imports torch)::

    python3 -m venv /tmp/ctavenv && /tmp/ctavenv/bin/pip install ctapipe pytest
    /tmp/ctavenv/bin/python -m pytest --noconftest tests/test_iact_ctapipe.py

Cleaning is compared exactly: both sides threshold the same float64 charges and combine booleans
over the same neighbours. The Hillas parameters are sums over the cleaned pixels computed in another
order and by other routines (``np.average``, ``np.cov``, ``arctan`` against astrocnn's sums and
``atan2``), so they may differ by float64 rounding only; each tolerance is that rounding carried
through the parameter's formula for the image at hand (:func:`tolerances`), from ``ROUNDING``, a
bound on the relative error of a float64 sum of at most 2048 terms (n * eps = 4.5e-13). No
convention differs: psi is in (-90, 90] degrees on both sides, skewness is taken along that
direction on both, kurtosis is the plain fourth moment (a Gaussian's 3) on both, lengths are the
square roots of the covariance's eigenvalues with weights summing to one (ddof=0) on both.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ctapipe")
u = pytest.importorskip("astropy.units")
from ctapipe.coordinates import CameraFrame, TelescopeFrame  # noqa: E402
from ctapipe.image import hillas_parameters, leakage_parameters, tailcuts_clean  # noqa: E402
from ctapipe.instrument import CameraGeometry  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src" / "astrocnn" / "tasks" / "iact"
#: Relative error bound of a float64 sum of up to 2048 terms (n * eps = 4.5e-13), rounded up.
ROUNDING = 1e-12
#: Absolute error of an angle ctapipe holds as an astropy Longitude: a negative angle is wrapped
#: into [0, 360) degrees and back, which costs up to eps of 2 pi radians.
LONGITUDE = 2 * math.pi * np.finfo(float).eps
#: astrocnn's default cleaning (hillas.tailcuts_masks): photoelectrons.
PICTURE, BOUNDARY = 7.0, 3.5
#: Events per camera: a few hundred above 1 TeV, so that a fair number leave an image.
N_EVENTS = {"taiga": 400, "square": 400, "lst": 600}


@pytest.fixture(scope="module")
def iact() -> SimpleNamespace:
    """astrocnn's camera, simulation and hillas modules from their files, without the package:
    each is registered under its dotted name only while the next one's ``from
    astrocnn.tasks.iact.camera import Camera`` runs; sys.modules is restored afterwards."""
    names = ("camera", "simulation", "hillas")
    saved = {n: sys.modules.get(f"astrocnn.tasks.iact.{n}") for n in names}
    loaded = {}
    try:
        for name in names:
            spec = importlib.util.spec_from_file_location(f"astrocnn.tasks.iact.{name}", SRC / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            loaded[name] = module
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(f"astrocnn.tasks.iact.{name}", None)
            else:
                sys.modules[f"astrocnn.tasks.iact.{name}"] = old
    return SimpleNamespace(**loaded)


@pytest.fixture(scope="module", params=["taiga", "square", "lst"])
def case(request, iact) -> SimpleNamespace:
    """A camera, ctapipe's geometry of it (in metres, and on the sky) and simulated charges."""
    camera = iact.camera.get_camera(request.param)
    geom = CameraGeometry(
        name=f"astrocnn-{camera.name}",
        pix_id=np.arange(camera.n_pixels),
        pix_x=camera.x * u.m,
        pix_y=camera.y * u.m,
        pix_area=np.full(camera.n_pixels, camera.pixel_area) * u.m**2,
        pix_type="hexagon" if camera.pixel_shape == "hexagon" else "square",
        pix_rotation=0 * u.deg,  # pointy-top hexagons: neighbours along +-x
        frame=CameraFrame(focal_length=camera.focal_length * u.m),
    )
    events = iact.simulation.Simulator(camera).simulate(
        N_EVENTS[camera.name], seed=1, energy_range=(1.0, 100.0)
    )
    return SimpleNamespace(
        camera=camera,
        geom=geom,
        sky=geom.transform_to(TelescopeFrame()),
        charge=events.charge.astype(np.float64),
    )


def test_geometry_is_the_same(iact, case):
    """ctapipe's k-d-tree neighbours and border rings of astrocnn's pixels are astrocnn's lattice
    neighbours and border rings."""
    camera = case.camera
    ours = np.zeros((camera.n_pixels, camera.n_pixels), bool)
    for i, neighbours in enumerate(camera.neighbours()):
        ours[i, neighbours] = True
    np.testing.assert_array_equal(ours, case.geom.neighbor_matrix)
    first, second = iact.hillas.border_rings(camera)
    np.testing.assert_array_equal(first, case.geom.get_border_pixel_mask(1))
    np.testing.assert_array_equal(second, case.geom.get_border_pixel_mask(2))


@pytest.mark.parametrize(
    ("min_neighbours", "keep_isolated"),
    # astrocnn's min_neighbours = 0 keeps an isolated picture pixel: ctapipe's keep_isolated_pixels
    [(1, False), (2, False), (0, True)],
)
def test_cleaning_masks_are_identical(iact, case, min_neighbours, keep_isolated):
    ours = iact.hillas.tailcuts_masks(case.camera, case.charge, PICTURE, BOUNDARY, min_neighbours)
    theirs = np.array(
        [
            tailcuts_clean(
                case.geom,
                image,
                picture_thresh=PICTURE,
                boundary_thresh=BOUNDARY,
                keep_isolated_pixels=keep_isolated,
                min_number_picture_neighbors=min_neighbours,
            )
            for image in case.charge
        ]
    )
    np.testing.assert_array_equal(ours, theirs)
    assert ours.any(axis=1).sum() >= 20  # not a comparison of empty masks


def tolerances(camera, image: np.ndarray, mask: np.ndarray, c: dict) -> dict[str, float]:
    """Float64 rounding carried through each parameter's formula, for one image; ``c`` holds
    ctapipe's values (metres, radians). The centred coordinates x - x_mean carry an absolute
    error of eps times the camera's radius R, so the covariance's entries one of ROUNDING * L (L + R);
    eigenvalues move by no more than that (Weyl), the major axis by that over the eigenvalue gap
    L^2 - W^2 (Davis-Kahan), a pixel's longitudinal coordinate l by the axis' error times its
    transverse distance, and skewness and kurtosis by their derivatives in l and L."""
    radius = float(np.hypot(camera.x, camera.y).max())
    length, width, psi = c["length"], c["width"], c["psi"]
    cov = ROUNDING * length * (length + radius)
    gap = length**2 - width**2
    axis = cov / gap if gap > 0 else math.inf
    dx, dy = camera.x[mask] - c["x"], camera.y[mask] - c["y"]
    along = dx * math.cos(psi) + dy * math.sin(psi)
    across = -dx * math.sin(psi) + dy * math.cos(psi)
    dl = axis * np.abs(across).max() + ROUNDING * radius
    length_rel = cov / (2 * length**2)
    centroid = ROUNDING * radius
    phi = centroid / c["r"] if c["r"] > 0 else math.inf
    return {
        "size": ROUNDING * c["size"],
        "centroid": centroid,
        "phi": phi,
        "eigenvalue": cov,
        "psi": axis,
        "alpha": axis + phi,
        "skewness": 3 * (along**2).max() * dl / length**3 + 3 * abs(c["skewness"]) * length_rel + ROUNDING,
        "kurtosis": 4 * np.abs(along**3).max() * dl / length**4 + (4 * length_rel + ROUNDING) * c["kurtosis"],
        "leakage": ROUNDING,
    }


def test_hillas_parameters_and_leakage_agree(iact, case):
    camera, geom = case.camera, case.geom
    masks = iact.hillas.tailcuts_masks(camera, case.charge, PICTURE, BOUNDARY, 1)
    to_degrees = 180 / math.pi / camera.focal_length
    first, second = iact.hillas.border_rings(camera)
    compared = leaking = 0
    for image, mask in zip(case.charge, masks, strict=True):
        if mask.sum() < 2:  # astrocnn: NaN; ctapipe: an error (no charge) or a one-pixel ellipse
            continue
        ours = iact.hillas.hillas_parameters(camera, image, mask)
        h = hillas_parameters(geom[mask], image[mask])
        sky = hillas_parameters(case.sky[mask], image[mask])
        leak = leakage_parameters(geom, image, mask)
        c = {
            "size": float(h.intensity),
            "x": h.x.to_value(u.m),
            "y": h.y.to_value(u.m),
            "r": h.r.to_value(u.m),
            "phi": h.phi.to_value(u.rad),
            "length": h.length.to_value(u.m),
            "width": h.width.to_value(u.m),
            "psi": h.psi.to_value(u.rad),
            "skewness": float(h.skewness),
            "kurtosis": float(h.kurtosis),
        }
        tol = tolerances(camera, image, mask, c)
        where = f"{camera.name} image of {int(mask.sum())} pixels"
        assert abs(ours["size"] - c["size"]) <= tol["size"], where
        for name in ("x", "y", "r"):
            assert abs(ours[name] - c[name]) <= tol["centroid"], (where, name)
        dphi = (math.radians(ours["phi"]) - c["phi"] + math.pi) % (2 * math.pi) - math.pi  # +-180 alike
        assert abs(dphi) <= tol["phi"], where
        assert abs(ours["length"] ** 2 - c["length"] ** 2) <= tol["eigenvalue"], where
        assert abs(ours["width"] ** 2 - c["width"] ** 2) <= tol["eigenvalue"], where
        # psi: the same range on both sides, so compared without folding, unless the axis lies
        # within its rounding of the vertical, where +90 and -90 degrees are the same axis
        dpsi = math.radians(ours["psi"]) - c["psi"]
        flipped = abs(abs(dpsi) - math.pi) <= tol["psi"] and math.pi / 2 - abs(c["psi"]) <= tol["psi"]
        assert flipped or abs(dpsi) <= tol["psi"], where
        sign = -1.0 if flipped else 1.0  # the skewness along the opposite direction
        assert abs(sign * ours["skewness"] - c["skewness"]) <= tol["skewness"], where
        assert abs(ours["kurtosis"] - c["kurtosis"]) <= tol["kurtosis"], where
        # alpha is not a ctapipe parameter: the angle between the major axis and the direction
        # from the camera centre to the centroid, from ctapipe's psi and centroid
        along = math.cos(c["psi"]) * c["x"] + math.sin(c["psi"]) * c["y"]
        across = math.cos(c["psi"]) * c["y"] - math.sin(c["psi"]) * c["x"]
        alpha = math.atan2(abs(across), abs(along))
        assert abs(math.radians(ours["alpha"]) - alpha) <= tol["alpha"], where
        # on the sky: ctapipe's TelescopeFrame (x / f and y / f radians, as astrocnn's small angle)
        # positions off by LONGITUDE move a covariance entry by up to 2 LONGITUDE times the radius
        sky_radius = float(np.hypot(camera.x, camera.y).max()) * to_degrees
        sky_tol = tol["eigenvalue"] * to_degrees**2 + 2 * math.degrees(LONGITUDE) * sky_radius
        assert abs(ours["length_deg"] ** 2 - sky.length.to_value(u.deg) ** 2) <= sky_tol, where
        assert abs(ours["width_deg"] ** 2 - sky.width.to_value(u.deg) ** 2) <= sky_tol, where
        assert abs(ours["leakage1"] - leak.intensity_width_1) <= tol["leakage"], where
        assert abs(ours["leakage2"] - leak.intensity_width_2) <= tol["leakage"], where
        # ctapipe's pixel leakage: the fraction of the cleaned pixels in the same rings
        assert leak.pixels_width_1 == (mask & first).sum() / mask.sum(), where
        assert leak.pixels_width_2 == (mask & second).sum() / mask.sum(), where
        compared += 1
        leaking += ours["leakage1"] > 0
    assert compared >= 20  # enough images for the comparison to mean something
    if camera.name == "taiga":
        assert leaking >= 5  # and some at the edge, so the leakage is compared on non-zero values
