"""What a scientific task bundles: data, output head and loss, metrics, a classical baseline, plots.

A task never trains anything: the engine asks it for data, for the loss of a batch, for the
metrics of a set of predictions and for its baseline, and hands it saved results to plot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from astrocnn.models import create_model

#: The words for a preprocessing that changes nothing.
IDENTITY = "none: the raw images as float32, as they are"


class TaskKind(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    SEGMENTATION = "segmentation"  # a label per pixel or voxel
    RESTORATION = "restoration"  # image -> image
    GENERATION = "generation"

    @property
    def image_output(self) -> bool:
        return self in (TaskKind.SEGMENTATION, TaskKind.RESTORATION, TaskKind.GENERATION)


@dataclass(frozen=True)
class TaskDefaults:
    """Laptop-sized defaults: ``astrocnn train TASK`` with no flag uses these."""

    model: str
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 1000
    #: Networks trained with different seeds on the same data (their spread enters uncertainties).
    ensemble: int = 1
    early_stopping: int | None = None  # patience in epochs
    mlp_options: dict[str, Any] = field(default_factory=lambda: {"hidden": (256, 128)})
    #: Settings of ``astrocnn demo`` where they differ from the above (every family must fit the
    #: demo's ten minutes on a 2-core laptop), and of ``astrocnn demo --quick`` on top of those
    #: (default: a fraction of the demo's data and epochs).
    demo: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)


@dataclass
class ArraySplit:
    """Images, targets, and per-sample metadata (e.g. the signal-to-noise).

    ``x`` is an array (N, C, *S), or a list of N arrays (C, *S_i) where sizes differ (Ising
    lattices of several L)."""

    x: np.ndarray | list[np.ndarray]
    y: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)


def binned_mean(values: np.ndarray, x: np.ndarray, edges, *, empty: float = float("nan")) -> np.ndarray:
    """Mean of ``values`` over each bin [edges[i], edges[i + 1]) of ``x`` (``empty`` where a bin
    holds nothing): the per-bin metrics and profiles of the tasks."""
    which = np.digitize(x, edges) - 1
    return np.array(
        [values[which == b].mean() if np.any(which == b) else empty for b in range(len(edges) - 1)]
    )


class Task(ABC):
    """Subclasses set the class attributes and implement :meth:`generate`, :meth:`metrics` and,
    where the field has one, :meth:`baseline`."""

    name: ClassVar[str]
    kind: ClassVar[TaskKind]
    description: ClassVar[str]
    spatial_dims: ClassVar[int]
    in_channels: ClassVar[int]
    input_size: ClassVar[tuple[int, ...]]
    num_outputs: ClassVar[int]
    defaults: ClassVar[TaskDefaults]
    #: The metric the demo table shows, and whether larger is better.
    headline: ClassVar[tuple[str, bool]]
    #: The file in the run's plots/ folder that tells most about a run (the demo page's thumbnail);
    #: empty, or missing from a run: its first plot other than the training curves.
    key_plot: ClassVar[str] = ""
    class_names: ClassVar[tuple[str, ...]] = ()
    #: Names of the values a regression predicts (CSV columns of ``predict``); default value0, ...
    output_names: ClassVar[tuple[str, ...]] = ()
    #: Whether the standard errors of the metrics come from resampling the test split (200 calls
    #: of :meth:`metrics`); a task whose metrics are a costly fit sets False (binomial errors).
    resample_metrics: ClassVar[bool] = True
    #: Samples per independently seeded chunk of the generator, generated in parallel
    #: processes (``--workers``); None: one call (the generator parallelises itself, or not at all).
    chunk_size: ClassVar[int | None] = None
    #: Whether :meth:`generate` takes ``workers=`` and shares its work out itself (threads over
    #: independently seeded parts, the data the same for any count); with ``chunk_size`` None.
    generates_in_parallel: ClassVar[bool] = False
    #: Whether the images are periodic (a lattice with periodic boundaries): ``astrocnn compare``
    #: then shifts them cyclically (``torch.roll``) instead of bringing in zeros at the border.
    periodic: ClassVar[bool] = False
    #: Options a task takes (``--task-option KEY=VALUE``), e.g. lattice sizes.
    option_names: ClassVar[tuple[str, ...]] = ()
    #: The classical method :meth:`baseline` runs, named for tables and reports.
    baseline_name: ClassVar[str] = ""
    #: Per metric: what it measures and whether larger is better (None: neither, e.g. a bias).
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {}
    #: The quantity binned by a per-bin metric without ``_vs_`` in its name (axis label of its plot).
    bin_axes: ClassVar[dict[str, str]] = {}
    #: What the raw pixel values are, and the units of predicted values (for exported models).
    raw_units: ClassVar[str] = "the units of the images the network was trained on"
    value_units: ClassVar[str] = "in the units of the training targets"

    #: Options added after runs of the task were saved, with the value those runs had (a saved
    #: run's configuration lacks them; :func:`astrocnn.tasks.registry.saved_task` fills them in).
    options_before: ClassVar[dict[str, Any]] = {}

    def options(self) -> dict[str, Any]:
        """The task's options as resolved (saved in the run's configuration)."""
        return {}

    def data_contract(self) -> str:
        """What ``--data`` must hold for this task (``astrocnn tasks NAME``)."""
        size = "x".join(map(str, self.input_size))
        axes = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[self.spatial_dims]
        lines = [
            f"{self.name}: {self.description}",
            f"images   {self.in_channels} channel(s), {size} pixels: HDF5 dataset 'images' (--images-key) "
            f"shaped {axes}, the channel axis optional for one channel; or a CSV with a 'file' column of "
            "FITS/HDF5/NPY/PNG files, one image each",
        ]
        if self.kind is TaskKind.CLASSIFICATION:
            coded = ", ".join(f"{k} = {n}" for k, n in enumerate(self.class_names))
            lines.append(
                f"labels   one class per image: HDF5 dataset 'labels' (--labels-key) or CSV column 'label', "
                f"integers {coded}, or the class names as text"
            )
        elif self.kind is TaskKind.REGRESSION:
            lines.append(
                f"labels   {self.num_outputs} value(s) per image: HDF5 dataset 'targets' or 'labels' "
                "(--labels-key) shaped (N,) or (N, K), or CSV columns besides 'file'"
            )
        else:
            lines.append("labels   an image per image: HDF5 dataset 'labels' or 'targets' (--labels-key)")
        if self.option_names:
            lines.append(f"options  --task-option KEY=VALUE for {', '.join(self.option_names)}")
        lines.append(f"example  astrocnn train {self.name} --data my_images.h5")
        return "\n".join(lines)

    # ---- data ----------------------------------------------------------------------------------
    @abstractmethod
    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        """``n`` samples from the built-in, physically grounded generator (raw units). ``split``
        ("train", "val" or "test") lets a task train on part of its domain only."""

    def splits_from_file(self, path: str, seed: int) -> tuple[ArraySplit, ArraySplit, ArraySplit] | Any:
        """Train, validation and test splits of a file in the family's own format (e.g. what
        ``astrocnn generate`` writes), or None where ``--data`` is a generic labelled file. A
        family that streams large files returns an ``astrocnn.engine.splits.Splits`` instead
        (its training and validation splits datasets of preprocessed (x, y) read on demand)."""
        return None

    @property
    def network_channels(self) -> int:
        """Channels of the network's input: ``in_channels`` unless :meth:`preprocess` adds some
        (e.g. the pixels' coordinates, where the physics is not translation invariant)."""
        return self.in_channels

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        """Raw images (N, C, *S) -> network input; applied to generated data and to user files alike."""
        return x.astype(np.float32, copy=False)

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`preprocess` in torch operations, so that an exported graph takes raw images;
        equal to it within float32 rounding (tested for every task)."""
        return x.float()

    def check_size(self, size: tuple[int, ...]) -> str | None:
        """Why a network trained for this task cannot take images of spatial ``size``, or None.
        A classifier or regressor is trained at ``input_size``; a larger frame needs tiling."""
        if self.kind.image_output or tuple(size) == tuple(self.input_size):
            return None
        expected = "x".join(map(str, self.input_size))
        return (
            f"images are {'x'.join(map(str, size))}, but {self.name} was trained on {expected}; "
            f"cut them to {expected}, or give --tile to classify every {expected} window"
        )

    def describe_preprocessing(self) -> str:
        """:meth:`preprocess` in words exact enough to reimplement (written into model.json)."""
        if type(self).preprocess is Task.preprocess:
            return IDENTITY
        return f"the preprocess() of astrocnn task {self.name!r} (load_exported applies it)"

    def describe_postprocessing(self) -> str:
        """:meth:`postprocess` in words exact enough to reimplement (written into model.json)."""
        if type(self).postprocess is Task.postprocess:
            if self.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
                return "softmax over axis 1 (the class axis)"
            return "none: the values as they are"
        return f"the postprocess() of astrocnn task {self.name!r} (load_exported applies it)"

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """A training batch (B, C, *S) transformed by symmetries of the physics that leave the
        targets unchanged (drawn from torch's global generator, which the engine seeds)."""
        return x

    def augment_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch and its targets, transformed together: for transformations that move
        the targets too (a label map turned with its image, a flow-matching pair drawn afresh from
        its clean image). By default :meth:`augment` of the inputs, the targets as they are."""
        return self.augment(x), y

    # ---- head and loss -------------------------------------------------------------------------
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
            return F.cross_entropy(output, target)
        return F.mse_loss(output, target)

    def postprocess(self, output: torch.Tensor) -> torch.Tensor:
        """Network output -> the natural prediction (class probabilities, values, images)."""
        if self.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
            return output.softmax(dim=1)
        return output

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        if self.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
            return torch.as_tensor(y, dtype=torch.long)
        return torch.as_tensor(y, dtype=torch.float32)

    # ---- evaluation ----------------------------------------------------------------------------
    @abstractmethod
    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        """The field's metrics of ``prediction`` (from :meth:`postprocess`) on ``test``: a flat
        mapping of name to number; a per-bin metric is a list with its edges under ``<name>_bins``."""

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray | dict[str, Any] | None:
        """The classical method on ``test``: its predictions (same form as the network's, scored
        by :meth:`metrics`), or its metrics directly where it is not a predictor, or None."""
        return None

    def network_metrics(self, members: list[nn.Module], test: ArraySplit) -> dict[str, Any]:
        """Metrics that need the trained networks themselves, not only their predictions (e.g. a
        learned order parameter); ``members`` is the ensemble, the run's main network first."""
        return {}

    def build_mlp(self) -> nn.Module:
        """The fully connected network the CNN is compared with."""
        return create_model(
            "mlp", spatial_dims=self.spatial_dims, in_channels=self.network_channels,
            num_outputs=self.num_outputs, input_size=self.input_size, **self.defaults.mlp_options,
        )  # fmt: skip

    def plots(
        self,
        results: dict[str, Any],
        test: ArraySplit,
        predictions: dict[str, np.ndarray],
        out: Path,
        networks: dict[str, nn.Module],
    ) -> None:
        """Write the task's own figures into ``out`` (the run's plots folder); none by default."""
        return None
