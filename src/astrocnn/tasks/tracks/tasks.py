"""The particle-track tasks: per-cell segmentation into background, track and shower in a 2-D
pixel plane (``tracks-segment-2d``) or a 3-D voxel volume (``tracks-segment-3d``), and the number
of tracks in an event (``tracks-count``).

The segmentation is the dense labelling of liquid-argon TPC images (MicroBooNE's SSNet,
arXiv:1808.07269; DeepLearnPhysics' PILArNet, arXiv:2006.01993), scored as the field scores it:
per class the hit efficiency (found / true hits), purity (correct / predicted hits) and IoU, and
per track whether at least 90 % of its hits were labelled track. The classical comparison is
a sequential Hough (2-D) or RANSAC (3-D) line search with hit assignment (``baseline``); the
fully connected network sees the image in patches (``PatchMLP``), as a dense layer over a
whole 32^3 volume would need a hundred million weights.

``tracks-count`` is a classifier over 0 ... 5 visible tracks rather than a regressor: the count
is a small bounded integer, accuracy is the natural score, and the class probabilities say how
sure the network is of an overlap; its baseline counts the lines the same search finds.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from astrocnn.errors import OptionError, ShapeError
from astrocnn.models import create_model
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind, binned_mean
from astrocnn.tasks.registry import register_task
from astrocnn.tasks.tracks import baseline as hough
from astrocnn.tasks.tracks import simulation as sim

#: A track counts as found when at least this fraction of its hits is labelled track.
FOUND_FRACTION = 0.9
BOOTSTRAP = 200
NOISE_BINS = [0.5, 0.71, 1.0, 1.41, 2.0]
MULTIPLICITY_BINS = [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
CURVATURE_BINS = [0.0, 0.4, 0.8, 1.6, 3.2]  # 1/m
SHOWER_BINS = [-0.5, 0.5, 1.5]  # events without and with a shower
#: The target of a cell without a hit, and its weight in the loss relative to a hit.
NO_HIT = len(sim.CLASSES)
EMPTY_WEIGHT = 0.02


class PatchMLP(nn.Module):
    """The fully connected comparison for segmentation: one MLP maps each ``patch``^d block of
    the image, with a ``margin`` of context around it, to the class scores of its cells."""

    def __init__(
        self, *, spatial_dims: int, in_channels: int, num_outputs: int, patch: int, margin: int, hidden
    ):
        super().__init__()
        self.spatial_dims, self.in_channels, self.num_outputs = spatial_dims, in_channels, num_outputs
        self.patch, self.margin = patch, margin
        window = (patch + 2 * margin,) * spatial_dims
        self.mlp = create_model(
            "mlp", spatial_dims=spatial_dims, in_channels=in_channels,
            num_outputs=num_outputs * patch**spatial_dims, input_size=window, hidden=tuple(hidden),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *S) -> (B, K, *S)
        b, c, *size = x.shape
        d, p, m, k = self.spatial_dims, self.patch, self.margin, self.num_outputs
        if any(n % p for n in size):
            raise ShapeError(
                f"the patch-wise mlp needs sizes divisible by {p}, got {'x'.join(map(str, size))}"
            )
        x = F.pad(x, [m] * (2 * d))
        for axis in range(d):
            x = x.unfold(2 + axis, p + 2 * m, p)  # (B, C, n_1 .. n_d, w_1 .. w_d)
        counts = x.shape[2 : 2 + d]
        x = x.permute(0, *range(2, 2 + d), 1, *range(2 + d, 2 + 2 * d)).reshape(-1, c, *x.shape[2 + d :])
        out = self.mlp(x).reshape(b, *counts, k, *(p,) * d)
        order = [0, d + 1, *(i for a in range(d) for i in (1 + a, d + 2 + a))]  # (B, K, n_1, p, n_2, p ..)
        return out.permute(order).reshape(b, k, *(n * p for n in counts))


class _TracksTask(Task):
    in_channels = 1
    chunk_size = sim.CHUNK
    option_names = ("size", "field")
    raw_units = "deposited energy per cell in MeV after the readout (zero below threshold)"
    baseline_name = "sequential Hough (2-D) / RANSAC (3-D) line search + hit assignment"
    spatial_dims = 2
    default_size: ClassVar[int] = 64

    def __init__(self, size: Any = None, field: Any = 1.0):
        try:
            size = int(size) if size is not None else self.default_size
            field = float(field)
        except (TypeError, ValueError):
            raise OptionError(
                f"size must be a whole number of cells and field tesla, got {size!r}, {field!r}"
            ) from None
        if not 8 <= size <= 512 or size % 8:
            raise OptionError(f"size must be a multiple of 8 from 8 to 512 cells, got {size}")
        self.settings = sim.Settings(dims=self.spatial_dims, size=size, b_field=field)
        self.input_size = (size,) * self.spatial_dims

    def options(self) -> dict[str, Any]:
        return {"size": self.settings.size, "field": self.settings.b_field}

    def data_contract(self) -> str:
        shape = "x".join(map(str, self.input_size))
        return "\n".join([
            f"{self.name}: {self.description}",
            f"data     the HDF5 file `astrocnn generate tracks --dims {self.spatial_dims} "
            f"--size {self.settings.size}` writes: images (N, {shape}) MeV, labels (0 background, "
            "1 track, 2 shower), track_id, n_tracks, noise and the track parameters",
            "options  --task-option size=CELLS (the file's must match), field=TESLA",
            f"example  astrocnn generate tracks --dims {self.spatial_dims} --n 5000 --out tracks.h5 && "
            f"astrocnn train {self.name} --data tracks.h5",
        ])  # fmt: skip

    # ---- data ----------------------------------------------------------------------------------
    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        return self.split_of(sim.simulate(n, rng, self.settings))

    def split_of(self, events: sim.Events, field: float | None = None) -> ArraySplit:
        """The network's images and targets, and what the metrics bin by; ``field`` (tesla) is
        the one the events were simulated in (default: the task's)."""
        field = self.settings.b_field if field is None else field
        p_t = events.momentum / 1000.0  # GeV
        if self.spatial_dims == 3:  # the field is along axis 0
            p_t = p_t * np.sqrt(np.clip(1 - events.direction[..., 0] ** 2, 0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            curvature = 0.3 * field / p_t  # 1/m
        meta = {
            "noise": events.noise,
            "n_tracks": events.n_tracks,
            "track_id": events.track_id,
            "curvature": curvature,
            "n_showers": events.n_showers,
        }
        return ArraySplit(events.image[:, None], self.targets(events), meta)

    def targets(self, events: sim.Events) -> np.ndarray:
        raise NotImplementedError

    def splits_from_file(self, path: str, seed: int) -> tuple[ArraySplit, ArraySplit, ArraySplit]:
        """The file's events split 70 / 15 / 15 at random (``seed``)."""
        from astrocnn.data.readers import DataError

        events, attrs = sim.read_events(path)
        field = float(attrs.get("b_field", self.settings.b_field))
        shape = events.image.shape[1:]
        if len(shape) != self.spatial_dims:
            raise DataError(
                f"{path}: holds {len(shape)}-D events; {self.name} takes {self.spatial_dims}-D ones"
            )
        if shape != self.input_size:
            size = "x".join(map(str, shape))
            raise DataError(
                f"{path}: events are {size} cells; give --task-option size={shape[0]} "
                f"({self.name} is set for {'x'.join(map(str, self.input_size))})"
            )
        idx = np.random.default_rng(seed).permutation(len(events))
        if len(idx) < 20:
            raise DataError(f"{path}: {len(idx)} events are too few to split (at least 20)")
        cut = [round(0.7 * len(idx)), round(0.85 * len(idx))]
        return tuple(self.split_of(sim.take(events, np.sort(part)), field) for part in np.split(idx, cut))

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        return np.arcsinh(x.astype(np.float32, copy=False))

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.asinh(x.float())

    def describe_preprocessing(self) -> str:
        return (
            "asinh(x) of the MeV per cell (linear for a minimum-ionising hit, logarithmic at a "
            "Bragg peak); float32"
        )


# ---- segmentation ----------------------------------------------------------------------------------


def event_counts(labels: np.ndarray, test: ArraySplit) -> dict[str, np.ndarray]:
    """Per event: true, predicted and correct hits of every class; per track (n, T) its hits and
    whether it was found; and the fake tracks (connected clusters of at least
    ``MIN_TRACK_HITS`` hits labelled track of which fewer than half are true track hits).
    Only hits count (cells read out above threshold): what a network says of an empty cell is
    moot, and counting the empty cells would make every background score near 1."""
    n = len(labels)
    hit = np.asarray(test.x)[:, 0] > 0
    labels = np.where(hit, labels, -1)
    truth = np.asarray(test.y).reshape(n, -1)
    pred = labels.reshape(n, -1)
    on_hit = hit.reshape(n, -1)
    out: dict[str, np.ndarray] = {}
    for k in range(len(sim.CLASSES)):
        t, p = (truth == k) & on_hit, pred == k
        out[f"true_{k}"], out[f"pred_{k}"], out[f"tp_{k}"] = t.sum(1), p.sum(1), (t & p).sum(1)
    ids = np.asarray(test.meta["track_id"]).reshape(n, -1)
    tracks = test.meta["curvature"].shape[1]
    on_track = pred == sim.TRACK
    hits = np.stack([(ids == j).sum(1) for j in range(1, tracks + 1)], axis=1)
    found_hits = np.stack([((ids == j) & on_track).sum(1) for j in range(1, tracks + 1)], axis=1)
    out["track_hits"] = hits
    out["track_found"] = found_hits >= FOUND_FRACTION * hits
    structure = np.ones((3,) * (labels.ndim - 1))
    fakes = np.zeros(n, np.int64)
    for i in range(n):
        clusters, count = ndimage.label(labels[i] == sim.TRACK, structure=structure)
        if count == 0:
            continue
        size = np.bincount(clusters.ravel(), minlength=count + 1)
        good = np.bincount(clusters.ravel(), weights=(truth[i] == sim.TRACK), minlength=count + 1)
        fakes[i] = int(np.sum((size[1:] >= sim.MIN_TRACK_HITS) & (good[1:] < 0.5 * size[1:])))
    out["fakes"] = fakes
    return out


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def aggregate(counts: dict[str, np.ndarray], idx: np.ndarray | None = None) -> dict[str, float]:
    """The scalar metrics of the events ``idx`` (all by default) from :func:`event_counts`."""
    c = counts if idx is None else {k: v[idx] for k, v in counts.items()}
    result = {}
    for k, name in enumerate(sim.CLASSES):
        tp, true, pred = c[f"tp_{k}"].sum(), c[f"true_{k}"].sum(), c[f"pred_{k}"].sum()
        result[f"hit_efficiency_{name}"] = _ratio(tp, true)
        result[f"hit_purity_{name}"] = _ratio(tp, pred)
        result[f"iou_{name}"] = _ratio(tp, true + pred - tp)
    visible = c["track_hits"] >= sim.MIN_TRACK_HITS
    result["track_efficiency"] = _ratio(np.sum(c["track_found"] & visible), np.sum(visible))
    result["fakes_per_event"] = _ratio(c["fakes"].sum(), len(c["fakes"]))
    return result


def symmetry_transforms(spatial_dims: int) -> list[tuple[str, int | tuple[int, int]]]:
    """The generators of the training augmentation of segmentation events, as (``"flip"``, axis)
    or (``"transpose"``, (axis, axis)) over the spatial axes (0 the field's): each is applied to
    an event with probability 1/2, independently, so the transforms of their group are drawn
    uniformly.

    2-D (field out of the plane): the mirror images of axes 0 and 1 (their product is the turn
    by 180 degrees). The turn is exact; a mirror image turns every helix the other way, the
    helix of the opposite charge, as likely for muons, pions and the pairs of a converted
    photon, while protons (always +1), delta rays and the first electron of an electron shower
    (always -1) are simulated with one charge only. Turns by 90 degrees are left out: the dead
    channels are lines along axis 0, and a turn would make them rows, which no event has.

    3-D (field along axis 0): the mirror image of axis 0 (exact: the field is an axial vector,
    unchanged by a mirror perpendicular to it, and the simulation turns the directions about it
    in axes 1 and 2 only), and the symmetries of the square in axes 1 and 2 (mirrors and the
    exchange of the two; the turns about the field among them are exact, the mirrors reverse
    the helices as in 2-D). Dead channels are lines along axis 0, unchanged by all of these;
    vertices are uniform in a cube and directions isotropic. Transforms moving the field axis
    are not symmetries of the physics and are not used."""
    if spatial_dims == 2:
        return [("flip", 0), ("flip", 1)]
    return [("flip", 0), ("flip", 1), ("flip", 2), ("transpose", (1, 2))]


def augment_segmentation(
    x: torch.Tensor, y: torch.Tensor, transforms: list[tuple[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, C, *S) and class maps (B, *S) transformed together: each of ``transforms``
    (see :func:`symmetry_transforms`) applied to each event with probability 1/2, drawn from
    torch's global generator in order."""
    b = x.shape[0]
    for kind, axes in transforms:
        pick = (torch.rand(b) < 0.5).to(x.device)  # the same draws on any device
        if kind == "flip":
            x_new, y_new = x.flip(2 + axes), y.flip(1 + axes)
        else:
            i, j = axes
            x_new, y_new = x.transpose(2 + i, 2 + j), y.transpose(1 + i, 1 + j)
        x = torch.where(pick.view(-1, *([1] * (x.ndim - 1))), x_new, x)
        y = torch.where(pick.view(-1, *([1] * (y.ndim - 1))), y_new, y)
    return x, y


class _Segment(_TracksTask):
    kind = TaskKind.SEGMENTATION
    num_outputs = 3
    option_names = (*_TracksTask.option_names, "augment")
    #: Runs saved before the option existed trained without augmentation (the default too: it
    #: did not help the default 2-D run, docs/tracks.md).
    options_before: ClassVar[dict[str, Any]] = {"augment": "no"}
    class_names = sim.CLASSES
    headline = ("iou_track", True)
    #: the metrics resample per-event counts themselves (the default would rerun the cluster
    #: finding 200 times)
    resample_metrics = False
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "hit_efficiency_*": (
            "fraction of the true hits of the class given that class (hits: cells read out above "
            "threshold; background hits are noise)",
            True,
        ),
        "hit_purity_*": ("fraction of the hits given the class that truly are of it", True),
        "iou_*": ("intersection over union of the predicted and true hits of the class", True),
        "track_efficiency": (
            f"fraction of the true tracks ({sim.MIN_TRACK_HITS} hits or more) with at least "
            f"{FOUND_FRACTION:.0%} of their hits labelled track",
            True,
        ),
        "fakes_per_event": (
            f"clusters of {sim.MIN_TRACK_HITS} or more cells labelled track, less than half of them "
            "true track hits, per event",
            False,
        ),
    }
    patch: ClassVar[int] = 8
    margin: ClassVar[int] = 2

    def __init__(self, size: Any = None, field: Any = 1.0, augment: str = "no"):
        super().__init__(size, field)
        if augment not in ("yes", "no"):
            raise OptionError(f"augment must be yes or no, not {augment!r}")
        self.augments = augment == "yes"

    def options(self) -> dict[str, Any]:
        return {**super().options(), "augment": "yes" if self.augments else "no"}

    def data_contract(self) -> str:
        option = (
            "field=TESLA, augment=yes|no (mirror each training event and its labels by the "
            "symmetries of the detector and field, drawn per event)"
        )
        return super().data_contract().replace("field=TESLA", option)

    def augment_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each training event and its class map mirrored together by a transform drawn from
        :func:`symmetry_transforms` (with ``augment=yes``): the images carry no coordinate
        channel, so a transformed event is an event of the simulation (to the helices' sense
        for the charges simulated with one sign) with its labels on its hits."""
        if not self.augments:
            return x, y
        return augment_segmentation(x, y, symmetry_transforms(self.spatial_dims))

    def targets(self, events: sim.Events) -> np.ndarray:
        """The class of every hit, and ``NO_HIT`` where nothing was read out."""
        return np.where(events.image > 0, events.label, NO_HIT).astype(np.int64)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the hits, the empty cells (background) weighted ``EMPTY_WEIGHT``:
        over 95 % of the cells are empty, and unweighted they teach the network to call every
        cell background (SSNet weighs its pixels for the same reason)."""
        empty = target == NO_HIT
        per_cell = F.cross_entropy(output, torch.where(empty, sim.BACKGROUND, target), reduction="none")
        weight = torch.where(empty, EMPTY_WEIGHT, 1.0)
        return (weight * per_cell).sum() / weight.sum()

    def build_mlp(self) -> nn.Module:
        return PatchMLP(
            spatial_dims=self.spatial_dims, in_channels=1, num_outputs=self.num_outputs, patch=self.patch,
            margin=self.margin, hidden=self.defaults.mlp_options["hidden"],
        )  # fmt: skip

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        labels = np.asarray(prediction).argmax(axis=1)
        counts = event_counts(labels, test)
        result: dict[str, Any] = aggregate(counts)
        rng = np.random.default_rng(0)
        n = len(labels)
        replicas = [aggregate(counts, rng.integers(0, n, n)) for _ in range(BOOTSTRAP)] if n > 1 else []
        for name in list(result):
            values = np.array([r[name] for r in replicas], np.float64)
            values = values[np.isfinite(values)]
            if len(values) > 0.8 * BOOTSTRAP:
                result[f"{name}_err"] = float(values.std(ddof=1))
        noise = np.asarray(test.meta["noise"])
        multiplicity = np.asarray(test.meta["n_tracks"])
        showers = np.asarray(test.meta.get("n_showers", np.zeros(n)))
        for axis, values, edges in (
            ("noise", noise, NOISE_BINS),
            ("tracks", multiplicity, MULTIPLICITY_BINS),
            ("showers", showers, SHOWER_BINS),
        ):
            which = np.digitize(values, edges) - 1
            per_bin = [aggregate(counts, np.flatnonzero(which == b)) for b in range(len(edges) - 1)]
            for name in ("hit_efficiency_track", "hit_purity_track", "track_efficiency"):
                result[f"{name}_vs_{axis}"] = [r[name] for r in per_bin]
                result[f"{name}_vs_{axis}_bins"] = edges
        visible = counts["track_hits"] >= sim.MIN_TRACK_HITS
        curvature = np.nan_to_num(np.asarray(test.meta["curvature"]), nan=-1.0)
        result["track_efficiency_vs_curvature"] = binned_mean(
            counts["track_found"][visible].astype(np.float64), curvature[visible], CURVATURE_BINS
        ).tolist()
        result["track_efficiency_vs_curvature_bins"] = CURVATURE_BINS
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        return hough.classify(np.asarray(test.x)[:, 0])[0]

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.tracks import plots

        plots.event_displays(test, predictions, out, self.baseline_name)


SEGMENT_DEFAULTS_2D = TaskDefaults(
    model="unet",
    model_options={"width": 0.25, "channel_mults": [1, 2, 4]},
    epochs=10,
    batch_size=32,
    lr=2e-3,
    n_train=2000,
    n_val=300,
    n_test=300,
    mlp_options={"hidden": (256, 256)},
    demo={"n_train": 250, "n_val": 40, "n_test": 80, "epochs": 3},
    quick={"n_train": 100, "n_val": 20, "n_test": 40, "epochs": 1},
)


@register_task
class TracksSegment2d(_Segment):
    name = "tracks-segment-2d"
    description = "particle tracks: background, track or shower for every pixel of a 2-D detector plane"
    defaults = SEGMENT_DEFAULTS_2D
    key_plot = "events.png"


@register_task
class TracksSegment3d(_Segment):
    name = "tracks-segment-3d"
    description = "particle tracks: background, track or shower for every voxel of a 3-D detector volume"
    spatial_dims = 3
    key_plot = "event_0.png"
    default_size = 32
    patch = 4
    defaults = TaskDefaults(
        model="unet",
        model_options={"width": 0.125, "channel_mults": [1, 2, 4]},
        epochs=8,
        batch_size=8,
        lr=2e-3,
        n_train=1000,
        n_val=100,
        n_test=100,
        mlp_options={"hidden": (256, 256)},
        # the demo's 3-D version in 16^3 volumes: 8 times cheaper a volume than the default 32^3
        demo={"n_train": 300, "n_val": 30, "n_test": 50, "epochs": 3, "task_options": {"size": 16}},
        quick={"n_train": 80, "n_val": 16, "n_test": 20, "epochs": 1},
    )


# ---- counting ------------------------------------------------------------------------------------


@register_task
class TracksCount(_TracksTask):
    name = "tracks-count"
    kind = TaskKind.CLASSIFICATION
    description = "particle tracks: how many charged tracks (0-5) an event in a 2-D detector plane holds"
    num_outputs = sim.Settings().max_tracks + 1
    class_names = tuple(str(k) for k in range(num_outputs))
    headline = ("accuracy", True)
    key_plot = "count_matrix.png"
    baseline_name = "number of lines of the sequential Hough search"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "accuracy": ("fraction of events given their true number of visible tracks", True),
        "count_mae": ("mean absolute error of the predicted number of tracks", False),
        "accuracy_vs_tracks": ("accuracy per true number of tracks", True),
    }
    defaults = TaskDefaults(
        model="resnet18",
        model_options={
            "small_input": False,
            "width": 0.25,
        },  # the stem's stride 4: a count needs no fine detail
        epochs=12,
        batch_size=64,
        lr=2e-3,
        n_train=8000,
        n_val=400,
        n_test=600,
        demo={"n_train": 800, "n_val": 100, "n_test": 200, "epochs": 4},
        quick={"n_train": 200, "n_val": 40, "n_test": 60, "epochs": 1},
    )

    def targets(self, events: sim.Events) -> np.ndarray:
        return np.minimum(events.n_tracks, self.num_outputs - 1).astype(np.int64)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror images: a flip maps an event to one with the opposite charges, which the
        simulation makes as often for muons, pions and photon pairs, not for protons (+1) or delta
        rays and shower electrons (-1): an approximation the count, which it leaves unchanged,
        does not feel."""
        for axis in range(2, x.ndim):
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip.view(-1, *([1] * (x.ndim - 1))), x.flip(axis), x)
        return x

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        truth = np.asarray(test.y)
        count = np.asarray(prediction).argmax(axis=1)
        edges = [k - 0.5 for k in range(self.num_outputs + 1)]
        return {
            "accuracy": float(np.mean(count == truth)),
            "count_mae": float(np.mean(np.abs(count - truth))),
            "accuracy_vs_tracks": binned_mean((count == truth).astype(np.float64), truth, edges).tolist(),
            "accuracy_vs_tracks_bins": edges,
        }

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        _, lines = hough.classify(np.asarray(test.x)[:, 0])
        return np.eye(self.num_outputs, dtype=np.float32)[np.minimum(lines, self.num_outputs - 1)]

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.tracks import plots

        plots.count_matrix(test, predictions, out / "count_matrix.png", self.baseline_name)
