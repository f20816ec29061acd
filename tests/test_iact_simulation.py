"""The Cherenkov-telescope Monte Carlo: its profiles against their definitions, reproducibility,
and the physical differences the analyses rely on (image size ~ energy, gamma images pointing at
the source, hadron images wider, time gradients along the image)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from astrocnn.tasks.iact.camera import get_camera
from astrocnn.tasks.iact.hillas import FEATURES, hillas_features
from astrocnn.tasks.iact.simulation import (
    GAMMA,
    PROTON,
    RADIATION_LENGTH,
    Simulator,
    gaisser_hillas,
    greisen,
    greisen_x_max,
)


@pytest.fixture(scope="module")
def simulator():
    return Simulator(get_camera("taiga"))


def test_greisen_and_gaisser_hillas_peak_where_they_should():
    x = np.linspace(0, 1000, 100_001)
    for energy in (0.5, 5.0, 50.0):
        peak = x[np.argmax(greisen(x, energy, first=40.0))]
        # Greisen's maximum lies at t_max = ln(E / E_c) radiation lengths, to within about one
        assert abs(peak - greisen_x_max(energy, 40.0)) < RADIATION_LENGTH
    profile = gaisser_hillas(x, first=50.0, x_max=420.0)
    assert x[np.argmax(profile)] == pytest.approx(420.0, abs=0.02) and profile.max() == pytest.approx(1.0)
    assert greisen(np.array([10.0]), 1.0, first=40.0)[0] == 0.0  # nothing before the first interaction


def test_events_are_reproducible_and_independent_of_the_batch(simulator):
    a = simulator.simulate(8, seed=3)
    b = simulator.simulate(8, seed=3)
    np.testing.assert_array_equal(a.charge, b.charge)
    part = simulator.simulate(4, seed=3, first=4)
    np.testing.assert_array_equal(part.charge, a.charge[4:])
    np.testing.assert_array_equal(part.energy, a.energy[4:])
    assert not np.array_equal(simulator.simulate(8, seed=4).charge, a.charge)
    assert set(a.particle.tolist()) == {GAMMA, PROTON}


def test_energies_follow_the_power_law(simulator):
    events = simulator.simulate(3000, seed=5, particles=(GAMMA,), energy_range=(1.0, 10.0))
    # E^-2 between 1 and 10 TeV: P(E < 2) = (1 - 1/2) / (1 - 1/10) = 0.556
    assert np.mean(events.energy < 2.0) == pytest.approx(0.5556, abs=0.03)
    assert events.energy.min() >= 1.0 and events.energy.max() <= 10.0


def test_image_size_grows_with_energy_inside_the_light_pool(simulator):
    sizes = {}
    for energy in (1.0, 10.0):
        events = simulator.simulate(80, seed=6, particles=(GAMMA,), energy_range=(energy, energy))
        near = events.impact < 100
        sizes[energy] = events.charge[near].sum(axis=1).mean()
    assert sizes[10.0] / sizes[1.0] == pytest.approx(10.0, rel=0.15)


def test_gamma_images_point_at_the_source_and_hadron_images_do_not(simulator):
    events = simulator.simulate(600, seed=7, energy_range=(10.0, 100.0))
    features = hillas_features(simulator.camera, events.charge)
    size, alpha = features[:, FEATURES.index("size")], features[:, FEATURES.index("alpha")]
    width = features[:, FEATURES.index("width_deg")]
    good = (size > 200) & np.isfinite(alpha)
    gamma, proton = good & (events.particle == GAMMA), good & (events.particle == PROTON)
    assert gamma.sum() > 40 and proton.sum() > 40
    assert np.median(alpha[gamma]) < 15.0  # pointing at the source (within its small offset)
    assert np.median(alpha[proton]) > 30.0  # isotropic arrival: no preferred orientation
    assert np.median(width[proton]) > 1.2 * np.median(width[gamma])


def test_arrival_times_grow_away_from_the_source_for_distant_cores(simulator):
    events = simulator.simulate(200, seed=8, particles=(GAMMA,), energy_range=(10.0, 30.0))
    camera = simulator.camera
    slopes = []
    for charge, time, source, core in zip(
        events.charge, events.time, events.source, events.core, strict=True
    ):
        if np.hypot(*core) < 150:
            continue
        bright = charge > 10
        if bright.sum() < 8:
            continue
        to_deg = 180 / math.pi / camera.focal_length
        radial = np.hypot(camera.x[bright] * to_deg - source[0], camera.y[bright] * to_deg - source[1])
        slopes.append(np.polyfit(radial, time[bright], 1)[0])
    assert len(slopes) > 10 and np.median(slopes) > 0  # later light from lower, further-out points


def test_some_protons_carry_muon_light(simulator):
    events = simulator.simulate(200, seed=9, particles=(PROTON,), energy_range=(10.0, 100.0))
    assert 0.1 < events.muon.mean() < 0.9
    # a ring through the mirror is bright: hundreds of photoelectrons at 1.2 degrees
    assert simulator.settings.proton_cone > 4.5  # beyond the camera's edge (4.5 degrees)


def test_generate_iact_writes_the_events_and_the_camera(tmp_path, capsys):
    import h5py

    from astrocnn.cli import main
    from astrocnn.tasks.iact import simulation

    out = tmp_path / "showers.h5"
    code = main(["generate", "iact", "--n", "1200", "--energy", "1:10", "--workers", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    camera = get_camera("taiga")
    with h5py.File(out) as f:
        assert f["charge"].shape == (1200, 560) and f["time"].shape == (1200, 560)
        assert f.attrs["camera"] == "taiga" and f.attrs["seed"] == 0
        np.testing.assert_array_equal(f["camera/lattice"][()], camera.lattice)
        charge = f["charge"][()]
        assert set(np.unique(f["particle"][()]).tolist()) == {0, 1}
    # the same events from one process, chunk by chunk
    # protons over three times the gamma rays' range by default
    one = simulation.generate(camera, 1200, 0, energy_range={0: (1.0, 10.0), 1: (3.0, 30.0)}, workers=1)
    np.testing.assert_array_equal(one.charge, charge)
    assert main(["generate", "iact", "--particles", "electron", "--out", str(tmp_path / "x.h5")]) == 2
    assert main(["generate", "iact", "--energy", "10:1", "--out", str(tmp_path / "x.h5")]) == 2


def test_reading_a_generated_file_and_refusing_wrong_ones(tmp_path):
    import h5py

    from astrocnn.data.readers import DataError
    from astrocnn.data.writers import write_hdf5
    from astrocnn.tasks.iact import simulation

    camera = get_camera("taiga")
    events = simulation.generate(camera, 30, 2, energy_range=(1.0, 10.0))
    path = tmp_path / "ok.h5"
    write_hdf5(path, simulation.to_hdf5_datasets(events, camera), {"camera": "taiga"})
    back, read_camera = simulation.read_events(path, camera)
    assert read_camera is camera
    np.testing.assert_array_equal(back.charge, events.charge)
    np.testing.assert_array_equal(back.particle, events.particle)
    np.testing.assert_array_equal(back.muon, events.muon)

    with pytest.raises(DataError, match="this task uses the lst camera"):
        simulation.read_events(path, get_camera("lst"))
    broken = tmp_path / "broken.h5"
    datasets = simulation.to_hdf5_datasets(events, camera)
    del datasets["time"]
    write_hdf5(broken, datasets, {"camera": "taiga"})
    with pytest.raises(
        DataError, match=r"no dataset 'time': not a file of `astrocnn generate iact` \(it holds: "
    ):
        simulation.read_events(broken)
    cut = tmp_path / "cut.h5"
    datasets = simulation.to_hdf5_datasets(events, camera)
    datasets["charge"] = datasets["charge"][:, :500]
    write_hdf5(cut, datasets, {"camera": "taiga"})
    with pytest.raises(DataError, match="charge has shape \\(30, 500\\); the taiga camera has 560 pixels"):
        simulation.read_events(cut)
    with h5py.File(cut, "a") as f:
        f.attrs["camera"] = "magic"
    with pytest.raises(DataError, match="unknown camera 'magic'"):
        simulation.read_events(cut)


def test_dark_pixels_carry_no_timing_reference(simulator):
    """Pixels without signal read a time anywhere in the readout window, whatever the impact: an
    absolute delay (which grows with impact distance) must not leak through them."""
    events = simulator.simulate(300, seed=10, particles=(GAMMA,), energy_range=(5.0, 20.0))
    dark = {}
    for name, pick in (("near", events.impact < 80), ("far", events.impact > 200)):
        dark[name] = events.time[pick][events.charge[pick] < -0.5]  # nearly all without signal
    assert abs(np.median(dark["near"]) - np.median(dark["far"])) < 1.0


def test_protons_give_about_half_the_light_of_gamma_rays(simulator):
    sizes = {}
    for kind in (GAMMA, PROTON):
        events = simulator.simulate(400, seed=11, particles=(kind,), energy_range=(10.0, 10.0))
        # cores inside the light pool, arriving near the axis (protons come from up to 7 degrees
        # off it, where much of their light falls beside the camera)
        pick = (events.impact < 100) & (np.hypot(*events.direction.T) < 1.0)
        sizes[kind] = events.charge[pick].sum(axis=1).mean()
    assert 0.25 < sizes[PROTON] / sizes[GAMMA] < 0.6


def test_leading_pi0_fraction_follows_the_inclusive_pion_spectrum():
    """The leading pi0's energy fraction against the spectrum it is drawn from, integrated here
    independently: P(x_lead > x) = 1 - exp(-N(>x)), N(>x) = integral of c (1 - u)^n / u from x
    to 1; the spectrum carries a third of the inelasticity into pi0 (x dN/dx integrates to K / 3)."""
    from scipy.integrate import quad

    from astrocnn.tasks.iact import simulation as sim

    c, n = sim.PI0_SPECTRUM_NORM, sim.PI0_SPECTRUM_POWER
    assert quad(lambda u: c * (1 - u) ** n, 0, 1)[0] == pytest.approx(sim.INELASTICITY / 3)
    x = sim.leading_pi0_fraction(np.random.default_rng(0), 100_000)
    assert x.min() >= 0.0 and x.max() <= 1.0
    for cut in (0.05, 0.2, 0.5):
        expected = 1 - math.exp(-quad(lambda u: c * (1 - u) ** n / u, cut, 1)[0])
        error = math.sqrt(expected * (1 - expected) / x.size)
        assert np.mean(x > cut) == pytest.approx(expected, abs=4 * error + 1e-4)
    assert np.mean(x) == pytest.approx(sim.MEAN_LEADING_PI0, rel=0.02)


def test_protons_whose_energy_goes_into_a_leading_pi0_look_like_gamma_rays(simulator, monkeypatch):
    """A proton that gives 90 % of its energy to a leading pi0 makes an electromagnetic image:
    its Hillas width within 15 % of a gamma ray's; without one it is over 1.3 times wider.
    (Protons here arrive within 1 degree of the axis, so that their images lie on the camera.)"""
    from astrocnn.tasks.iact import simulation as sim

    near_axis = Simulator(simulator.camera, sim.Settings(proton_cone=1.0))

    def median_width(kind, energy, fraction=None):
        if fraction is not None:
            monkeypatch.setattr(sim, "leading_pi0_fraction", lambda rng, size=None: fraction)
        events = near_axis.simulate(300, seed=12, particles=(kind,), energy_range=(energy, energy))
        features = hillas_features(simulator.camera, events.charge)
        size, width = features[:, FEATURES.index("size")], features[:, FEATURES.index("width_deg")]
        leak = features[:, FEATURES.index("leakage2")]
        good = (size > 200) & (leak < 0.1) & (events.impact < 150) & np.isfinite(width)
        assert good.sum() > 30
        return np.median(width[good])

    gamma = median_width(GAMMA, 9.0)
    assert median_width(PROTON, 10.0, fraction=0.9) == pytest.approx(gamma, rel=0.15)
    assert median_width(PROTON, 10.0, fraction=0.0) > 1.3 * gamma


def test_the_leading_pi0_fraction_is_recorded_and_keeps_the_proton_light(simulator):
    from astrocnn.tasks.iact import simulation as sim

    rng = np.random.default_rng(13)
    assert simulator.event(GAMMA, rng)["pi0_fraction"] == 0.0
    fractions = [simulator.event(PROTON, rng, (10.0, 10.0))["pi0_fraction"] for _ in range(200)]
    assert 0.0 <= min(fractions) and max(fractions) <= 1.0 and np.mean(np.array(fractions) > 0.05) > 0.4
    # without the leading pi0 (the earlier model) no event carries one
    old = Simulator(simulator.camera, sim.Settings(leading_pi0=False))
    assert old.event(PROTON, np.random.default_rng(14))["pi0_fraction"] == 0.0


def test_a_pixel_time_carries_no_more_than_the_photoelectrons_it_read():
    """A pixel's time comes from the photoelectrons it read, not from the light the shower sent:
    a pixel that the shower reached with one photoelectron but that read none gives a time uniform
    in the readout window, like a dark pixel; one that read a single photoelectron holds the
    signal's time only as often as that photoelectron is signal (1 / (1 + nsb)); a bright pixel is
    timed to the jitter over the square root of its charge; times are relative to the bright
    pixels' and never leave the window."""
    from scipy.stats import kstest

    from astrocnn.tasks.iact.simulation import Settings

    settings = Settings(noise=0.0)  # then the read charge is the photoelectron count minus the pedestal
    sim = Simulator(get_camera("taiga"), settings)
    x, y = sim.camera.x, sim.camera.y
    # 400 photoelectrons in pixel 0 at delay 10 ns, one in pixel 1 at 13 ns, one in pixel 2 at 40 ns
    points = np.array([[x[0], y[0], 10.0]] * 400 + [[x[1], y[1], 13.0], [x[2], y[2], 40.0]])
    rng = np.random.default_rng(3)
    draws = [sim._camera(points, rng) for _ in range(3000)]
    charge = np.array([c for c, _ in draws])
    time = np.array([t for _, t in draws])
    window = settings.readout_window
    read = np.rint(charge[:, 1] + settings.nsb).astype(int)  # photoelectrons read in pixel 1
    assert 0.15 < np.mean(read == 0) < 0.3  # e^-1.5 of the draws
    assert kstest(time[read == 0, 1], "uniform", args=(-window, 2 * window)).pvalue > 0.01
    # read one: the signal's 3 ns after the bright pixel with probability 1 / 1.5 (jitter 0.8 ns),
    # else a background time, within 1 ns of it one time in 12
    near = np.abs(time[read == 1, 1] - 3.0) < 1.0
    expected = (1 - 1 / 1.5) * (2.0 / (2 * window)) + (1 / 1.5) * 0.789  # P(|N(0, 0.8)| < 1) = 0.789
    assert abs(near.mean() - expected) < 0.05 and (read == 1).sum() > 800
    assert np.abs(np.median(time[:, 0])) < 0.01  # the bright pixel is the reference
    # jitter 0.8 ns / sqrt(400) = 0.04 ns, plus half a background photoelectron in 400 (0.01 ns)
    assert np.std(time[:, 0]) < 0.06
    assert np.all(np.abs(time) <= window)
    assert np.mean(time[:, 2] == window) > 0.5  # signal 30 ns late reads at the window's edge
