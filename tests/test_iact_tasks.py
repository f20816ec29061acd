"""The Cherenkov-telescope tasks: metrics against hand-computed values, the event selection, the
mapping channels, and both tasks trained end to end from the generator and from a file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import astrocnn
from astrocnn.data.readers import DataError
from astrocnn.errors import OptionError
from astrocnn.tasks import get_task
from astrocnn.tasks.iact import hillas
from astrocnn.tasks.iact import tasks as iact_tasks
from astrocnn.tasks.iact.camera import get_camera


def test_quality_factor_by_hand():
    gamma = np.linspace(0.0, 1.0, 101)  # 50.5 of 101 pass: scores above 0.5, half the one at it
    hadron = np.concatenate([np.full(96, 0.1), np.full(4, 0.9)])  # 4 % of protons pass it
    assert iact_tasks.quality_factor(gamma, hadron, 0.5) == pytest.approx(0.5 / np.sqrt(0.04))
    assert np.isnan(iact_tasks.quality_factor(gamma, np.zeros(10), 0.5))  # no proton passes


def test_quality_factor_shares_the_ties_at_the_cut():
    """A saturated softmax gives many scores of exactly 1: the cut still keeps exactly 50 % of
    the gamma rays, and the protons at the same score pass in the same proportion."""
    gamma = np.concatenate([np.ones(70), np.linspace(0.0, 0.9, 30)])
    hadron = np.concatenate([np.ones(10), np.zeros(990)])  # 1 % of the protons score 1
    eps_h = 0.01 * 50 / 70
    assert iact_tasks.quality_factor(gamma, hadron, 0.5) == pytest.approx(0.5 / np.sqrt(eps_h))
    assert iact_tasks._passing(gamma, hadron, 0.5) == pytest.approx((50.0, 10 * 50 / 70))


def test_time_gradient_points_away_from_the_camera_centre():
    """An image on the +x side whose times grow with x, and its mirror image on the -x side
    whose times grow with -x: the same positive gradient, as both grow away from the centre."""
    camera = get_camera("taiga")
    degrees = np.degrees(camera.x / camera.focal_length)
    for side in (1, -1):
        blob = np.exp(-((camera.x - side * 0.2) ** 2 / 0.004 + camera.y**2 / 0.001)) * 200
        times = 3.0 * side * degrees + 1.0
        slope, _ = hillas.hillas_features(camera, blob[None], times[None])[0, len(hillas.FEATURES) :]
        assert slope == pytest.approx(3.0, rel=1e-6)


def test_energy_resolution_and_bias_by_hand():
    rng = np.random.default_rng(0)
    true = 10 ** rng.uniform(-0.5, 1.9, 20000)
    rel = rng.normal(0.05, 0.2, true.size)  # 5 % bias, 20 % Gaussian spread
    resolution, bias = iact_tasks.energy_resolution(true, true * (1 + rel), iact_tasks.ENERGY_BINS)
    full = [r for r in resolution if r == r]
    assert len(full) >= 11
    # 68 % containment of |N(0.05, 0.2)|, computed from the same distribution
    expected = np.quantile(np.abs(rng.normal(0.05, 0.2, 10**6)), 0.68)
    assert np.allclose(full, expected, atol=0.02)
    assert np.allclose([b for b in bias if b == b], 0.05, atol=0.02)
    # a bin with fewer than 10 events is not reported
    resolution, _ = iact_tasks.energy_resolution(np.array([1.0, 1.1]), np.array([1.0, 1.1]), [-1.0, 1.0])
    assert np.isnan(resolution[0])


def test_the_headline_resolution_averages_a_fixed_set_of_bins():
    task = get_task("iact-energy")
    rng = np.random.default_rng(3)
    log_e = rng.uniform(-0.6, 2.0, 40000)
    # 10 % resolution between 1 and 40 TeV, 50 % outside: the headline sees only the first
    reco = log_e + np.log10(
        1 + np.where((log_e >= 0) & (log_e < 1.6), 0.1, 0.5) * rng.uniform(-1, 1, log_e.size)
    )
    split = iact_tasks.ArraySplit(np.zeros((log_e.size, 1)), log_e[:, None], {})
    metrics = task.metrics(reco[:, None], split)
    assert metrics["energy_resolution_mean"] == pytest.approx(0.068, abs=0.004)  # 68 % of U(0, 0.1)
    # an empty headline bin leaves the headline undefined rather than averaging fewer bins
    keep = ~((log_e >= 0.4) & (log_e < 0.6))
    thin = iact_tasks.ArraySplit(np.zeros((keep.sum(), 1)), log_e[keep, None], {})
    assert np.isnan(task.metrics(reco[keep, None], thin)["energy_resolution_mean"])


def test_cleaned_sizes_agree_with_the_event_by_event_cleaning():
    camera = get_camera("taiga")
    rng = np.random.default_rng(1)
    images = rng.exponential(2.0, size=(30, camera.n_pixels)) * (rng.random((30, camera.n_pixels)) < 0.2) * 8
    sizes = hillas.cleaned_sizes(camera, images)
    for image, size in zip(images, sizes, strict=True):
        assert size == pytest.approx((image * hillas.tailcuts_clean(camera, image)).sum(), rel=1e-5)


def test_generated_events_pass_the_cut_are_balanced_and_reproducible():
    task = get_task("iact-gamma-hadron")
    split = task.generate(40, np.random.default_rng(3))
    assert split.x.shape == (40, 2, *task.input_size) and len(split.y) == 40
    assert np.all(split.meta["image_size"] >= task.min_size)
    assert split.y.sum() == 20  # half protons
    assert np.array_equal(split.y, split.meta["particle"])
    # protons over three times the gamma rays' energy range
    assert split.meta["energy"][split.y == 1].min() >= 0.9
    again = task.generate(40, np.random.default_rng(3))
    np.testing.assert_array_equal(again.x, split.x)
    energy = get_task("iact-energy").generate(10, np.random.default_rng(4))
    assert np.all(energy.meta["particle"] == 0)
    np.testing.assert_allclose(energy.y[:, 0], np.log10(energy.meta["energy"]), rtol=1e-6)


@pytest.mark.parametrize("mapping", ["axial", "bilinear"])
def test_preprocessing_in_numpy_and_torch_agree_and_add_the_coordinates(mapping):
    task = get_task("iact-gamma-hadron", {"mapping": mapping})
    camera = task.camera
    charge = np.random.default_rng(2).exponential(3.0, (3, camera.n_pixels))
    time = np.full((3, camera.n_pixels), 5.0)
    raw = task.mapper.images(charge, time)
    assert raw.shape == (3, 2, *task.input_size)
    x = task.preprocess(raw)
    assert x.shape[1] == task.network_channels == 5
    np.testing.assert_allclose(task.preprocess_torch(torch.from_numpy(raw)).numpy(), x, rtol=1e-6, atol=1e-6)
    # a time shared by every pixel stays that time on the grid (weighted means, not sums)
    inside = task.mapper.charge(np.ones(camera.n_pixels)) > 0
    np.testing.assert_allclose(raw[:, 1][:, inside], 5.0, rtol=1e-5)
    # the charge is conserved by either mapping, and the linear channel's sum is the image's size
    np.testing.assert_allclose(raw[:, 0].sum(axis=(1, 2)), charge.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(
        x[:, 4].sum(axis=(1, 2)) * iact_tasks.CHARGE_SCALE, charge.sum(axis=1), rtol=1e-5
    )
    # the coordinate channels: degrees from the camera centre, the farthest pixel at the edge
    radius = np.hypot(x[0, 2], x[0, 3]).max()
    edge = np.degrees(np.arctan(np.hypot(camera.x, camera.y).max() / camera.focal_length))
    assert radius == pytest.approx(edge, rel=0.05)


@pytest.mark.parametrize("name", ["taiga", "lst", "square"])
def test_camera_symmetries_are_its_rotations_and_reflections(name):
    camera = get_camera(name)
    maps = camera.symmetries()
    order = 6 if camera.pixel_shape == "hexagon" else 4
    assert maps.shape == (2 * order, camera.n_pixels)
    np.testing.assert_array_equal(maps[0], np.arange(camera.n_pixels))
    for source in maps:  # each a one-to-one map of the pixels it reaches
        found = source[source >= 0]
        assert len(np.unique(found)) == len(found)
    missing = (maps < 0).sum(axis=1).max()
    assert missing == {"taiga": 1, "lst": 12, "square": 0}[name]
    # the rotation by one step, applied `order` times, is the identity wherever it is defined
    turn, index = maps[1], np.arange(camera.n_pixels)
    for _ in range(order):
        index = np.where(index >= 0, turn[np.maximum(index, 0)], -1)
    kept = index >= 0
    assert kept.mean() > 0.97
    np.testing.assert_array_equal(index[kept], np.arange(camera.n_pixels)[kept])
    # a pixel's source under the rotation sits at the same distance, one step of angle back
    x, y = camera.x, camera.y
    src = turn >= 0
    centre = (
        np.zeros(2)
        if name == "square"
        else np.array([camera.x[np.argmin(np.hypot(x, y))], camera.y[np.argmin(np.hypot(x, y))]])
    )
    r_to = np.hypot(x[src] - centre[0], y[src] - centre[1])
    r_from = np.hypot(x[turn[src]] - centre[0], y[turn[src]] - centre[1])
    np.testing.assert_allclose(r_to, r_from, atol=1e-9)
    step = np.arctan2(y[src] - centre[1], x[src] - centre[0]) - np.arctan2(
        y[turn[src]] - centre[1], x[turn[src]] - centre[0]
    )
    moved = r_to > 1e-9
    np.testing.assert_allclose(np.cos(step[moved]), np.cos(2 * np.pi / order), atol=1e-9)
    np.testing.assert_allclose(np.sin(step[moved]), np.sin(2 * np.pi / order), atol=1e-9)


def test_turned_events_keep_their_hillas_parameters_and_the_coordinates_stay():
    """The augmentation moves the event, not the sky: size, width, length, distance from the
    centre and the time image are those of the original event, the coordinate channels
    unchanged, every one of the 12 transforms drawn."""
    task = get_task("iact-energy")
    camera = task.camera
    test = task.generate(16, np.random.default_rng(3))
    x = torch.from_numpy(task.preprocess(test.x))
    torch.manual_seed(0)
    batch = x.repeat(30, 1, 1, 1)
    turned = task.augment(batch)
    np.testing.assert_array_equal(turned[:, 2:4].numpy(), batch[:, 2:4].numpy())
    charge = camera.from_axial(turned[:, 4].numpy() * iact_tasks.CHARGE_SCALE)
    original = np.tile(test.meta["charge"], (30, 1))
    changed = ~np.all(np.isclose(charge, original, atol=1e-4), axis=1)
    assert 0.8 < changed.mean() < 1.0  # the identity is one of 12
    lone = (camera.symmetries() < 0).any(axis=0)  # pixels without a partner under some transform
    masks = hillas.tailcuts_masks(camera, original)
    clear = ~(masks & lone).any(axis=1)
    assert clear.mean() > 0.9
    for i in np.flatnonzero(clear)[:60]:
        a = hillas.hillas_parameters(camera, original[i], masks[i])
        b = hillas.hillas_parameters(camera, charge[i], hillas.tailcuts_clean(camera, charge[i]))
        for key in ("size", "width", "length", "kurtosis"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), key
        assert b["r"] == pytest.approx(a["r"], abs=0.05 * camera.pitch)
    # the time channel moves with the charge: the charge-weighted mean time is kept
    t0 = (batch[:, 1] * batch[:, 4]).sum(dim=(1, 2))
    t1 = (turned[:, 1] * turned[:, 4]).sum(dim=(1, 2))
    np.testing.assert_allclose(t1.numpy(), t0.numpy(), rtol=1e-3, atol=0.05)


def test_augment_no_leaves_events_as_they_are():
    x = torch.randn(4, 5, 29, 29)
    assert get_task("iact-energy", {"augment": "no"}).augment(x) is x
    assert get_task("iact-energy", {"augment": "no", "mapping": "bilinear"}).augment(x) is x


@pytest.mark.parametrize("g", [0, 1, 3, 7])
def test_bilinear_events_turn_as_the_camera_turns(g, monkeypatch):
    """On the bilinear grid an event turned by transform g is the bilinear image of the camera
    image turned by g, in every channel (charge through the least-squares inverse, times as
    weighted means, asinh recomputed); the coordinate channels stay."""
    task = iact_tasks.IactEnergy(mapping="bilinear")
    events = task._selected(iact_tasks.sim.GAMMA, 6, np.random.default_rng(1))
    x = torch.from_numpy(task.preprocess(task.mapper.images(events.charge, events.time)))
    monkeypatch.setattr(torch, "randint", lambda low, high, size: torch.full(size, g, dtype=torch.long))
    turned = task.augment(x)
    source = task.camera.symmetries()[g]
    charge = np.where(source >= 0, events.charge[:, source.clip(0)], 0.0)
    time = np.where(source >= 0, events.time[:, source.clip(0)], 0.0)
    expected = torch.from_numpy(task.preprocess(task.mapper.images(charge, time)))
    torch.testing.assert_close(turned, expected, rtol=1e-5, atol=2e-5)
    if g:  # a real turn moves the image
        assert (turned[:, 4] - x[:, 4]).abs().max() > 0.1


def test_task_options_are_checked():
    with pytest.raises(astrocnn.errors.OptionError, match="camera must be one of"):
        get_task("iact-energy", {"camera": "hess"})
    with pytest.raises(astrocnn.errors.OptionError, match="mapping must be one of"):
        get_task("iact-energy", {"mapping": "nearest"})
    with pytest.raises(astrocnn.errors.OptionError, match="augment must be yes or no"):
        get_task("iact-energy", {"augment": "maybe"})


def test_gamma_hadron_trains_from_the_generator_with_the_field_metrics(tmp_path):
    run = astrocnn.train(
        "iact-gamma-hadron", out=str(tmp_path / "run"), n_train=120, n_val=40, n_test=80, epochs=1,
        progress_bar=False,
    )  # fmt: skip
    results = json.loads((run.path / "metrics.json").read_text())["results"]
    for method in ("cnn", "mlp", "baseline"):
        for key in ("auc", "q_factor_50", "q_factor_80", "accuracy"):
            assert key in results[method], (method, key)
        assert 0.0 <= results[method]["auc"] <= 1.0
    # Hillas parameters and gradient-boosted trees separate these simulated showers
    assert results["baseline"]["auc"] > 0.8
    for name in ("roc.png", "events.png", "activations.png"):
        assert (run.path / "plots" / name).exists(), name


def test_activation_maps_are_the_first_convolutions_outputs():
    from astrocnn.models.registry import create_model
    from astrocnn.tasks.plotting import convolution_outputs

    torch.manual_seed(0)
    model = create_model("resnet18", in_channels=4, num_outputs=2, width=0.25, small_input=True)
    x = torch.randn(1, 4, 29, 29)
    first, second = convolution_outputs(model, x, layers=2)
    assert model.training  # the mode it was in, restored
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(first, convs[0](x)[0].numpy(), rtol=1e-5, atol=1e-6)
    assert second.shape[0] == convs[1].out_channels


def test_energy_trains_from_a_generated_file(tmp_path):
    from astrocnn.cli import main

    data = tmp_path / "showers.h5"
    assert main(["generate", "iact", "--n", "900", "--particles", "gamma", "--energy", "2:100",
                 "--workers", "1", "--out", str(data)]) == 0  # fmt: skip
    run = astrocnn.train(
        "iact-energy", data=str(data), out=str(tmp_path / "run"), epochs=1, progress_bar=False
    )
    metrics = json.loads((run.path / "metrics.json").read_text())
    results = metrics["results"]
    for method in ("cnn", "mlp", "baseline"):
        assert len(results[method]["energy_resolution"]) == len(iact_tasks.ENERGY_BINS) - 1
        assert results[method]["energy_bias_bins"] == iact_tasks.ENERGY_BINS
    # trees on Hillas parameters reconstruct log10 E to better than a factor of two
    assert results["baseline"]["rmse_log10"] < 0.3
    # and the impact distance (0-300 m, uniform over the disc: about 70 m from guessing its mean)
    assert results["baseline"]["impact_resolution"] < 35.0
    assert all("impact_resolution" in results[m] for m in ("cnn", "mlp"))
    assert (run.path / "plots" / "migration.png").exists()


def test_energy_targets_are_log_energy_and_impact_distance_and_come_back_unscaled():
    task = iact_tasks.IactEnergy()
    events = task._selected(iact_tasks.sim.GAMMA, 40, np.random.default_rng(3))
    y = task.labels(events)
    assert y.shape == (40, 2) and task.num_outputs == 2
    np.testing.assert_allclose(y[:, 0], np.log10(events.energy), rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], np.hypot(events.core[:, 0], events.core[:, 1]), rtol=1e-6)
    scaled = task.target_tensor(y)
    assert float(scaled.abs().max()) < 3.0  # about unit scale for the loss
    torch.testing.assert_close(task.postprocess(scaled), torch.from_numpy(y), rtol=1e-5, atol=1e-4)
    only = iact_tasks.IactEnergy(impact="no")
    assert only.num_outputs == 1 and only.output_names == ("log10_energy_tev",)
    np.testing.assert_allclose(only.labels(events)[:, 0], y[:, 0])
    with pytest.raises(OptionError):
        iact_tasks.IactEnergy(impact="maybe")


def test_a_harder_training_spectrum_leaves_the_test_events_alone():
    same = iact_tasks.IactEnergy()
    hard = iact_tasks.IactEnergy(train_index="1.2")
    test = hard.generate(120, np.random.default_rng(4), "test")
    np.testing.assert_array_equal(test.y, same.generate(120, np.random.default_rng(4), "test").y)
    train = hard.generate(120, np.random.default_rng(4), "train")
    # E^-1.2 above the size cut's threshold: far more events above 10 TeV than E^-2 gives
    assert np.mean(train.y[:, 0] > 1.0) > 2 * np.mean(test.y[:, 0] > 1.0)
    assert hard.settings.index == 2.0  # restored after generating
    with pytest.raises(OptionError):
        iact_tasks.IactEnergy(train_index="steep")


def test_impact_resolution_by_hand():
    task = iact_tasks.IactEnergy()
    impact = np.linspace(10.0, 250.0, 100)
    test = iact_tasks.ArraySplit(
        np.zeros((100, 2, 1, 1), np.float32), np.stack([np.zeros(100), impact], 1), {"impact": impact}
    )
    errors = np.arange(100.0) - 50.0  # |error| 0 .. 50: the 68 % quantile of |e| is known
    prediction = np.stack([np.zeros(100), impact + errors], 1)
    expected = np.quantile(np.abs(errors), 0.68)
    assert task.metrics(prediction, test)["impact_resolution"] == pytest.approx(expected)
    # a prediction of the energy alone (a one-output network) has no impact metric
    assert "impact_resolution" not in task.metrics(prediction[:, :1], test)


def test_a_file_without_protons_is_refused_for_gamma_hadron(tmp_path):
    from astrocnn.cli import main

    data = tmp_path / "gammas.h5"
    assert main(["generate", "iact", "--n", "300", "--particles", "gamma", "--energy", "3:100",
                 "--workers", "1", "--out", str(data)]) == 0  # fmt: skip
    with pytest.raises(DataError, match="no proton event passes the cut"):
        astrocnn.train(
            "iact-gamma-hadron", data=str(data), out=str(tmp_path / "run"), epochs=1, progress_bar=False
        )


def test_a_file_of_another_camera_is_refused_in_one_line(tmp_path):
    from astrocnn.cli import main

    data = tmp_path / "lst.h5"
    assert (
        main(["generate", "iact", "--camera", "lst", "--n", "20", "--workers", "1", "--out", str(data)]) == 0
    )
    with pytest.raises(DataError, match="events of the lst camera"):
        astrocnn.train("iact-energy", data=str(data), out=str(tmp_path / "run"), epochs=1, progress_bar=False)


@pytest.mark.parametrize("radius", [1, 2])
def test_hexagonal_conv2d_on_the_axial_image_equals_the_neighbour_table_convolution(radius):
    from astrocnn.layers.hexconv import HexConv2d, NeighbourConv

    torch.manual_seed(radius)
    camera = get_camera("taiga")
    table_conv = NeighbourConv(3, 5, camera.neighbour_table(radius))
    grid_conv = HexConv2d(3, 5, radius)
    assert int(grid_conv.mask.sum()) == 1 + 3 * radius * (radius + 1)
    with torch.no_grad():  # the same weights: offset (dq, dr) is kernel cell [dr + R, dq + R]
        weight = torch.zeros_like(grid_conv.weight)
        for k, (dq, dr) in enumerate(camera.offsets(radius)):
            weight[:, :, dr + radius, dq + radius] = table_conv.weight[:, :, k]
        grid_conv.weight.copy_(weight)
        grid_conv.bias.copy_(table_conv.bias)
        # weights put on the two masked corners are ignored
        grid_conv.weight[:, :, 0, 0] = 7.0
    values = torch.randn(2, 3, camera.n_pixels)
    grid = torch.from_numpy(camera.to_axial(values.numpy()))
    with torch.no_grad():
        on_grid = camera.from_axial(grid_conv(grid).numpy())
        np.testing.assert_allclose(on_grid, table_conv(values).numpy(), atol=1e-5)


def test_hexnet_ignores_the_grid_cells_outside_the_camera():
    from astrocnn.models import create_model

    torch.manual_seed(0)
    camera = get_camera("taiga")
    net = create_model("hexnet", in_channels=2, num_outputs=2, camera="taiga").eval()
    grid = torch.from_numpy(
        camera.to_axial(np.random.default_rng(0).normal(size=(2, 2, camera.n_pixels))).astype(np.float32)
    )
    outside = torch.from_numpy(camera.to_axial(np.ones(camera.n_pixels, np.float32))) == 0
    noisy = grid.clone()
    noisy[:, :, outside] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(net(noisy), net(grid))
    with pytest.raises(astrocnn.errors.ShapeError, match="mapping=axial"):
        net(torch.zeros(1, 2, 54, 54))
    with pytest.raises(astrocnn.errors.OptionError, match="square pixels"):
        create_model("hexnet", in_channels=2, num_outputs=2, camera="square")


def test_gamma_hadron_trains_with_the_native_hexagonal_network(tmp_path):
    run = astrocnn.train(
        "iact-gamma-hadron", model="hexnet", out=str(tmp_path / "run"), n_train=80, n_val=20, n_test=40,
        epochs=1, progress_bar=False, train_mlp=False, baseline=False,
    )  # fmt: skip
    results = json.loads((run.path / "metrics.json").read_text())["results"]
    assert results["cnn"]["model"] == "hexnet" and 0.0 <= results["cnn"]["auc"] <= 1.0


def test_the_bilinear_task_generates_in_worker_processes():
    """The task travels to the generator's processes (its mapping pickles) and gives the same
    events as one process."""
    from astrocnn.engine.splits import generate_split

    task = get_task("iact-gamma-hadron", {"mapping": "bilinear"})
    task.chunk_size = 6
    seed = np.random.SeedSequence(5)
    two = generate_split(task, 12, seed, "test", workers=2)
    one = generate_split(task, 12, seed, "test", workers=1)
    np.testing.assert_array_equal(two.x, one.x)
    camera_values = task.mapper.to_camera(two.x[:, 0])
    np.testing.assert_allclose(camera_values, two.meta["charge"], atol=1e-3)


def test_an_energy_run_saved_before_the_second_output_still_loads(tmp_path):
    """A run saved before ``impact`` existed has no such option in its configuration: it is
    rebuilt as it was (one output), so its network loads, predicts and exports."""
    import yaml

    from astrocnn.engine.export import export_run, load_exported

    run = astrocnn.train(
        "iact-energy", out=str(tmp_path / "old"), n_train=64, n_val=32, n_test=32, epochs=1,
        train_mlp=False, baseline=False, progress_bar=False, task_options={"impact": "no"},
    )  # fmt: skip
    path = run.path / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for key in ("impact", "train_index"):  # as configurations were written before them
        del config["task_options"][key]
    path.write_text(yaml.safe_dump(config))
    old = astrocnn.load_run(run.path)
    assert old.task.num_outputs == 1
    events = old.task._selected(iact_tasks.sim.GAMMA, 3, np.random.default_rng(0))
    raw = old.task.mapper.images(events.charge, events.time)
    assert old.predict(raw).reshape(3, -1).shape == (3, 1)
    assert export_run(old, "onnx", out=tmp_path / "onnx").exists()
    weights = export_run(old, "safetensors", out=tmp_path / "export")
    description = weights.with_suffix(".json")  # an export of those days lacks the options too
    saved = json.loads(description.read_text())
    assert saved["output_names"] == ["log10_energy_tev"]
    for key in ("impact", "train_index"):
        saved["task_options"].pop(key, None)
    description.write_text(json.dumps(saved))
    assert load_exported(weights)(raw).reshape(3, -1).shape == (3, 1)
