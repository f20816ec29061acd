"""Apply a trained network to image files and write the natural output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrocnn.data.readers import DataError, Image, read_image, to_channels_first
from astrocnn.data.writers import write_csv, write_fits, write_hdf5
from astrocnn.engine.run import Run, predict_array
from astrocnn.errors import ShapeError

TABLE_SUFFIXES = (".csv",)
IMAGE_SUFFIXES = (".fits", ".fit", ".h5", ".hdf5")


def _batch(image: Image, run: Run) -> np.ndarray:
    """(N, C, *S) from one file: a stack of images (HDF5, NPY) or a single image."""
    task = run.task
    stack_format = image.path.suffix.lower() not in (".png", ".jpg", ".jpeg")  # pictures hold one image
    if stack_format and task.in_channels == 1 and image.data.ndim == task.spatial_dims + 1:  # (N, H, W)
        return image.data[:, None].astype(np.float32, copy=False)
    if image.data.ndim == task.spatial_dims + 2:
        if image.data.shape[1] != task.in_channels:
            raise DataError(
                f"{image.path}: stack of shape {image.data.shape} does not fit the model, "
                f"which expects (N, {task.in_channels}, ...)"
            )
        return image.data.astype(np.float32, copy=False)
    return to_channels_first(image, in_channels=task.in_channels, spatial_dims=task.spatial_dims)[None]


def predict_files(
    run: Run,
    inputs: list[Path],
    out: Path,
    *,
    hdu: int | str | None = None,
    dataset: str | None = None,
    which: str = "cnn",
    nan_policy: str = "error",
) -> Path:
    task = run.task
    out = Path(out)
    image_output = task.kind.image_output
    allowed = IMAGE_SUFFIXES if image_output else TABLE_SUFFIXES
    if out.suffix.lower() not in allowed:
        raise DataError(
            f"{out}: {task.name} writes {'images' if image_output else 'a table'}; use {' or '.join(allowed)}"
        )
    model = run.model(which)
    # read everything first: a bad file fails before anything is written
    images = [read_image(p, hdu=hdu, dataset=dataset, nan_policy=nan_policy) for p in inputs]
    batches = [_batch(image, run) for image in images]
    outputs = []
    for image, batch in zip(images, batches, strict=True):
        try:
            outputs.append(predict_array(model, task, batch))
        except ShapeError as error:
            raise DataError(f"{image.path}: {error}") from None
    if not image_output:
        names = list(task.class_names) or [f"value{i}" for i in range(task.num_outputs)]
        header = (
            ["file", "index", *(f"p_{n}" for n in names)] if task.class_names else ["file", "index", *names]
        )
        if task.class_names:
            header.append("predicted")
        rows = []
        for image, pred in zip(images, outputs, strict=True):
            for i, p in enumerate(pred):
                row = [str(image.path), i, *(f"{v:.6g}" for v in p)]
                if task.class_names:
                    row.append(task.class_names[int(np.argmax(p))])
                rows.append(row)
        write_csv(out, header, rows)
    elif out.suffix.lower() in (".fits", ".fit"):
        if len(images) != 1 or len(outputs[0]) != 1:
            raise DataError(f"{out}: a FITS output holds one image; give one input image or write .h5")
        write_fits(out, outputs[0][0], header=images[0].fits_header)
    else:
        write_hdf5(
            out,
            {"predictions": np.concatenate(outputs)},
            {"inputs": [str(p) for p in inputs], "task": task.name},
        )
    return out
