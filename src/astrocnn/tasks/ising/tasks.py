"""Phase transitions of the 2-D Ising model.

``ising-phase``: as in Carrasquilla and Melko (Nature Physics 2017) a network sees only clearly
ordered (T < 2.0) and clearly disordered (T > 2.5) configurations and is never told T_c. Its
estimate of T_c is the Binder-cumulant crossing, between lattice sizes, of the order parameter
it learned: the flip-odd part of its first layer's response, summed over the lattice (see
``odd_features`` and ``analysis``), averaged over an ensemble of networks trained with
different seeds. The classical baseline is the same crossing
for the magnetisation itself. ``ising-temperature``: regress T from a configuration; the
baseline is the exact posterior mean of T given the energy per spin, the canonical ensemble's
sufficient statistic for T: the bound.

Task options (``--task-option KEY=VALUE`` or ``task_options`` in the YAML): ``sizes`` (lattice
sizes, e.g. ``16,32,64``) and ``temperatures`` (the test grid, ``START:STOP:STEP`` or a comma
list; several ranges joined with ``+``); for ``ising-phase`` also ``refine`` (``HALF_WIDTH:STEP``
or ``no``: the test grid is refined around the crossing that a first, coarse scan shows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from astrocnn.models import create_model
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind, binned_mean
from astrocnn.tasks.ising import analysis, baseline
from astrocnn.tasks.ising import plots as ising_plots
from astrocnn.tasks.ising import simulation as ising
from astrocnn.tasks.registry import register_task

SIZES = (16, 32, 64)
#: ising-phase's coarse test grid: the whole range; ``refine`` adds finer steps where this scan's
#: cumulants cross (analysis.refinement), never placed by the known T_c.
TEMPERATURES = "1.0:3.5:0.1"
ORDERED_BELOW, DISORDERED_ABOVE = 2.0, 2.5
ORDERED = 1  # class index of the ordered phase
#: Fractions of each (L, T) cell of a file from ``astrocnn generate ising`` for training and validation.
FILE_FRACTIONS = (0.3, 0.1)


def parse_grid(text: str) -> np.ndarray:
    """``"1.0:3.5:0.1+2.1:2.44:0.02"``: the union of ranges and lists, sorted."""
    return np.unique(np.concatenate([ising.parse_temperatures(part) for part in str(text).split("+")]))


def parse_sizes(value: Any) -> tuple[int, ...]:
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        sizes = tuple(sorted({int(v) for v in parts}))
    except (TypeError, ValueError):
        raise ValueError(f"sizes {value!r} is not a comma list of lattice sizes, e.g. 16,32,64") from None
    if not sizes or min(sizes) < 8 or max(sizes) > 512:
        raise ValueError(f"sizes {value!r}: each lattice size must be between 8 and 512")
    return sizes


class PerSizeMLP(nn.Module):
    """One fully connected network per lattice size, chosen by the input's size: a dense layer
    cannot take lattices of several sizes, unlike a convolutional network with global pooling."""

    def __init__(self, sizes, num_outputs: int, hidden=(256, 128)):
        super().__init__()
        self.name = "mlp"
        self.nets = nn.ModuleDict(
            {
                str(L): create_model(
                    "mlp", in_channels=1, num_outputs=num_outputs, input_size=(L, L), hidden=tuple(hidden)
                )
                for L in sizes
            }
        )

    def forward(self, x):  # (B, 1, L, L)
        return self.nets[str(x.shape[-1])](x)


class _IsingTask(Task):
    raw_units = "spins, +1 or -1"
    spatial_dims = 2
    in_channels = 1
    option_names = ("sizes", "temperatures")
    generates_in_parallel = True
    #: Periodic boundaries: a lattice rolled by any number of sites is the same configuration of
    #: the same energy, so ``astrocnn compare`` shifts lattices cyclically.
    periodic = True

    def __init__(self, sizes: Any = SIZES, temperatures: Any = "1.0:3.5:0.05"):
        self.sizes = parse_sizes(sizes)
        self.grid_text = ",".join(map(str, temperatures)) if isinstance(temperatures, list) else temperatures
        self.grid = parse_grid(self.grid_text)
        self.input_size = (self.sizes[-1], self.sizes[-1])

    def options(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "temperatures": self.grid_text}

    #: How the labels come from the file (each task says).
    label_contract: ClassVar[str] = ""

    def data_contract(self) -> str:
        sizes = ",".join(map(str, self.sizes))
        return "\n".join([
            f"{self.name}: {self.description}",
            "data     the HDF5 file `astrocnn generate ising` writes: one group per lattice size L, "
            "L<L>/configs (N, L, L) int8 spins +1 or -1, L<L>/T, L<L>/energy, L<L>/magnetisation, "
            "L<L>/chain (Markov chain ids: splits keep whole chains together)",
            f"labels   {self.label_contract}",
            f"options  --task-option sizes={sizes} picks the lattice sizes; temperatures={self.grid_text} "
            "sets the generated test grid"
            + (f"; refine={self.refine_text} refines it around its own Binder crossing (or no)"
               if hasattr(self, "refine_text") else ""),
            f"example  astrocnn generate ising --sizes {sizes} --out ising.h5 && "
            f"astrocnn train {self.name} --data ising.h5 --task-option sizes={sizes}",
        ])  # fmt: skip

    def temperatures(self, split: str) -> np.ndarray:
        return self.grid

    def check_size(self, size: tuple[int, ...]) -> str | None:
        """Any square periodic lattice: the networks end in a global average (the Ising read-out
        is intensive), and were trained on several sizes."""
        if len(size) == 2 and size[0] == size[1]:
            return None
        return f"lattices are {'x'.join(map(str, size))}; {self.name} takes square L x L lattices"

    def generate(self, n: int, rng: np.random.Generator, split: str = "test", workers: int = 1) -> ArraySplit:
        """``n`` configurations per (L, T), the pairs shared out to ``workers`` threads."""
        data = ising.generate_refined(
            self.sizes,
            self.temperatures(split),
            n,
            seed=int(rng.integers(2**62)),
            refine=self.refinement(split),
            workers=workers,
        )
        return self._split(ising.to_hdf5_datasets(data))

    def refinement(self, split: str) -> tuple[float, float] | None:
        """How the generated ``split``'s grid is refined around its own crossing (None: not)."""
        return None

    def _split(self, groups: dict[str, np.ndarray], select=None) -> ArraySplit:
        """An ArraySplit from ``to_hdf5_datasets``-shaped arrays (``select[L]``: indices to keep)."""
        xs, meta = [], {"temperature": [], "size": [], "energy": [], "magnetisation": [], "chain": []}
        for L in self.sizes:
            g = f"L{L}"
            keep = slice(None) if select is None else select[L]
            configs = groups[f"{g}/configs"][keep]
            xs.extend(configs[:, None].astype(np.float32))
            meta["size"].append(np.full(len(configs), L))
            for key, name in (("temperature", "T"), ("energy", "energy"), ("magnetisation", "magnetisation")):
                meta[key].append(np.asarray(groups[f"{g}/{name}"][keep], dtype=np.float64))
            meta["chain"].append(np.asarray(groups[f"{g}/chain"])[keep])
        merged = {k: np.concatenate(v) for k, v in meta.items()}
        return ArraySplit(xs, self.targets(merged["temperature"]), merged)

    def splits_from_file(self, path: str, seed: int) -> tuple[ArraySplit, ArraySplit, ArraySplit]:
        """Train, validation and test splits of a file written by ``astrocnn generate ising``:
        each (L, T) cell is divided by ``FILE_FRACTIONS``, whole chains kept together."""
        groups = baseline.read_ising_file(path, self.sizes)
        parts: list[dict[int, np.ndarray]] = [{}, {}, {}]
        rng = np.random.default_rng(seed)
        for L in self.sizes:
            t, chain = groups[f"L{L}/T"], groups[f"L{L}/chain"]
            buckets: list[list[np.ndarray]] = [[], [], []]
            for T in np.unique(t):
                cell = np.flatnonzero(t == T)
                chains = rng.permutation(np.unique(chain[cell]))
                cut = np.cumsum([round(f * len(chains)) for f in FILE_FRACTIONS])
                for k, owned in enumerate(np.split(chains, cut)):
                    buckets[k].append(cell[np.isin(chain[cell], owned)])
            for k in range(3):
                parts[k][L] = np.sort(np.concatenate(buckets[k]))
        train, val, test = (self._split(groups, p) for p in parts)
        return self._training_range(train), self._training_range(val), test

    def _training_range(self, split: ArraySplit) -> ArraySplit:
        return split

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The Hamiltonian's symmetries: the global flip s -> -s (per configuration), and for the
        batch a periodic translation and one of the eight rotations and reflections of the square
        lattice. Neither phase nor temperature changes; the training set grows by L^2 x 16."""
        sign = torch.randint(0, 2, (x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) * 2 - 1
        x = x * sign.to(x.dtype)
        shift = torch.randint(0, x.shape[-1], (2,)).tolist()
        x = torch.roll(x, shifts=shift, dims=(-2, -1))
        k, mirror = torch.randint(0, 4, (1,)).item(), torch.randint(0, 2, (1,)).item()
        x = torch.rot90(x, k, dims=(-2, -1))
        return x.flip(-1) if mirror else x

    def targets(self, temperature: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def build_mlp(self) -> nn.Module:
        return PerSizeMLP(self.sizes, self.num_outputs, self.defaults.mlp_options.get("hidden", (256, 128)))


class _Stop(Exception):
    """Carries the first activation's output out of a forward pass that need go no further."""

    def __init__(self, output: torch.Tensor):
        self.output = output


def first_activation(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of the first nonlinear layer the network applies, averaged over the lattice
    (B, C): for a CNN, local detectors with a 3 x 3 receptive field; for a fully connected
    network, its first hidden layer. The forward pass stops there."""

    def stop(_module, _args, output):
        raise _Stop(output)

    hooks = [
        m.register_forward_hook(stop)
        for m in model.modules()
        if type(m).__module__ == "torch.nn.modules.activation"
    ]
    try:
        model(x)
    except _Stop as found:
        out = found.output
        return out.mean(dim=tuple(range(2, out.dim()))) if out.dim() > 2 else out
    finally:
        for h in hooks:
            h.remove()
    raise TypeError(f"{type(model).__name__} has no activation layer to read an order parameter from")


@torch.no_grad()
def odd_features(model: nn.Module, configs: list[np.ndarray], batch_size: int = 512) -> np.ndarray:
    """(f(s) - f(-s)) / 2 of the first activation's lattice-averaged output f: the part of what
    the network computes first that changes sign under the global spin flip (N, C).

    Why the first layer: a sum over the lattice of a *local* flip-odd field scales like the
    magnetisation, so its Binder cumulant crosses at T_c. Deeper features see the whole lattice
    and saturate (they are nonlinear functions of the global order), which moves the crossing:
    the penultimate layer's odd part put T_c 1.6 % high in the default run (docs/ising.md)."""
    model.eval()
    out: list[np.ndarray | None] = [None] * len(configs)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(c.shape, []).append(i)
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            x = torch.from_numpy(np.stack([configs[i] for i in chunk]))
            odd = (first_activation(model, x) - first_activation(model, -x)) / 2
            for i, row in zip(chunk, odd.numpy(), strict=True):
                out[i] = row
    return np.stack(out)  # type: ignore[arg-type]


@register_task
class IsingPhase(_IsingTask):
    name = "ising-phase"
    label_contract = (
        f"from T, never from T_c: ordered (1) for T < {ORDERED_BELOW}, disordered (0) for T > "
        f"{DISORDERED_ABOVE}; configurations in between are only tested"
    )
    kind = TaskKind.CLASSIFICATION
    description = (
        "2-D Ising model: ordered or disordered, trained away from T_c; T_c from the Binder crossing "
        "of the flip-odd part of the network's first layer"
    )
    num_outputs = 2
    class_names = ("disordered", "ordered")
    headline = ("tc_relative_error", False)
    key_plot = "ordered_output_vs_T.png"
    baseline_name = "Binder-cumulant crossing of the magnetisation"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "accuracy": (
            f"fraction classified correctly where the phase is clear (T < {ORDERED_BELOW} "
            f"or T > {DISORDERED_ABOVE}, the training ranges)",
            True,
        ),
        "accuracy_L*": ("accuracy for one lattice size", True),
        "tc_estimate": (
            "T_c from the crossings of the Binder cumulants of an order parameter between "
            "lattice sizes: for a network, of the flip-odd part of its first layer "
            "(mean over the ensemble); for the baseline, of the magnetisation",
            None,
        ),
        "tc_uncertainty": (
            "standard error of tc_estimate: the test configurations' noise (bootstrap "
            "over whole Markov chains) and, for an ensemble, the spread between its "
            "networks, in quadrature; for one network NaN (the spread between training runs "
            "is unknown, not zero), and so is tc_pull",
            False,
        ),
        "tc_uncertainty_statistical": (
            "part of tc_uncertainty from the finite test set (block bootstrap)",
            False,
        ),
        "tc_uncertainty_training": (
            "part of tc_uncertainty from training: the standard error of the "
            "mean of the ensemble's estimates (undefined for one network)",
            False,
        ),
        "tc_relative_error": (
            "|tc_estimate - T_c| / T_c, against the exact T_c = 2 / ln(1 + sqrt 2) = 2.2692 (Onsager)",
            False,
        ),
        "tc_pull": (
            "(tc_estimate - exact T_c) / tc_uncertainty: the error in units of its own "
            "uncertainty; |pull| <= 2 is expected if the uncertainty is honest, its sign says "
            "whether the estimate is high or low",
            None,
        ),
        "tc_binder_L*_L*": (
            "where the Binder cumulants of these two lattice sizes cross (tc_estimate is the crossing "
            "of the smallest and largest lattice)",
            None,
        ),
        "tc_members": ("tc_estimate of each network of the ensemble", None),
        "tc_grid_step": (
            "the test grid's step at the crossing: above 1.5 / L for the largest L the estimate is "
            "biased low (a warning says so); the default refinement puts 0.02 there",
            None,
        ),
        "tc_L*": (
            "where the mean 'ordered' output crosses 1/2 for this lattice size: drifts with L, "
            "kept for comparison only (docs/ising.md)",
            None,
        ),
        "tc_output_crossing": (
            "the tc_L* extrapolated in 1/L (Carrasquilla and Melko's estimator): "
            "does not converge to T_c, for comparison only",
            None,
        ),
        "tc_fit_amplitude": ("slope a of the fit T(L) = T_inf + a / L through the tc_L*", None),
    }
    defaults = TaskDefaults(
        model="resnet18",
        model_options={"small_input": True, "width": 0.25},
        epochs=3,
        batch_size=64,
        lr=2e-3,
        n_train=20,
        n_val=6,
        # the Binder cumulant needs a few hundred configurations per (L, T); at 200 the estimate
        # scattered by 0.0069 between data sets, 0.30 % of T_c, too near the 0.5 % goal (a seed in
        # five missed it); 400 bring it to about 0.0049 (docs/ising.md)
        n_test=400,
        ensemble=3,
        demo={"n_test": 200},
        quick={
            "n_train": 10,
            "n_val": 4,
            "n_test": 100,
            "epochs": 2,
            "ensemble": 2,
            "task_options": {"sizes": "16,32"},
        },
    )

    option_names = ("sizes", "temperatures", "refine")

    def __init__(self, sizes: Any = SIZES, temperatures: Any = TEMPERATURES, refine: Any = analysis.REFINE):
        super().__init__(sizes, temperatures)
        self.refine_text = str(refine)
        self.refine = analysis.parse_refine(self.refine_text)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "refine": self.refine_text}

    def temperatures(self, split: str) -> np.ndarray:
        if split == "test":
            return self.grid
        return self.grid[(self.grid < ORDERED_BELOW) | (self.grid > DISORDERED_ABOVE)]

    def refinement(self, split: str) -> tuple[float, float] | None:
        """The test grid zooms in where the coarse scan's magnetisation cumulants cross; the
        training ranges need no zoom."""
        return self.refine if split == "test" else None

    def _training_range(self, split: ArraySplit) -> ArraySplit:
        t = split.meta["temperature"]
        keep = np.flatnonzero((t < ORDERED_BELOW) | (t > DISORDERED_ABOVE))
        return ArraySplit(
            [split.x[i] for i in keep], split.y[keep], {k: v[keep] for k, v in split.meta.items()}
        )

    def targets(self, temperature: np.ndarray) -> np.ndarray:
        # only the clear ranges train and score; in between, the label is the nearer range's (T_c
        # is never used)
        return (temperature < (ORDERED_BELOW + DISORDERED_ABOVE) / 2).astype(np.int64)

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        t, size = test.meta["temperature"], test.meta["size"]
        clear = (t < ORDERED_BELOW) | (t > DISORDERED_ABOVE)
        correct = prediction.argmax(axis=1) == test.y
        result: dict[str, Any] = {"accuracy": float(correct[clear].mean())}
        for L in self.sizes:
            result[f"accuracy_L{L}"] = float(correct[clear & (size == L)].mean())
        result.update(analysis.output_crossings(prediction[:, ORDERED], t, size))
        return result

    def network_metrics(self, members: list[nn.Module], test: ArraySplit) -> dict[str, Any]:
        """T_c from the learned order parameter of every member of the ensemble."""
        estimates = [
            analysis.tc_from_cumulants(
                analysis.learned_order_parameter(odd_features(m, test.x), test.meta["size"]),
                test.meta["temperature"],
                test.meta["size"],
                test.meta.get("chain"),
            )
            for m in members
        ]
        return analysis.combine_members(estimates).as_metrics()

    def baseline(self, train: ArraySplit, test: ArraySplit) -> dict[str, Any]:
        return baseline.binder_crossing(test)

    def plots(self, results, test, predictions, out: Path, networks) -> None:
        """The figures against T shade the training ranges: T_c lies between them, unseen."""
        trained = (ORDERED_BELOW, DISORDERED_ABOVE)
        ising_plots.ordered_output(
            test, predictions, ORDERED, out / "ordered_output_vs_T.png", trained=trained
        )
        ising_plots.output_crossing_drift(results, self.sizes, out / "output_crossing_vs_L.png")
        ising_plots.binder(test, out / "binder_cumulant.png", trained=trained)
        if "cnn" in networks:
            phi = analysis.learned_order_parameter(odd_features(networks["cnn"], test.x), test.meta["size"])
            ising_plots.binder(
                test, out / "binder_cumulant_cnn.png", phi=phi, label="CNN's order parameter", trained=trained
            )
        ising_plots.estimates(results, out / "tc_estimates.png")
        ising_plots.configurations(test, out / "configurations.png")
        if "cnn" in networks:
            ising_plots.first_layer_filters(networks["cnn"], out / "first_layer_filters.png")


@register_task
class IsingTemperature(_IsingTask):
    name = "ising-temperature"
    label_contract = "the temperature T of each configuration (L<L>/T), in units of J / k_B"
    kind = TaskKind.REGRESSION
    value_units = "the temperature T, in units of J / k_B"
    description = "2-D Ising model: the temperature of a spin configuration (regression)"
    num_outputs = 1
    headline = ("rmse", False)
    key_plot = "predicted_temperature.png"
    baseline_name = "T from the energy per spin (exact posterior mean: the bound)"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "rmse": (
            "root-mean-square error of the predicted temperature (T in units of J / k_B); for an "
            "ensemble, of the mean of its networks' predictions",
            False,
        ),
        "rmse_members": ("rmse of each network of the ensemble alone", False),
        "mae": ("mean absolute error of the predicted temperature", False),
        "bias": ("mean of predicted minus true T: 0 is unbiased, positive reads too hot", None),
        "rmse_L*": ("RMSE of T for one lattice size (larger lattices fluctuate less)", False),
        "rmse_vs_T": (
            "RMSE of T in bins of the true temperature: largest where the energy varies slowly with T",
            False,
        ),
    }
    defaults = TaskDefaults(
        model="resnet18",
        # a nonlinear read-out after the global pooling: T is a nonlinear function of the mean
        # energy, which the pooled features can hold but a linear layer cannot invert
        # group norm: batch norm's running statistics mix lattice sizes whose deep features differ
        # (their border share differs), and its evaluation-mode outputs jumped from epoch to epoch.
        # Zero padding (not circular) lets the network tell the lattice size from the border,
        # which the best estimate of T needs: the spread of the energy at given T depends on L
        model_options={"small_input": True, "width": 0.25, "head_hidden": [64], "norm": "group"},
        epochs=12,
        batch_size=64,
        lr=2e-3,
        n_train=40,  # with 20 the network stopped at 1.075 times the energy bound (docs/ising.md)
        n_val=6,
        n_test=20,
        # scored on the mean of 3 networks' predictions (a deep ensemble): one network stayed 4 - 7 %
        # above the energy bound over five seeds (docs/ising.md); the demo trains one, for its time
        ensemble=3,
        demo={"ensemble": 1},
        quick={"n_train": 10, "n_val": 4, "n_test": 10, "epochs": 4},
    )

    def __init__(self, sizes: Any = (16, 24, 32), temperatures: Any = "1.0:3.5:0.05"):
        super().__init__(sizes, temperatures)

    #: The network learns T standardised over the grid (mean and spread of 1.0 ... 3.5).
    T_MEAN, T_SCALE = 2.25, 0.75

    def targets(self, temperature: np.ndarray) -> np.ndarray:
        return temperature.astype(np.float32)[:, None]

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        return (torch.as_tensor(y, dtype=torch.float32) - self.T_MEAN) / self.T_SCALE

    def postprocess(self, output: torch.Tensor) -> torch.Tensor:
        return output * self.T_SCALE + self.T_MEAN

    def describe_postprocessing(self) -> str:
        return f"output * {self.T_SCALE} + {self.T_MEAN} (the network learns T standardised)"

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        t, size = test.meta["temperature"], test.meta["size"]
        error = prediction[:, 0] - t
        result: dict[str, Any] = {
            "rmse": float(np.sqrt(np.mean(error**2))),
            "mae": float(np.mean(np.abs(error))),
            "bias": float(np.mean(error)),
        }
        for L in self.sizes:
            result[f"rmse_L{L}"] = float(np.sqrt(np.mean(error[size == L] ** 2)))
        temps = np.unique(t)
        edges = np.concatenate([[temps[0] - 0.025], (temps[:-1] + temps[1:]) / 2, [temps[-1] + 0.025]])
        result["rmse_vs_T"] = np.sqrt(binned_mean(error**2, t, edges)).tolist()
        result["rmse_vs_T_bins"] = [round(float(e), 4) for e in edges]
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        return baseline.temperature_from_energy(train, test, self.sizes)

    def plots(self, results, test, predictions, out, networks) -> None:
        ising_plots.temperature_predictions(test, predictions, out / "predicted_temperature.png")
        ising_plots.rmse_vs_temperature(results, out / "rmse_vs_T.png")
        if "cnn" in networks:
            ising_plots.first_layer_filters(networks["cnn"], out / "first_layer_filters.png")
