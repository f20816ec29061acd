"""The Cherenkov-telescope tasks: particle type (``iact-gamma-hadron``) and energy (``iact-energy``).

Events come from astrocnn's Monte Carlo (``simulation``) or from a file that ``astrocnn generate
iact`` wrote. Both tasks keep only the events an IACT analysis keeps: a tail-cut-cleaned image of
at least ``min_size`` photoelectrons (50 by default; below it the Hillas parameters are noise and
no analysis uses the event). Protons are drawn over three times the gamma rays' energy range:
a proton gives 0.35-0.5 of a gamma ray's light, so over the same range nearly all of them would
fail the size cut (real productions simulate protons to higher energies for the same reason).

The networks see the camera mapped onto a square grid, two channels: the charge and the arrival
time. ``mapping=axial`` (default) places each hexagonal pixel in one cell of its axial (row-shift)
address, a one-to-one map; ``mapping=bilinear`` resamples the camera onto a square grid with
bilinear weights that keep the total charge (times are charge-independent weighted averages).
``preprocess`` takes asinh of the charge (linear for a few photoelectrons, logarithmic for
bright images), the time in units of 10 ns, the sky coordinates of each cell and the charge again,
linearly (photoelectrons / 100), so that the image's size, the energy estimator, is a sum.

The classical baseline is the IACT community's: tail-cuts cleaning, Hillas parameters and
scikit-learn's gradient-boosted trees on them, trained on the same events.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, roc_auc_score

from astrocnn.errors import OptionError
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind
from astrocnn.tasks.iact import hillas
from astrocnn.tasks.iact import simulation as sim
from astrocnn.tasks.iact.camera import CAMERAS, BilinearMapping, Camera, get_camera
from astrocnn.tasks.registry import register_task

MAPPINGS = ("axial", "bilinear")
MIN_SIZE = 50.0  # photoelectrons after cleaning
PROTON_ENERGY_FACTOR = 3.0
TIME_SCALE = 10.0  # ns
#: Photoelectrons per unit of the linear charge channel: asinh alone compresses bright pixels, so
#: a sum over the image (the energy estimator of every IACT analysis: size ~ E) would have to undo
#: it; the linear channel keeps the sum one convolution and a global pooling away.
CHARGE_SCALE = 100.0
#: Above this, ``stream=auto`` reads a file's training events from disk as needed.
STREAM_ABOVE_BYTES = 2**30
#: log10(E / TeV) bins of the energy metrics: 0.25 to 100 TeV, five per decade
ENERGY_BINS = [round(float(v), 4) for v in np.linspace(-0.6, 2.0, 14)]
#: The bins the headline ``energy_resolution_mean`` averages, fixed: 1 to 40 TeV, above the
#: threshold (where the size cut keeps only upward fluctuations and biases the energy) and below
#: the sparsely populated top of the spectrum.
HEADLINE_BINS = (0.0, 1.6)
#: Both tasks' defaults (about 10 minutes a task on a 2-core CPU: with 4000 events and 8 epochs the
#: network's validation loss was still falling and it lost to the Hillas baseline); the demo, which
#: must fit every family in ten minutes, trains on fewer events for fewer epochs.
DEFAULTS = TaskDefaults(
    model="resnet18",
    model_options={"small_input": True, "width": 0.25},
    epochs=12,
    batch_size=64,
    lr=2e-3,
    n_train=10000,
    n_val=1500,
    n_test=3000,
    demo={"n_train": 2500, "n_val": 400, "n_test": 1500, "epochs": 6},
    quick={"n_train": 300, "n_val": 100, "n_test": 200, "epochs": 1},
)
#: The energy's: three times the epochs (on seed 0's events the mean resolution went 0.224 ->
#: 0.199 from 12 to 36 epochs, about 18 minutes on a quiet 2-core CPU; the trees: 0.189).
ENERGY_DEFAULTS = dataclasses.replace(DEFAULTS, epochs=36)
#: Pass rates of the size cut to start the simulation rounds from (measured on TAIGA).
PASS_RATES = {sim.GAMMA: 0.15, sim.PROTON: 0.08}
#: Gamma-ray efficiencies at which the quality factor is reported.
Q_EFFICIENCIES = (0.5, 0.8)


class Mapper:
    """Camera images (N, n_pixels) onto the network's square grid (N, H, W) and back."""

    def __init__(self, camera: Camera, mapping: str):
        if mapping not in MAPPINGS:
            raise OptionError(f"mapping must be one of {', '.join(MAPPINGS)}, not {mapping!r}")
        self.camera, self.mapping = camera, mapping
        if mapping == "bilinear":
            self.bilinear = BilinearMapping(camera)
            self.shape = (self.bilinear.size, self.bilinear.size)
            self._weights = np.asarray(self.bilinear.matrix.sum(axis=1)).reshape(self.shape)
        else:
            self.shape = camera.axial_shape

    def charge(self, values: np.ndarray) -> np.ndarray:
        if self.mapping == "axial":
            return self.camera.to_axial(np.asarray(values, np.float32))
        return self.bilinear.to_grid(values).astype(np.float32)

    def time(self, values: np.ndarray) -> np.ndarray:
        """Times are not shared out like charge: each grid node holds the weighted mean."""
        if self.mapping == "axial":
            return self.camera.to_axial(np.asarray(values, np.float32))
        grid = self.bilinear.to_grid(values) / np.maximum(self._weights, 1e-9)
        return np.where(self._weights > 0, grid, 0.0).astype(np.float32)

    def images(self, charge: np.ndarray, time: np.ndarray) -> np.ndarray:
        return np.stack([self.charge(charge), self.time(time)], axis=1)

    def coordinates(self) -> np.ndarray:
        """(2, H, W) the sky position of every grid cell, x and y in degrees from the camera
        centre (zero outside the camera)."""
        cam = self.camera
        xy = np.degrees(np.arctan(np.stack([cam.x, cam.y]) / cam.focal_length))
        if self.mapping == "axial":
            return cam.to_axial(xy.astype(np.float32))
        size, step, origin = self.bilinear.size, self.bilinear.step, self.bilinear.origin
        u = origin[0] + step * np.arange(size)
        v = origin[1] + step * np.arange(size)
        grid = np.degrees(np.arctan(np.stack(np.meshgrid(u, v)) / cam.focal_length))
        return np.where(self._weights > 0, grid, 0.0).astype(np.float32)

    def symmetry_cells(self) -> np.ndarray | None:
        """(G, H * W) the camera's rotations and reflections (:meth:`Camera.symmetries`) on the
        axial grid: for every cell, the cell whose value it takes, ``H * W`` (an empty cell) where
        none; None for the bilinear grid, on which a 60-degree rotation is no permutation."""
        if self.mapping != "axial":
            return None
        rows, cols = self.camera._axial_index()
        width = self.shape[1]
        cell = rows * width + cols
        maps = self.camera.symmetries()
        out = np.full((len(maps), self.shape[0] * width), self.shape[0] * width, dtype=np.int64)
        for g, source in enumerate(maps):
            out[g, cell[source >= 0]] = cell[source[source >= 0]]
        return out

    def symmetry_operators(self) -> tuple[np.ndarray, ...] | None:
        """The camera's rotations and reflections on the bilinear grid, as the linear maps they
        are there: grid -> camera (the least-squares inverse), a pixel permutation, camera ->
        grid. Returned as (charge inverse (H*W, n), charge forward (n, H*W), the same two for
        the time grid, which holds weighted means, and the (G, n) pixel maps, -1 where a pixel
        has no source); None on the axial grid (:meth:`symmetry_cells`)."""
        if self.mapping != "bilinear":
            return None
        forward = self.bilinear.matrix.toarray()  # (H*W, n)
        weights = forward.sum(axis=1, keepdims=True)
        timed = np.where(weights > 0, forward / np.maximum(weights, 1e-12), 0.0)
        operators = []
        for matrix in (forward, timed):
            inverse = np.linalg.solve(matrix.T @ matrix, matrix.T)  # (n, H*W): least squares
            operators += [inverse.T.astype(np.float32), matrix.T.astype(np.float32)]
        return (*operators, self.camera.symmetries())

    def to_camera(self, grid: np.ndarray) -> np.ndarray:
        if self.mapping == "axial":
            return self.camera.from_axial(grid)
        return self.bilinear.from_grid(grid)


def _passing(score_gamma: np.ndarray, score_hadron: np.ndarray, efficiency: float) -> tuple[float, float]:
    """(gamma rays, hadrons) passing the cut on the gamma score that keeps exactly
    ``efficiency`` of the gamma rays. Events whose score equals the cut pass with the fraction
    that makes the gamma efficiency exact, hadrons at that score with the same fraction (a
    saturated float32 softmax gives many scores of exactly 1)."""
    g = np.sort(np.asarray(score_gamma, np.float64))[::-1]
    wanted = efficiency * len(g)
    cut = g[min(int(np.ceil(wanted)) - 1, len(g) - 1)] if wanted > 0 else np.inf
    above_g = float(np.sum(g > cut))
    at_g = float(np.sum(g == cut))
    fraction = (wanted - above_g) / at_g if at_g else 0.0
    h = np.asarray(score_hadron, np.float64)
    return above_g + fraction * at_g, float(np.sum(h > cut)) + fraction * float(np.sum(h == cut))


def quality_factor(score_gamma: np.ndarray, score_hadron: np.ndarray, efficiency: float) -> float:
    """Q = eps_gamma / sqrt(eps_hadron) at the cut that keeps ``efficiency`` of the gamma rays
    (ties at the cut shared so that eps_gamma is exact); NaN where no hadron passes (the test set
    is too small to tell)."""
    gammas, hadrons = _passing(score_gamma, score_hadron, efficiency)
    return _quality(gammas / len(score_gamma), hadrons / len(score_hadron))


def _quality(eps_gamma: float, eps_hadron: float) -> float:
    return eps_gamma / np.sqrt(eps_hadron) if eps_hadron > 0 else float("nan")


def energy_resolution(
    true_tev: np.ndarray, reco_tev: np.ndarray, edges_log10: list[float]
) -> tuple[list, list]:
    """Per bin of true log10 E: the 68 % containment of |dE/E| (resolution) and the median of
    dE/E (bias), dE = E_reco - E_true; NaN for a bin with fewer than 10 events."""
    rel = reco_tev / true_tev - 1.0
    which = np.digitize(np.log10(true_tev), edges_log10) - 1
    resolution, bias = [], []
    for b in range(len(edges_log10) - 1):
        r = rel[which == b]
        if len(r) < 10:
            resolution.append(float("nan"))
            bias.append(float("nan"))
        else:
            resolution.append(float(np.quantile(np.abs(r), 0.68)))
            bias.append(float(np.median(r)))
    return resolution, bias


class _IactTask(Task):
    spatial_dims = 2
    in_channels = 2
    raw_units = (
        "two channels on the network's square grid: photoelectrons per pixel, and the arrival "
        "time in ns relative to the image's charge-weighted mean"
    )
    option_names = ("camera", "mapping", "min_size", "stream", "augment")
    chunk_size = 250
    #: which particles the task uses
    particles: ClassVar[tuple[int, ...]] = (sim.GAMMA, sim.PROTON)

    def __init__(
        self,
        camera: str = "taiga",
        mapping: str = "axial",
        min_size: Any = MIN_SIZE,
        stream: str = "auto",
        augment: str = "yes",
    ):
        if stream not in ("auto", "yes", "no"):
            raise OptionError(f"stream must be auto, yes or no, not {stream!r}")
        if augment not in ("yes", "no"):
            raise OptionError(f"augment must be yes or no, not {augment!r}")
        self.stream, self.augments = stream, augment == "yes"
        if camera not in CAMERAS:
            raise OptionError(f"camera must be one of {', '.join(CAMERAS)}, not {camera!r}")
        try:
            self.min_size = float(min_size)
        except (TypeError, ValueError):
            raise OptionError(f"min_size must be a number of photoelectrons, not {min_size!r}") from None
        self.camera = get_camera(camera)
        self.mapper = Mapper(self.camera, mapping)
        self.input_size = self.mapper.shape
        self._coordinates = self.mapper.coordinates()
        self._symmetry_cells = self.mapper.symmetry_cells() if self.augments else None
        self._symmetry_operators = self.mapper.symmetry_operators() if self.augments else None
        self.settings = sim.Settings()

    def options(self) -> dict[str, Any]:
        return {
            "camera": self.camera.name,
            "mapping": self.mapper.mapping,
            "min_size": self.min_size,
            "stream": self.stream,
            "augment": "yes" if self.augments else "no",
        }

    def data_contract(self) -> str:
        return "\n".join([
            f"{self.name}: {self.description}",
            "data     the HDF5 file `astrocnn generate iact` writes: charge (N, pixels) photoelectrons, "
            "time (N, pixels) ns, particle (0 gamma, 1 proton), energy (TeV), core, direction, "
            "source, x_max, muon and the camera (camera/x, camera/y, camera/lattice)",
            f"cut      only events whose cleaned image holds at least min_size={self.min_size:g} p.e.",
            f"protons  drawn over {PROTON_ENERGY_FACTOR:g} times the gamma rays' energy range "
            "(E^-2 for both; generate iact does the same by default)",
            "options  --task-option camera=taiga|lst|square (the file's camera must match), "
            "mapping=axial|bilinear, min_size=P.E., stream=auto|yes|no (read the training events "
            f"from disk batch by batch; auto: when they would take over {STREAM_ABOVE_BYTES / 2**30:g} GiB), "
            "augment=yes|no (turn each training event by a random rotation or reflection of the camera)",
            f"example  astrocnn generate iact --camera {self.camera.name} --n 20000 --out showers.h5 && "
            f"astrocnn train {self.name} --data showers.h5",
        ])  # fmt: skip

    # ---- data ----------------------------------------------------------------------------------
    def energy_range(self, particle: int) -> tuple[float, float]:
        """Protons over ``PROTON_ENERGY_FACTOR`` times the gamma rays' range (as ``astrocnn
        generate iact`` draws them by default)."""
        low, high = self.settings.energy_range
        factor = PROTON_ENERGY_FACTOR if particle == sim.PROTON else 1.0
        return low * factor, high * factor

    def select(self, events: sim.Events) -> np.ndarray:
        """The analysis cut: cleaned size of at least ``min_size`` photoelectrons."""
        return hillas.cleaned_sizes(self.camera, events.charge) >= self.min_size

    def _selected(
        self, particle: int, n: int, rng: np.random.Generator, settings: sim.Settings | None = None
    ) -> sim.Events:
        """``n`` events of one particle kind that pass the cut, simulated in rounds (with
        ``settings``, or the task's)."""
        parts, found, rate = [], 0, PASS_RATES.get(particle, 0.1)
        while found < n:
            batch = int(min(20_000, max(64, 1.3 * (n - found) / rate)))
            events = sim.Simulator(self.camera, settings or self.settings).simulate(
                batch,
                int(rng.integers(2**62)),
                particles=(particle,),
                energy_range=self.energy_range(particle),
            )
            keep = self.select(events)
            rate = max(keep.mean(), 0.005)
            parts.append(_take(events, np.flatnonzero(keep)))
            found += int(keep.sum())
        return _take(sim.concatenate(parts), np.arange(n))

    def split_settings(self, split: str) -> sim.Settings:
        """The simulation's settings for the generated ``split`` ("train", "val" or "test")."""
        return self.settings

    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        kinds = rng.permutation(np.arange(n) % len(self.particles))
        settings = self.split_settings(split)
        parts = [
            self._selected(self.particles[k], int((kinds == k).sum()), rng, settings)
            for k in range(len(self.particles))
        ]
        events = sim.concatenate(parts)
        order = np.argsort(np.concatenate([np.flatnonzero(kinds == k) for k in range(len(self.particles))]))
        return self.split_of(_take(events, order))

    def split_of(self, events: sim.Events) -> ArraySplit:
        x = self.mapper.images(events.charge, events.time)
        meta = {
            "charge": events.charge.astype(np.float32),
            "particle": events.particle,
            "energy": events.energy,
            "impact": events.impact,
            "image_size": hillas.cleaned_sizes(self.camera, events.charge),
            "muon": events.muon,
            "time": events.time.astype(np.float32),
        }
        return ArraySplit(x, self.labels(events), meta)

    def splits_from_file(self, path: str, seed: int):
        """The events of the file that pass the cut, split 70 / 15 / 15 at random (``seed``).
        Where the training events would not fit in memory (option ``stream``), the training and
        validation splits are read from disk batch by batch (:mod:`.stream`)."""
        from astrocnn.data.readers import DataError
        from astrocnn.tasks.iact import stream

        path = Path(path)
        sim.read_events(path, self.camera, rows=np.array([], dtype=np.int64))  # the file's checks
        truth, sizes = stream.scan(path, self)
        particle = truth.particle
        keep = (sizes >= self.min_size) & np.isin(particle, self.particles)
        wanted = " and ".join(sim.PARTICLES[p] for p in self.particles)
        missing = [sim.PARTICLES[p] for p in self.particles if not np.any(keep & (particle == p))]
        if missing:
            raise DataError(
                f"{path}: no {missing[0]} event passes the cut (cleaned size >= {self.min_size:g} p.e.); "
                f"{self.name} needs {wanted} events"
            )
        idx = np.random.default_rng(seed).permutation(np.flatnonzero(keep))
        if len(idx) < 20:
            raise DataError(
                f"{path}: only {len(idx)} {wanted} events pass the cut (cleaned size >= "
                f"{self.min_size:g} p.e.); {self.name} needs at least 20"
            )
        cut = [round(0.7 * len(idx)), round(0.85 * len(idx))]
        parts = np.split(idx, cut)
        train, val, test = (np.sort(part) for part in parts)
        if not self.streams(len(train) + len(val)):
            return tuple(
                self.split_of(sim.read_events(path, self.camera, rows=p)[0]) for p in (train, val, test)
            )
        from astrocnn.engine.splits import BASELINE_SAMPLES, Splits

        def streamed(rows: np.ndarray) -> stream.StreamedEvents:
            events = SimpleNamespace(**{key: value[rows] for key, value in vars(truth).items()})
            return stream.StreamedEvents(path, self, rows, self.labels(events))

        fit_rows = np.sort(parts[0][:BASELINE_SAMPLES])  # a random part of the training split
        return Splits(
            streamed(train),
            streamed(val),
            self.split_of(sim.read_events(path, self.camera, rows=test)[0]),
            self.split_of(sim.read_events(path, self.camera, rows=fit_rows)[0]),
        )

    def streams(self, n_events: int) -> bool:
        """Whether ``n_events`` training and validation events are read from disk as needed."""
        if self.stream != "auto":
            return self.stream == "yes"
        per_event = 4 * (
            (self.network_channels + self.in_channels) * int(np.prod(self.input_size))
            + 2 * self.camera.n_pixels
        )
        return n_events * per_event > STREAM_ABOVE_BYTES

    def labels(self, events: sim.Events) -> np.ndarray:
        raise NotImplementedError

    #: Whether the network also sees the charge linearly (``CHARGE_SCALE``), besides its asinh.
    linear_charge: ClassVar[bool] = True

    @property
    def network_channels(self) -> int:
        return 5 if self.linear_charge else 4

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], self.network_channels, *x.shape[2:]), np.float32)
        out[:, 0] = np.arcsinh(x[:, 0])
        out[:, 1] = x[:, 1] / TIME_SCALE
        out[:, 2:4] = self._coordinates
        if self.linear_charge:
            out[:, 4] = x[:, 0] / CHARGE_SCALE
        return out

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        coords = torch.from_numpy(self._coordinates).to(x.device).expand(x.shape[0], -1, -1, -1)
        parts = [torch.asinh(x[:, :1]), x[:, 1:2] / TIME_SCALE, coords]
        if self.linear_charge:
            parts.append(x[:, :1] / CHARGE_SCALE)
        return torch.cat(parts, dim=1)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Each training event turned by one of the camera's rotations and reflections (drawn
        per event): the sky is isotropic, so the turned event is one of the same particle and
        energy. The event's channels move, the sky-coordinate channels stay with their cells.
        12 transforms on a hexagonal camera, 8 on a square one. On the bilinear grid, where a
        60-degree turn moves no cell onto another, the linear channels go back to the camera's
        pixels (the mapping's exact inverse), are permuted there and mapped again, and the asinh
        channel follows from the turned charge."""
        if self._symmetry_operators is not None:
            return self._augment_bilinear(x)
        if self._symmetry_cells is None:
            return x
        cells = torch.from_numpy(self._symmetry_cells)
        pick = cells[torch.randint(0, len(cells), (x.shape[0],))].to(x.device)
        moving = [0, 1, 4] if self.linear_charge else [0, 1]
        flat = x[:, moving].flatten(2)
        flat = torch.cat([flat, flat.new_zeros(*flat.shape[:2], 1)], dim=2)
        turned = torch.gather(flat, 2, pick[:, None, :].expand(-1, len(moving), -1))
        out = x.clone()
        out[:, moving] = turned.view(x.shape[0], len(moving), *x.shape[2:])
        return out

    def _augment_bilinear(self, x: torch.Tensor) -> torch.Tensor:
        charge_in, charge_out, time_in, time_out, maps = (
            torch.from_numpy(m).to(x.device) for m in self._symmetry_operators
        )
        n = x.shape[0]
        pick = maps[torch.randint(0, len(maps), (n,))].to(x.device)  # (N, pixels)
        missing = pick < 0
        index = pick.clamp(min=0)

        def turned(grid: torch.Tensor, inverse: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
            pixels = torch.gather(grid.flatten(1) @ inverse, 1, index).masked_fill(missing, 0.0)
            return (pixels @ forward).view_as(grid)

        charge = turned(x[:, 4] * CHARGE_SCALE, charge_in, charge_out)
        out = x.clone()
        out[:, 0] = torch.asinh(charge)
        out[:, 1] = turned(x[:, 1], time_in, time_out)
        out[:, 4] = charge / CHARGE_SCALE
        return out

    def describe_preprocessing(self) -> str:
        return (
            f"channel 0 (photoelectrons): asinh(x); channel 1 (ns): x / {TIME_SCALE:g}; then two "
            "channels appended: each cell's x and y on the sky in degrees from the camera centre "
            "(where the source is: the physics is not translation invariant), zero outside the "
            "camera"
            + (f"; then channel 0 again, linearly: x / {CHARGE_SCALE:g}" if self.linear_charge else "")
            + "; float32"
        )

    def hillas(self, split: ArraySplit) -> np.ndarray:
        """Hillas parameters and the arrival-time gradient of each event (the baseline's input)."""
        return hillas.hillas_features(self.camera, split.meta["charge"], split.meta["time"])

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.iact import plots as iact_plots

        iact_plots.example_events(self.camera, test, out / "events.png")
        if "cnn" in networks and len(test):
            from astrocnn.tasks import plotting

            i = int(np.argmax(np.where(test.meta["particle"] == sim.GAMMA, test.meta["image_size"], -1)))
            x = torch.from_numpy(self.preprocess(test.x[i : i + 1]))
            energy, size = test.meta["energy"][i], test.meta["image_size"][i]
            plotting.activation_maps(
                networks["cnn"].cpu(), x, out / "activations.png",
                f"the network's first convolutions on one event ({sim.PARTICLES[test.meta['particle'][i]]}, "
                f"{energy:.1f} TeV, {size:.0f} p.e.); inputs: asinh charge, time, sky x, sky y",
            )  # fmt: skip


def _take(events: sim.Events, idx: np.ndarray) -> sim.Events:
    return sim.Events(*(getattr(events, f)[idx] for f in sim.Events.__dataclass_fields__))


@register_task
class IactGammaHadron(_IactTask):
    name = "iact-gamma-hadron"
    kind = TaskKind.CLASSIFICATION
    description = "Cherenkov telescope: gamma ray or proton from the camera image (classification)"
    num_outputs = 2
    class_names = ("gamma", "proton")
    headline = ("auc", True)
    key_plot = "roc.png"
    baseline_name = "Hillas parameters + gradient-boosted trees"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "auc": ("area under the ROC curve of the gamma-ray score (0.5: chance)", True),
        "accuracy": (
            "fraction of events given their true particle (half are gamma rays in generated "
            "data; in a file, whatever share passes the cut)",
            True,
        ),
        "q_factor_50": (
            "quality factor eps_gamma / sqrt(eps_proton) at the cut keeping 50 % of the gamma "
            "rays: the gain in significance of a source over the cosmic-ray background",
            True,
        ),
        "q_factor_80": ("the quality factor at 80 % gamma-ray efficiency", True),
        "q_factor_*_protons": (
            "test protons that pass the cut behind q_factor_*: with fewer than about 10 the "
            "quality factor is a rough estimate",
            None,
        ),
        "auc_vs_log_size": ("AUC in bins of log10 of the cleaned image size (p.e.)", True),
    }
    defaults = DEFAULTS

    def labels(self, events: sim.Events) -> np.ndarray:
        return (events.particle == sim.PROTON).astype(np.int64)

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        gamma_score = prediction[:, 0].astype(np.float64)
        is_gamma = test.y == 0
        result: dict[str, Any] = {
            "auc": float(roc_auc_score(is_gamma, gamma_score))
            if 0 < is_gamma.sum() < len(is_gamma)
            else float("nan"),
            "accuracy": float(accuracy_score(test.y, prediction.argmax(axis=1))),
        }
        for eff in Q_EFFICIENCIES:
            gammas, protons = _passing(gamma_score[is_gamma], gamma_score[~is_gamma], eff)
            result[f"q_factor_{round(eff * 100)}_protons"] = protons
            result[f"q_factor_{round(eff * 100)}"] = _quality(
                gammas / is_gamma.sum(), protons / (~is_gamma).sum()
            )
        if "image_size" in test.meta:
            edges = [round(float(np.log10(max(self.min_size, 1.0))), 4), 2.0, 2.5, 3.0, 5.0]
            which = np.digitize(np.log10(np.maximum(test.meta["image_size"], 1.0)), edges) - 1
            aucs = []
            for b in range(len(edges) - 1):
                sel = which == b
                both = 0 < is_gamma[sel].sum() < sel.sum()
                aucs.append(
                    float(roc_auc_score(is_gamma[sel], gamma_score[sel]))
                    if both and sel.sum() >= 20
                    else float("nan")
                )
            result["auc_vs_log_size"] = aucs
            result["auc_vs_log_size_bins"] = edges
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, random_state=0)
        model.fit(self.hillas(train), train.y)
        return model.predict_proba(self.hillas(test))

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.iact import plots as iact_plots

        super().plots(results, test, predictions, out, networks)
        iact_plots.roc_curves(test, predictions, out / "roc.png", self.baseline_name)


@register_task
class IactEnergy(_IactTask):
    name = "iact-energy"
    kind = TaskKind.REGRESSION
    description = "Cherenkov telescope: the energy of a gamma ray from its camera image (log10 E regression)"
    num_outputs = 1
    output_names = ("log10_energy_tev",)
    particles = (sim.GAMMA,)
    headline = ("energy_resolution_mean", False)
    key_plot = "energy_resolution.png"
    baseline_name = "Hillas parameters + gradient-boosted trees"
    value_units = "log10 of the energy in TeV"
    bin_axes: ClassVar[dict[str, str]] = {
        "energy_resolution": "true log10(E / TeV)",
        "energy_bias": "true log10(E / TeV)",
    }
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "energy_resolution": (
            "68 % containment of |E_reco / E_true - 1| per bin of true log10 E (TeV)",
            False,
        ),
        "energy_bias": ("median of E_reco / E_true - 1 per bin of true log10 E (TeV)", None),
        "energy_resolution_mean": (
            "energy_resolution averaged over the fixed bins from 1 to 40 TeV (log10 E 0 to 1.6)",
            False,
        ),
        "rmse_log10": ("root-mean-square error of log10 E", False),
        "impact_resolution": (
            "68 % containment of the impact distance's absolute error, m (with impact=yes)",
            False,
        ),
    }
    defaults = ENERGY_DEFAULTS
    option_names = (*_IactTask.option_names, "impact", "train_index")
    #: Runs saved before the second output existed regressed the energy alone.
    options_before: ClassVar[dict[str, Any]] = {"impact": "no", "train_index": "same"}
    #: Targets' shift and scale: (log10 E / TeV, impact distance / m) -> about zero mean, unit range
    TARGET_MEAN, TARGET_SCALE = (0.5, 150.0), (0.5, 100.0)

    def __init__(self, *args: Any, impact: str = "yes", train_index: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if impact not in ("yes", "no"):
            raise OptionError(f"impact must be yes or no, not {impact!r}")
        try:
            #: The spectral index of the generated training and validation events (None: the
            #: test events', E^-2): a harder one puts more of them at high energy, where E^-2
            #: leaves few; the test events keep E^-2 (per-bin metrics barely depend on it).
            self.train_index = None if train_index in (None, "", "same") else float(train_index)
        except (TypeError, ValueError):
            raise OptionError(
                f"train_index must be a spectral index (e.g. 1.5), not {train_index!r}"
            ) from None
        #: Whether the network also regresses the impact distance (a second output): the energy
        #: of a gamma ray is its image's size over the light density at the telescope, which
        #: falls with the impact distance; a network asked for both learns the distance.
        self.with_impact = impact == "yes"
        self.num_outputs = 2 if self.with_impact else 1
        self.output_names = ("log10_energy_tev", "impact_m")[: self.num_outputs]
        if self.with_impact:
            self.value_units = "column 0: log10 of the energy in TeV; column 1: the impact distance in m"

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "impact": "yes" if self.with_impact else "no",
            "train_index": "same" if self.train_index is None else self.train_index,
        }

    def data_contract(self) -> str:
        return super().data_contract() + (
            "\noutputs  log10_energy_tev and, with impact=yes (the default), impact_m, the impact "
            "distance the network also regresses; impact=no: the energy alone; train_index=INDEX: "
            "the generated training events' spectrum, E^-INDEX (the test events keep E^-2)"
        )

    def split_settings(self, split: str) -> sim.Settings:
        if split == "test" or self.train_index is None:
            return self.settings
        return dataclasses.replace(self.settings, index=self.train_index)

    def labels(self, events: sim.Events) -> np.ndarray:
        columns = [np.log10(events.energy)]
        if self.with_impact:
            columns.append(np.hypot(events.core[:, 0], events.core[:, 1]))
        return np.stack(columns, axis=1).astype(np.float32)

    def _shift_scale(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.num_outputs
        return np.array(self.TARGET_MEAN[:n], np.float32), np.array(self.TARGET_SCALE[:n], np.float32)

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        mean, scale = self._shift_scale()
        return torch.as_tensor((np.asarray(y, np.float32) - mean) / scale, dtype=torch.float32)

    def postprocess(self, output: torch.Tensor) -> torch.Tensor:
        mean, scale = (
            torch.as_tensor(v, dtype=output.dtype, device=output.device) for v in self._shift_scale()
        )
        return output * scale + mean

    def describe_postprocessing(self) -> str:
        text = f"output[:, 0] * {self.TARGET_SCALE[0]} + {self.TARGET_MEAN[0]}: log10 of the energy in TeV"
        if self.with_impact:
            text += (
                f"; output[:, 1] * {self.TARGET_SCALE[1]} + {self.TARGET_MEAN[1]}: the impact distance in m"
            )
        return text

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        prediction = np.asarray(prediction, np.float64).reshape(len(test.y), -1)
        true = np.asarray(test.y, np.float64).reshape(len(test.y), -1)[:, 0]
        reco = prediction[:, 0]
        resolution, bias = energy_resolution(10**true, 10**reco, ENERGY_BINS)
        low, high = HEADLINE_BINS
        headline = [
            r for r, lo in zip(resolution, ENERGY_BINS[:-1], strict=True) if low - 1e-9 <= lo < high - 1e-9
        ]
        return {
            "energy_resolution_mean": float(np.mean(headline)),  # NaN if a headline bin is empty
            "rmse_log10": float(np.sqrt(np.mean((reco - true) ** 2))),
            "energy_resolution": resolution,
            "energy_resolution_bins": ENERGY_BINS,
            "energy_bias": bias,
            "energy_bias_bins": ENERGY_BINS,
            **self._impact_metrics(prediction, test),
        }

    def _impact_metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, float]:
        """68 % containment of the impact distance's error (m), where the prediction holds one."""
        if prediction.shape[1] < 2 or "impact" not in test.meta:
            return {}
        error = np.abs(prediction[:, 1] - np.asarray(test.meta["impact"], np.float64))
        return {"impact_resolution": float(np.quantile(error, 0.68))}

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        features, targets = self.hillas(train), np.asarray(train.y).reshape(len(train.y), -1)
        test_features = self.hillas(test)
        columns = []
        for k in range(targets.shape[1]):  # one forest per target: log10 E, and the impact distance
            model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.1, random_state=0)
            columns.append(model.fit(features, targets[:, k]).predict(test_features))
        return np.stack(columns, axis=1)

    def plots(self, results, test, predictions, out, networks) -> None:
        from astrocnn.tasks.iact import plots as iact_plots

        super().plots(results, test, predictions, out, networks)
        iact_plots.migration_matrices(test, predictions, out / "migration.png", self.baseline_name)
