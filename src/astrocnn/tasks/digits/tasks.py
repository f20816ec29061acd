"""The task ``digits``: which of 0-9 is a handwritten digit (real scanned images, see ``data``).

The one real data set among astrocnn's tasks, and the lecture's case in its plainest form: the
fully connected network sees 256 unrelated pixels, the convolutional one a picture. ``astrocnn
compare digits`` measures what that buys (parameters, accuracy, accuracy of shifted digits).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, log_loss

from astrocnn.errors import OptionError
from astrocnn.tasks import plotting
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind
from astrocnn.tasks.digits import baseline, data
from astrocnn.tasks.digits.plots import examples
from astrocnn.tasks.registry import register_task


@register_task
class Digits(Task):
    name = "digits"
    kind = TaskKind.CLASSIFICATION
    description = "real data: scikit-learn's handwritten digits, 8x8 in a 16x16 frame (classification, 0-9)"
    spatial_dims = 2
    in_channels = 1
    input_size = (data.SIZE, data.SIZE)
    num_outputs = 10
    class_names = tuple(str(k) for k in range(10))
    option_names = ("split_seed",)
    raw_units = "grey levels 0-16 (0: blank paper), the 8x8 digit in the middle of a 16x16 frame of zeros"
    headline = ("accuracy", True)
    key_plot = "confusion.png"
    baseline_name = "support-vector machine (RBF kernel) on the pixels"
    metric_notes: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "accuracy": ("fraction of the test digits read correctly (chance: 1/10)", True),
        "f1_macro": ("F1 score averaged over the ten digits with equal weight", True),
        "log_loss": ("cross-entropy of the probabilities (ln 10 = 2.30 for a uniform guess)", False),
    }
    defaults = TaskDefaults(
        # the lecture's network with its dense head on a 1 x 1 map: max pooling over the whole
        # 16 x 16 frame makes it see what is in the image, not where (a 4 k-weight network)
        model="simple_cnn",
        model_options={
            "channels": (8, 16),
            "kernel_size": 5,
            "padding": 2,
            "pool": data.SIZE,
            "hidden": (32,),
        },
        epochs=30,
        batch_size=32,
        lr=2e-3,
        n_train=data.PARTS["train"],
        n_val=data.PARTS["val"],
        n_test=data.PARTS["test"],
    )

    def __init__(self, split_seed: int | str = 0):
        try:
            self.split_seed = int(split_seed)
        except ValueError:
            raise ValueError(f"split_seed must be an integer, got {split_seed!r}") from None

    def options(self) -> dict[str, Any]:
        return {"split_seed": self.split_seed}

    def generate(self, n: int, rng: np.random.Generator, split: str = "test") -> ArraySplit:
        """The first ``n`` images of ``split``'s fixed part (``rng`` is not used: the data are
        the same for every seed)."""
        part = data.partition(self.split_seed)[split]
        if n > len(part):
            raise OptionError(
                f"digits has {len(part)} {split} images (of {sum(data.PARTS.values())}: "
                + ", ".join(f"{k} {v}" for k, v in data.PARTS.items())
                + f"); n_{split} {n} is more"
            )
        images, labels = data.load()
        index = part[:n]
        return ArraySplit(images[index].copy(), labels[index], {"index": index})

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) / data.LEVELS).astype(np.float32, copy=False)

    def preprocess_torch(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / data.LEVELS

    def describe_preprocessing(self) -> str:
        return f"divide by {data.LEVELS} (grey levels 0-{data.LEVELS} to 0-1); float32"

    def metrics(self, prediction: np.ndarray, test: ArraySplit) -> dict[str, Any]:
        labels = prediction.argmax(axis=1)
        p = np.clip(prediction.astype(np.float64), 1e-12, 1.0)
        return {
            "accuracy": float(accuracy_score(test.y, labels)),
            "f1_macro": float(f1_score(test.y, labels, average="macro", labels=range(10))),
            "log_loss": float(log_loss(test.y, p / p.sum(axis=1, keepdims=True), labels=range(10))),
        }

    def baseline(self, train: ArraySplit, test: ArraySplit) -> np.ndarray:
        return baseline.fit_predict(self.preprocess(train.x), train.y, self.preprocess(test.x))

    def plots(self, results, test, predictions, out, networks) -> None:
        examples(test.x[:, 0], test.y, predictions["cnn"], out / "examples.png")
        plotting.confusion_matrices(
            test.y, predictions, self.class_names, out / "confusion.png", baseline_name=self.baseline_name
        )
