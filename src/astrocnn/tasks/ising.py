"""Phase transitions of the 2-D Ising model (Carrasquilla and Melko, Nature Physics 2017).

``ising-phase``: a network sees only clearly ordered (T < 2.0) and clearly disordered (T > 2.5)
spin configurations; applied to all temperatures, its mean "ordered" output crosses 1/2 at an
estimate T_c(L) for each lattice size, and T_c(L) = T_c + a L^(-1/nu) with nu = 1 extrapolates
to the infinite lattice. The classical baseline is the crossing of Binder cumulants of the same
Monte-Carlo data. ``ising-temperature``: regress T from a configuration; the classical baseline
inverts the energy per spin, the canonical ensemble's sufficient statistic for T.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from torch import nn

from astrocnn.models import create_model
from astrocnn.sim import ising
from astrocnn.tasks import ising_analysis as analysis
from astrocnn.tasks import ising_plots
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind, binned_mean
from astrocnn.tasks.registry import register_task

SIZES = (16, 24, 32)
TEMPERATURES = np.round(np.arange(1.0, 3.5 + 1e-9, 0.05), 10)
ORDERED_BELOW, DISORDERED_ABOVE = 2.0, 2.5
ORDERED = 1  # class index of the ordered phase


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
    spatial_dims = 2
    in_channels = 1
    input_size = (SIZES[-1], SIZES[-1])
    sizes = SIZES

    def temperatures(self, split: str) -> np.ndarray:
        return TEMPERATURES

    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        """``n`` configurations per (L, T)."""
        data = ising.generate(self.sizes, self.temperatures(split), n, seed=int(rng.integers(2**62)))
        xs, meta = [], {"temperature": [], "size": [], "energy": [], "magnetisation": []}
        for size, samples in data.items():
            for s in samples:
                xs.extend(s.configs[:, None].astype(np.float32))
                meta["temperature"].append(np.full(len(s.configs), s.temperature))
                meta["size"].append(np.full(len(s.configs), size))
                meta["energy"].append(s.energy)
                meta["magnetisation"].append(s.magnetisation)
        meta = {k: np.concatenate(v) for k, v in meta.items()}
        return ArraySplit(xs, self.targets(meta["temperature"]), meta)

    def targets(self, temperature: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def build_mlp(self) -> nn.Module:
        return PerSizeMLP(self.sizes, self.num_outputs, self.defaults.mlp_options.get("hidden", (256, 128)))


@register_task
class IsingPhase(_IsingTask):
    name = "ising-phase"
    kind = TaskKind.CLASSIFICATION
    description = "2-D Ising model: ordered or disordered? T_c from where the network is undecided"
    num_outputs = 2
    class_names = ("disordered", "ordered")
    headline = ("tc_relative_error", False)
    defaults = TaskDefaults(
        model="resnet18",
        model_options={"small_input": True, "width": 0.25},
        epochs=6,
        batch_size=64,
        lr=2e-3,
        n_train=40,
        n_val=10,
        n_test=200,  # the Binder cumulant needs a few hundred configurations per (L, T)
        quick={"n_train": 20, "n_val": 6, "n_test": 80, "epochs": 4},
    )

    def temperatures(self, split: str) -> np.ndarray:
        if split == "test":
            return TEMPERATURES
        return TEMPERATURES[(TEMPERATURES < ORDERED_BELOW) | (TEMPERATURES > DISORDERED_ABOVE)]

    def targets(self, temperature: np.ndarray) -> np.ndarray:
        return (temperature < ising.TC).astype(np.int64)  # the exact phase; only the clear range trains

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        t, size = test.meta["temperature"], test.meta["size"]
        clear = (t < ORDERED_BELOW) | (t > DISORDERED_ABOVE)
        correct = prediction.argmax(axis=1) == test.y
        result: dict[str, Any] = {"accuracy": float(correct[clear].mean())}
        for L in self.sizes:
            result[f"accuracy_L{L}"] = float(correct[clear & (size == L)].mean())
        estimate = analysis.tc_from_outputs(prediction[:, ORDERED], t, size)
        result.update(estimate.as_metrics())
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> dict[str, Any]:
        """Binder-cumulant crossings of the test split's magnetisations."""
        m, t, size = test.meta["magnetisation"], test.meta["temperature"], test.meta["size"]
        return analysis.tc_from_binder(m, t, size).as_metrics()

    def plots(self, results, test, predictions, out, networks) -> None:
        ising_plots.ordered_output(test, predictions, ORDERED, out / "ordered_output_vs_T.png")
        ising_plots.extrapolation(results, self.sizes, out / "finite_size_extrapolation.png")
        ising_plots.binder(test, out / "binder_cumulant.png")
        ising_plots.configurations(test, out / "configurations.png")
        if "cnn" in networks:
            ising_plots.first_layer_filters(networks["cnn"], out / "first_layer_filters.png")


@register_task
class IsingTemperature(_IsingTask):
    name = "ising-temperature"
    kind = TaskKind.REGRESSION
    description = "2-D Ising model: the temperature of a spin configuration (regression)"
    num_outputs = 1
    headline = ("rmse", False)
    defaults = TaskDefaults(
        model="resnet18",
        model_options={"small_input": True, "width": 0.25},
        epochs=8,
        batch_size=64,
        lr=2e-3,
        n_train=20,
        n_val=6,
        n_test=20,
        quick={"n_train": 10, "n_val": 4, "n_test": 10, "epochs": 4},
    )

    def targets(self, temperature: np.ndarray) -> np.ndarray:
        return temperature.astype(np.float32)[:, None]

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
        edges = np.concatenate([[TEMPERATURES[0] - 0.025], (TEMPERATURES[:-1] + TEMPERATURES[1:]) / 2,
                                [TEMPERATURES[-1] + 0.025]])  # fmt: skip
        result["rmse_vs_T"] = np.sqrt(binned_mean(error**2, t, edges)).tolist()
        result["rmse_vs_T_bins"] = [round(float(e), 4) for e in edges]
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        """T from the energy per spin: a monotone fit of T against E for each L (the energy rises
        with T and carries all the information a configuration holds about it)."""
        out = np.empty((len(test.y), 1), dtype=np.float32)
        for L in self.sizes:
            fit = train.meta["size"] == L
            iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
            iso.fit(train.meta["energy"][fit], train.meta["temperature"][fit])
            use = test.meta["size"] == L
            out[use, 0] = iso.predict(test.meta["energy"][use])
        return out

    def plots(self, results, test, predictions, out, networks) -> None:
        ising_plots.temperature_predictions(test, predictions, out / "predicted_temperature.png")
        from astrocnn.tasks import plotting

        plotting.metric_vs_bins(results, "rmse_vs_T", "temperature", out / "rmse_vs_T.png", log_x=False)
        if "cnn" in networks:
            ising_plots.first_layer_filters(networks["cnn"], out / "first_layer_filters.png")
