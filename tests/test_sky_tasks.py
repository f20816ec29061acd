"""The sky-cleaning family: the CCD simulation's physics (PSF normalisation, noise, sharp cosmic
rays, star positions), its reproducibility across processes, the metrics against values worked out
by hand, the classical baselines against doing nothing, and the three tasks end to end."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import astropy
import numpy as np
import pytest
import torch

import astrocnn
from astrocnn.data.readers import DataError
from astrocnn.tasks import get_task
from astrocnn.tasks.sky import baseline as classical
from astrocnn.tasks.sky import simulation as sim
from astrocnn.tasks.sky import tasks as sky

M13 = Path(astropy.__file__).parent / "io/fits/hdu/compressed/tests/data/m13.fits"
#: Frames with nothing on them but the sky (no stars, galaxies, defects).
EMPTY = replace(
    sim.Settings(), star_density=0.0, galaxy_density=0.0, cosmic_density=0.0, hot_pixel_density=0.0,
    gradient=0.0, bright_star_probability=0.0,
)  # fmt: skip


# ---- the simulation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [None, 2.5, 4.0])
def test_psf_stamps_hold_the_flux_the_profile_puts_inside_them(beta):
    """A Gaussian's stamp of +-4 FWHM holds all its flux; a Moffat's holds what its analytic
    enclosed fraction 1 - (1 + r^2/alpha^2)^(1 - beta) puts between the stamp's inscribed and
    circumscribed circles (the wings of a beta = 2.5 Moffat reach beyond the stamp)."""
    fwhm, radius = 3.0, 12
    sums = sim.psf_stamps(fwhm, beta, radius).sum(axis=(2, 3))  # every sub-pixel offset
    if beta is None:
        np.testing.assert_allclose(sums, 1.0, atol=1e-6)
        return
    alpha = sim.moffat_alpha(fwhm, beta)
    inner = 1 - (1 + ((radius - 0.5) / alpha) ** 2) ** (1 - beta)  # offsets move the star 0.4 px
    outer = 1 - (1 + 2 * ((radius + 0.5) / alpha) ** 2) ** (1 - beta)
    assert np.all(sums >= inner) and np.all(sums <= outer)
    assert outer - inner < 0.01  # so the test pins the normalisation to better than 1 %


@pytest.mark.parametrize("beta", [None, 3.0])
def test_psf_profile_has_its_fwhm(beta):
    fwhm = 2.7
    peak, half = sky_profile(0.0, fwhm, beta), sky_profile((fwhm / 2) ** 2, fwhm, beta)
    assert half == pytest.approx(peak / 2, rel=1e-9)


def sky_profile(r2: float, fwhm: float, beta):
    return float(sim.psf_profile(np.array(r2), fwhm, beta))


def test_noise_is_poisson_plus_read_noise_plus_digitisation():
    """On an empty sky the pixel variance of noisy - clean is sky + read_noise^2 + gain^2 / 12
    (Poisson, read noise and the ADU rounding) within the sampling error of 16 x 4096 pixels."""
    data = sim.simulate(16, 64, seed=5, settings=EMPTY)
    for i in range(16):
        residual = (data["noisy"][i] - data["clean"][i]).astype(np.float64)
        expected = data["sky"][i] + data["read_noise"][i] ** 2 + data["gain"][i] ** 2 / 12
        assert residual.var() == pytest.approx(expected, rel=0.08)  # 4096 pixels: +-2.2 % sigma
        assert abs(residual.mean()) < 4 * math.sqrt(expected / 4096)


def test_cosmic_ray_mask_is_where_a_ray_adds_a_sky_sigma():
    """frame - noisy is the cosmic rays' charge alone (no hot pixels here): at least one sky sigma
    in every unsaturated mask pixel, less than one outside it (less one ADU of rounding)."""
    settings = replace(sim.Settings(), hot_pixel_density=0.0, cosmic_density=4e-3)
    data = sim.simulate(12, 64, seed=6, settings=settings)
    for i in range(12):
        deposit = (data["frame"][i] - data["noisy"][i]).astype(np.float64)
        mask = data["cr_mask"][i]
        unsaturated = data["frame"][i] < data["full_well"][i]
        sigma = math.sqrt(data["sky"][i] + data["read_noise"][i] ** 2)
        assert mask.any()
        assert np.all(deposit[~mask] < sim.MASK_SIGMAS * sigma + data["gain"][i])
        assert np.all(deposit[mask & unsaturated] >= sim.MASK_SIGMAS * sigma - data["gain"][i])


def test_cosmic_ray_charge_is_in_electrons_whatever_the_sky():
    """The rays' charge is set by their path in the silicon: the charge they add to a frame is the
    same in electrons on a sky of 100 e- and of 2000 e- (noise 4.5 times apart; 48 frames each,
    about 8 % statistical error), and a typical ray pixel holds 10^2-10^4 e-."""
    totals = []
    for level in (100.0, 2000.0):
        settings = replace(EMPTY, cosmic_density=2e-3, sky=(level, level))
        data = sim.simulate(48, 64, seed=9, settings=settings)
        deposit = (data["frame"] - data["noisy"]).astype(np.float64)
        totals.append(deposit.sum() / 48)
        assert 1e2 < np.median(deposit[data["cr_mask"]]) < 1e4
    assert totals[1] == pytest.approx(totals[0], rel=0.3)


def test_a_cosmic_ray_diffuses_a_few_per_cent_into_its_neighbours():
    """The same ray with and without its rim (the random draws are the same): the rim moves 4 % of
    each pixel's charge into its eight neighbours, conserving charge, and reaches no farther."""
    from scipy import ndimage

    checked = 0
    for seed in range(12):
        sharp = sim.cosmic_ray(
            np.random.default_rng(seed), 96, replace(sim.Settings(), cosmic_rim=(0.0, 0.0))
        )
        soft = sim.cosmic_ray(
            np.random.default_rng(seed), 96, replace(sim.Settings(), cosmic_rim=(0.04, 0.04))
        )
        core = sharp > 0
        grown = ndimage.binary_dilation(core, structure=np.ones((3, 3)))
        if grown[[0, -1]].any() or grown[:, [0, -1]].any():
            continue  # charge diffused off the frame is lost
        assert np.array_equal(soft > 0, grown)
        assert soft.sum() == pytest.approx(sharp.sum(), rel=1e-12)
        assert soft[grown & ~core].sum() <= 0.04 * sharp.sum() * (1 + 1e-12)
        assert np.all(soft[core] >= 0.96 * sharp[core] - 1e-9)
        checked += 1
    assert checked >= 4


def test_saturated_stars_bleed_along_their_column_and_are_no_cosmic_rays():
    """Charge above the full well moves up and down its own column, half each way, filling each
    pixel before moving on, conserved while it stays on the frame; frames with saturating stars and
    no rays have bleed trails (runs of full pixels along columns, not rows) and an empty
    cosmic-ray mask."""
    image = np.full((40, 5), 100.0)
    image[20, 2] = 1900.0  # 900 e- over a full well of 1000: 450 into each neighbour
    image[5:8, 4] = 2500.0  # a run of three: 4500 e- over, 2250 each way, 900 a pixel
    bled = sim.bleed(image, 1000.0)
    np.testing.assert_array_equal(bled[18:23, 2], [100.0, 550.0, 1000.0, 550.0, 100.0])
    np.testing.assert_array_equal(bled[:, 4], [100.0] * 2 + [550.0] + [1000.0] * 7 + [550.0] + [100.0] * 29)
    np.testing.assert_array_equal(bled[:, [0, 1, 3]], image[:, [0, 1, 3]])
    assert bled.sum() == image.sum()
    settings = replace(sim.Settings(), cosmic_density=0.0, hot_pixel_density=0.0, bright_star_probability=1.0)
    data = sim.simulate(8, 64, seed=10, settings=settings)
    assert not data["cr_mask"].any() and np.array_equal(data["frame"], data["noisy"])
    from scipy import ndimage

    def longest(full: np.ndarray, structure) -> int:
        return int(np.bincount(ndimage.label(full, structure=structure)[0].ravel())[1:].max(initial=0))

    full = data["noisy"] >= 0.95 * data["full_well"][:, None, None]  # full, less the read noise
    along = sum(longest(f, [[0, 1, 0], [0, 1, 0], [0, 1, 0]]) for f in full)
    across = sum(longest(f, [[0, 0, 0], [1, 1, 1], [0, 0, 0]]) for f in full)
    assert along > 2 * across > 0


def test_listed_stars_sit_where_their_light_is():
    """An isolated star's light-weighted centroid on the noise-free frame is its listed position
    (to 0.05 pixel), and its pixels sum to its listed flux (to 1 % for a Gaussian PSF)."""
    settings = replace(EMPTY, star_density=2e-4, gaussian_fraction=1.0, star_flux=(1e4, 2e4))
    data = sim.simulate(80, 96, seed=7, settings=settings)
    checked = 0
    for i in range(80):
        stars = data["stars"][i][np.isfinite(data["stars"][i][:, 0])]
        if len(stars) != 1:
            continue
        x, y, flux = stars[0]
        light = data["clean"][i] - data["sky"][i]
        rows, cols = np.mgrid[: light.shape[0], : light.shape[1]]
        r = 4 * data["fwhm"][i]
        if min(x, y) < r or max(x, y) > light.shape[0] - 1 - r:
            continue
        inside = (rows - y) ** 2 + (cols - x) ** 2 <= r**2
        total = light[inside].sum()
        assert total == pytest.approx(flux, rel=0.01)
        assert (light * cols)[inside].sum() / total == pytest.approx(x, abs=0.05)
        assert (light * rows)[inside].sum() / total == pytest.approx(y, abs=0.05)
        checked += 1
    assert checked >= 3


def test_frames_are_the_same_for_any_number_of_workers():
    """Frame i draws from (seed, i): three chunks in one process, in two, or one call agree."""
    n = 2 * sim.CHUNK + 5
    one = sim.generate(n, 16, seed=11, workers=1)
    two = sim.generate(n, 16, seed=11, workers=2)
    whole = sim.simulate(n, 16, seed=11)
    for key in (*sim.IMAGES, *sim.MASKS, *sim.SCALARS, "stars"):
        np.testing.assert_array_equal(one[key], two[key])
        np.testing.assert_array_equal(one[key], whole[key])
    other = sim.simulate(3, 16, seed=12)
    assert not np.array_equal(other["noisy"], whole["noisy"][:3])


def test_injected_cosmic_rays_are_the_same_charge_whatever_the_frames_noise():
    """The injector adds the simulation's rays in electrons: the same charge into a quiet and a
    noisy frame (same seed), marked where it reaches one sigma of each frame's noise."""
    frame = np.full((40, 70), 500.0)
    settings = replace(sim.Settings(), cosmic_density=5e-3)
    quiet, quiet_mask = sim.inject_cosmic_rays(frame, 5.0, np.random.default_rng(3), settings)
    noisy, noisy_mask = sim.inject_cosmic_rays(frame, 50.0, np.random.default_rng(3), settings)
    np.testing.assert_array_equal(quiet, noisy)
    deposit = quiet - frame
    np.testing.assert_array_equal(quiet_mask, deposit >= 5.0)
    np.testing.assert_array_equal(noisy_mask, deposit >= 50.0)
    assert noisy_mask.sum() < quiet_mask.sum()  # the rims and faint rays drown in the noisier frame


@pytest.mark.parametrize("name", ["sky-denoise", "sky-inpaint"])
def test_the_restoring_loss_is_the_display_stretch_error(name):
    """Zero for the stretched truth, and for an output off by 0.1 on the display stretch over the
    whole frame (inpainting: inside the mask) the squared error 0.01 (times 1.1 for inpainting,
    whose pixels outside the mask count a tenth)."""
    task = get_task(name)
    split = task.generate(3, np.random.default_rng(8))
    target = task.target_tensor(split.y)
    clean, sky_level, sigma = (target[:, k : k + 1].double() for k in range(3))
    exact = torch.asinh(clean / sky.STRETCH)
    assert float(task.loss(exact, target.double())) < 1e-12
    shifted = sky_level + sigma * torch.sinh(torch.asinh((clean - sky_level) / sigma) + 0.1)
    off = torch.asinh(shifted / sky.STRETCH)
    expected = 0.01 * (1 + sky.OUTSIDE_WEIGHT) if name == "sky-inpaint" else 0.01
    assert float(task.loss(off, target.double())) == pytest.approx(expected, rel=1e-6)


def test_a_file_that_is_not_a_sky_file_is_refused_in_one_line(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((4, 8, 8))
    with pytest.raises(DataError, match=r"other\.h5: not a sky file"):
        sim.read_frames(path)
    broken = tmp_path / "broken.h5"
    broken.write_text("not hdf5")
    with pytest.raises(DataError, match=r"broken\.h5"):
        sim.read_frames(broken)


# ---- metrics and photometry --------------------------------------------------------------------------


def test_tpr_at_fpr_by_hand():
    truth = np.array([1] * 4 + [0] * 1000)
    scores = np.concatenate([[0.9, 0.8, 0.3, 0.1], np.linspace(0.0, 0.5, 1000)])
    # thresholds above 0.5 flag no clean pixel: 2 of 4 rays; the third (0.3) costs 400 clean pixels
    assert sky.tpr_at_fpr(scores, truth, 0.005) == 0.5
    assert sky.tpr_at_fpr(scores, truth, 0.41) == 0.75
    # between two points of the ROC the rate is interpolated: 2 rays at no cost, all 4 at 2 of 200
    # clean pixels (1 %); flagging at the lower threshold half the time gives 3 rays at 0.5 %
    truth = np.array([1] * 4 + [0] * 200)
    scores = np.concatenate([[0.9, 0.9, 0.5, 0.5], [0.5, 0.5], np.zeros(198)])
    assert sky.tpr_at_fpr(scores, truth, 0.005) == pytest.approx(0.75)
    assert sky.tpr_at_fpr(scores, truth, 0.0) == 0.5


def test_masked_mse_in_noise_units_and_psnr_by_hand():
    clean = np.full((1, 8, 8), 100.0)
    read_noise = np.array([3.0])
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 2:4, 2:5] = True
    off_by_one_sigma = clean + math.sqrt(100 + 9) * mask  # outside the mask: exact
    assert sky.masked_mse(off_by_one_sigma, clean, mask, read_noise) == pytest.approx(1.0)
    clean = np.full((1, 8, 8), 90.0)
    clean[0, 0, 0] = 500.0
    sky_level, noise = 90.0, 3.0  # sigma = sqrt(90 + 9) of the sky: stretched truth 0 and asinh(410 / 9.95)
    sigma = math.sqrt(sky_level + noise**2)
    shifted = clean + sigma * math.sinh(0.1)  # on the sky, the stretch moves by exactly 0.1
    psnr, _ = sky.image_quality(shifted, clean, np.array([sky_level]), np.array([noise]))
    span = math.asinh(410 / sigma)
    stretched_error = np.arcsinh((shifted - sky_level) / sigma) - np.arcsinh((clean - sky_level) / sigma)
    assert stretched_error[0, 1:, 1:] == pytest.approx(0.1)
    assert psnr == pytest.approx(10 * math.log10(span**2 / np.mean(stretched_error**2)))
    with np.errstate(divide="ignore"):  # a perfect image's PSNR is infinite
        assert sky.image_quality(clean, clean, np.array([sky_level]), np.array([noise]))[1] == pytest.approx(
            1.0
        )


def test_aperture_photometry_recovers_an_isolated_star():
    """A noise-free Gaussian star on a flat sky: the aperture of 1.5 FWHM holds 99.8 % of it and
    the annulus median is the sky."""
    fwhm, flux = 3.0, 5000.0
    image = np.full((48, 48), 300.0)
    stamp = sim.psf_stamps(fwhm, None, 12)[2, 2]
    image[11:36, 13:38] += flux * stamp  # centred at (x, y) = (25, 23)
    measured = classical.aperture_fluxes(image, np.array([25.0]), np.array([23.0]), fwhm)
    enclosed = 1 - math.exp(-0.5 * (1.5 * fwhm / (fwhm / 2.3548)) ** 2)
    assert measured[0] == pytest.approx(flux * enclosed, rel=0.005)
    heights, peaks = classical.peak_heights(image, fwhm)
    found = classical.nearby_maximum(heights, peaks, np.array([25.4]), np.array([23.0]))
    assert found[0] == pytest.approx(flux * stamp.max(), rel=1e-9)


def test_star_metrics_of_the_truth_are_perfect_and_a_blur_loses_stars():
    split = get_task("sky-denoise").generate(12, np.random.default_rng(0))
    clean = split.y[:, 0]
    perfect = sky.star_metrics(clean, clean, split.meta)
    assert perfect["star_recovery"] == 1.0 and perfect["flux_error"] == 0.0
    blurred = classical.smooth(split.y, "gaussian", 3.0)[:, 0]
    assert sky.star_metrics(blurred, clean, split.meta)["star_recovery"] < 0.9


def test_star_recovery_does_not_reward_noise():
    """Completeness at a fixed false-detection rate: noise added to the frames raises the
    detection threshold, so twice the frame's noise recovers fewer faint stars than the frame
    itself, and the frame fewer than the truth (a fixed 3-sigma cut on the nearest peak did the
    opposite: noise pushes peaks up). Pure noise on star-free frames finds almost none."""
    split = get_task("sky-denoise").generate(24, np.random.default_rng(0))
    clean, noisy = split.y[:, 0], split.x[:, 0]
    frame = sky.star_metrics(noisy, clean, split.meta)
    worse = sky.star_metrics(clean + 2 * (noisy - clean), clean, split.meta)
    assert worse["star_recovery_faint"] < frame["star_recovery_faint"] < 1.0
    assert worse["star_threshold"] > frame["star_threshold"] > 2.5
    sky_only = split.y[:, 1] + np.random.default_rng(1).normal(size=clean.shape) * split.y[:, 2]  # no stars
    assert sky.star_metrics(sky_only, clean, split.meta)["star_recovery"] < 0.1


# ---- baselines against doing nothing -----------------------------------------------------------------


def test_the_chosen_filter_beats_the_noisy_frame():
    task = get_task("sky-denoise")
    train, test = task.generate(20, np.random.default_rng(1)), task.generate(20, np.random.default_rng(2))
    identity = task.metrics(test.x, test)
    filtered = task.metrics(task.baseline(train, test), test)
    assert filtered["psnr"] > identity["psnr"] + 1.0


def test_lacosmic_finds_most_cosmic_rays_at_half_a_per_cent_false_positives():
    task = get_task("sky-cosmic-rays")
    test = task.generate(8, np.random.default_rng(3))
    scores = task.baseline(test, test)
    assert scores.shape == (8, 2, 64, 64)
    result = task.metrics(scores, test)
    # faint rays and the rims of bright ones (a sky sigma or two) are in the mask: no detector
    # finds them all; L.A.Cosmic finds 0.35-0.4 of the pixels at 0.5 % (0.64 before they were)
    assert result["tpr_at_fpr_0.005"] > 0.3
    assert result["lacosmic_objlim"] in classical.OBJLIMS and result["lacosmic_sigfrac"] in classical.SIGFRACS
    assert result["lacosmic_sigclips"] == len(classical.SIGCLIPS) >= 40
    # the raw pixel value is a much worse score: hot pixels and stars outshine faint rays
    raw = task.metrics(np.stack([-test.x[:, 0], test.x[:, 0]], axis=1), test)
    assert result["tpr_at_fpr_0.005"] > raw["tpr_at_fpr_0.005"]


def test_biharmonic_inpainting_follows_the_sky_where_a_flat_fill_cannot():
    """On a steep sky gradient without sources biharmonic inpainting fills the holes to about the
    noise (error below one noise variance), a flat fill with the frame's median by far worse. (With
    stars under the masks neither is good: a star's core is not in the pixels around it.)"""
    settings = replace(
        sim.Settings(),
        star_density=0.0,
        galaxy_density=0.0,
        gradient=1.0,
        sky=(1000.0, 2000.0),
        bright_star_probability=0.0,
    )
    task = get_task("sky-inpaint")
    test = task.split_of(sim.simulate(10, 64, seed=4, settings=settings))
    mask = test.x[:, 1] > 0.5
    median = np.where(mask, np.median(test.x[:, 0], axis=(1, 2), keepdims=True), test.x[:, 0])[:, None]
    biharmonic, flat = task.metrics(task.baseline(test, test), test), task.metrics(median, test)
    assert biharmonic["masked_mse"] < 1.0 and flat["masked_mse"] > 20 * biharmonic["masked_mse"]


# ---- the tasks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sky-denoise", "sky-cosmic-rays", "sky-inpaint"])
def test_preprocessing_in_numpy_and_torch_agree(name):
    task = get_task(name)
    x = task.generate(2, np.random.default_rng(5)).x
    torch.testing.assert_close(
        task.preprocess_torch(torch.from_numpy(x)), torch.from_numpy(task.preprocess(x)), rtol=1e-5, atol=1e-5
    )


def test_the_patch_mlp_maps_each_patch_from_itself_alone():
    mlp = sky.PatchMLP(in_channels=2, num_outputs=1, patch=8, hidden=(16,))
    x = torch.randn(1, 2, 20, 13)  # no multiple of the patch: padded, cropped
    out = mlp(x)
    assert out.shape == (1, 1, 20, 13)
    changed = x.clone()
    changed[0, :, 0, 0] += 1.0  # inside the first 8x8 patch
    difference = (mlp(changed) - out).abs()[0, 0]
    assert difference[:8, :8].max() > 0 and difference[8:].max() == 0 and difference[:, 8:].max() == 0


def test_task_options_are_checked():
    from astrocnn.errors import OptionError

    with pytest.raises(OptionError, match="size"):
        get_task("sky-denoise", {"size": "big"})
    with pytest.raises(OptionError, match="between"):
        get_task("sky-inpaint", {"size": 8})


def test_the_residual_unet_starts_from_its_input():
    """With its last convolution zeroed, the residual U-Net returns its input's first channels:
    the option reaches the forward pass (and a plain U-Net returns zeros)."""
    from astrocnn.models import create_model

    options = {"spatial_dims": 2, "in_channels": 2, "num_outputs": 1, "width": 0.125, "channel_mults": [1, 2]}
    residual, plain = create_model("unet", residual=True, **options), create_model("unet", **options)
    x = torch.randn(2, 2, 13, 10)
    for net in (residual, plain):
        torch.nn.init.zeros_(net.out.weight)
        torch.nn.init.zeros_(net.out.bias)
        net.eval()
    torch.testing.assert_close(residual(x), x[:, :1])
    assert plain(x).abs().max() == 0
    from astrocnn.errors import OptionError

    with pytest.raises(OptionError, match="residual"):
        create_model("unet", residual=True, spatial_dims=2, in_channels=1, num_outputs=2)


# ---- end to end: training, files, real frames -----------------------------------------------------------

TINY = {"n_train": 24, "n_val": 8, "n_test": 8, "epochs": 1, "batch_size": 8, "progress_bar": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each sky task trained for one epoch on 24 frames of 32x32 pixels."""
    out = tmp_path_factory.mktemp("sky")
    return {
        name: astrocnn.train(name, out=str(out / name), task_options={"size": 32}, workers=1, **TINY)
        for name in ("sky-denoise", "sky-cosmic-rays", "sky-inpaint")
    }


KEYS = {
    "sky-denoise": ("psnr", "ssim", "star_recovery", "flux_error"),
    "sky-cosmic-rays": ("tpr_at_fpr_0.005", "tpr_at_fpr_0.0001"),
    "sky-inpaint": ("masked_mse",),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_each_task_trains_and_reports_its_metrics_for_every_method(runs, name):
    run = runs[name]
    results = json.loads((run.path / "metrics.json").read_text())["results"]
    for method in ("cnn", "mlp", "baseline"):
        for key in KEYS[name]:
            assert np.isfinite(results[method][key]), (method, key)
    assert (run.path / "plots" / "before_after.png").exists()
    if name == "sky-cosmic-rays":
        assert (run.path / "plots" / "roc.png").exists()
        # L.A.Cosmic works whatever one epoch gives (0.18 on these 8 small frames, whose masks hold
        # faint rays and rims; its score without the tuning and fine sweep is in the docs)
        assert results["baseline"]["tpr_at_fpr_0.005"] > 0.1
        assert results["baseline"]["lacosmic_objlim"] in classical.OBJLIMS


def test_a_generated_file_trains_as_it_is(tmp_path):
    from astrocnn.cli import main

    data = tmp_path / "sky.h5"
    assert main(["generate", "sky", "--n", "30", "--size", "32", "--workers", "1", "--out", str(data)]) == 0
    run = astrocnn.train("sky-inpaint", data=str(data), out=str(tmp_path / "run"), **TINY)
    results = json.loads((run.path / "metrics.json").read_text())["results"]
    assert results["baseline"]["n_test"] == 4  # 15 % of 30 frames
    assert np.isfinite(results["cnn"]["masked_mse"])


class _FakeNetwork(torch.nn.Module):
    """A deterministic stand-in for a trained network on the stretched frame (B, C, H, W): half
    the way to the 3x3 mean of the valid pixels (a receptive field, so a window's edge differs from
    the whole frame's), and where ``ramp`` is set, plus a term that grows across the window (not
    shift-invariant: a window placed elsewhere changes every pixel by up to 1.5 sky sigma). With
    two outputs, the logits of a cosmic ray: a pixel's excess over its neighbours."""

    def __init__(self, num_outputs: int, ramp: float = 0.0):
        super().__init__()
        self.num_outputs, self.ramp = num_outputs, ramp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, :1]
        local = torch.nn.functional.avg_pool2d(image, 3, stride=1, padding=1, count_include_pad=False)
        rows = torch.linspace(0, 1, x.shape[2])[:, None]
        cols = torch.linspace(0, 1, x.shape[3])[None]
        ramp = self.ramp * (rows + 2 * cols)
        if self.num_outputs == 1:
            return image + 0.5 * (local - image) + ramp
        score = 40 * (image - local) + 10 * ramp - 3
        return torch.cat([-score / 2, score / 2], dim=1)


class _FakeRun:
    """What clean_file reads of a run: its task, its folder's name and its networks."""

    def __init__(self, name: str, net: torch.nn.Module, path: Path):
        self.task, self.path, self.net = get_task(name, {"size": 32}), path, net

    def predictor(self, which: str = "cnn") -> list[torch.nn.Module]:
        return [self.net]


def test_tiled_prediction_agrees_with_the_whole_frame():
    """A 96x96 frame through a 32x32-window network in blended windows and in one pass: for a
    network with a receptive field (a window's edge pixels differ from the whole frame's) the
    blending leaves on average a thousandth of each pixel's noise, and a tenth at most (a window's
    edge weighs 5e-4 of the centre of the window over it, and next to a bright star the edge is
    wrong by ~100 sigma; equal weights would leave half of that); the same comparison sees a
    network that depends on where in its window a pixel is (so it can fail)."""
    from astrocnn.engine.predict import predict_images
    from astrocnn.engine.run import predict_array

    task = get_task("sky-denoise", {"size": 32})
    data = sim.simulate(1, 96, seed=21)
    frame = data["noisy"][:, None]
    noise = np.sqrt(np.clip(data["clean"], 0, None) + data["read_noise"][0] ** 2)[:, None]  # per pixel
    local = _FakeNetwork(1)
    tiled, whole = predict_images(local, task, frame), predict_array(local, task, frame)
    assert tiled.shape == whole.shape == (1, 1, 96, 96)
    difference = np.abs(tiled - whole) / noise
    assert difference.mean() < 1e-3 and difference.max() < 0.1
    assert (np.abs(whole - frame) / noise).mean() > 0.1  # the network does change the frame
    shifting = _FakeNetwork(1, ramp=0.05)
    tiled, whole = predict_images(shifting, task, frame), predict_array(shifting, task, frame)
    assert (np.abs(tiled - whole) / noise).max() > 0.3


def _fits_cards(path: Path, index: int = 0):
    from astropy.io import fits

    with fits.open(path) as hdul:
        return [(h.name, None if h.data is None else h.data.shape) for h in hdul], hdul[index].header.copy()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_clean_works_on_a_real_frame_and_keeps_its_header(runs, name, tmp_path):
    """m13.fits (300x300, 10 times the training size): cleaned in tiles, header and WCS kept,
    CRPROB for a cosmic-ray run, MASK always; the input is untouched."""
    from astropy.io import fits

    from astrocnn.cli import main

    before = M13.read_bytes()
    out = tmp_path / "cleaned.fits"
    assert main(["clean", str(runs[name].path), str(M13), "--out", str(out)]) == 0
    assert M13.read_bytes() == before
    layout, header = _fits_cards(out)
    names = [n for n, _ in layout]
    assert layout[0][1] == (300, 300)
    assert names[1:] == (["CRPROB", "MASK"] if name == "sky-cosmic-rays" else ["MASK"])
    with fits.open(M13) as original:
        source = next(h for h in original if h.data is not None).header
    for key in ("CTYPE1", "CRVAL1", "CRPIX2", "OBJECT"):
        if key in source:
            assert header[key] == source[key], key
    data = fits.getdata(out)
    assert np.all(np.isfinite(data))
    if name == "sky-cosmic-rays":
        probability = fits.getdata(out, "CRPROB")
        assert probability.dtype.kind == "f" and probability.dtype.itemsize == 4
        assert 0 <= probability.min() and probability.max() <= 1


@pytest.mark.parametrize("strip_rows", [40, 37])
@pytest.mark.parametrize("name", ["sky-denoise", "sky-cosmic-rays"])
def test_clean_by_strips_agrees_with_the_whole_frame(name, strip_rows, tmp_path):
    """A frame larger than memory is read and written strip by strip (forced here with strips of
    40 and of 37 rows, neither a multiple of the 16-row window stride, on a 120x96 frame): the same
    header and extensions, and the same image as the whole-frame path, to float rounding, for a
    network that depends on where in its window each pixel is (a strip whose windows are not the
    whole frame's shows seams of a sky sigma). The source is an int16 image extension with BSCALE,
    BZERO, BLANK pixels and checksums; both outputs pass FITS verification and their checksums."""
    from astropy.io import fits

    from astrocnn.engine.clean import clean_file

    net = _FakeNetwork(get_task(name).num_outputs, ramp=0.05)
    run = _FakeRun(name, net, tmp_path / "run")
    data = sim.simulate(1, 120, seed=5)
    frame = data["noisy"][0, :, :96]
    stored = np.round(frame / 2 - 100).astype(np.int16)
    stored[[10, 61, 62, 100], [5, 40, 40, 90]] = -32768  # BLANK: missing pixels
    image = fits.ImageHDU(stored, name="SCI", header=fits.Header({"OBJECT": "strips", "GAIN": 1.0}))
    source = tmp_path / "frame.fits"
    fits.HDUList([fits.PrimaryHDU(), image]).writeto(source)
    with fits.open(source, mode="update", checksum=True) as hdul:  # stored * 2 + 200 electrons
        hdul[1].header["BSCALE"], hdul[1].header["BZERO"], hdul[1].header["BLANK"] = 2.0, 200.0, -32768
    whole, strips = tmp_path / "whole.fits", tmp_path / "strips.fits"
    clean_file(run, source, whole)
    clean_file(run, source, strips, strip_rows=strip_rows)
    with fits.open(whole, checksum=True) as a, fits.open(strips, checksum=True) as b:
        a.verify("exception")
        b.verify("exception")
        assert [h.name for h in a] == [h.name for h in b]
        assert a[0].header["OBJECT"] == b[0].header["OBJECT"] == "strips"
        assert a[0].data.shape == b[0].data.shape == (120, 96)
        noise = math.sqrt(data["sky"][0] + data["read_noise"][0] ** 2)
        assert np.all(np.isfinite(a[0].data))
        # float32 rounding: a millionth of the value (star cores are ~1e5 e-), else 1e-4 sigma (the
        # flagged pixels' fill clipped to the frame's range left seams of 300 e- before it was local)
        np.testing.assert_allclose(b[0].data, a[0].data, rtol=1e-6, atol=1e-4 * noise)
        mask = a["MASK"].data.astype(bool)
        assert mask[[10, 61, 62, 100], [5, 40, 40, 90]].all()  # the BLANK pixels were filled
        for k in range(1, len(a)):
            np.testing.assert_allclose(a[k].data, b[k].data, atol=1e-5)
        if name == "sky-cosmic-rays":  # the stand-in flags some pixels, not all
            probability = a["CRPROB"].data
            assert 0.001 < (probability > 0.5).mean() < 0.2 and probability.std() > 0.05


def test_clean_refuses_in_one_line_and_leaves_nothing(runs, tmp_path, capsys):
    from astrocnn.cli import main

    run = str(runs["sky-denoise"].path)
    bad = tmp_path / "bad.fits"
    bad.write_text("not a FITS file")
    out = tmp_path / "out.fits"
    assert main(["clean", run, str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.fits" in err and len(err.splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    assert main(["clean", run, str(bad), "--out", str(bad)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    shapes = astrocnn.train(
        "sky-shapes", out=str(tmp_path / "shapes"), train_mlp=False, baseline=False, **TINY
    )
    assert main(["clean", str(shapes.path), str(M13), "--out", str(out)]) == 2
    assert "sky-denoise" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("suffix", [".fits", ".h5"])
def test_predict_writes_images_of_a_frame_larger_than_the_training_size(runs, suffix, tmp_path):
    from astropy.io import fits

    from astrocnn.cli import main

    out = tmp_path / f"denoised{suffix}"
    assert main(["predict", str(runs["sky-denoise"].path), str(M13), "--out", str(out)]) == 0
    if suffix == ".fits":
        assert fits.getdata(out).shape == (1, 300, 300)
        assert fits.getheader(out)["CTYPE1"] == fits.getheader(M13)["CTYPE1"]
    else:
        import h5py

        with h5py.File(out) as f:
            assert f["predictions"].shape == (1, 1, 300, 300)
