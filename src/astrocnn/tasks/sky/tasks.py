"""Cleaning CCD frames: ``sky-denoise``, ``sky-cosmic-rays`` and ``sky-inpaint``.

Frames come from the simulation (``simulation``) or from a file ``astrocnn generate sky`` wrote,
in electrons. The networks see ``asinh(x / 20 e-)``: linear within a few read-noise units of zero,
logarithmic for the sky and for stars up to the full well, the same fixed function for every
frame, so a real frame converted to electrons (ADU times the gain) passes through exactly what
the simulated ones did; the restoring tasks invert it (``20 sinh(y)``) to return electrons.

The default network is the N-d U-Net (Ronneberger et al. 2015), as in deepCR (Zhang and Bloom
2020). The fully connected comparison is an MLP applied patch-wise: each 16x16 patch in, the same
patch out (:class:`PatchMLP`), so it too takes a frame of any size.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve
from torch import nn

from astrocnn.errors import OptionError
from astrocnn.models import create_model
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind
from astrocnn.tasks.registry import register_task
from astrocnn.tasks.sky import baseline as classical
from astrocnn.tasks.sky import simulation as sim

#: Electrons at which the asinh stretch turns from linear to logarithmic.
STRETCH = 20.0
#: Side of the patches the fully connected network maps.
PATCH = 16
#: False-positive rates at which the cosmic-ray detection is scored (deepCR's 0.5 %, and 0.01 %).
FPRS = (0.005, 0.0001)
#: Stars enter the flux metric above this signal-to-noise ratio (the issue's goal: 20 sigma).
FLUX_SNR = 20.0
#: A star counts as recoverable with a true peak of this many sky-noise sigmas.
PEAK_SIGMAS = 3.0
#: Stars with a true peak below this many sigmas are the faint ones (``star_recovery_faint``).
FAINT_SIGMAS = 10.0
#: False detections per pixel at which star_recovery is measured (about 2 in a 64x64 frame).
FALSE_DETECTIONS = 5e-4
#: A local maximum is a false detection where the clean frame stands less than this many sigmas
#: above its local background.
FREE_SIGMAS = 0.3
#: Weight of the pixels outside the mask in the inpainting loss (inside: 1).
OUTSIDE_WEIGHT = 0.1

#: The cosmic-ray task's defaults, sized for a 2-core laptop (about 3.5 minutes a task, CNN and
#: mlp); with the restoring tasks' ``demo`` below, the three sky tasks took 69 s together on a
#: loaded 2-core machine (the CNN beats L.A.Cosmic there; the restoring networks need the default
#: run's 1500 steps to learn).
DEFAULTS = TaskDefaults(
    model="unet",
    model_options={"width": 0.25, "channel_mults": [1, 2, 4]},
    epochs=10,
    batch_size=8,
    lr=2e-3,
    n_train=1200,
    n_val=150,
    n_test=300,
    mlp_options={"hidden": (512,)},
    demo={"n_train": 192, "n_val": 32, "n_test": 48, "epochs": 5, "batch_size": 4},
    quick={"n_train": 64, "n_val": 16, "n_test": 32, "epochs": 1},
)
#: The restoring tasks' defaults: both networks residual, learning a correction to the stretched
#: frame rather than the frame itself (an identity map is where they start, not what they must find).
#: Their demo is smaller: at the demo's scale they lose to the classical methods anyway, and the
#: cosmic-ray task, which wins there, gets the time.
RESIDUAL_DEFAULTS = replace(
    DEFAULTS,
    model_options={**DEFAULTS.model_options, "residual": True},
    mlp_options={**DEFAULTS.mlp_options, "residual": True},
    demo={"n_train": 128, "n_val": 32, "n_test": 48, "epochs": 4, "batch_size": 4},
)


class PatchMLP(nn.Module):
    """A fully connected network applied to non-overlapping ``patch`` x ``patch`` tiles: every
    output pixel of a tile from every input pixel of the same tile (frames padded by repetition
    to a multiple of the patch, then cropped); ``residual`` adds the input's first
    ``num_outputs`` channels, as the residual U-Net does."""

    def __init__(
        self, *, in_channels: int, num_outputs: int, patch: int = PATCH, hidden=(512,), residual: bool = False
    ):
        super().__init__()
        self.patch, self.num_outputs, self.residual = patch, num_outputs, residual
        self.mlp = create_model(
            "mlp", spatial_dims=2, in_channels=in_channels, num_outputs=num_outputs * patch * patch,
            input_size=(patch, patch), hidden=tuple(hidden),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, num_outputs, H, W)
        b, c, h, w = x.shape
        p = self.patch
        pad_h, pad_w = (-h) % p, (-w) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        rows, cols = x.shape[2] // p, x.shape[3] // p
        tiles = x.reshape(b, c, rows, p, cols, p).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, p, p)
        out = self.mlp(tiles).reshape(b, rows, cols, self.num_outputs, p, p)
        out = out.permute(0, 3, 1, 4, 2, 5).reshape(b, self.num_outputs, rows * p, cols * p)
        out = out[:, :, :h, :w]
        return out + x[:, : self.num_outputs, :h, :w] if self.residual else out


def stretch(x: np.ndarray) -> np.ndarray:
    return np.arcsinh(np.asarray(x, np.float32) / STRETCH).astype(np.float32)


def tpr_at_fpr(scores: np.ndarray, truth: np.ndarray, fpr: float) -> float:
    """The true-positive rate of the ROC curve of ``scores`` at false-positive rate ``fpr``, read
    between its two neighbouring points by linear interpolation: flagging with the lower of the
    two thresholds a random share of the time reaches every point on the segment between them
    (Provost and Fawcett 2001), so the segment is an operating point a detector can have. For a
    score map with few thresholds (L.A.Cosmic's sweep) this is the fair reading; for a network's
    dense scores it changes nothing."""
    false, true, _ = roc_curve(np.asarray(truth).ravel(), np.asarray(scores).ravel())
    i = int(np.searchsorted(false, fpr, side="right"))  # false[:i] <= fpr < false[i:]
    if i == len(false):
        return float(true[-1])
    return float(true[i - 1] + (fpr - false[i - 1]) / (false[i] - false[i - 1]) * (true[i] - true[i - 1]))


def masked_errors(
    prediction: np.ndarray, clean: np.ndarray, mask: np.ndarray, read_noise: np.ndarray
) -> np.ndarray:
    """Squared errors of the pixels inside ``mask`` in units of each pixel's noise variance
    (clean + read noise^2): 1 is the error of one noisy measurement of the pixel."""
    variance = clean + np.asarray(read_noise, np.float64).reshape(-1, 1, 1) ** 2
    return ((np.asarray(prediction, np.float64) - clean) ** 2 / variance)[mask]


def masked_mse(prediction: np.ndarray, clean: np.ndarray, mask: np.ndarray, read_noise: np.ndarray) -> float:
    """The mean of :func:`masked_errors` (NaN for an empty mask)."""
    errors = masked_errors(prediction, clean, mask, read_noise)
    return float(errors.mean()) if errors.size else float("nan")


def display_stretch(x: np.ndarray, sky: float, read_noise: float) -> np.ndarray:
    """asinh((x - sky) / sigma), sigma the sky's noise: the sky's noise about 1, faint sources
    linear, star cores logarithmic (Lupton et al. 1999), so that no few bright pixels decide."""
    return np.arcsinh((np.asarray(x, np.float64) - sky) / math.sqrt(sky + read_noise**2))


def image_quality(prediction: np.ndarray, clean: np.ndarray, sky: np.ndarray, read_noise: np.ndarray):
    """(PSNR, SSIM) averaged over frames (N, H, W), both on :func:`display_stretch` with the range
    of the stretched true frame as the peak. In electrons the squared error of a frame is that of
    its brightest star's core, where Poisson noise is largest: a filter that blurs the core loses
    to the noisy frame itself, and PSNR would rank methods by their brightest pixel."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnrs, ssims = [], []
    for p, c, s, rn in zip(prediction, clean, sky, read_noise, strict=True):
        pc, cc = display_stretch(p, s, rn), display_stretch(c, s, rn)
        span = float(cc.max() - cc.min())
        psnrs.append(peak_signal_noise_ratio(cc, pc, data_range=span))
        ssims.append(structural_similarity(cc, pc, data_range=span))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def star_metrics(prediction: np.ndarray, clean: np.ndarray, meta: dict[str, np.ndarray]) -> dict[str, float]:
    """Photometry of the injected stars on ``prediction`` against the same on the clean frames.

    - ``star_recovery``: detection completeness at a fixed false-detection rate. Every local
      maximum of an output frame is a candidate, its height the value above the local background
      (the median of an annulus, :func:`.baseline.peak_heights`) in units of the frame's sky noise;
      candidates where the clean frame has no source are false detections, and the threshold is
      set over all frames so that they occur at ``FALSE_DETECTIONS`` per pixel. Of the stars whose
      true peak stands ``PEAK_SIGMAS`` sigmas high, the share with a candidate within 1.5 pixels
      above that threshold. Noise left in the output raises the threshold, a blur lowers the
      stars: neither is rewarded (the former metric, one fixed 3-sigma cut, gave the untouched
      noisy frame 0.995, above every smoother);
    - ``star_recovery_faint``: the same for the stars with true peaks below ``FAINT_SIGMAS``,
      where a method's losses show (most visible stars are far above any threshold);
    - ``star_threshold``: that threshold in sky-noise sigmas;
    - ``flux_error``, ``flux_p90``, ``flux_bias``: the median and the 90th percentile of
      |F / F_true - 1| and the median of F / F_true - 1 for the unsaturated stars above
      ``FLUX_SNR`` sigma (aperture photometry, :mod:`.baseline`)."""
    star_heights, faint_heights, false_heights, pixels = [], [], [], 0
    ratios = []
    for i in range(len(prediction)):
        fwhm = float(meta["fwhm"][i])
        sigma = math.sqrt(float(meta["sky"][i] + meta["read_noise"][i] ** 2))
        heights, peaks = classical.peak_heights(prediction[i], fwhm)
        true_heights, true_peaks = classical.peak_heights(clean[i], fwhm)
        pixels += prediction[i].size
        stars = meta["stars"][i]
        stars = stars[np.isfinite(stars[:, 0])]
        rows, cols = np.nonzero(peaks)
        near_star = np.zeros(len(rows), bool)
        for x, y in stars[:, :2]:
            near_star |= (rows - y) ** 2 + (cols - x) ** 2 <= 1.5**2
        sourceless = true_heights[rows, cols] < FREE_SIGMAS * sigma
        false_heights.extend(heights[rows, cols][sourceless & ~near_star] / sigma)
        if len(stars) == 0:
            continue
        x, y = stars[:, 0], stars[:, 1]
        truth = classical.nearby_maximum(true_heights, true_peaks, x, y) / sigma
        found = classical.nearby_maximum(heights, peaks, x, y) / sigma
        star_heights.append(found[truth >= PEAK_SIGMAS])
        faint_heights.append(found[(truth >= PEAK_SIGMAS) & (truth < FAINT_SIGMAS)])
        true_flux = classical.aperture_fluxes(clean[i], x, y, fwhm)
        flux = classical.aperture_fluxes(prediction[i], x, y, fwhm)
        area = math.pi * (1.5 * fwhm) ** 2
        snr = true_flux / np.sqrt(np.clip(true_flux, 0, None) + area * sigma**2)
        r, c = (
            np.clip(np.round(y).astype(int), 0, clean.shape[1] - 1),
            np.clip(np.round(x).astype(int), 0, clean.shape[2] - 1),
        )
        unsaturated = clean[i][r, c] < 0.9 * meta["full_well"][i]
        bright = (snr >= FLUX_SNR) & unsaturated & np.isfinite(flux)
        ratios.extend(flux[bright] / true_flux[bright] - 1)
    allowed = int(FALSE_DETECTIONS * pixels)  # false detections the threshold lets through
    false_heights = np.sort(np.asarray(false_heights))[::-1]
    threshold = float(false_heights[allowed]) if len(false_heights) > allowed else -math.inf
    star_heights = np.concatenate(star_heights) if star_heights else np.zeros(0)
    faint_heights = np.concatenate(faint_heights) if faint_heights else np.zeros(0)
    ratios = np.asarray(ratios)
    errors = np.abs(ratios)
    share = lambda heights: float((heights > threshold).mean()) if len(heights) else float("nan")  # noqa: E731
    return {
        "star_recovery": share(star_heights),
        "star_recovery_faint": share(faint_heights),
        "star_threshold": threshold,
        "flux_error": float(np.median(errors)) if len(ratios) else float("nan"),
        "flux_p90": float(np.percentile(errors, 90)) if len(ratios) else float("nan"),
        "flux_bias": float(np.median(ratios)) if len(ratios) else float("nan"),
        "flux_stars": float(len(ratios)),
    }


class _SkyTask(Task):
    spatial_dims = 2
    in_channels = 1
    chunk_size = sim.CHUNK
    option_names = ("size",)
    resample_metrics = False  # an ROC over every pixel, 200 times per method, is not worth its time
    defaults = DEFAULTS
    raw_units = "electrons per pixel (ADU times the gain)"
    value_units = "electrons per pixel"

    def __init__(self, size: Any = 64):
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise OptionError(f"size must be a whole number of pixels, not {size!r}") from None
        if not 16 <= size <= 1024:
            raise OptionError(f"size must be between 16 and 1024 pixels, got {size}")
        self.input_size = (size, size)

    def options(self) -> dict[str, Any]:
        return {"size": self.input_size[0]}

    def data_contract(self) -> str:
        return "\n".join([
            f"{self.name}: {self.description}",
            "data     the HDF5 file `astrocnn generate sky` writes: clean, noisy, frame (N, H, W) electrons, "
            "cr_mask, missing_mask (N, H, W), gain, read_noise, sky, fwhm, full_well (N,), stars (N, 64, 3) "
            "x, y, flux (NaN-padded)",
            f"scaling  asinh(x / {STRETCH:g} e-) for every frame alike (real frames: ADU x gain)",
            "options  --task-option size=PIXELS (generated frames; a file's frames keep their size)",
            f"example  astrocnn generate sky --n 2000 --out sky.h5 && "
            f"astrocnn train {self.name} --data sky.h5",
        ])  # fmt: skip

    # ---- data ----------------------------------------------------------------------------------
    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        return self.split_of(sim.simulate(n, self.input_size[0], int(rng.integers(2**62))))

    def splits_from_file(self, path: str, seed: int) -> tuple[ArraySplit, ArraySplit, ArraySplit]:
        """The file's frames split 70 / 15 / 15 at random (``seed``)."""
        from astrocnn.data.readers import DataError

        data = sim.read_frames(path)
        n = len(data["clean"])
        if n < 10:
            raise DataError(f"{path}: {n} frames; {self.name} needs at least 10")
        if tuple(data["clean"].shape[1:]) != self.input_size:
            self.input_size = tuple(int(s) for s in data["clean"].shape[1:])
        idx = np.random.default_rng(seed).permutation(n)
        cut = [round(0.7 * n), round(0.85 * n)]
        return tuple(
            self.split_of({k: v[np.sort(part)] for k, v in data.items()}) for part in np.split(idx, cut)
        )

    def split_of(self, data: dict) -> ArraySplit:
        raise NotImplementedError

    @staticmethod
    def _meta(data: dict, *extra: str) -> dict[str, np.ndarray]:
        return {k: np.asarray(data[k]) for k in (*sim.SCALARS, *extra)}

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        return stretch(x)

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.asinh(x.float() / STRETCH)

    def describe_preprocessing(self) -> str:
        return f"asinh(x / {STRETCH:g}) of the pixels in electrons; float32"

    def build_mlp(self) -> nn.Module:
        return PatchMLP(
            in_channels=self.network_channels, num_outputs=self.num_outputs, **self.defaults.mlp_options
        )

    # ---- working on a real frame ---------------------------------------------------------------
    def network_input(self, frame: np.ndarray) -> np.ndarray:
        """A frame (H, W) in electrons, non-finite pixels already filled -> the raw input (C, H, W)."""
        return frame[None].astype(np.float32)


class _Restoring(_SkyTask):
    """Image out, in electrons: the network predicts the stretched clean frame.

    The stored targets (N, K, H, W) are the clean frame, then each frame's sky level and sky noise
    sigma as images (and, for inpainting, the mask): the loss compares output and truth on the
    display stretch asinh((x - sky) / sigma) on which the metrics score them, so every frame's sky
    noise weighs alike whatever its level. Only the loss reads them; inference needs nothing but
    the frame, so a real frame passes exactly as a simulated one."""

    kind = TaskKind.RESTORATION
    num_outputs = 1
    defaults = RESIDUAL_DEFAULTS

    @staticmethod
    def targets(data: dict, *extra: np.ndarray) -> np.ndarray:
        n, height, width = data["clean"].shape
        sigma = np.sqrt(data["sky"] + data["read_noise"] ** 2)
        planes = [
            np.broadcast_to(np.asarray(v, np.float32)[:, None, None], (n, height, width))
            for v in (data["sky"], sigma)
        ]
        return np.stack([data["clean"], *planes, *extra], axis=1).astype(np.float32)

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, np.float32))

    @staticmethod
    def stretched_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, 1, *S) output minus truth on the display stretch (output clamped so that an early,
        wild network cannot overflow sinh)."""
        electrons = STRETCH * torch.sinh(output.clamp(-20.0, 20.0))
        clean, sky, sigma = target[:, :1], target[:, 1:2], target[:, 2:3]
        return torch.asinh((electrons - sky) / sigma) - torch.asinh((clean - sky) / sigma)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.stretched_error(output, target) ** 2).mean()

    def postprocess(self, output: torch.Tensor) -> torch.Tensor:
        return STRETCH * torch.sinh(output)

    def describe_postprocessing(self) -> str:
        return f"{STRETCH:g} * sinh(output): electrons per pixel"


@register_task
class SkyDenoise(_Restoring):
    name = "sky-denoise"
    description = "CCD frames: noisy frame -> noise-free frame (electrons), stars' fluxes kept"
    baseline_name = "median or Gaussian filter (chosen on the training split)"
    headline = ("psnr", True)
    key_plot = "before_after.png"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "psnr": (
            "peak signal-to-noise ratio in dB against the noise-free frame, on the display stretch "
            "asinh((x - sky) / sky noise)",
            True,
        ),
        "ssim": ("structural similarity on the same display stretch", True),
        "star_recovery": (
            f"completeness: share of the stars with a {PEAK_SIGMAS:g}-sigma true peak detected at "
            f"{FALSE_DETECTIONS:g} false detections per pixel",
            True,
        ),
        "star_recovery_faint": (
            f"the same, stars with true peaks of {PEAK_SIGMAS:g}-{FAINT_SIGMAS:g} sigma",
            True,
        ),
        "star_threshold": ("the detection threshold that false-detection rate sets, in sky sigmas", None),
        "flux_error": (
            f"median |F / F_true - 1| of aperture photometry, unsaturated stars above {FLUX_SNR:g} sigma",
            False,
        ),
        "flux_p90": ("90th percentile of |F / F_true - 1| of the same stars", False),
        "flux_bias": ("median F / F_true - 1 of the same stars", None),
        "flux_stars": ("stars behind flux_error", None),
    }

    def split_of(self, data: dict) -> ArraySplit:
        return ArraySplit(data["noisy"][:, None], self.targets(data), self._meta(data, "stars"))

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        pred, clean = np.asarray(prediction)[:, 0], np.asarray(test.y)[:, 0]
        psnr, ssim = image_quality(pred, clean, test.meta["sky"], test.meta["read_noise"])
        return {"psnr": psnr, "ssim": ssim, **star_metrics(pred, clean, test.meta)}

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        x, y = np.asarray(train.x[:100], np.float32), np.asarray(train.y[:100], np.float32)
        sky, read_noise = train.meta["sky"][:100], train.meta["read_noise"][:100]
        choice = classical.best_filter(
            x, y, lambda out: image_quality(out[:, 0], y[:, 0], sky, read_noise)[0]
        )
        return classical.smooth(np.asarray(test.x, np.float32), *choice)

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.sky import plots

        plots.before_after(
            test.x[:, 0], test.y[:, 0], predictions, out / "before_after.png", self.baseline_name
        )


@register_task
class SkyCosmicRays(_SkyTask):
    name = "sky-cosmic-rays"
    kind = TaskKind.SEGMENTATION
    description = "CCD frames: the probability that each pixel holds a cosmic ray (hot pixels are not)"
    num_outputs = 2
    class_names = ("clean", "cosmic ray")
    baseline_name = "L.A.Cosmic (astroscrappy), sigclip swept, objlim and sigfrac tuned"
    headline = ("tpr_at_fpr_0.005", True)
    key_plot = "roc.png"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "tpr_at_fpr_0.005": (
            "share of cosmic-ray pixels found at 0.5 % false positives among the others", True
        ),
        "tpr_at_fpr_0.0001": ("share of cosmic-ray pixels found at 0.01 % false positives", True),
        "auc": ("area under the pixels' ROC curve", True),
        "false_pixels_at_fpr_0.005": ("clean pixels flagged at 0.5 % (what the TPR rests on)", None),
        "false_pixels_at_fpr_0.0001": ("clean pixels flagged at 0.01 %", None),
        "lacosmic_objlim": ("L.A.Cosmic's objlim, chosen on training frames (baseline only)", None),
        "lacosmic_sigfrac": ("L.A.Cosmic's sigfrac, chosen on training frames (baseline only)", None),
        "lacosmic_training_score": ("its TPR at 0.5 % on the training frames, coarse sweep", None),
        "lacosmic_sigclips": ("sigclip thresholds swept, log-spaced from 300 to 1.5", None),
    }  # fmt: skip

    def split_of(self, data: dict) -> ArraySplit:
        return ArraySplit(data["frame"][:, None], data["cr_mask"].astype(np.int64), self._meta(data))

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        from sklearn.metrics import roc_auc_score

        scores, truth = np.asarray(prediction)[:, 1], np.asarray(test.y).astype(bool)
        if truth.all() or not truth.any():
            return {f"tpr_at_fpr_{f:g}": float("nan") for f in FPRS}
        result = {f"tpr_at_fpr_{f:g}": tpr_at_fpr(scores, truth, f) for f in FPRS}
        result.update({f"false_pixels_at_fpr_{f:g}": float(round(f * (~truth).sum())) for f in FPRS})
        result["auc"] = float(roc_auc_score(truth.ravel(), scores.ravel()))
        made, choice = getattr(self, "_lacosmic", (None, None))
        if prediction is made:  # the baseline's own map: say what it was run with
            result.update({f"lacosmic_{k}": float(v) for k, v in choice.items()})
            result["lacosmic_sigclips"] = float(len(classical.SIGCLIPS))
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        """L.A.Cosmic's sigclip sweep on the test frames, its objlim and sigfrac chosen on the
        training frames for the headline (the choice is added to the baseline's metrics)."""
        headline = FPRS[0]
        choice = classical.tune_lacosmic(
            np.asarray(train.x)[:, 0], np.asarray(train.y).astype(bool), train.meta["read_noise"],
            train.meta["full_well"], lambda scores, truth: tpr_at_fpr(scores, truth, headline),
        )  # fmt: skip
        scores = classical.lacosmic_scores(
            test.x[:, 0], test.meta["read_noise"], test.meta["full_well"],
            objlim=choice["objlim"], sigfrac=choice["sigfrac"],
        )  # fmt: skip
        prediction = np.stack([1 - scores, scores], axis=1)
        self._lacosmic = (prediction, choice)
        return prediction

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.sky import plots

        plots.roc_curves(np.asarray(test.y), predictions, out / "roc.png", self.baseline_name)
        masks = {m: p[:, 1] for m, p in predictions.items()}
        plots.before_after(
            test.x[:, 0], np.asarray(test.y, np.float32), masks, out / "before_after.png",
            self.baseline_name, truth_label="cosmic-ray mask", scores=True,
        )  # fmt: skip


@register_task
class SkyInpaint(_Restoring):
    name = "sky-inpaint"
    description = "CCD frames: frame and missing-pixel mask -> the frame restored inside the mask"
    in_channels = 2
    baseline_name = "biharmonic inpainting (scikit-image)"
    headline = ("masked_mse", False)
    key_plot = "before_after.png"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "masked_mse": (
            "mean squared error against the noise-free frame inside the mask, in units of each "
            "pixel's noise variance (1: as good as one noisy measurement)",
            False,
        ),
        "masked_median": (
            "the median of the same squared errors: the typical missing pixel, where the mean is "
            "decided by the star cores under the masks",
            False,
        ),
    }
    raw_units = "two channels: the frame in electrons (0 where missing), and the missing-pixel mask (1)"

    def split_of(self, data: dict) -> ArraySplit:
        mask = data["missing_mask"]
        x = np.stack([np.where(mask, 0.0, data["noisy"]), mask], axis=1).astype(np.float32)
        return ArraySplit(x, self.targets(data, mask), self._meta(data))  # the mask weighs the loss

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, np.float32)
        stretched, missing = stretch(x[:, 0]), x[:, 1] > 0.5
        for i in range(len(x)):
            valid = np.sort(stretched[i][~missing[i]])
            fill = valid[(len(valid) - 1) // 2] if len(valid) else 0.0  # the lower median, as torch's
            out[i, 0] = np.where(missing[i], fill, stretched[i])
        out[:, 1] = missing
        return out

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        stretched, missing = torch.asinh(x[:, :1] / STRETCH), x[:, 1:2] > 0.5
        fill = torch.nan_to_num(
            stretched.masked_fill(missing, float("nan")).flatten(1).nanmedian(dim=1).values
        )
        filled = torch.where(missing, fill[:, None, None, None], stretched)
        return torch.cat([filled, missing.float()], dim=1)

    def describe_preprocessing(self) -> str:
        return (
            f"channel 0 (electrons): asinh(x / {STRETCH:g}), where the mask is 1 set to the lower median "
            "of the frame's other pixels (the residual network starts from the sky, not from 0); "
            "channel 1: the missing-pixel mask (1 missing, 0 valid); float32"
        )

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The display-stretch error inside the mask, and ``OUTSIDE_WEIGHT`` of it outside (the
        network still returns a whole frame, but what it is for is the missing pixels)."""
        mask = target[:, 3:4]
        error = self.stretched_error(output, target) ** 2
        inside = (error * mask).sum() / mask.sum().clamp(min=1)
        return inside + OUTSIDE_WEIGHT * error.mean()

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        y = np.asarray(test.y)
        errors = masked_errors(np.asarray(prediction)[:, 0], y[:, 0], y[:, 3] > 0.5, test.meta["read_noise"])
        if not errors.size:
            return {"masked_mse": float("nan"), "masked_median": float("nan")}
        return {"masked_mse": float(errors.mean()), "masked_median": float(np.median(errors))}

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        return classical.inpaint(test.x[:, 0], test.x[:, 1] > 0.5)[:, None]

    def network_input(self, frame: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
        mask = np.zeros(frame.shape, bool) if missing is None else missing
        return np.stack([np.where(mask, 0.0, frame), mask]).astype(np.float32)

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.sky import plots

        y = np.asarray(test.y)
        plots.before_after(
            test.x[:, 0],
            y[:, 0],
            predictions,
            out / "before_after.png",
            self.baseline_name,
            mask=y[:, 3] > 0.5,
        )
