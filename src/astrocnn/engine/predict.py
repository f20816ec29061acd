"""Apply a trained network to image files and write the natural output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrocnn.data.readers import DataError, Image, read_image, to_channels_first
from astrocnn.data.writers import write_csv, write_fits, write_hdf5
from astrocnn.engine.run import Run, predict_array
from astrocnn.errors import OptionError, ShapeError
from astrocnn.tasks.base import TaskKind

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
    tile: bool = False,
    stride: int | None = None,
    compile: bool = False,
) -> Path:
    """Predict every image of ``inputs`` into ``out`` (a CSV of classes or values, or an image
    file). Images must have the size the network was trained on, unless ``tile``: then every
    window of that size, ``stride`` pixels apart (default: the window, no overlap; the last
    window of a row or column is moved in to end at the edge), gets its own row, with its
    position and, where a FITS header has a celestial WCS, the sky coordinates of its centre."""
    task = run.task
    out = Path(out)
    image_output = task.kind.image_output
    allowed = IMAGE_SUFFIXES if image_output else TABLE_SUFFIXES
    if out.suffix.lower() not in allowed:
        raise DataError(
            f"{out}: {task.name} writes {'images' if image_output else 'a table'}; use {' or '.join(allowed)}"
        )
    if tile and image_output:
        raise OptionError(f"--tile: {task.name} maps images to images of the same size and needs no tiling")
    model = run.predictor(which)  # an ensemble's members: their mean prediction
    if compile:
        import torch

        model = [torch.compile(net) for net in model]
    # read everything first: a bad file fails before anything is written
    images = [read_image(p, hdu=hdu, dataset=dataset, nan_policy=nan_policy) for p in inputs]
    batches = [_batch(image, run) for image in images]
    if tile:
        return _predict_tiles(run, model, images, batches, out, stride)
    for image, batch in zip(images, batches, strict=True):
        problem = task.check_size(batch.shape[2:])
        if problem is not None:
            raise DataError(f"{image.path}: {problem}")
    outputs = []
    for image, batch in zip(images, batches, strict=True):
        try:
            outputs.append(predict_images(model, task, batch))
        except ShapeError as error:
            raise DataError(f"{image.path}: {error}") from None
    if not image_output:
        names = (
            list(task.class_names)
            or list(task.output_names)
            or [f"value{i}" for i in range(task.num_outputs)]
        )
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
        # a segmentation's FITS holds its label image (the class probabilities go to .h5)
        segmentation = task.kind is TaskKind.SEGMENTATION
        result = outputs[0][0].argmax(axis=0).astype(np.uint8) if segmentation else outputs[0][0]
        write_fits(out, result, header=images[0].fits_header)
    else:
        predictions = np.concatenate(outputs)
        datasets = {"predictions": predictions}
        if task.kind is TaskKind.SEGMENTATION:  # the label volume beside the class probabilities
            datasets["labels"] = predictions.argmax(axis=1).astype(np.uint8)
        write_hdf5(out, datasets, {"inputs": [str(p) for p in inputs], "task": task.name})
    return out


#: The fraction of a window that :func:`predict_images` shares with its neighbour on each axis.
OVERLAP = 0.5


def predict_images(model, task, raw: np.ndarray) -> np.ndarray:
    """:func:`predict_array` (``model``: a network or an ensemble's members), except that an
    image-to-image task's images (N, C, *S) larger than its training size go through the network
    in overlapping windows of that size, blended without seams (:mod:`astrocnn.engine.tiling`):
    memory then grows with the window, not the frame."""
    window = tuple(getattr(task, "input_size", None) or ())
    shape = raw.shape[2:]
    if (
        not task.kind.image_output
        or len(window) != len(shape)
        or all(s <= w for s, w in zip(shape, window, strict=True))
    ):
        return predict_array(model, task, raw)
    import torch

    from astrocnn.engine.run import as_members, mean_output
    from astrocnn.engine.tiling import sliding_window

    nets = as_members(model)
    for net in nets:
        net.eval()

    def network(batch: torch.Tensor) -> torch.Tensor:
        return mean_output(task, nets, batch)

    return np.stack([
        sliding_window(network, torch.from_numpy(task.preprocess(x[None])[0]), window, OVERLAP).numpy()
        for x in raw
    ])  # fmt: skip


def tile_origins(length: int, window: int, stride: int) -> list[int]:
    """Start pixels of windows covering ``length`` pixels: every ``stride``, and one ending at the
    edge where the stride does not land there."""
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def _sky(image: Image):
    """The image's celestial WCS, or None (no header, no WCS, or one astropy cannot read)."""
    if image.fits_header is None:
        return None
    import warnings

    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(image.fits_header)
    except Exception:  # a header astropy refuses: positions still come in pixels
        return None
    return wcs.celestial if wcs.has_celestial else None


def _predict_tiles(
    run: Run, model, images: list[Image], batches: list[np.ndarray], out: Path, stride
) -> Path:
    task = run.task
    window = tuple(task.input_size)
    if len(window) != 2:
        raise OptionError(f"--tile works on 2-D images; {task.name} takes {len(window)}-D ones")
    if stride is not None and stride < 1:
        raise OptionError(f"--stride must be a positive number of pixels, got {stride}")
    names = (
        list(task.class_names) or list(task.output_names) or [f"value{i}" for i in range(task.num_outputs)]
    )
    header = ["file", "index", "x", "y", "x_centre", "y_centre", "ra", "dec"]
    header += [f"p_{n}" for n in names] if task.class_names else names
    if task.class_names:
        header.append("predicted")
    rows = []
    for image, batch in zip(images, batches, strict=True):
        height, width = batch.shape[2:]
        if height < window[0] or width < window[1]:
            raise DataError(
                f"{image.path}: images are {height}x{width}, smaller than the {window[0]}x{window[1]} tile"
            )
        step = stride or window[0]
        ys, xs = tile_origins(height, window[0], step), tile_origins(width, window[1], stride or window[1])
        spots = [(y, x) for y in ys for x in xs]
        sky = _sky(image)
        for index, frame in enumerate(batch):
            cut = np.stack([frame[:, y : y + window[0], x : x + window[1]] for y, x in spots])
            prediction = predict_array(model, task, cut)
            centres = np.array([(x + (window[1] - 1) / 2, y + (window[0] - 1) / 2) for y, x in spots])
            coords = sky.pixel_to_world_values(centres[:, 0], centres[:, 1]) if sky is not None else None
            for k, ((y, x), p) in enumerate(zip(spots, prediction, strict=True)):
                ra, dec = ("", "") if coords is None else (f"{coords[0][k]:.7f}", f"{coords[1][k]:.7f}")
                row = [str(image.path), index, x, y, f"{centres[k, 0]:g}", f"{centres[k, 1]:g}", ra, dec]
                row += [f"{v:.6g}" for v in np.atleast_1d(p)]
                if task.class_names:
                    row.append(task.class_names[int(np.argmax(p))])
                rows.append(row)
    write_csv(out, header, rows)
    return out
