"""Labelled image collections as torch Datasets: one HDF5 file, or a CSV listing image files.

Each item is ``(x, y)``: x a float32 tensor (C, *S) for a model with ``in_channels`` and
``spatial_dims``, y the label (long for class indices, float32 for regression targets).
Everything checkable without reading every image is checked at construction.
"""

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from astrocnn.data.readers import (
    NAN_POLICIES,
    DataError,
    arrange_channels,
    channel_layout,
    check_file,
    file_kind,
    finite_float32,
    hdf5_dataset,
    hdf5_dataset_names,
    hdf5_listing,
    library_errors,
    open_hdf5,
    read_image,
    to_channels_first,
)
from astrocnn.errors import OptionError


def _check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise OptionError(f"--nan-policy must be one of {', '.join(NAN_POLICIES)}, not {nan_policy!r}")


def _label_tensor(values: np.ndarray) -> torch.Tensor:
    # Integers (and booleans) are class indices for cross-entropy; anything else is a regression target.
    if values.dtype.kind in "biu":
        return torch.as_tensor(values.astype(np.int64))
    return torch.as_tensor(values.astype(np.float32))


class LabelledHDF5(Dataset):
    """Images and labels from one HDF5 file, read one item at a time so files larger than memory stream.

    The file is opened lazily in each process that reads from it (DataLoader workers get their
    own handle after fork or unpickling) and never held open by construction.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        images: str = "images",
        labels: str | None = None,
        in_channels: int,
        spatial_dims: int,
        nan_policy: str = "median",
        class_names: Sequence[str] = (),
    ) -> None:
        _check_nan_policy(nan_policy)
        self.path = Path(path)
        self._codes: np.ndarray | None = None  # class indices of text labels
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.nan_policy = nan_policy
        self._file: h5py.File | None = None
        self._pid: int | None = None
        with open_hdf5(self.path) as f, library_errors(self.path, "HDF5"):
            labels = labels or default_labels(self.path, f)
            image_ds = hdf5_dataset(self.path, f, images)
            label_ds = hdf5_dataset(self.path, f, labels)
            if image_ds.ndim < 2:
                raise DataError(f"{self.path}: dataset {images!r} of shape {image_ds.shape} holds no images")
            if label_ds.ndim < 1 or len(label_ds) != len(image_ds):
                raise DataError(
                    f"{self.path}: {len(image_ds)} images in {images!r} but labels of shape "
                    f"{label_ds.shape} in {labels!r}"
                )
            if image_ds.dtype.kind not in "biuf":
                raise DataError(f"{self.path}: dataset {images!r} holds {image_ds.dtype}, not numbers")
            if _is_text(label_ds.dtype):
                self._codes = class_codes(
                    _text_values(label_ds), class_names, source=f"{self.path}: dataset {labels!r}"
                )
            elif label_ds.dtype.kind not in "biuf":
                raise DataError(f"{self.path}: dataset {labels!r} holds {label_ds.dtype}, not numbers")
            channel_layout(
                image_ds.shape[1:], in_channels=in_channels, spatial_dims=spatial_dims, source=self.path
            )
            self._length = len(image_ds)
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self._length

    def _handle(self) -> h5py.File:
        # An HDF5 handle inherited across fork shares library state with the parent and corrupts
        # reads, so each process opens its own.
        if self._file is None or self._pid != os.getpid():
            self._file = open_hdf5(self.path)
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(index)
        if not -self._length <= index < self._length:
            raise IndexError(f"index {index} is out of range for {self._length} items")
        index %= self._length
        f = self._handle()
        source = f"{self.path}[{self.images}][{index}]"
        with library_errors(self.path, "HDF5"):
            raw = f[self.images][index]
            label = self._codes[index] if self._codes is not None else np.asarray(f[self.labels][index])
        data, _ = finite_float32(raw, nan_policy=self.nan_policy, source=source)
        x = arrange_channels(
            data, in_channels=self.in_channels, spatial_dims=self.spatial_dims, source=source
        )
        return torch.from_numpy(x), _label_tensor(label)

    @property
    def targets(self) -> torch.Tensor:
        """All labels, read without touching the images."""
        if self._codes is not None:
            return torch.as_tensor(self._codes)
        with open_hdf5(self.path) as f, library_errors(self.path, "HDF5"):
            return _label_tensor(f[self.labels][()])

    def close(self) -> None:
        """Close this process's file handle, if one is open."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict[str, object]:
        # Handles cannot be pickled (spawned DataLoader workers); the copy opens its own.
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down h5py already
            pass


class FolderCSV(Dataset):
    """Image files listed in a CSV with a header row: a ``file`` column and one or more target columns.

    Files are relative to ``root`` (default: the CSV's folder). Every column other than ``file`` is
    a target; a single ``label`` column of integers gives class indices (long), anything else
    float32 targets (a scalar for one column, a vector for several).
    """

    def __init__(
        self,
        csv_path: str | Path,
        *,
        in_channels: int,
        spatial_dims: int,
        root: str | Path | None = None,
        nan_policy: str = "median",
        class_names: Sequence[str] = (),
        label_column: str | None = None,
    ) -> None:
        _check_nan_policy(nan_policy)
        self.csv_path = Path(csv_path)
        self.root = Path(root) if root is not None else self.csv_path.parent
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.nan_policy = nan_policy
        columns, rows = self._read_csv()
        if label_column is not None and label_column not in columns:
            raise DataError(
                f"{self.csv_path}: no column {label_column!r} (--labels-key); "
                f"the columns are {', '.join(columns)}"
            )
        self.target_columns = [label_column] if label_column else [c for c in columns if c != "file"]
        single = self.target_columns[0] if len(self.target_columns) == 1 else None
        if class_names and single is not None and not all(_is_number(row[single]) for _, row in rows):
            # text labels: class names, coded by their position in the task's list of classes
            index = {name: k for k, name in enumerate(class_names)}
            index.update({str(k): k for k in range(len(class_names))})  # indices may stand beside names
            for line, row in rows:
                if row[single].strip() not in index:
                    raise DataError(
                        f"{self.csv_path}: line {line}: {single} {row[single].strip()!r} is not a class of "
                        f"this task (the classes are {', '.join(class_names)})"
                    )
            self._targets = torch.tensor([index[row[single].strip()] for _, row in rows])
            self.files = [self._file(line, row) for line, row in rows]
            self.__getitem__(0)
            return
        self.files: list[Path] = []
        values: list[list[float]] = []
        all_integer = True
        for line, row in rows:
            self.files.append(self._file(line, row))
            numbers = []
            for column in self.target_columns:
                text = row[column].strip()
                try:
                    number = float(text)
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    raise DataError(f"{self.csv_path}: line {line}: {column} {text!r} is not a finite number")
                all_integer = all_integer and _is_integer(text)
                numbers.append(number)
            values.append(numbers)
        if self.target_columns == ["label"] and all_integer:
            self._targets = torch.tensor([int(v[0]) for v in values], dtype=torch.long)
        else:
            self._targets = torch.tensor(values, dtype=torch.float32)
            if len(self.target_columns) == 1:
                self._targets = self._targets[:, 0]
        # One image read now, so a wrong rank or channel count fails here rather than mid-epoch.
        self.__getitem__(0)

    def _file(self, line: int, row: dict[str, str]) -> Path:
        name = row["file"].strip()
        file = self.root / name
        if not name or not file.is_file():
            raise DataError(f"{self.csv_path}: line {line}: file {name!r} does not exist in {self.root}")
        return file

    def _read_csv(self) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
        return read_csv_rows(self.csv_path)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = read_image(self.files[index], nan_policy=self.nan_policy)
        x = to_channels_first(image, in_channels=self.in_channels, spatial_dims=self.spatial_dims)
        return torch.from_numpy(x), self._targets[index]

    @property
    def targets(self) -> torch.Tensor:
        """All labels, as parsed from the CSV."""
        return self._targets


def read_csv_rows(csv_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the non-blank rows (with their line numbers) of a labelled CSV."""
    check_file(csv_path)
    rows: list[tuple[int, dict[str, str]]] = []
    with library_errors(csv_path, "CSV"), csv_path.open(newline="", encoding="utf-8-sig") as fp:
        reader = csv.reader(fp)
        columns = [c.strip() for c in next(reader, [])]
        if "file" not in columns:
            raise DataError(f"{csv_path}: the header row has no 'file' column (it has {columns})")
        if len(columns) < 2:
            raise DataError(f"{csv_path}: no target column besides 'file'")
        if len(set(columns)) != len(columns):
            raise DataError(f"{csv_path}: the header row repeats a column name ({columns})")
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue  # blank lines, often one at the end
            if len(fields) != len(columns):
                raise DataError(
                    f"{csv_path}: line {reader.line_num} has {len(fields)} fields, "
                    f"the header has {len(columns)}"
                )
            rows.append((reader.line_num, dict(zip(columns, fields, strict=True))))
    if not rows:
        raise DataError(f"{csv_path}: lists no images")
    return columns, rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_text(dtype: np.dtype) -> bool:
    return dtype.kind in "SUO" or h5py.check_string_dtype(dtype) is not None


def _text_values(ds: h5py.Dataset) -> np.ndarray:
    """An HDF5 dataset of strings (fixed or variable length, bytes or UTF-8) as a str array."""
    return np.asarray(ds.asstr()[()], dtype=str)


def class_codes(labels: np.ndarray, class_names: Sequence[str], *, source: str) -> np.ndarray:
    """Text labels -> class indices in the order of ``class_names``; a label that is not a class is
    an error naming it and the classes."""
    labels = np.char.strip(np.asarray(labels, dtype=str))
    if not class_names:
        raise DataError(f"{source}: holds text labels, but this task has no class names to map them to")
    index = {name: k for k, name in enumerate(class_names)}
    unknown = sorted(set(labels.ravel().tolist()) - set(index))
    if unknown:
        raise DataError(
            f"{source}: label {unknown[0]!r} is not a class of this task (the classes are "
            f"{', '.join(class_names)})"
        )
    return np.array([index[v] for v in labels.ravel().tolist()], dtype=np.int64).reshape(labels.shape)


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def labelled_file(path: str | Path) -> Path:
    """The file behind ``--data``: an HDF5 file, a CSV file, or the one CSV in a folder."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise DataError(f"{path}: a data folder must hold exactly one CSV file (found: {names})")
        path = found[0]
    if path.suffix.lower() != ".csv" and file_kind(path) != "hdf5":
        raise DataError(f"{path}: a labelled dataset is an HDF5 file, a CSV file or a folder with one CSV")
    check_file(path)
    return path


def load_labelled(
    path: str | Path,
    *,
    in_channels: int,
    spatial_dims: int,
    images_key: str | None = None,
    labels_key: str | None = None,
    class_names: Sequence[str] = (),
    nan_policy: str = "median",
) -> Dataset:
    """A labelled dataset from an HDF5 file (datasets ``images_key``, default "images", and
    ``labels_key``, default "labels" or "targets"), a CSV file (a ``file`` column and the label
    column ``labels_key``, default every other column), or a folder holding exactly one CSV.
    Text labels are class names, coded by their position in ``class_names``."""
    path = labelled_file(path)
    if path.suffix.lower() == ".csv":
        if images_key is not None:
            raise OptionError(
                f"{path}: --images-key names an HDF5 dataset; a CSV lists its images in the 'file' column"
            )
        return FolderCSV(
            path, in_channels=in_channels, spatial_dims=spatial_dims, class_names=class_names,
            label_column=labels_key, nan_policy=nan_policy,
        )  # fmt: skip
    return LabelledHDF5(
        path, images=images_key or "images", labels=labels_key, in_channels=in_channels,
        spatial_dims=spatial_dims, class_names=class_names, nan_policy=nan_policy,
    )  # fmt: skip


@dataclass
class LabelledInfo:
    """What a labelled file holds, read without loading its images: what the generic tasks
    (``classify``, ``regress``, ``segment``, ``restore``) learn their shapes and classes from."""

    path: Path
    n: int
    image_shape: tuple[int, ...]  # one image as stored, e.g. (64, 64) or (3, 64, 64)
    label_shape: tuple[int, ...]  # one label as stored: () for a class or value, (H, W) for a mask
    text_labels: bool
    #: The distinct labels where they are whole numbers or text (classes); None for real values.
    values: np.ndarray | None
    #: Class names stored with the labels (the HDF5 attribute ``class_names``), if any.
    class_names: tuple[str, ...] = ()
    #: Names of the values per image: the CSV's target columns, or the HDF5 attribute ``names``.
    value_names: tuple[str, ...] = ()


def describe_labelled(
    path: str | Path, *, images_key: str | None = None, labels_key: str | None = None
) -> LabelledInfo:
    """Shapes, size and distinct labels of a labelled HDF5 or CSV file (see :func:`load_labelled`)."""
    path = labelled_file(path)
    if path.suffix.lower() == ".csv":
        return _describe_csv(path, labels_key)
    images_key = images_key or "images"
    with open_hdf5(path) as f, library_errors(path, "HDF5"):
        labels_key = labels_key or default_labels(path, f)
        images = hdf5_dataset(path, f, images_key)
        labels = hdf5_dataset(path, f, labels_key)
        if images.ndim < 2 or len(images) == 0:
            raise DataError(f"{path}: dataset {images_key!r} of shape {images.shape} holds no images")
        if len(labels) != len(images):
            raise DataError(
                f"{path}: {len(images)} images in {images_key!r} but labels of shape {labels.shape} in "
                f"{labels_key!r}"
            )
        text = _is_text(labels.dtype)
        values = None
        if text:
            values = np.unique(np.char.strip(_text_values(labels)))
        elif labels.dtype.kind in "biu":
            values = _distinct(labels)
        elif labels.dtype.kind == "f":
            sample = labels[: min(len(labels), 10_000)]
            if np.all(np.isfinite(sample)) and np.all(np.mod(sample, 1) == 0) and labels.ndim == 1:
                values = np.unique(sample).astype(np.int64)  # whole numbers stored as floats
        else:
            raise DataError(f"{path}: dataset {labels_key!r} holds {labels.dtype}, not numbers or text")
        names = labels.attrs.get("class_names", ())
        names = tuple(_plain_text(v) for v in np.atleast_1d(names))
        value_names = tuple(_plain_text(v) for v in np.atleast_1d(labels.attrs.get("names", ())))
        return LabelledInfo(
            path, len(images), images.shape[1:], labels.shape[1:], text, values, names, value_names
        )


def default_labels(path: Path, f: h5py.File) -> str:
    """The labels dataset when none is named: "labels", else "targets", else an error listing
    what the file holds."""
    for name in ("labels", "targets"):
        if isinstance(f.get(name), h5py.Dataset):
            return name
    raise DataError(
        f"{path}: has neither a 'labels' nor a 'targets' dataset; name one with --labels-key "
        f"(the datasets are: {hdf5_listing(hdf5_dataset_names(f))})"
    )


def _distinct(ds: h5py.Dataset, chunk: int = 1024) -> np.ndarray:
    """The distinct values of an integer dataset, read in chunks (masks can be large)."""
    found: set[int] = set()
    for start in range(0, len(ds), chunk):
        found.update(np.unique(ds[start : start + chunk]).tolist())
        if len(found) > 10_000:
            break
    return np.array(sorted(found), dtype=np.int64)


def _plain_text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe_csv(path: Path, labels_key: str | None) -> LabelledInfo:
    columns, rows = read_csv_rows(path)
    targets = [labels_key] if labels_key else [c for c in columns if c != "file"]
    if labels_key is not None and labels_key not in columns:
        raise DataError(
            f"{path}: no column {labels_key!r} (--labels-key); the columns are {', '.join(columns)}"
        )
    _, first = rows[0]
    image = read_image(path.parent / first["file"].strip())
    texts = [[row[c].strip() for c in targets] for _, row in rows]
    numeric = all(_is_number(t) for row in texts for t in row)
    values = None
    if not numeric:
        if len(targets) != 1:
            raise DataError(f"{path}: text labels need a single label column (--labels-key), not {targets}")
        values = np.unique([row[0] for row in texts])
    elif len(targets) == 1 and all(_is_integer(row[0]) for row in texts):
        values = np.unique([int(row[0]) for row in texts])
    shape = () if len(targets) == 1 else (len(targets),)
    return LabelledInfo(path, len(rows), image.data.shape, shape, not numeric, values, (), tuple(targets))
