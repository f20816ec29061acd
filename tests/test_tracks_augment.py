"""The segmentation tasks' training augmentation (``augment=yes|no``): every transform moves the
image and its class map together and equals the NumPy transform of the event; the transforms used
are symmetries of the simulation (checked on its own transport); ``augment=no`` is the identity;
runs saved before the option existed load as they were (without augmentation)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import astrocnn
from astrocnn.errors import OptionError
from astrocnn.tasks import get_task
from astrocnn.tasks.registry import saved_task
from astrocnn.tasks.tracks import simulation as sim
from astrocnn.tasks.tracks import tasks as tracks

NAMES = {2: "tracks-segment-2d", 3: "tracks-segment-3d"}


def _numpy_group(dims: int):
    """Every transform of the group as a function of one event's array (spatial axes first)."""
    if dims == 2:
        choices = [(a, b, False) for a, b in itertools.product((0, 1), repeat=2)]
        flips = [(0, 1)]
    else:
        choices = [(a, b, c, t) for a, b, c, t in itertools.product((0, 1), repeat=4)]
        flips = [(0, 1, 2)]

    def make(choice):
        def transform(a: np.ndarray) -> np.ndarray:
            for axis, flip in zip(flips[0], choice[: len(flips[0])], strict=True):
                if flip:
                    a = np.flip(a, axis)
            if dims == 3 and choice[3]:
                a = np.swapaxes(a, 1, 2)
            return a

        return transform

    return [make(c) for c in choices]


def _event(dims: int, size: int, seed: int = 3):
    """One simulated event, as the network sees it: preprocessed image (1, 1, *S) and targets."""
    task = get_task(NAMES[dims], {"size": size, "augment": "yes"})
    rng = np.random.default_rng(seed)
    while True:  # an event with hits of both signal classes
        split = task.generate(1, rng)
        y = np.asarray(split.y)
        if (y == sim.TRACK).any() and (y == sim.SHOWER).any():
            return task, task.preprocess(np.asarray(split.x)), y


@pytest.mark.parametrize(("dims", "size"), [(2, 16), (3, 8)])
def test_each_transform_moves_image_and_labels_together(dims, size):
    """A batch of copies of one simulated event: each augmented copy is one of the group's
    transforms of the event as NumPy makes it, the same one for the image and the class map;
    every transform occurs; the labels stay on their hits and the hits per class are the same."""
    task, x, y = _event(dims, size)
    # a random image and labels without any symmetry of their own tell every transform apart
    noise = np.random.default_rng(1).random(x.shape[2:]).astype(np.float32)
    marks = np.where(y == tracks.NO_HIT, (noise * 1e6).astype(np.int64) % 7 + 10, y)
    group = _numpy_group(dims)
    batch = 32 * len(group)
    xb = torch.from_numpy(np.repeat(x, batch, axis=0) + noise)
    yb = torch.from_numpy(np.repeat(marks, batch, axis=0))
    torch.manual_seed(0)
    xa, ya = task.augment_pair(xb, yb)
    assert xa.shape == xb.shape and ya.shape == yb.shape and ya.dtype == torch.int64
    image = x[0, 0] + noise
    seen = set()
    for i in range(batch):
        matches = [k for k, f in enumerate(group) if np.array_equal(xa[i, 0].numpy(), f(image))]
        assert len(matches) == 1, i
        k = matches[0]
        seen.add(k)
        assert np.array_equal(ya[i].numpy(), group[k](marks[0]))
    assert seen == set(range(len(group)))
    # on the event itself (no marks): labels on the hits, the hits of each class unchanged
    xe = torch.from_numpy(np.repeat(x, batch, axis=0))
    ye = torch.from_numpy(np.repeat(y, batch, axis=0))
    xa, ya = task.augment_pair(xe, ye)
    assert torch.equal(xa[:, 0] > 0, ya != tracks.NO_HIT)
    for k in (*range(len(sim.CLASSES)), tracks.NO_HIT):
        assert torch.equal((ya == k).flatten(1).sum(1), (ye == k).flatten(1).sum(1))


@pytest.mark.parametrize("dims", [2, 3])
def test_augment_no_is_the_identity_and_the_option_is_saved(dims):
    task = get_task(NAMES[dims], {"size": 16, "augment": "no"})
    assert task.options()["augment"] == "no" and not task.augments
    x, y = torch.rand(4, 1, *(16,) * dims), torch.randint(0, 4, (4, *(16,) * dims))
    xa, ya = task.augment_pair(x, y)
    assert xa is x and ya is y
    assert get_task(NAMES[dims]).options()["augment"] == "no"  # the default
    assert "augment=yes|no" in get_task(NAMES[dims]).data_contract()
    with pytest.raises(OptionError, match="augment must be yes or no"):
        get_task(NAMES[dims], {"augment": "maybe"})


def _muon(dims: int, start, direction, charge: float) -> sim.Particles:
    p, mass = 200.0, sim.MASSES["muon"]
    return sim.Particles(
        np.zeros(1, np.int64), np.asarray([start], float), np.asarray([direction], float),
        np.full(1, np.hypot(p, mass) - mass), np.full(1, mass), np.full(1, charge),
        np.full(1, sim.TRACK, np.int8), np.ones(1, np.int16),
    )  # fmt: skip


def _path(dims: int, start, direction, charge: float, extent: float = 32.0) -> np.ndarray:
    settings = sim.Settings(dims=dims, energy_loss=False, scattering=False, b_field=1.0)
    deposits, *_ = sim.transport(
        _muon(dims, start, direction, charge), settings, np.random.default_rng(0), extent
    )
    return deposits.pos


def test_the_transforms_are_symmetries_of_the_transport():
    """Without scattering or loss, a 200 MeV/c muon in 1 T (a helix of 67 cm): in 3-D the mirror
    image of axis 0 (the field's) and a turn by 90 degrees about it are the path of the same
    charge; a mirror image across axis 1 is the path of the opposite charge (in 2-D too), which
    is why the mirrors are exact only for the species simulated with both charges."""
    extent = 32.0
    start3, u3 = np.array([10.0, 12.0, 9.0]), np.array([0.3, 0.8, -0.52])
    u3 /= np.linalg.norm(u3)
    base = _path(3, start3, u3, 1.0)
    mirror0 = _path(3, start3 * [-1, 1, 1] + [extent, 0, 0], u3 * [-1, 1, 1], 1.0)
    np.testing.assert_allclose(mirror0, base * [-1, 1, 1] + [extent, 0, 0], atol=1e-9)
    turn = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)  # 90 degrees about axis 0
    turned = _path(3, turn @ (start3 - extent / 2) + extent / 2, turn @ u3, 1.0)
    np.testing.assert_allclose(turned, (base - extent / 2) @ turn.T + extent / 2, atol=1e-9)
    mirror1 = _path(3, start3 * [1, -1, 1] + [0, extent, 0], u3 * [1, -1, 1], -1.0)
    np.testing.assert_allclose(mirror1, base * [1, -1, 1] + [0, extent, 0], atol=1e-9)
    same_charge = _path(3, start3 * [1, -1, 1] + [0, extent, 0], u3 * [1, -1, 1], 1.0)
    n = min(len(same_charge), len(base))  # the other sense of turning: 1 cm apart and more
    assert np.abs(same_charge[:n] - (base[:n] * [1, -1, 1] + [0, extent, 0])).max() > 1.0
    start2, u2 = np.array([5.0, 20.0]), np.array([0.8, -0.6])
    base2 = _path(2, start2, u2, 1.0)
    mirror = _path(2, start2 * [-1, 1] + [extent, 0], u2 * [-1, 1], -1.0)
    np.testing.assert_allclose(mirror, base2 * [-1, 1] + [extent, 0], atol=1e-9)
    half_turn = _path(2, extent - start2, -u2, 1.0)  # the 180-degree turn: the same charge
    np.testing.assert_allclose(half_turn, extent - base2, atol=1e-9)


def test_a_run_saved_before_the_option_loads_without_augmentation(tmp_path, monkeypatch):
    """A configuration written before ``augment`` existed lacks it: the run is rebuilt with
    ``augment=no``, as it was trained, and predicts. (The training transforms its batches.)"""
    import yaml

    calls = []
    original = tracks._Segment.augment_pair

    def counted(self, x, y):
        out = original(self, x, y)
        calls.append(bool((out[0] != x).any()))
        return out

    monkeypatch.setattr(tracks._Segment, "augment_pair", counted)

    assert saved_task("tracks-segment-2d", {"size": 64, "field": 1.0}).options()["augment"] == "no"
    assert saved_task("tracks-segment-3d", {"size": 32, "field": 1.0}).options()["augment"] == "no"
    assert saved_task("tracks-segment-2d", {"size": 64, "augment": "yes"}).augments
    assert "augment" not in get_task("tracks-count").options()
    run = astrocnn.train(
        "tracks-segment-2d", task_options={"size": 16, "augment": "yes"}, n_train=16, n_val=8,
        n_test=8, epochs=1, batch_size=8, train_mlp=False, baseline=False, progress_bar=False,
        workers=1, out=str(tmp_path / "run"),
    )  # fmt: skip
    assert len(calls) == 2 and any(calls)  # two training batches, transformed
    path = run.path / "config.yaml"
    config = yaml.safe_load(path.read_text())
    assert config["task_options"]["augment"] == "yes"
    # trained with augmentation (through the engine), then made to look as configurations did
    # before the option: the rule of options_before, not the run's own value, rebuilds it
    del config["task_options"]["augment"]
    path.write_text(yaml.safe_dump(config))
    old = astrocnn.load_run(run.path)
    assert old.task.options()["augment"] == "no"
    images = get_task("tracks-segment-2d", {"size": 16}).generate(2, np.random.default_rng(0)).x
    assert old.predict(images).shape == (2, 3, 16, 16)
