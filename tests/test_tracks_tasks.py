"""The particle-track family: the Monte Carlo against the physics it claims (Highland's scattering,
helix radius p / (0.3 B), the Bethe-Bloch minimum and Bragg rise), labels consistent with the
hits, the same events for any number of processes, the Hough and RANSAC finder on planted lines,
the metrics on hand-made events, the patch-wise mlp, and the tasks trained end to end."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import astrocnn
from astrocnn.data.readers import DataError
from astrocnn.tasks import get_task
from astrocnn.tasks.base import ArraySplit
from astrocnn.tasks.tracks import baseline
from astrocnn.tasks.tracks import simulation as sim
from astrocnn.tasks.tracks import tasks as tracks


def _beam(n: int, dims: int, kinetic: float, mass: float, start, direction) -> sim.Particles:
    start = np.tile(np.asarray(start, float), (n, 1))
    direction = np.tile(np.asarray(direction, float), (n, 1))
    return sim.Particles(
        np.zeros(n, np.int64), start, direction, np.full(n, kinetic), np.full(n, mass), np.ones(n),
        np.full(n, sim.TRACK, np.int8), np.ones(n, np.int16),
    )  # fmt: skip


@pytest.mark.parametrize("dims", [2, 3])
def test_scattering_follows_highland(dims):
    """1 GeV/c muons through 10 cm of argon without energy loss: the projected angle's spread is
    Highland's theta0 (PDG eq. 34.16) in every plane, within the 2 % statistics of 3000 muons."""
    length, p = 10.0, 1000.0
    mass = sim.MASSES["muon"]
    settings = sim.Settings(dims=dims, energy_loss=False, b_field=0.0)
    start = [0.0, *([length / 2] * (dims - 1))]
    beam = _beam(3000, dims, np.hypot(p, mass) - mass, mass, start, [1.0, *([0.0] * (dims - 1))])
    _, _, _, final = sim.transport(beam, settings, np.random.default_rng(1), extent=length)
    beta = p / np.hypot(p, mass)
    expected = sim.highland(beta * p, length, beta**2)
    assert expected == pytest.approx(13.6 / 994.4 * np.sqrt(10 / 14) * 0.9876, rel=1e-3)  # 0.0114 rad
    for axis in range(1, dims):
        angle = np.arctan2(final[:, axis], final[:, 0])
        assert np.std(angle) == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize(("dims", "direction"), [(2, [0.0, 1.0]), (3, [0.6, 0.8, 0.0])])
def test_helix_radius_is_p_transverse_over_0_3_b(dims, direction):
    """A 200 MeV/c muon in 1 T without scattering or loss: the track in the plane transverse to
    the field (axis 0) is a circle of radius p_T / (0.3 B), 66.7 cm, or 53.4 cm at p_T = 160."""
    p, mass = 200.0, sim.MASSES["muon"]
    settings = sim.Settings(dims=dims, energy_loss=False, scattering=False, b_field=1.0)
    beam = _beam(1, dims, np.hypot(p, mass) - mass, mass, [100.0] * dims, direction)
    deposits, *_ = sim.transport(beam, settings, np.random.default_rng(0), extent=200.0)
    x, y = deposits.pos[:, -2], deposits.pos[:, -1]
    # algebraic circle fit: x^2 + y^2 = 2 a x + 2 b y + c
    a, b, c = np.linalg.lstsq(np.stack([2 * x, 2 * y, np.ones_like(x)], 1), x**2 + y**2, rcond=None)[0]
    radius = np.sqrt(c + a**2 + b**2)
    p_t = p * np.hypot(direction[-2], direction[-1])
    assert radius == pytest.approx(sim.helix_radius(p_t, 1.0), rel=1e-3)
    assert sim.helix_radius(200.0, 1.0) == pytest.approx(66.67, abs=0.01)


def test_bethe_minimum_and_bragg_rise():
    """dE/dx of a minimum-ionising particle in argon is 2.1 MeV/cm (PDG: 2.12); a 100 MeV proton
    deposits all of its energy (no delta rays here) and its dE/dx rises towards its stopping end."""
    assert sim.bethe_dedx(np.array([3.5]))[0] == pytest.approx(2.12, abs=0.1)
    settings = sim.Settings(dims=2, scattering=False, b_field=0.0, delta_min=1e9)
    proton = _beam(200, 2, 100.0, sim.MASSES["proton"], [1.0, 50.0], [1.0, 0.0])
    deposits, *_ = sim.transport(proton, settings, np.random.default_rng(0), extent=100.0)
    assert deposits.energy.sum() == pytest.approx(200 * 100.0, rel=1e-6)
    track_length = np.array([deposits.path[deposits.particle == k].max() for k in range(200)])
    residual = track_length[deposits.particle] - deposits.path
    step = settings.step
    first = deposits.energy[deposits.path < 2.0].sum() / (200 * 2.0)  # MeV/cm over the first 2 cm
    last = deposits.energy[residual < 0.5].sum() / (200 * (0.5 + step))  # over the last 0.5 cm
    assert 5.0 < first < 8.0  # beta gamma ~ 0.47 at 100 MeV: well above the minimum
    assert last > 3 * first


def test_electrons_radiate_as_the_radiation_length_says():
    """1 GeV electrons through half a radiation length (no ionisation): the energy radiated into
    photons is on average E (1 - exp(-1/2)), the definition of X0, within 5 %."""
    settings = sim.Settings(dims=2, energy_loss=False, scattering=False, b_field=0.0)
    length = sim.RADIATION_LENGTH / 2
    electrons = _beam(2000, 2, 1000.0, sim.M_E, [0.0, length / 2], [1.0, 0.0])
    electrons.label[:] = sim.SHOWER
    _, _, photons, _ = sim.transport(electrons, settings, np.random.default_rng(2), extent=length)
    radiated = sum(p[3].sum() for p in photons) / (2000 * 1000.0)
    assert radiated == pytest.approx(1 - np.exp(-0.5), rel=0.05)


@pytest.mark.parametrize(("dims", "size"), [(2, 48), (3, 24)])
def test_labels_are_consistent_with_the_hits(dims, size):
    settings = sim.Settings(dims=dims, size=size)
    events = sim.simulate(30, np.random.default_rng(3), settings)
    hit = events.image > 0
    assert np.all(events.image[hit] >= settings.threshold)
    assert np.all(events.label[~hit] == sim.BACKGROUND)  # only hits carry a class
    assert np.all((events.track_id > 0) == (events.label == sim.TRACK))
    ids = np.arange(1, settings.max_tracks + 1)
    counted = (events.track_id.reshape(30, -1)[:, :, None] == ids).sum(axis=1)
    assert np.array_equal(counted, events.hits)
    assert np.array_equal((counted >= sim.MIN_TRACK_HITS).sum(axis=1), events.n_tracks)
    drawn = np.isfinite(events.momentum).sum(axis=1)
    assert np.all(events.n_tracks <= drawn)
    assert np.all(counted[~np.isfinite(events.momentum)] == 0)  # no hits for tracks never drawn
    assert (events.label == sim.TRACK).sum() > 30 * 10 and (events.label == sim.SHOWER).sum() > 0


def test_events_are_the_same_for_any_number_of_workers():
    settings = sim.Settings(dims=2, size=32)
    one = sim.generate(settings, 2 * sim.CHUNK + 7, seed=5, workers=1)
    two = sim.generate(settings, 2 * sim.CHUNK + 7, seed=5, workers=2)
    for name in sim.EVENT_FIELDS:
        assert np.array_equal(getattr(one, name), getattr(two, name), equal_nan=True), name
    other = sim.generate(settings, 10, seed=6)
    assert not np.array_equal(other.image, one.image[:10])


def test_hough_finds_a_planted_line():
    image = np.zeros((64, 64), np.float32)
    rows = np.arange(5, 60)
    cols = np.round(10 + 0.6 * rows).astype(int)
    image[rows, cols] = 1.0
    noise = [(50, 5), (3, 60), (40, 55)]
    for r, c in noise:
        image[r, c] = 0.7
    labels, lines = baseline.find_tracks(image)
    assert lines == 1
    assert np.all(labels[rows, cols] == sim.TRACK)
    assert all(labels[r, c] == sim.BACKGROUND for r, c in noise)
    assert np.all(labels[image == 0] == sim.BACKGROUND)


def test_ransac_finds_a_planted_line_in_3d():
    image = np.zeros((32, 32, 32), np.float32)
    t = np.linspace(0, 1, 40)
    line = np.round(np.stack([2 + 27 * t, 5 + 20 * t, 30 - 25 * t], 1)).astype(int)
    image[tuple(line.T)] = 1.0
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 32, (15, 3))
    image[tuple(noise.T)] = 0.5
    labels, lines = baseline.find_tracks(image)
    assert lines == 1
    assert np.mean(labels[tuple(line.T)] == sim.TRACK) > 0.95


def _hand_made() -> tuple[ArraySplit, np.ndarray]:
    """One 2-D event: a 10-hit track, a 5-hit shower and two noise hits, and a prediction that
    finds 9 of the track's hits, calls a shower hit and a noise hit track, and makes a 5-hit fake."""
    image = np.zeros((1, 1, 16, 16), np.float32)
    label = np.full((1, 16, 16), tracks.NO_HIT)
    track_id = np.zeros((1, 16, 16), np.int8)
    image[0, 0, 2, 0:10], label[0, 2, 0:10], track_id[0, 2, 0:10] = 1, sim.TRACK, 1
    image[0, 0, 8, 0:5], label[0, 8, 0:5] = 1, sim.SHOWER
    image[0, 0, 14, [3, 12]], label[0, 14, [3, 12]] = 1, sim.BACKGROUND
    image[0, 0, 11, 8:13], label[0, 11, 8:13] = 1, sim.BACKGROUND  # five noise hits in a row
    predicted = np.where(label == tracks.NO_HIT, sim.BACKGROUND, label)
    predicted[0, 2, 9] = sim.SHOWER  # one track hit missed
    predicted[0, 8, 0] = sim.TRACK  # a shower hit called track
    predicted[0, 14, 3] = sim.TRACK  # a noise hit called track
    predicted[0, 11, 8:13] = sim.TRACK  # a fake track
    predicted[0, 5, 5] = sim.TRACK  # an empty cell: not a hit, not counted
    meta = {
        "track_id": track_id,
        "curvature": np.full((1, 5), np.nan),
        "noise": np.ones(1),
        "n_tracks": np.ones(1),
    }
    meta["curvature"][0, 0] = 1.0
    return ArraySplit(image, label, meta), np.moveaxis(np.eye(3)[predicted], -1, 1)


def test_metrics_on_a_hand_made_event():
    test, prediction = _hand_made()
    m = get_task("tracks-segment-2d").metrics(prediction, test)
    assert m["hit_efficiency_track"] == pytest.approx(0.9)
    assert m["hit_purity_track"] == pytest.approx(9 / 16)  # 9 right, 1 shower, 1 + 5 noise hits
    assert m["iou_track"] == pytest.approx(9 / (10 + 16 - 9))
    assert m["hit_efficiency_shower"] == pytest.approx(4 / 5)
    assert m["hit_purity_shower"] == pytest.approx(4 / 5)
    assert m["hit_efficiency_background"] == pytest.approx(1 / 7)
    assert m["track_efficiency"] == 1.0  # 9 of 10 hits: 90 %
    assert m["fakes_per_event"] == 1.0  # the five noise hits; the lone one is too small
    assert m["track_efficiency_vs_curvature"][2] == 1.0  # the track's curvature, 1/m, in bin 0.8-1.6
    prediction[0, :, 2, 8] = [0, 0, 1]  # a second track hit missed: 8 of 10
    assert get_task("tracks-segment-2d").metrics(prediction, test)["track_efficiency"] == 0.0


@pytest.mark.parametrize(("dims", "size", "patch"), [(2, 16, 8), (3, 8, 4)])
def test_patch_mlp_sees_only_its_patch_and_margin(dims, size, patch):
    torch.manual_seed(0)
    net = tracks.PatchMLP(
        spatial_dims=dims, in_channels=1, num_outputs=3, patch=patch, margin=2, hidden=(32,)
    )
    x = torch.zeros(1, 1, *[size] * dims)
    base = net(x)
    assert base.shape == (1, 3, *[size] * dims)
    x[(0, 0, *[0] * dims)] = 5.0  # a hit in the corner patch
    changed = (net(x) - base).abs().sum(dim=1)[0] > 0
    reach = patch  # the corner hit is inside the first patch: only that patch changes
    inside = np.zeros([size] * dims, bool)
    inside[tuple(slice(0, reach) for _ in range(dims))] = True
    assert changed.numpy()[~inside].sum() == 0 and changed.numpy()[inside].all()


def test_segmentation_3d_trains_from_a_generated_file(tmp_path):
    from click.testing import CliRunner

    from astrocnn.cli import cli

    data = tmp_path / "tracks.h5"
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "tracks",
            "--dims",
            "3",
            "--size",
            "16",
            "--n",
            "40",
            "--workers",
            "1",
            "--out",
            str(data),
        ],
    )
    assert result.exit_code == 0, result.output
    run = astrocnn.train(
        "tracks-segment-3d", data=str(data), task_options={"size": 16}, epochs=1, batch_size=4,
        out=str(tmp_path / "run"), progress_bar=False,
    )  # fmt: skip
    results = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    for method in ("cnn", "mlp", "baseline"):
        for name in (
            "hit_efficiency_track",
            "hit_purity_track",
            "iou_track",
            "iou_shower",
            "track_efficiency",
        ):
            assert name in results[method], (method, name)
    assert (tmp_path / "run" / "plots" / "event_0.png").is_file()
    assert run.metrics["results"]["cnn"]["n_test"] == 6
    # a 32^3 volume, twice the training size: labelled in 16^3 windows, written as label volumes
    from astropy.io import fits

    from astrocnn.engine.predict import predict_files

    volume = get_task("tracks-segment-3d").generate(1, np.random.default_rng(9)).x  # (1, 1, 32, 32, 32)
    np.save(tmp_path / "volume.npy", volume)
    predict_files(run, [tmp_path / "volume.npy"], tmp_path / "labels.h5")
    with h5py.File(tmp_path / "labels.h5") as f:
        assert f["predictions"].shape == (1, 3, 32, 32, 32)
        assert np.array_equal(f["labels"][()], f["predictions"][()].argmax(axis=1))
    predict_files(run, [tmp_path / "volume.npy"], tmp_path / "labels.fits")
    assert fits.getdata(tmp_path / "labels.fits").shape == (32, 32, 32)
    with pytest.raises(DataError, match="size=16"):
        astrocnn.train("tracks-segment-3d", data=str(data), epochs=1, out=str(tmp_path / "bad"))
    with pytest.raises(DataError, match="3-D events"):
        astrocnn.train("tracks-segment-2d", data=str(data), epochs=1, out=str(tmp_path / "bad2"))


def test_segmentation_2d_and_count_train_from_the_generator(tmp_path):
    options = {"size": 32}
    for name in ("tracks-segment-2d", "tracks-count"):
        run = astrocnn.train(
            name, task_options=options, n_train=60, n_val=20, n_test=30, epochs=1, out=str(tmp_path / name),
            progress_bar=False, workers=1,
        )  # fmt: skip
        results = run.metrics["results"]
        assert set(results) == {"cnn", "mlp", "baseline"}
    assert "accuracy_vs_tracks" in results["baseline"]
    assert (tmp_path / "tracks-segment-2d" / "plots" / "events.png").is_file()
    assert (tmp_path / "tracks-count" / "plots" / "count_matrix.png").is_file()


def test_count_trains_from_a_file(tmp_path):
    from astrocnn.data.writers import write_hdf5

    settings = sim.Settings(dims=2, size=32)
    events = sim.generate(settings, 40, seed=1)
    write_hdf5(tmp_path / "tracks.h5", sim.to_hdf5_datasets(events), settings.as_attrs())
    run = astrocnn.train(
        "tracks-count", data=str(tmp_path / "tracks.h5"), task_options={"size": 32}, epochs=1,
        out=str(tmp_path / "run"), progress_bar=False,
    )  # fmt: skip
    results = run.metrics["results"]
    assert results["cnn"]["n_test"] == 6 and "count_mae" in results["baseline"]


def test_labels_follow_the_larger_true_deposit_and_overlaps_are_rare():
    """Each signal hit is labelled by the class that left more true energy in it, and hits holding
    charge of both classes are rare: the bound overlaps put on per-hit efficiency and purity."""
    settings = sim.Settings(dims=2, size=48, shower_probability=1.0)
    events, true = sim._simulate(40, np.random.default_rng(4), settings)
    e_track, e_shower = true["track"], true["shower"]
    assert np.all(true["delta"] <= e_track) and 0 < true["delta"].sum() < 0.2 * e_track.sum()
    again = sim.simulate(40, np.random.default_rng(4), settings)
    assert np.array_equal(events.image, again.image) and np.array_equal(events.label, again.label)
    track, shower = events.label == sim.TRACK, events.label == sim.SHOWER
    assert np.all(e_track[track] >= e_shower[track]) and np.all(e_shower[shower] > e_track[shower])
    shared = sim.shared_hits(40, np.random.default_rng(4), settings)
    assert shared["track_hits_with_shower_charge"] == pytest.approx(np.mean(e_shower[track] > 0))
    assert 0 < shared["track_hits_with_shower_charge"] < 0.05
    assert 0 < shared["shower_hits_with_track_charge"] < 0.05
    assert shared["track_hits_with_shower_quarter"] <= shared["track_hits_with_shower_charge"]
    no_showers = sim.shared_hits(
        20, np.random.default_rng(4), sim.Settings(dims=2, size=48, shower_probability=0)
    )
    assert no_showers["track_hits_with_shower_charge"] == 0
