"""The Cherenkov surrogate (iact-generate): the fidelity measure against exact values, the
flow-matching pairs, the conditioning learned on a toy, and a tiny run whose generated file reads
back as the simulation's own."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import astrocnn
from astrocnn.engine.run import RunError, load_run
from astrocnn.engine.surrogate import write_surrogate
from astrocnn.errors import OptionError
from astrocnn.models import create_model
from astrocnn.tasks import get_task
from astrocnn.tasks.iact import fidelity, generative
from astrocnn.tasks.iact import simulation as sim


def test_wasserstein_ratio_of_a_shift_is_the_shift_over_the_sampling_noise():
    """W1 between a sample and itself shifted by d is exactly d; two independent draws of the
    same law give a ratio near 1."""
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 4000))
    noise = fidelity.wasserstein_distance(b, a)
    assert fidelity.wasserstein_ratio(a + 0.5, a, b) == pytest.approx(0.5 / noise)
    assert fidelity.wasserstein_ratio(a + 0.5, a, b) > 10
    assert 0.4 < fidelity.wasserstein_ratio(c, a, b) < 2.5
    assert np.isnan(fidelity.wasserstein_ratio(np.array([np.nan]), a, b))  # too few finite values


def test_hillas_two_sample_test_finds_a_shift_and_only_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 1000, 6))
    assert abs(fidelity.two_sample_auc_hillas(a, b) - 0.5) < 0.06
    b[:, 3] += 1.0  # one parameter one standard deviation off: the best AUC is Phi(1/sqrt(2)) = 0.76
    assert 0.65 < fidelity.two_sample_auc_hillas(a, b) <= 0.8


def test_wasserstein_ratios_of_simulated_events():
    """Three independent simulated samples: every Hillas parameter's ratio is of order 1; the
    images made twice as bright move the size far beyond the simulation's own noise."""
    camera = get_camera_taiga()
    events = sim.Simulator(camera).simulate(1800, 3, particles=(sim.GAMMA,), energy_range=(1.0, 30.0))
    table = fidelity.hillas_table(camera, events.charge)
    a, b, c = table[0::3], table[1::3], table[2::3]
    ratios = fidelity.wasserstein_ratios(c, a, b)
    assert set(ratios) == {f"wasserstein_ratio_{p}" for p in fidelity.PARAMETERS}
    assert all(0.2 < r < 5 for r in ratios.values()), ratios
    bright = fidelity.hillas_table(camera, 2 * events.charge[2::3])
    assert fidelity.wasserstein_ratios(bright, a, b)["wasserstein_ratio_size"] > 5


def get_camera_taiga():
    from astrocnn.tasks.iact.camera import get_camera

    return get_camera("taiga")


def test_pairs_lie_on_the_straight_path():
    """x_t + (1 - t) v = x1 for every pair; noise and velocity vanish outside the camera."""
    task = get_task("iact-generate")
    camera = task.camera
    events = sim.Simulator(camera).simulate(6, 1, particles=(sim.GAMMA,), energy_range=(5.0, 10.0))
    meta = {"charge": events.charge, "time": events.time, "particle": events.particle,
            "energy": events.energy, "impact": events.impact}  # fmt: skip
    split = task.paired(meta, 2, np.random.default_rng(0))
    assert split.x.shape == (12, 6, *task.input_size) and split.y.shape == (12, 2, *task.input_size)
    t = split.x[:, 2, 0, 0]
    x1 = split.x[:, :2] + (1 - t[:, None, None, None]) * split.y
    expected = np.repeat(generative.encode(task, events.charge, events.time), 2, axis=0)
    assert np.allclose(x1, expected, atol=1e-5)
    assert np.all(split.y[:, :, task.mask == 0] == 0)
    exported = task.preprocess_torch(torch.from_numpy(split.x)).numpy()
    assert np.array_equal(exported, task.preprocess(split.x))
    charge, _ = generative.decode(task, expected[::2])
    assert np.allclose(charge, events.charge, rtol=1e-4, atol=1e-3)  # encode and decode invert


def test_training_steps_draw_fresh_pairs_from_the_same_clean_images():
    """augment_pair puts each clean image on a new straight path: new noise (zero outside the
    camera), a new t, the same x1, the condition and coordinate channels untouched."""
    task = get_task("iact-generate")
    events = sim.Simulator(task.camera).simulate(8, 2, energy_range=(3.0, 10.0))
    meta = {"charge": events.charge, "time": events.time, "particle": events.particle,
            "energy": events.energy, "impact": events.impact}  # fmt: skip
    split = task.paired(meta, 1, np.random.default_rng(0))
    x, y = torch.from_numpy(task.preprocess(split.x)), torch.from_numpy(split.y)
    torch.manual_seed(0)
    x2, y2 = task.augment_pair(x, y)
    assert x2.shape == x.shape and y2.shape == y.shape
    t, t2 = x[:, 2:3, :1, :1], x2[:, 2:3, :1, :1]
    assert torch.all(x2[:, 2] == t2[:, :, 0]) and not torch.allclose(t, t2)  # a new constant plane
    x1 = x[:, :2] + (1 - t) * y
    assert torch.allclose(x2[:, :2] + (1 - t2) * y2, x1, atol=1e-5)
    assert torch.equal(x2[:, 3:], x[:, 3:])
    assert torch.all(y2[:, :, torch.from_numpy(task.mask) == 0] == 0)
    assert not torch.allclose(x2[:, :2] - t2 * y2, x[:, :2] - t * y)  # new noise x0
    # over many draws: t uniform on [0, 1) per event, x0 standard normal inside the camera
    many_x, many_y = task.augment_pair(x.repeat(250, 1, 1, 1), y.repeat(250, 1, 1, 1))
    t = many_x[:, 2, 0, 0]
    assert t.min() < 0.01 and t.max() > 0.99 and abs(t.mean() - 0.5) < 0.03
    x0 = (many_x[:, :2] - t[:, None, None, None] * many_y)[:, :, torch.from_numpy(task.mask) > 0]
    assert abs(x0.std() - 1) < 0.01 and abs(x0.mean()) < 0.01


def test_bad_task_options():
    with pytest.raises(OptionError, match="steps"):
        get_task("iact-generate", {"steps": 0})
    with pytest.raises(OptionError, match="replicas"):
        get_task("iact-generate", {"replicas": "two"})


def test_conditioning_changes_the_output():
    """A toy: one fixed blob whose brightness is the energy. After a short training, images asked
    at 30 TeV are much brighter than at 1 TeV, and the same seed gives the same images."""
    torch.manual_seed(0)
    task = get_task("iact-generate")
    camera = task.camera
    rng = np.random.default_rng(0)
    blob = np.exp(-((camera.x - 0.1) ** 2 + camera.y**2) / 0.004)
    energy = 10 ** rng.uniform(0, 1.5, 256)
    meta = {"charge": (energy[:, None] * 20 * blob).astype(np.float32),
            "time": np.zeros((256, camera.n_pixels), np.float32), "particle": np.zeros(256, np.int64),
            "energy": energy, "impact": np.full(256, 100.0)}  # fmt: skip
    net = create_model(
        "unet", spatial_dims=2, in_channels=8, num_outputs=2, width=0.125, channel_mults=[1, 2]
    )
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for step in range(120):
        split = task.paired(meta, 1, np.random.default_rng(step))
        idx = np.random.default_rng(1000 + step).choice(256, 32, replace=False)
        x = torch.from_numpy(task.preprocess(split.x[idx]))
        loss = torch.nn.functional.mse_loss(net(x), torch.from_numpy(split.y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    low = generative.conditions(np.zeros(32), np.full(32, 1.0), np.full(32, 100.0))
    high = generative.conditions(np.zeros(32), np.full(32, 30.0), np.full(32, 100.0))
    dim = generative.decode(task, generative.sample(net, task, low, seed=1))[0].sum(axis=1)
    bright = generative.decode(task, generative.sample(net, task, high, seed=1))[0].sum(axis=1)
    assert np.median(bright) > 5 * np.median(dim)
    again = generative.sample(net, task, high, seed=1)
    assert np.array_equal(again, generative.sample(net, task, high, seed=1))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "run"
    astrocnn.train(
        "iact-generate", n_train=40, n_val=10, n_test=40, epochs=1, batch_size=32, out=str(out),
        train_mlp=False, baseline=False, progress_bar=False,
    )  # fmt: skip
    return load_run(out)


def test_tiny_run_reports_the_fidelity(tiny_run):
    cnn = json.loads((tiny_run.path / "metrics.json").read_text())["results"]["cnn"]
    for key in (
        *(f"wasserstein_ratio_{p}" for p in fidelity.PARAMETERS),
        "two_sample_auc",
        "two_sample_auc_hillas",
        "speedup",
    ):
        assert key in cnn
    assert 0 <= cnn["two_sample_auc"] <= 1
    assert (tiny_run.path / "plots" / "correlations.png").exists()


def test_generated_file_is_the_simulations_format(tiny_run, tmp_path):
    fake = tmp_path / "fake.h5"
    assert write_surrogate(tiny_run, fake, n=7, particle="proton", energy="2:20", seed=3) == 7
    events, camera = sim.read_events(fake, tiny_run.task.camera)
    assert camera.name == "taiga" and events.charge.shape == (7, camera.n_pixels)
    assert np.all(events.particle == sim.PROTON) and np.all((events.energy >= 2) & (events.energy <= 20))
    assert np.all(np.isfinite(events.charge)) and np.all(np.hypot(*events.core.T) <= 300.0 + 1e-6)
    real = tmp_path / "real.h5"
    from click.testing import CliRunner

    from astrocnn.cli import cli

    result = CliRunner().invoke(cli, ["generate", "iact", "--n", "4", "--workers", "1", "--out", str(real)])
    assert result.exit_code == 0, result.output
    with h5py.File(fake) as f, h5py.File(real) as g:
        names = set()
        g.visit(names.add)
        mine = set()
        f.visit(mine.add)
        assert mine == names
        for name in names:
            if isinstance(g[name], h5py.Dataset):
                assert f[name].dtype == g[name].dtype and f[name].shape[1:] == g[name].shape[1:], name
        assert f.attrs["camera"] == g.attrs["camera"]
    both = tmp_path / "both.h5"
    write_surrogate(tiny_run, both, n=6, particle="gamma,proton", energy="1:10", seed=0)
    mixed, _ = sim.read_events(both)
    assert list(mixed.particle) == [0, 1] * 3  # in turn, protons over 3 times the range
    assert np.all(mixed.energy[mixed.particle == 1] >= 3) and np.all(mixed.energy[mixed.particle == 1] <= 30)
    # the same seed writes the same events
    again = tmp_path / "again.h5"
    write_surrogate(tiny_run, again, n=7, particle="proton", energy="2:20", seed=3)
    assert np.array_equal(sim.read_events(again)[0].charge, events.charge)


def test_bad_surrogate_requests_write_nothing(tiny_run, tmp_path):
    out = tmp_path / "fake.h5"
    with pytest.raises(OptionError, match="--energy"):
        write_surrogate(tiny_run, out, n=3, particle="gamma", energy="10")
    with pytest.raises(OptionError, match=r"trained on gammas of 0\.3 to 100 TeV"):
        write_surrogate(tiny_run, out, n=3, particle="gamma", energy="1:1000")
    with pytest.raises(OptionError, match="--type"):
        write_surrogate(tiny_run, out, n=3, particle="electron", energy="1:10")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text("task: iact-energy\n")
    with pytest.raises(RunError, match="not of iact-generate"):
        write_surrogate(load_run(other), out, n=3, particle="gamma", energy="1:10")
    assert not out.exists()


def test_trains_from_a_file_of_generate_iact(tmp_path):
    """--data: the file's events that pass the cut, split 70 / 15 / 15; the training events
    paired with ``replicas`` noise draws each."""
    from astrocnn.data.writers import write_hdf5
    from astrocnn.tasks.iact.camera import get_camera

    camera = get_camera("taiga")
    events = sim.generate(camera, 500, 4, energy_range={sim.GAMMA: (2.0, 50.0), sim.PROTON: (6.0, 150.0)})
    path = tmp_path / "showers.h5"
    write_hdf5(path, sim.to_hdf5_datasets(events, camera), {"camera": "taiga"})
    task = get_task("iact-generate", {"replicas": 2})
    train, val, test = task.splits_from_file(str(path), 0)
    passing = int(np.sum(task.select(events)))
    assert len(train) == 2 * round(0.7 * passing)
    assert len(train) // 2 + len(val) + len(test) == passing
    run = astrocnn.train(
        "iact-generate", data=str(path), epochs=1, batch_size=32, out=str(tmp_path / "run"),
        train_mlp=False, baseline=False, progress_bar=False,
    )  # fmt: skip
    assert "wasserstein_ratio_size" in run.metrics["results"]["cnn"]
