"""Smoke task: is a faint source in a sky image point-like, extended, or a ring?

Each 32 x 32 image is a photon-counting exposure: a sky background of 100 counts per pixel, a
source of total flux F convolved with a Gaussian PSF, Poisson noise on the sum and Gaussian read
noise. The source is a star (the PSF itself), an exponential disc (Sersic n = 1, random axis
ratio and orientation) or a thin ring (a shell, or a muon ring in a Cherenkov camera). Its
flux follows from a signal-to-noise ratio drawn log-uniformly between 3 and 40, so accuracy can
be read as a function of S/N, as a survey would report it.

The classical baseline is what an astronomer would do without a network: the source's radial
profile about its centroid, its ellipticity and its flux, fed to a gradient-boosted classifier.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss

from astrocnn.tasks import plotting
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind, binned_mean
from astrocnn.tasks.registry import register_task

SIZE = 32
SKY = 100.0  # counts per pixel
READ_NOISE = 5.0  # counts
SNR_RANGE = (3.0, 40.0)
SNR_BINS = [3.0, 5.0, 8.0, 13.0, 20.0, 40.0]
PROFILE_EDGES = np.arange(0.0, 13.0, 1.5)


def _profiles(kind: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-flux source profiles (n, SIZE, SIZE), PSF included."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    out = np.empty((n, SIZE, SIZE))
    for i in range(n):
        cy, cx = SIZE / 2 - 0.5 + rng.uniform(-4, 4, size=2)
        psf = rng.uniform(1.0, 1.5)
        dy, dx = yy - cy, xx - cx
        if kind == 0:  # star: the PSF
            img = np.exp(-(dx**2 + dy**2) / (2 * psf**2))
        elif kind == 1:  # exponential disc, inclined
            q, theta, scale = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi), rng.uniform(2.0, 4.0)
            u = dx * np.cos(theta) + dy * np.sin(theta)
            v = -dx * np.sin(theta) + dy * np.cos(theta)
            img = ndimage.gaussian_filter(np.exp(-np.hypot(u, v / q) / scale), psf)
        else:  # thin ring
            radius, width = rng.uniform(5.0, 9.0), 0.8
            img = ndimage.gaussian_filter(np.exp(-((np.hypot(dx, dy) - radius) ** 2) / (2 * width**2)), psf)
        out[i] = img / img.sum()
    return out


def _normalised(probs: np.ndarray) -> np.ndarray:
    """Probabilities in float64 summing to one (float32 softmax is off by ~1e-7)."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def robust_standardise(x: np.ndarray) -> np.ndarray:
    """Subtract each image's median sky and divide by its noise (1.4826 MAD)."""
    axes = tuple(range(1, x.ndim))
    med = np.median(x, axis=axes, keepdims=True)
    mad = np.median(np.abs(x - med), axis=axes, keepdims=True) * 1.4826
    return ((x - med) / np.maximum(mad, 1e-6)).astype(np.float32)


#: :func:`robust_standardise` in words (model.json of an exported network).
ROBUST_STANDARDISATION = (
    "per image, over all its channels and pixels together: subtract m, the median of the pixel "
    "values, then divide by max(1.4826 * median(|x - m|), 1e-6); a median of an even count is the "
    "mean of the middle pair (numpy's); float32"
)


def _median(x: torch.Tensor) -> torch.Tensor:
    """numpy's median over all but the first axis (the mean of the middle pair for an even
    count), by sorting: traceable for ONNX, unlike torch.median, which takes the lower one."""
    v = x.flatten(1).sort(dim=1).values
    n = v.shape[1]
    mid = v[:, n // 2] if n % 2 else (v[:, n // 2 - 1] + v[:, n // 2]) / 2
    return mid.reshape(-1, *([1] * (x.ndim - 1)))


def robust_standardise_torch(x: torch.Tensor) -> torch.Tensor:
    """:func:`robust_standardise` in torch operations (for graphs that take raw images)."""
    x = x.float()
    med = _median(x)
    mad = _median((x - med).abs()) * 1.4826
    return (x - med) / mad.clamp_min(1e-6)


@register_task
class SkyShapes(Task):
    name = "sky-shapes"
    kind = TaskKind.CLASSIFICATION
    description = "smoke task: star, galaxy or ring in a noisy 32x32 sky exposure (classification)"
    spatial_dims = 2
    in_channels = 1
    input_size = (SIZE, SIZE)
    num_outputs = 3
    class_names = ("star", "galaxy", "ring")
    chunk_size = 1000
    raw_units = "counts per pixel of a photon-counting exposure, the sky background (100 counts) included"
    headline = ("accuracy", True)
    key_plot = "accuracy_vs_snr.png"
    baseline_name = "radial profile, ellipticity and flux + gradient-boosted trees"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "accuracy": ("fraction of the test sources given their true class (chance: 1/3)", True),
        "f1_macro": (
            "F1 score averaged over star, galaxy and ring with equal weight: low when one "
            "class is missed, even if the others are right",
            True,
        ),
        "log_loss": (
            "cross-entropy of the predicted probabilities (ln 3 = 1.10 for a uniform guess): "
            "penalises confident mistakes",
            False,
        ),
        "accuracy_vs_snr": (
            "accuracy in bins of the source's signal-to-noise ratio (3 to 40): "
            "where faint sources stop being told apart",
            True,
        ),
    }
    defaults = TaskDefaults(
        model="resnet18",
        model_options={"small_input": True, "width": 0.25},
        epochs=8,
        batch_size=64,
        lr=2e-3,
        n_train=3000,
        n_val=500,
        n_test=1000,
    )

    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        labels = rng.integers(0, 3, size=n)
        profiles = np.empty((n, SIZE, SIZE))
        for k in range(3):
            idx = np.flatnonzero(labels == k)
            profiles[idx] = _profiles(k, len(idx), rng)
        snr = np.exp(rng.uniform(*np.log(SNR_RANGE), size=n))
        # effective area 1 / sum(p^2): S/N = F / sqrt(F + A (sky + read^2)), solved for F
        area = 1.0 / np.square(profiles).sum(axis=(1, 2))
        noise = area * (SKY + READ_NOISE**2)
        flux = (snr**2 + np.sqrt(snr**4 + 4 * snr**2 * noise)) / 2
        expected = SKY + flux[:, None, None] * profiles
        images = rng.poisson(expected) + rng.normal(0.0, READ_NOISE, size=expected.shape)
        return ArraySplit(
            images[:, None].astype(np.float32), labels.astype(np.int64), {"snr": snr, "flux": flux}
        )

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        return robust_standardise(x)

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        return robust_standardise_torch(x)

    def describe_preprocessing(self) -> str:
        return ROBUST_STANDARDISATION

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        labels = prediction.argmax(axis=1)
        result: dict[str, Any] = {
            "accuracy": float(accuracy_score(test.y, labels)),
            "f1_macro": float(f1_score(test.y, labels, average="macro")),
            "log_loss": float(log_loss(test.y, _normalised(prediction), labels=[0, 1, 2])),
        }
        if "snr" in test.meta:
            correct = (labels == test.y).astype(np.float64)
            result["accuracy_vs_snr"] = binned_mean(correct, test.meta["snr"], SNR_BINS).tolist()
            result["accuracy_vs_snr_bins"] = SNR_BINS
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        clf = HistGradientBoostingClassifier(max_iter=200, random_state=0)
        clf.fit(profile_features(self.preprocess(train.x)), train.y)
        return clf.predict_proba(profile_features(self.preprocess(test.x)))

    def plots(self, results, test, predictions, out, networks) -> None:
        """Examples and confusion matrices; accuracy against S/N is drawn by the engine, as for
        every per-bin metric, and only where the test data have an S/N (a user's file has none)."""
        plotting.examples(test.x[:, 0], test.y, predictions["cnn"], self.class_names, out / "examples.png")
        plotting.confusion_matrices(
            test.y, predictions, self.class_names, out / "confusion.png", baseline_name=self.baseline_name
        )


#: How :func:`profile_features` normalises the radial profile (the first is the default).
NORMALISATIONS = ("isophotal", "aperture", "centre")


def profile_features(x: np.ndarray, normalise: str = "isophotal") -> np.ndarray:
    """Per image (standardised, (N, 1, H, W)): azimuthal profile about the flux centroid, normalised
    by the flux; second-moment ellipticity; log flux inside 12 px.

    The profile is the mean pixel value in annuli of 1.5 px out to 12 px (``PROFILE_EDGES``)
    divided by the source's flux, so that it describes the source's shape, not its brightness:
    multiplying an image by a constant leaves the profile unchanged as long as the same pixels stay
    above 2 sigma (they give the centroid). ``normalise`` picks the flux:

    - ``"isophotal"`` (default): the sum of the pixels above 2 sigma, the pixels that also give
      the centroid and the ellipticity. It is more than 2 whenever a pixel is above 2 sigma and at
      least the brightest pixel, so no bin exceeds 1 however faint or hollow the source. When every
      pixel inside 12 px is either above 2 sigma or zero, sum(profile * pixels per annulus) is 1.
    - ``"aperture"``: the sum of all pixels inside 12 px, floored at its noise, sqrt(pixels inside
      12 px), as a faint source's sum can be <= 0; above the floor, sum(profile * pixels per
      annulus) is 1.
    - ``"centre"``: the profile's central bin (the behaviour before issue 16, kept to compare):
      near zero and noisy for rings.

    An image with no pixel above 2 sigma gives zero features.
    """
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, not {normalise!r}")
    h, w = x.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    feats = []
    for img in x[:, 0]:
        positive = np.where(img > 2.0, img, 0.0)  # pixels above 2 sigma
        total = positive.sum()
        if total <= 0:
            feats.append(np.zeros(len(PROFILE_EDGES) + 1))
            continue
        cy, cx = (positive * yy).sum() / total, (positive * xx).sum() / total
        r = np.hypot(yy - cy, xx - cx)
        profile = binned_mean(img, r, PROFILE_EDGES, empty=0.0)
        aperture = r < PROFILE_EDGES[-1]
        flux = img[aperture].sum()
        if normalise == "isophotal":
            scale = total
        elif normalise == "aperture":
            scale = max(flux, np.sqrt(aperture.sum()))
        else:
            scale = max(abs(profile[0]), 1e-3)
        myy = (positive * (yy - cy) ** 2).sum() / total
        mxx = (positive * (xx - cx) ** 2).sum() / total
        mxy = (positive * (yy - cy) * (xx - cx)).sum() / total
        ellipticity = np.hypot(mxx - myy, 2 * mxy) / max(mxx + myy, 1e-6)
        feats.append(np.concatenate([profile / scale, [ellipticity, np.log1p(max(flux, 0.0))]]))
    return np.asarray(feats)
