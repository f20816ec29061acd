"""The sky-shapes baseline's radial profile is normalised by the source's flux (issue 16)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from astrocnn.tasks.sky_shapes import PROFILE_EDGES, SIZE, profile_features

NBINS = len(PROFILE_EDGES) - 1
YY, XX = np.mgrid[0:SIZE, 0:SIZE]
R = np.hypot(YY - 15.5, XX - 15.5)  # about the image centre, where symmetric sources' centroid is


def _ring(amplitude: float = 5.0) -> np.ndarray:
    """A standardised (sky 0, noise 1) image of a flat ring of radius 5 to 7 px: a hollow centre."""
    return np.where((R >= 5) & (R < 7), amplitude, 0.0)


def _disc(amplitude: float = 5.0) -> np.ndarray:
    return np.where(R < 4, amplitude, 0.0)


def _features(*images: np.ndarray, **kwargs) -> np.ndarray:
    return profile_features(np.stack(images)[:, None], **kwargs)


def _pixels_per_annulus() -> np.ndarray:
    which = np.digitize(R, PROFILE_EDGES) - 1
    return np.array([(which == b).sum() for b in range(NBINS)])


def test_the_profile_of_a_ring_does_not_depend_on_its_brightness():
    scales = (1.0, 3.0, 10.0, 100.0)
    feats = _features(*(_ring(5.0 * s) for s in scales))
    np.testing.assert_allclose(feats[:, :NBINS], np.broadcast_to(feats[0, :NBINS], (4, NBINS)), rtol=1e-12)
    assert np.all(np.diff(feats[:, -1]) > 0)  # the brightness is in the log-flux feature alone


@pytest.mark.parametrize("centre", [0.0, 1e-4, -1e-4, 0.05])
def test_a_hollow_centre_gives_a_bounded_profile(centre):
    rng = np.random.default_rng(0)
    img = _ring(20.0) + np.where(R >= 7, rng.normal(0.0, 0.5, size=R.shape), 0.0)
    img[R < 1.5] = centre  # the central bin: empty of light
    profile = _features(img)[0, :NBINS]
    assert np.all(np.isfinite(profile))
    assert np.abs(profile).max() <= 1.0
    assert profile[0] == pytest.approx(centre / img[img > 2].sum(), abs=1e-12)


@pytest.mark.parametrize("make", [_ring, _disc])
def test_the_profile_is_the_surface_brightness_over_the_flux(make):
    """sum(profile * pixels per annulus) = 1 when every pixel is either zero or above 2 sigma."""
    img = make()
    profile = _features(img)[0, :NBINS]
    assert float(np.dot(profile, _pixels_per_annulus())) == pytest.approx(1.0, rel=1e-12)
    assert profile == pytest.approx(
        [img[(R >= lo) & (R < hi)].mean() / img.sum() for lo, hi in pairwise(PROFILE_EDGES)]
    )


def test_the_aperture_normalisation_sums_to_one_with_noise():
    rng = np.random.default_rng(1)
    img = _ring(5.0) + rng.normal(0.0, 1.0, size=R.shape)
    feats = _features(img, normalise="aperture")[0]
    # the centroid of the noisy image is not the centre exactly: count about the features' own centre
    positive = np.where(img > 2.0, img, 0.0)
    cy, cx = (positive * YY).sum() / positive.sum(), (positive * XX).sum() / positive.sum()
    which = np.digitize(np.hypot(YY - cy, XX - cx), PROFILE_EDGES) - 1
    counts = np.array([(which == b).sum() for b in range(NBINS)])
    assert float(np.dot(feats[:NBINS], counts)) == pytest.approx(1.0, rel=1e-9)


def test_the_old_normalisation_is_kept_to_compare_and_others_are_refused():
    img = _disc()
    centre = _features(img, normalise="centre")[0, :NBINS]
    assert centre[0] == 1.0
    with pytest.raises(ValueError, match="normalise must be one of"):
        _features(img, normalise="peak")
