"""Tasks for a scientist's own labelled images: ``classify``, ``regress``, ``segment``, ``restore``.

Their image shape, channels, classes and output width are not fixed in code: they are read from
the ``--data`` file when a run starts (:meth:`options_from_data`) and saved as the run's task
options, so that ``evaluate``, ``predict`` and ``export`` rebuild the same task without the file.
Inputs are standardised per channel with the mean and standard deviation of the training split;
regression targets are standardised the same way for the loss and returned in their own units.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from scipy import ndimage
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from astrocnn.errors import OptionError
from astrocnn.models import create_model
from astrocnn.tasks import plotting
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind
from astrocnn.tasks.registry import register_task

#: Images used to estimate the per-channel mean and standard deviation.
STATS_SAMPLES = 512
#: The classical baselines see each image block-averaged to at most this many pixels per axis.
BASELINE_PIXELS = 16
#: Training pixels the per-pixel segmentation baseline is fitted on.
BASELINE_PIXEL_SAMPLES = 20_000
_AXES = {1: "L", 2: "H x W", 3: "D x H x W"}


def _numbers(value: Any, kind: type, name: str) -> list:
    """A task option given as a list (YAML) or as comma-separated text (``--task-option``)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        return [kind(v) for v in items if str(v).strip() != ""]
    except (TypeError, ValueError):
        raise OptionError(f"task option {name} must be a list of numbers, got {value!r}") from None


def layout_of(image_shape: tuple[int, ...], spatial_dims: int | None) -> tuple[int, int, tuple[int, ...]]:
    """(spatial_dims, channels, spatial size) of one stored image.

    One axis is a 1-D signal (L). Without ``spatial_dims``: 2 axes are a single-channel (H, W)
    image; 3 axes are (C, H, W) when the first is at most 8 long, (H, W, C) when the last is at
    most 4 (PNG/JPEG colour), else a single-channel volume (D, H, W); 4 axes a (C, D, H, W)
    volume. With ``spatial_dims``, a channel axis is present when there is one axis more."""
    shape = tuple(int(n) for n in image_shape)
    rank = len(shape)
    if spatial_dims is None:
        if rank == 1:
            spatial_dims = 1
        elif rank == 2:
            spatial_dims = 2
        elif rank == 3:
            spatial_dims = 2 if shape[0] <= 8 or shape[-1] <= 4 else 3
        elif rank == 4:
            spatial_dims = 3
        else:
            raise OptionError(
                f"images of shape {shape} are not 1-, 2- or 3-D; give --task-option spatial_dims=N"
            )
    if spatial_dims not in _AXES:
        raise OptionError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    if rank == spatial_dims:
        return spatial_dims, 1, shape
    if rank == spatial_dims + 1:
        if shape[0] <= 8 or shape[-1] > 4:
            return spatial_dims, shape[0], shape[1:]
        return spatial_dims, shape[-1], shape[:-1]
    raise OptionError(f"images of shape {shape} are not {spatial_dims}-D with or without a channel axis")


def block_mean(x: np.ndarray, most: int) -> np.ndarray:
    """(N, C, *S) averaged over blocks so that each spatial axis has at most ``most`` pixels
    (edges padded by repetition where a size is not a multiple of the block)."""
    blocks = [max(1, math.ceil(s / most)) for s in x.shape[2:]]
    pad = [(0, 0), (0, 0), *((0, -s % b) for s, b in zip(x.shape[2:], blocks, strict=True))]
    x = np.pad(x, pad, mode="edge")
    shape = [x.shape[0], x.shape[1]]
    for s, b in zip(x.shape[2:], blocks, strict=True):
        shape += [s // b, b]
    return x.reshape(shape).mean(axis=tuple(range(3, len(shape), 2)))


class _FromData(Task):
    """A task whose shapes come from the user's file (see the module docstring)."""

    learns_from_data: ClassVar[bool] = True
    #: How each kind reads its labels, for ``astrocnn tasks NAME``.
    label_contract: ClassVar[str] = ""
    option_names = ("spatial_dims", "in_channels", "input_size", "mean", "std")
    headline = ("accuracy", True)

    def __init__(
        self,
        *,
        spatial_dims: Any = None,
        in_channels: Any = None,
        input_size: Any = None,
        mean: Any = None,
        std: Any = None,
    ):
        self.spatial_dims = int(spatial_dims) if spatial_dims is not None else None
        self.in_channels = int(in_channels) if in_channels is not None else None
        self.input_size = tuple(_numbers(input_size, int, "input_size")) or None
        self.mean = _numbers(mean, float, "mean")
        self.std = _numbers(std, float, "std")
        if self.input_size is not None and self.spatial_dims is not None:
            if len(self.input_size) != self.spatial_dims:
                raise ValueError(f"input_size {self.input_size} is not {self.spatial_dims}-D")
        if self.std and min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")

    @property
    def configured(self) -> bool:
        return self.input_size is not None and self.in_channels is not None

    def options(self) -> dict[str, Any]:
        return {
            "spatial_dims": self.spatial_dims,
            "in_channels": self.in_channels,
            "input_size": list(self.input_size) if self.input_size else None,
            "mean": self.mean,
            "std": self.std,
        }

    @property
    def defaults(self) -> TaskDefaults:  # type: ignore[override]
        return self.sized_defaults()

    def sized_defaults(self) -> TaskDefaults:
        """Images under 64 pixels keep their resolution through the stem (``small_input``)."""
        small = self.input_size is None or min(self.input_size) < 64
        return TaskDefaults(
            model="resnet18",
            model_options={"small_input": small, "width": 0.5},
            epochs=20,
            batch_size=64,
            lr=1e-3,
            early_stopping=5,
        )

    # ---- configuration from the file -----------------------------------------------------------
    @classmethod
    def options_from_data(cls, info, given: dict[str, Any]) -> dict[str, Any]:
        """Task options for the file described by ``info`` (:class:`LabelledInfo`); options the
        user gave (``given``) win. The statistics are set later, from the training split."""
        dims = given.get("spatial_dims")
        spatial_dims, channels, size = layout_of(info.image_shape, int(dims) if dims is not None else None)
        return {"spatial_dims": spatial_dims, "in_channels": channels, "input_size": list(size)}

    def with_statistics(self, x: np.ndarray) -> dict[str, Any]:
        """Options adding the per-channel mean and standard deviation of training images ``x``."""
        axes = (0, *range(2, x.ndim))
        std = x.std(axis=axes, dtype=np.float64)
        return {
            **self.options(),
            "mean": [float(v) for v in x.mean(axis=axes, dtype=np.float64)],
            "std": [float(v) if v > 0 else 1.0 for v in std],
        }

    def data_contract(self) -> str:
        return (
            f"{self.name}: {self.description}\n"
            "images   any size and channel count, read from the file: HDF5 dataset 'images' "
            "(--images-key), shape (N, H, W), (N, C, H, W), (N, H, W, C) for 2-D, (N, L) or (N, C, L) for "
            "1-D, (N, D, H, W) or (N, C, D, H, W) for 3-D (--task-option spatial_dims=N settles a "
            "doubt); or a CSV with a 'file' column of FITS/HDF5/NPY/PNG files\n"
            f"labels   {self.label_contract}\n"
            "scaling  inputs standardised per channel with the training split's mean and standard "
            "deviation (saved in config.yaml)\n"
            f"example  astrocnn train {self.name} --data my_images.h5"
        )

    # ---- data ----------------------------------------------------------------------------------
    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        raise OptionError(
            f"{self.name} has no built-in generator: it learns from your data (--data FILE); "
            f"see `astrocnn tasks {self.name}`"
        )

    def _scale(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (1, -1, *([1] * (ndim - 2)))
        mean = np.asarray(self.mean or [0.0], dtype=np.float32).reshape(shape)
        std = np.asarray(self.std or [1.0], dtype=np.float32).reshape(shape)
        return mean, std

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        mean, std = self._scale(x.ndim)
        return ((x.astype(np.float32, copy=False) - mean) / std).astype(np.float32, copy=False)

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._scale(x.ndim)
        return (x.float() - torch.from_numpy(mean)) / torch.from_numpy(std)

    def describe_preprocessing(self) -> str:
        return (
            f"per channel c: (x - mean[c]) / std[c] with mean = {self.mean or [0.0]} and std = "
            f"{self.std or [1.0]} (of the training split); float32"
        )

    def describe_postprocessing(self) -> str:
        return "softmax over axis 1 (the class axis)" if self.class_names else "none: the values as they are"

    def build_mlp(self) -> nn.Module:
        return create_model(
            "mlp", spatial_dims=self.spatial_dims, in_channels=self.in_channels, num_outputs=self.num_outputs,
            input_size=self.input_size, hidden=(256, 128),
        )  # fmt: skip

    @staticmethod
    def _pixels(x: np.ndarray) -> np.ndarray:
        """Images (N, C, *S) block-averaged to at most ``BASELINE_PIXELS`` per axis, flattened."""
        return block_mean(x, BASELINE_PIXELS).reshape(len(x), -1)


class _Classes(_FromData):
    """Shared by ``classify`` and ``segment``: classes named in the data or by the user."""

    option_names = (*_FromData.option_names, "classes")

    def __init__(self, *, classes: Any = None, **options: Any):
        super().__init__(**options)
        names = classes.split(",") if isinstance(classes, str) else list(classes or [])
        self.class_names = tuple(str(n).strip() for n in names)
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"classes repeat a name: {', '.join(self.class_names)}")
        if classes is not None and len(self.class_names) < 2:
            raise ValueError(f"classes must name at least two classes, got {classes!r}")

    @property
    def num_outputs(self) -> int:  # type: ignore[override]
        return len(self.class_names)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "classes": list(self.class_names) or None}

    @classmethod
    def options_from_data(cls, info, given: dict[str, Any]) -> dict[str, Any]:
        options = super().options_from_data(info, given)
        if given.get("classes") is not None:
            return options  # the user's names and order
        if info.values is None:
            raise OptionError(
                f"{info.path}: {cls.name} needs class labels (whole numbers or names); the labels are "
                "real numbers (use `regress` for values)"
            )
        if info.text_labels:
            options["classes"] = [str(v) for v in info.values]  # sorted names
        else:
            values = [int(v) for v in info.values]
            if min(values) < 0:
                raise OptionError(f"{info.path}: class labels must not be negative, found {min(values)}")
            count = max(values) + 1
            names = (
                list(info.class_names) if len(info.class_names) == count else [str(k) for k in range(count)]
            )
            options["classes"] = names
        if len(options["classes"]) < 2:
            raise OptionError(f"{info.path}: the labels hold one class only ({options['classes'][0]})")
        if not info.text_labels:
            empty = sorted(set(range(len(options["classes"]))) - {int(v) for v in info.values})
            if empty:
                from astrocnn.engine.run import rank_zero_warn_line

                missing = ", ".join(options["classes"][k] for k in empty)
                rank_zero_warn_line(
                    f"{info.path}: no image has class {missing} (the labels run from 0 to "
                    f"{len(options['classes']) - 1}); the network keeps an output for it"
                )
        return options


@register_task
class Classify(_Classes):
    name = "classify"
    kind = TaskKind.CLASSIFICATION
    description = "your own labelled images: one class per image (shape and classes from --data)"
    baseline_name = "logistic regression on block-averaged pixels"
    headline = ("accuracy", True)
    label_contract = (
        "one class per image: HDF5 dataset 'labels' (--labels-key) of integers 0..K-1 or of class "
        "names (text), or a CSV column 'label'; integer labels take names from the dataset's "
        "'class_names' attribute if it has one; --task-option classes=a,b,c fixes names and order"
    )

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        labels = prediction.argmax(axis=1)
        k = self.num_outputs
        probs = np.clip(prediction, 1e-12, None)
        return {
            "accuracy": float(accuracy_score(test.y, labels)),
            # over the classes present in the labels or the predictions: a class no test image
            # has and no prediction names would count as 0 and drag the mean down
            "f1_macro": float(f1_score(test.y, labels, average="macro", zero_division=0)),
            "log_loss": float(
                log_loss(test.y, probs / probs.sum(axis=1, keepdims=True), labels=list(range(k)))
            ),
        }

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        model.fit(self._pixels(self.preprocess(train.x)), train.y)
        probs = np.zeros((len(test), self.num_outputs))
        probs[:, model.classes_] = model.predict_proba(self._pixels(self.preprocess(test.x)))
        return probs

    def plots(self, results, test, predictions, out: Path, networks) -> None:
        plotting.confusion_matrices(
            test.y, predictions, self.class_names, out / "confusion.png", baseline_name=self.baseline_name
        )
        if self.spatial_dims == 2:
            plotting.examples(
                test.x[:, 0], test.y, predictions["cnn"], self.class_names, out / "examples.png"
            )


@register_task
class Regress(_FromData):
    name = "regress"
    kind = TaskKind.REGRESSION
    description = "your own images with one or more real values each (shape from --data)"
    baseline_name = "ridge regression on block-averaged pixels"
    headline = ("rmse", False)
    option_names = (*_FromData.option_names, "outputs", "names", "target_mean", "target_std")
    label_contract = (
        "one or more real values per image: HDF5 dataset 'targets' or 'labels' (--labels-key) of "
        "shape (N,) or (N, K), or CSV columns besides 'file' (one value per column)"
    )

    def __init__(
        self,
        *,
        outputs: Any = None,
        names: Any = None,
        target_mean: Any = None,
        target_std: Any = None,
        **options: Any,
    ):
        super().__init__(**options)
        self.outputs = int(outputs) if outputs is not None else 1
        given = names.split(",") if isinstance(names, str) else list(names or [])
        self.output_names = tuple(str(n).strip() for n in given) or (
            ("value",) if self.outputs == 1 else tuple(f"value{k}" for k in range(self.outputs))
        )
        if len(self.output_names) != self.outputs:
            raise ValueError(f"names {', '.join(self.output_names)} are not {self.outputs} value names")
        self.target_mean = _numbers(target_mean, float, "target_mean")
        self.target_std = _numbers(target_std, float, "target_std")

    @property
    def num_outputs(self) -> int:  # type: ignore[override]
        return self.outputs

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "outputs": self.outputs,
            "names": list(self.output_names),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def options_from_data(cls, info, given: dict[str, Any]) -> dict[str, Any]:
        options = super().options_from_data(info, given)
        if info.text_labels:
            raise OptionError(f"{info.path}: regress needs numbers as targets; the labels are text")
        if len(info.label_shape) > 1:
            raise OptionError(
                f"{info.path}: regress takes a value or a vector per image, not {info.label_shape}"
            )
        options["outputs"] = info.label_shape[0] if info.label_shape else 1
        if len(info.value_names) == options["outputs"]:
            options["names"] = list(info.value_names)
        return options

    def with_statistics(self, x: np.ndarray, y: np.ndarray | None = None) -> dict[str, Any]:
        options = super().with_statistics(x)
        if y is not None:
            y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            options["target_mean"] = [float(v) for v in y.mean(axis=0)]
            options["target_std"] = [float(v) if v > 0 else 1.0 for v in y.std(axis=0)]
        return options

    def _target_scale(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.target_mean or [0.0] * self.outputs, dtype=np.float32)
        std = np.asarray(self.target_std or [1.0] * self.outputs, dtype=np.float32)
        return mean, std

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        """Values (..., K) standardised for the loss (the network learns zero-mean, unit-spread
        targets whatever their units)."""
        mean, std = self._target_scale()
        return torch.as_tensor((np.asarray(y, dtype=np.float32) - mean) / std, dtype=torch.float32)

    def postprocess(self, output: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.from_numpy(v) for v in self._target_scale())
        return output * std + mean

    def describe_postprocessing(self) -> str:
        mean, std = self._target_scale()
        return f"per output k: output[k] * {std.tolist()}[k] + {mean.tolist()}[k] (targets were standardised)"

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        """RMSE, MAE, bias and R^2 in the targets' units; with several values per image, each per
        value (``rmse_<name>``, ...) and R^2 averaged over them, never an error pooled across units."""
        truth = np.asarray(test.y, dtype=np.float64).reshape(len(test), -1)
        pred = np.asarray(prediction, dtype=np.float64).reshape(len(test), -1)
        if self.outputs == 1:
            return _regression_metrics(truth[:, 0], pred[:, 0])
        result: dict[str, Any] = {}
        for k, name in enumerate(self.output_names):
            result.update({f"{m}_{name}": v for m, v in _regression_metrics(truth[:, k], pred[:, k]).items()})
        result["r2"] = float(np.mean([result[f"r2_{name}"] for name in self.output_names]))
        return result

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))
        model.fit(self._pixels(self.preprocess(train.x)), np.asarray(train.y).reshape(len(train), -1))
        return model.predict(self._pixels(self.preprocess(test.x))).reshape(len(test), self.outputs)

    def plots(self, results, test, predictions, out: Path, networks) -> None:
        truth = np.asarray(test.y).reshape(len(test), -1)
        for k, name in enumerate(self.output_names):
            predicted = {
                plotting.method_label(m, self.baseline_name): np.asarray(p).reshape(len(test), -1)[:, k]
                for m, p in predictions.items()
            }
            suffix = "" if self.outputs == 1 else f"_{name}"
            predicted_vs_true(truth[:, k], predicted, out / f"predicted_vs_true{suffix}.png", name)


def _regression_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    error = pred - truth
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
        "r2": float(r2_score(truth, pred)) if len(truth) > 1 else float("nan"),
    }


def _image_mlp(task: _FromData, channels_out: int) -> nn.Module:
    """The fully connected comparison for image outputs: every output pixel from every input pixel."""
    size = math.prod(task.input_size)
    mlp = create_model(
        "mlp", spatial_dims=task.spatial_dims, in_channels=task.in_channels, num_outputs=channels_out * size,
        input_size=task.input_size, hidden=(256,),
    )  # fmt: skip
    return nn.Sequential(mlp, nn.Unflatten(1, (channels_out, *task.input_size)))


#: Defaults of the image-to-image tasks: a three-level U-Net at a quarter width.
IMAGE_DEFAULTS = TaskDefaults(
    model="unet",
    model_options={"width": 0.25, "channel_mults": [1, 2, 4]},
    epochs=20,
    batch_size=16,
    lr=1e-3,
    early_stopping=5,
)


@register_task
class Segment(_Classes):
    name = "segment"
    kind = TaskKind.SEGMENTATION
    description = "your own images with a class per pixel or voxel (shape and classes from --data)"
    baseline_name = "per-pixel logistic regression on smoothed intensities"
    headline = ("mean_iou", True)
    label_contract = (
        "a class per pixel: HDF5 dataset 'labels' (--labels-key) of integer masks shaped like the "
        "images without their channel axis, (N, H, W) or (N, D, H, W); the classes are 0..K-1 "
        "('class_names' attribute or --task-option classes=a,b,c names them)"
    )

    def sized_defaults(self) -> TaskDefaults:
        return IMAGE_DEFAULTS

    @classmethod
    def options_from_data(cls, info, given: dict[str, Any]) -> dict[str, Any]:
        options = super().options_from_data(info, given)
        if tuple(info.label_shape) != tuple(options["input_size"]):
            raise OptionError(
                f"{info.path}: segment needs a label mask per image shaped {tuple(options['input_size'])}, "
                f"got {info.label_shape}"
            )
        return options

    def build_mlp(self) -> nn.Module:
        return _image_mlp(self, self.num_outputs)

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        labels = prediction.argmax(axis=1)
        truth = np.asarray(test.y)
        result: dict[str, Any] = {"pixel_accuracy": float(np.mean(labels == truth))}
        ious = []
        for k, name in enumerate(self.class_names):
            union = np.sum((labels == k) | (truth == k))
            iou = float(np.sum((labels == k) & (truth == k)) / union) if union else float("nan")
            result[f"iou_{name}"] = iou
            ious.append(iou)
        result["mean_iou"] = float(np.nanmean(ious)) if not np.all(np.isnan(ious)) else float("nan")
        return result

    def _pixel_features(self, x: np.ndarray) -> np.ndarray:
        """Per pixel and channel: the value and its Gaussian smoothings at 1 and 2 pixels."""
        x = self.preprocess(x)
        sigma = (0, 0, *([1] * self.spatial_dims))
        planes = [x, ndimage.gaussian_filter(x, sigma), ndimage.gaussian_filter(x, [2 * s for s in sigma])]
        stacked = np.concatenate(planes, axis=1)  # (N, 3C, *S)
        return np.moveaxis(stacked, 1, -1).reshape(-1, stacked.shape[1])

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        features = self._pixel_features(train.x)
        targets = np.asarray(train.y).reshape(-1)
        pick = np.random.default_rng(0).permutation(len(targets))[:BASELINE_PIXEL_SAMPLES]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(features[pick], targets[pick])
        features = self._pixel_features(test.x)
        probs = np.zeros((len(features), self.num_outputs))
        probs[:, model.classes_] = model.predict_proba(features)
        return np.moveaxis(probs.reshape(len(test), *self.input_size, self.num_outputs), -1, 1)

    def plots(self, results, test, predictions, out: Path, networks) -> None:
        image_examples(
            test.x, np.asarray(test.y), predictions, out / "examples.png", classes=self.class_names,
            baseline_name=self.baseline_name,
        )  # fmt: skip


@register_task
class Restore(_FromData):
    name = "restore"
    kind = TaskKind.RESTORATION
    description = "your own image pairs: degraded in, clean out, same size (shape from --data)"
    baseline_name = "median filter (size chosen on the training split)"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "psnr": (
            "peak signal-to-noise ratio in dB, 10 log10(peak^2 / MSE), the peak being the range "
            "(max - min) of the true images of the test split",
            True,
        )
    }
    headline = ("rmse", False)
    label_contract = (
        "a target image per image: HDF5 dataset 'targets' or 'labels' (--labels-key) shaped like "
        "the images, in the same units (the inputs' standardisation applies to both)"
    )

    def sized_defaults(self) -> TaskDefaults:
        return IMAGE_DEFAULTS

    @property
    def num_outputs(self) -> int:  # type: ignore[override]
        return self.in_channels

    def build_mlp(self) -> nn.Module:
        return _image_mlp(self, self.num_outputs)

    @classmethod
    def options_from_data(cls, info, given: dict[str, Any]) -> dict[str, Any]:
        options = super().options_from_data(info, given)
        if tuple(info.label_shape) != tuple(info.image_shape):
            raise OptionError(
                f"{info.path}: restore needs a target image shaped like each image {info.image_shape}, "
                f"got {info.label_shape}"
            )
        return options

    def raw_target(self, y: np.ndarray) -> np.ndarray:
        """One stored target image as (C, *S), whichever way the file lays out its channels."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == self.spatial_dims:
            return y[None]
        if y.shape[0] != self.in_channels and y.shape[-1] == self.in_channels:
            return np.ascontiguousarray(np.moveaxis(y, -1, 0))
        return y

    def target_tensor(self, y: np.ndarray) -> torch.Tensor:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim <= self.spatial_dims + 1:  # one target, from a user's file item by item
            return torch.from_numpy(self.preprocess(self.raw_target(y)[None])[0])
        return torch.from_numpy(self.preprocess(y))

    def postprocess(self, output: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.from_numpy(v) for v in self._scale(output.ndim))
        return output * std + mean

    def describe_postprocessing(self) -> str:
        return "per channel c: output * std[c] + mean[c], the inverse of the preprocessing"

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        truth = np.asarray(test.y, dtype=np.float64)
        error = np.asarray(prediction, dtype=np.float64) - truth
        mse = float(np.mean(error**2))
        span = float(truth.max() - truth.min()) or 1.0
        return {
            "rmse": math.sqrt(mse),
            "mae": float(np.mean(np.abs(error))),
            "psnr": 10 * math.log10(span**2 / mse) if mse > 0 else float("inf"),
        }

    def _median(self, x: np.ndarray, size: int) -> np.ndarray:
        return x if size == 1 else ndimage.median_filter(x, size=(1, 1, *([size] * self.spatial_dims)))

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        x, y = np.asarray(train.x[:200], dtype=np.float32), np.asarray(train.y[:200], dtype=np.float32)
        errors = {size: float(np.mean((self._median(x, size) - y) ** 2)) for size in (1, 3, 5)}
        return self._median(np.asarray(test.x, dtype=np.float32), min(errors, key=errors.get))

    def plots(self, results, test, predictions, out: Path, networks) -> None:
        image_examples(
            test.x, np.asarray(test.y), predictions, out / "examples.png", baseline_name=self.baseline_name
        )


# ---- figures ---------------------------------------------------------------------------------------


def predicted_vs_true(
    truth: np.ndarray, predicted: dict[str, np.ndarray], path: Path, name: str = "value"
) -> None:
    """Each method's prediction of ``name`` against its true value, with the diagonal."""
    fig, axes = plotting.plt.subplots(1, len(predicted), figsize=(3.6 * len(predicted), 3.4), squeeze=False)
    low, high = float(np.min(truth)), float(np.max(truth))
    for ax, (method, values) in zip(axes[0], predicted.items(), strict=True):
        ax.scatter(truth, values, s=6, alpha=0.5)
        ax.plot([low, high], [low, high], color="black", lw=1)
        ax.set_title(method)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
    plotting.save(fig, path)


def _picture(image: np.ndarray) -> np.ndarray:
    """What to draw of one (C, *S) image: its first channel, the middle slice of a volume."""
    plane = image[0]
    while plane.ndim > 2:
        plane = plane[plane.shape[0] // 2]
    return plane if plane.ndim == 2 else plane[None]


def image_examples(
    x: np.ndarray,
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    path: Path,
    *,
    classes: Sequence[str] = (),
    baseline_name: str = "",
) -> None:
    """Three test images: the input, the truth and every method's output. Masks share one colour
    per class (a legend names them); restored images share the truth's colour scale."""
    labels = [plotting.method_label(m, baseline_name) for m in predictions]
    columns = ["input", "truth", *labels]
    rows = min(3, len(x))
    fig, axes = plotting.plt.subplots(
        rows, len(columns), figsize=(2.6 * len(columns), 2.6 * rows), squeeze=False
    )
    # one distinct colour per class (tab10's first K; tab20 beyond ten classes)
    palette = plotting.plt.get_cmap("tab10" if len(classes) <= 10 else "tab20").colors
    cmap = ListedColormap(palette[: max(len(classes), 1)]) if classes else None
    for i in range(rows):
        truth = y[i][None] if classes else y[i]
        outputs = [p[i].argmax(axis=0)[None] if classes else p[i] for p in predictions.values()]
        scale = (
            {"cmap": cmap, "vmin": -0.5, "vmax": len(classes) - 0.5}
            if classes
            else {"cmap": "magma", "vmin": float(np.min(truth)), "vmax": float(np.max(truth))}
        )
        for j, (ax, panel) in enumerate(zip(axes[i], [x[i], truth, *outputs], strict=True)):
            picture = _picture(np.asarray(panel, dtype=np.float32))
            style = {"cmap": "magma"} if j == 0 else scale
            ax.imshow(picture, origin="lower", interpolation="nearest", **style)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(textwrap.fill(columns[j], 26), fontsize=9)
    if classes:
        from matplotlib.patches import Patch

        handles = [Patch(color=cmap(k), label=name) for k, name in enumerate(classes)]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(classes), 6), frameon=False)
    plotting.save(fig, path)
