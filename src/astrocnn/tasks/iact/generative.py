"""``iact-generate``: a conditional generative surrogate of the Cherenkov Monte Carlo.

The model is rectified flow (Liu et al. 2022; flow matching, Lipman et al. 2022): a U-Net learns
the velocity v(x_t, t, c) = x1 - x0 of the straight path x_t = (1 - t) x0 + t x1 from Gaussian
noise x0 to a simulated image x1, given the condition c = (particle, log10 E, impact distance).
Sampling integrates dx/dt = v from t = 0 to 1 with Euler steps. Images live on the camera's axial
grid (29 x 29 for TAIGA), two channels: asinh(charge) / 3 and time / 10 ns; cells outside the
camera are zero in x0, x1 and v, so the network learns nothing there. The condition and t enter as
constant input channels beside the cells' sky coordinates (the images are not translation
invariant: they point at the source).

Why flow matching and not a conditional VAE (docs/generative.md): its training objective is a
plain regression of an image on an image, the engine's restoration contract (MSE, any ``unet``);
a VAE's Gaussian decoder blurs, which moves exactly the second and higher moments (width,
length, kurtosis) that the Hillas fidelity measures; and Elflein et al. found diffusion models
closer to the H.E.S.S. simulation than GANs.

Training draws fresh noise and time at every step (:meth:`IactGenerate.augment_pair`, the
engine's hook for transformations that move the targets too); each training event is stored with
``replicas`` (x0, t) draws only to set how many steps an epoch has.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from astrocnn.errors import OptionError
from astrocnn.tasks.base import ArraySplit, TaskDefaults, TaskKind
from astrocnn.tasks.iact import fidelity, hillas
from astrocnn.tasks.iact import simulation as sim
from astrocnn.tasks.iact.tasks import MIN_SIZE, TIME_SCALE, _IactTask, _take
from astrocnn.tasks.registry import register_task

#: asinh(charge) is divided by this so that bright images stay within a few units of the noise.
CHARGE_SCALE = 3.0
#: Euler steps of the sampler; pairs of (x0, t) per training event.
STEPS = 16
REPLICAS = 3
#: Scaling of the conditions into units of order one.
LOG_E_CENTRE, LOG_E_SCALE = 0.5, 1.0
IMPACT_SCALE = 300.0  # m, Settings.max_impact

DEFAULTS = TaskDefaults(
    model="unet",
    model_options={"width": 0.25, "channel_mults": [1, 2, 4], "norm": "group"},
    epochs=10,
    batch_size=64,
    lr=2e-3,
    n_train=2000,
    n_val=300,
    n_test=1000,
    mlp_options={"hidden": (256,)},
    demo={"n_train": 400, "n_val": 80, "n_test": 240, "epochs": 2},
    quick={"n_train": 200, "n_val": 50, "n_test": 200, "epochs": 1},
)


def encode(task: _IactTask, charge: np.ndarray, time_ns: np.ndarray) -> np.ndarray:
    """Camera images (N, pixels) -> (N, 2, H, W) in the model's units, zero outside the camera."""
    q = np.arcsinh(task.mapper.charge(charge)) / CHARGE_SCALE
    return np.stack([q, task.mapper.time(time_ns) / TIME_SCALE], axis=1).astype(np.float32)


def decode(task: _IactTask, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2, H, W) in the model's units -> charge (p.e.) and time (ns) per camera pixel."""
    cells = task.mapper.to_camera(np.asarray(grid, np.float64))  # (N, 2, pixels)
    return np.sinh(CHARGE_SCALE * cells[:, 0]).astype(np.float32), (TIME_SCALE * cells[:, 1]).astype(
        np.float32
    )


def conditions(particle: np.ndarray, energy: np.ndarray, impact: np.ndarray) -> np.ndarray:
    """(N, 3): particle (0 gamma, 1 proton), (log10 E - 0.5) / 1, impact / 300 m."""
    return np.stack(
        [
            np.asarray(particle, np.float32),
            (np.log10(energy) - LOG_E_CENTRE) / LOG_E_SCALE,
            np.asarray(impact, np.float64) / IMPACT_SCALE,
        ],
        axis=1,
    ).astype(np.float32)


def network_input(x_t: np.ndarray, t: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """The raw input of the velocity network: (N, 6, H, W) = x_t (2), t, condition (3)."""
    n, _, *size = x_t.shape
    constants = np.concatenate([np.asarray(t, np.float32)[:, None], cond], axis=1)  # (N, 4)
    planes = np.broadcast_to(constants[:, :, None, None], (n, 4, *size))
    return np.concatenate([x_t, planes], axis=1).astype(np.float32)


@torch.no_grad()
def sample(
    network: torch.nn.Module,
    task: IactGenerate,
    cond: np.ndarray,
    *,
    seed: int = 0,
    steps: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """(N, 2, H, W) images for the conditions (N, 3): Euler integration of the learned velocity
    from Gaussian noise (``seed``) at t = 0 to t = 1."""
    steps = steps or task.steps
    network.eval()
    mask = torch.from_numpy(task.mask)
    coords = torch.from_numpy(task._coordinates)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(cond), batch_size):
        c = torch.from_numpy(cond[start : start + batch_size])
        b = len(c)
        x = torch.randn((b, 2, *task.input_size), generator=generator) * mask
        planes = c[:, :, None, None].expand(b, 3, *task.input_size)
        grid = coords.expand(b, -1, -1, -1)
        for k in range(steps):
            t = torch.full((b, 1, *task.input_size), k / steps)
            v = network(torch.cat([x, t, planes, grid], dim=1))
            x = x + v * mask / steps
        out.append(x.numpy())
    return np.concatenate(out) if out else np.zeros((0, 2, *task.input_size), np.float32)


@register_task
class IactGenerate(_IactTask):
    name = "iact-generate"
    kind = TaskKind.GENERATION
    description = (
        "Cherenkov telescope: camera images generated for a particle type, energy and impact distance "
        "(conditional rectified flow, a surrogate of the Monte Carlo)"
    )
    in_channels = 6
    num_outputs = 2
    headline = ("two_sample_auc", False)
    key_plot = "events.png"
    option_names = ("camera", "min_size", "steps", "replicas")
    baseline_name = "shower library (the simulated training event nearest in type, energy and impact)"
    resample_metrics = False  # the fidelity is one costly computation; its errors are not bootstrapped
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "velocity_mse": ("flow-matching loss on the test events (one noise draw each)", False),
        "wasserstein_ratio_*": (
            "W1(generated, simulated) / W1(simulated, simulated) of a Hillas parameter, equal sample "
            "sizes: 1 is the simulation's own sampling noise",
            False,
        ),
        "two_sample_auc": ("test AUC of a CNN telling generated from simulated images (0.5: perfect)", False),
        "two_sample_auc_hillas": ("the same test with boosted trees on the six Hillas parameters", False),
        "correlation_max_diff": ("largest |difference| of the Hillas correlation matrices", False),
        "generated_pass_fraction": ("generated events passing the size cut (simulated: all)", True),
        "energy_bias": (
            "median E_reco / E_requested - 1 of generated gamma rays, E_reco from Hillas + boosted "
            "trees trained on simulated gamma rays (energy_bias_simulated: the same on simulated ones)",
            None,
        ),
        "gamma_hadron_accuracy_*": (
            "Hillas + boosted-trees classifier accuracy on generated / simulated",
            None,
        ),
        "speedup": ("generated images per second / simulated events passing the cut per second", True),
    }
    defaults = DEFAULTS
    raw_units = "x_t (asinh(charge) / 3, time / 10 ns), t, particle, (log10 E - 0.5), impact / 300 m"
    value_units = "the velocity x1 - x0 in the model's image units"

    def __init__(
        self, camera: str = "taiga", min_size: Any = MIN_SIZE, steps: Any = STEPS, replicas: Any = REPLICAS
    ):
        # no rotation of the training events: the target (a velocity image) would have to turn too
        super().__init__(camera, "axial", min_size, "no", augment="no")
        for name, value in (("steps", steps), ("replicas", replicas)):
            try:
                ok = int(value) >= 1 and float(value) == int(value)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise OptionError(f"{name} must be a whole number of at least 1, not {value!r}")
        self.steps, self.replicas = int(steps), int(replicas)
        self.mask = (self.camera.to_axial(np.ones(self.camera.n_pixels, np.float32)) > 0).astype(np.float32)
        self._fidelity: dict[int, dict[str, Any]] = {}

    def options(self) -> dict[str, Any]:
        return {
            "camera": self.camera.name,
            "min_size": self.min_size,
            "steps": self.steps,
            "replicas": self.replicas,
        }

    def data_contract(self) -> str:
        return "\n".join([
            f"{self.name}: {self.description}",
            "data     the HDF5 file `astrocnn generate iact` writes (gamma rays and protons); the "
            "events passing the size cut are split 70 / 15 / 15",
            f"options  --task-option camera=taiga|lst|square, min_size=P.E., steps={self.steps} (Euler "
            f"steps of the sampler), replicas={self.replicas} (copies of each training event in an "
            "epoch; every step draws its own noise and t)",
            "then     astrocnn generate surrogate RUN --n 1000 --type gamma --energy 1:10 --out fake.h5",
        ])  # fmt: skip

    # ---- data ----------------------------------------------------------------------------------
    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        kinds = rng.permutation(np.arange(n) % 2)
        parts = [self._selected(p, int((kinds == k).sum()), rng) for k, p in enumerate(self.particles)]
        order = np.argsort(np.concatenate([np.flatnonzero(kinds == k) for k in range(2)]))
        events = _take(sim.concatenate(parts), order)
        return self.paired(self.split_of(events).meta, self.replicas if split == "train" else 1, rng)

    def split_of(self, events: sim.Events) -> ArraySplit:
        """The events with one (x0, t) draw each, seeded by the events themselves."""
        seed = (
            int(np.frombuffer(np.ascontiguousarray(events.energy).tobytes(), np.uint8).sum())
            if len(events)
            else 0
        )
        meta = {
            "charge": events.charge.astype(np.float32),
            "time": events.time.astype(np.float32),
            "particle": events.particle,
            "energy": events.energy,
            "impact": events.impact,
            "image_size": hillas.cleaned_sizes(self.camera, events.charge),
        }
        return self.paired(meta, 1, np.random.default_rng(seed))

    def paired(self, meta: dict[str, np.ndarray], replicas: int, rng: np.random.Generator) -> ArraySplit:
        """Each event ``replicas`` times, each with its own noise x0 and time t: network input
        (x_t, t, condition) and target velocity x1 - x0; ``meta`` repeated alongside."""
        x1 = np.repeat(encode(self, meta["charge"], meta["time"]), replicas, axis=0)
        cond = np.repeat(conditions(meta["particle"], meta["energy"], meta["impact"]), replicas, axis=0)
        x0 = rng.standard_normal(x1.shape).astype(np.float32) * self.mask
        t = rng.uniform(size=len(x1)).astype(np.float32)
        x_t = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * x1
        meta = {k: np.repeat(v, replicas, axis=0) for k, v in meta.items()}
        return ArraySplit(network_input(x_t, t, cond), x1 - x0, meta)

    def splits_from_file(self, path: str, seed: int):
        train, val, test = super().splits_from_file(path, seed)
        return self.paired(train.meta, self.replicas, np.random.default_rng(seed)), val, test

    def streams(self, n_events: int) -> bool:
        return False

    @property
    def network_channels(self) -> int:
        return self.in_channels + 2

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        coords = np.broadcast_to(self._coordinates, (x.shape[0], *self._coordinates.shape))
        return np.concatenate([x.astype(np.float32, copy=False), coords], axis=1)

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        coords = torch.from_numpy(self._coordinates).to(x.device).expand(x.shape[0], -1, -1, -1)
        return torch.cat([x.float(), coords], dim=1)

    def augment_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh noise and time at every training step: the clean image x1 = x_t + (1 - t) v is
        recovered from the stored pair (exactly, up to rounding) and put on a new straight path
        from new noise x0 at a new t; the condition and coordinate channels stay."""
        t = x[:, 2:3, :1, :1]  # a constant plane
        x1 = x[:, :2] + (1 - t) * y
        x0 = torch.randn_like(x1) * torch.as_tensor(self.mask, device=x.device, dtype=x.dtype)
        t = torch.rand((len(x), 1, 1, 1), device=x.device, dtype=x.dtype)
        x_t = (1 - t) * x0 + t * x1
        return torch.cat([x_t, t.expand(-1, 1, *x.shape[2:]), x[:, 3:]], dim=1), x1 - x0

    def describe_preprocessing(self) -> str:
        return (
            "the six input channels as they are, then two appended: each cell's x and y on the sky "
            "in degrees from the camera centre, zero outside the camera; float32"
        )

    def build_mlp(self) -> torch.nn.Module:
        """The fully connected velocity field: every output cell from every input cell."""
        from astrocnn.models import create_model

        cells = int(np.prod(self.input_size))
        mlp = create_model(
            "mlp", spatial_dims=2, in_channels=self.network_channels, num_outputs=self.num_outputs * cells,
            input_size=self.input_size, **self.defaults.mlp_options,
        )  # fmt: skip
        return torch.nn.Sequential(mlp, torch.nn.Unflatten(1, (self.num_outputs, *self.input_size)))

    # ---- evaluation ----------------------------------------------------------------------------
    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        return {"velocity_mse": float(np.mean((np.asarray(prediction) - np.asarray(test.y)) ** 2))}

    def network_metrics(self, members, test: ArraySplit) -> dict[str, Any]:
        return self.fidelity(members[0], test)["metrics"]

    def halves(self, test: ArraySplit) -> tuple[np.ndarray, np.ndarray]:
        """Two independent simulated samples of equal size: A is compared with, B's conditions are
        generated (so generated and reference share the conditions' distribution)."""
        half = len(test) // 2
        return np.arange(half), np.arange(half, 2 * half)

    def fidelity(self, network, test: ArraySplit, seed: int = 0) -> dict[str, Any]:
        """Generated events for the conditions of test half B, against half A (cached per network)."""
        key = id(network)
        if key in self._fidelity:
            return self._fidelity[key]
        a, b = self.halves(test)
        m = test.meta
        cond = conditions(m["particle"][b], m["energy"][b], m["impact"][b])
        start = time.perf_counter()
        grid = sample(network, self, cond, seed=seed)
        charge, times = decode(self, grid)
        per_s = len(b) / max(time.perf_counter() - start, 1e-9)
        generated = {
            "charge": charge,
            "time": times,
            **{k: m[k][b] for k in ("particle", "energy", "impact")},
        }
        result = self.compare(generated, _part(m, a), _part(m, b), seed=seed)
        result["metrics"]["generated_per_s"] = per_s
        result["metrics"]["simulated_per_s"] = self.simulation_rate()
        result["metrics"]["speedup"] = per_s / result["metrics"]["simulated_per_s"]
        self._fidelity[key] = result
        return result

    def simulation_rate(self, n: int = 40) -> float:
        """Simulated events passing the cut per second, gamma rays and protons in turn (the
        simulation's cost of one event the surrogate replaces)."""
        rng = np.random.default_rng(12345)
        start = time.perf_counter()
        for particle in self.particles:
            self._selected(particle, n // 2, rng)
        return n / (time.perf_counter() - start)

    def compare(self, generated: dict, sim_a: dict, sim_b: dict, *, seed: int = 0) -> dict[str, Any]:
        """The fidelity measures of ``generated`` (charge, time, particle, energy, impact) against
        simulated sample A, with simulated sample B (same size as ``generated``) as the yardstick."""
        tables = {k: fidelity.hillas_table(self.camera, s["charge"]) for k, s in
                  (("gen", generated), ("a", sim_a), ("b", sim_b))}  # fmt: skip
        values = fidelity.wasserstein_ratios(tables["gen"], tables["a"], tables["b"])
        corr = {k: fidelity.correlation(t) for k, t in tables.items()}
        values["correlation_max_diff"] = float(np.nanmax(np.abs(corr["gen"] - corr["a"])))
        values["correlation_max_diff_simulated"] = float(np.nanmax(np.abs(corr["b"] - corr["a"])))
        sizes = hillas.cleaned_sizes(self.camera, generated["charge"])
        values["generated_pass_fraction"] = float(np.mean(sizes >= self.min_size))
        values["two_sample_auc"] = fidelity.two_sample_auc(
            encode(self, generated["charge"], generated["time"]),
            encode(self, sim_a["charge"], sim_a["time"]),
            seed=seed,
        )
        values["two_sample_auc_hillas"] = fidelity.two_sample_auc_hillas(
            tables["gen"], tables["a"], seed=seed
        )
        conditioning, curves = self._conditioning(generated, sim_a, sim_b)
        values.update(conditioning)
        return {
            "metrics": values, "tables": tables, "correlations": corr, "generated": generated,
            "energy_curves": curves,
        }  # fmt: skip

    def _conditioning(self, generated: dict, sim_a: dict, sim_b: dict) -> tuple[dict[str, float], dict]:
        """The classical analysis trained on simulated sample A, applied to generated events and
        to simulated sample B: energy bias of gamma rays, gamma/hadron accuracy; and per gamma
        ray (true or requested energy, E_reco / E) for the conditioning curve."""
        feats = {k: hillas.hillas_features(self.camera, s["charge"], s["time"]) for k, s in
                 (("gen", generated), ("a", sim_a), ("b", sim_b))}  # fmt: skip
        out: dict[str, float] = {}
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        gammas = sim_a["particle"] == sim.GAMMA
        if gammas.sum() >= 20:
            reg = HistGradientBoostingRegressor(max_iter=200, random_state=0)
            reg.fit(feats["a"][gammas], np.log10(sim_a["energy"][gammas]))
            for key, name in (("gen", "energy_bias"), ("b", "energy_bias_simulated")):
                s = {"gen": generated, "b": sim_b}[key]
                g = s["particle"] == sim.GAMMA
                ratio = 10 ** reg.predict(feats[key][g]) / s["energy"][g] if g.any() else np.zeros(0)
                out[name] = float(np.median(ratio - 1)) if g.any() else float("nan")
                curves[key] = (s["energy"][g], ratio)
        if len(np.unique(sim_a["particle"])) == 2:
            clf = HistGradientBoostingClassifier(max_iter=200, random_state=0)
            clf.fit(feats["a"], sim_a["particle"])
            out["gamma_hadron_accuracy_generated"] = float(
                np.mean(clf.predict(feats["gen"]) == generated["particle"])
            )
            out["gamma_hadron_accuracy_simulated"] = float(
                np.mean(clf.predict(feats["b"]) == sim_b["particle"])
            )
        return out, curves

    def baseline(self, train: ArraySplit, test: ArraySplit) -> dict[str, Any]:
        """The shower library of fast simulation (the frozen showers of ATLAS): for each wanted
        condition the simulated training event nearest in (particle, log10 E, impact). It
        reproduces the simulation's distributions by construction and generalises to nothing."""
        a, b = self.halves(test)
        m, tm = test.meta, train.meta
        unique = np.unique(np.asarray(tm["energy"]), return_index=True)[1]  # one per replicated event
        library = conditions(tm["particle"][unique], tm["energy"][unique], tm["impact"][unique])
        wanted = conditions(m["particle"][b], m["energy"][b], m["impact"][b])
        distance = np.abs(wanted[:, None, :] - library[None, :, :]).sum(axis=2) + 100 * (
            wanted[:, None, 0] != library[None, :, 0]
        )
        pick = unique[distance.argmin(axis=1)]
        start = time.perf_counter()
        generated = {"charge": tm["charge"][pick], "time": tm["time"][pick],
                     **{k: m[k][b] for k in ("particle", "energy", "impact")}}  # fmt: skip
        per_s = len(b) / max(time.perf_counter() - start, 1e-9)
        values = self.compare(generated, _part(m, a), _part(m, b))["metrics"]
        return {**values, "generated_per_s": per_s, "n_library": len(unique)}

    def plots(self, results, test, predictions, out: Path, networks) -> None:
        from astrocnn.tasks.iact import plots as iact_plots

        if "cnn" not in networks or len(test) < 4:
            return
        result = self.fidelity(networks["cnn"], test)
        a, _ = self.halves(test)
        iact_plots.generated_vs_simulated(
            self.camera, result["generated"], _part(test.meta, a), out / "events.png"
        )
        iact_plots.hillas_overlay(result["tables"], list(fidelity.PARAMETERS), out / "hillas.png")
        iact_plots.correlation_matrices(
            result["correlations"], list(fidelity.PARAMETERS), out / "correlations.png"
        )
        if result["energy_curves"]:
            iact_plots.energy_conditioning(result["energy_curves"], out / "energy_conditioning.png")


def _part(meta: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[idx] for k, v in meta.items()}


def draw_energies(n: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` energies (TeV) from dN/dE ~ E^-2 over [low, high], as the simulation draws them."""
    if low == high:
        return np.full(n, float(low))
    return 1.0 / rng.uniform(1.0 / high, 1.0 / low, size=n)


def draw_impacts(
    particle: int, energy: np.ndarray, table: dict[str, np.ndarray], rng: np.random.Generator, k: int = 20
) -> np.ndarray:
    """Impact distances for the wanted energies, each from one of the ``k`` simulated events of
    the same particle nearest in log10 E (``table``: particle, energy, impact of events that
    passed the cut): the distribution of impact given the energy that the cut leaves."""
    mine = np.asarray(table["particle"]) == particle
    log_e, impact = np.log10(np.asarray(table["energy"])[mine]), np.asarray(table["impact"])[mine]
    order = np.argsort(log_e)
    log_e, impact = log_e[order], impact[order]
    k = min(k, len(log_e))
    centre = np.searchsorted(log_e, np.log10(energy))
    first = np.clip(centre - k // 2, 0, len(log_e) - k)
    return impact[first + rng.integers(k, size=len(energy))]


def surrogate_events(
    network: torch.nn.Module,
    task: IactGenerate,
    particle: int,
    energy: np.ndarray,
    impact: np.ndarray,
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> sim.Events:
    """Generated events in the simulation's own form. What the model does not generate is filled
    in: the core lies at the impact distance in the azimuth of the image's centroid (where the
    simulation puts it: the image is displaced from the source along the core's direction), the
    source and a gamma ray's direction at the camera centre (Settings.source_offset = 0), a
    proton's direction, x_max unknown (NaN), no muon."""
    n = len(energy)
    cond = conditions(np.full(n, particle), energy, impact)
    charge, times = decode(task, sample(network, task, cond, seed=seed, batch_size=batch_size))
    total = np.maximum(charge, 0).sum(axis=1)
    cx = (np.maximum(charge, 0) * task.camera.x).sum(axis=1) / np.maximum(total, 1e-9)
    cy = (np.maximum(charge, 0) * task.camera.y).sum(axis=1) / np.maximum(total, 1e-9)
    azimuth = np.arctan2(cy, cx)
    core = np.stack([impact * np.cos(azimuth), impact * np.sin(azimuth)], axis=1)
    direction = np.zeros((n, 2)) if particle == sim.GAMMA else np.full((n, 2), np.nan)
    return sim.Events(
        charge=charge,
        time=times,
        particle=np.full(n, particle, np.int64),
        energy=np.asarray(energy, np.float64),
        core=core,
        direction=direction,
        source=np.zeros((n, 2)),
        x_max=np.full(n, np.nan),
        muon=np.zeros(n, bool),
    )
