"""Labelled image collections as torch Datasets: one HDF5 file, or a CSV listing image files.

Each item is ``(x, y)``: x a float32 tensor (C, *S) for a model with ``in_channels`` and
``spatial_dims``, y the label (long for class indices, float32 for regression targets).
Everything checkable without reading every image is checked at construction.
"""

import csv
import math
import os
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
    library_errors,
    open_hdf5,
    read_image,
    to_channels_first,
)
from astrocnn.errors import OptionError


def _check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise OptionError(f"nan_policy must be one of {', '.join(NAN_POLICIES)}, not {nan_policy!r}")


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
    ) -> None:
        _check_nan_policy(nan_policy)
        self.path = Path(path)
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.nan_policy = nan_policy
        self._file: h5py.File | None = None
        self._pid: int | None = None
        with open_hdf5(self.path) as f, library_errors(self.path, "HDF5"):
            if labels is None:
                found = [name for name in ("labels", "targets") if isinstance(f.get(name), h5py.Dataset)]
                if not found:
                    raise DataError(f"{self.path}: has neither a 'labels' nor a 'targets' dataset")
                labels = found[0]
            image_ds = hdf5_dataset(self.path, f, images)
            label_ds = hdf5_dataset(self.path, f, labels)
            if image_ds.ndim < 2:
                raise DataError(f"{self.path}: dataset {images!r} of shape {image_ds.shape} holds no images")
            if label_ds.ndim < 1 or len(label_ds) != len(image_ds):
                raise DataError(
                    f"{self.path}: {len(image_ds)} images in {images!r} but labels of shape "
                    f"{label_ds.shape} in {labels!r}"
                )
            for name, ds in ((images, image_ds), (labels, label_ds)):
                if ds.dtype.kind not in "biuf":
                    raise DataError(f"{self.path}: dataset {name!r} holds {ds.dtype}, not numbers")
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
            label = np.asarray(f[self.labels][index])
        data, _ = finite_float32(raw, nan_policy=self.nan_policy, source=source)
        x = arrange_channels(
            data, in_channels=self.in_channels, spatial_dims=self.spatial_dims, source=source
        )
        return torch.from_numpy(x), _label_tensor(label)

    @property
    def targets(self) -> torch.Tensor:
        """All labels, read without touching the images."""
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
    ) -> None:
        _check_nan_policy(nan_policy)
        self.csv_path = Path(csv_path)
        self.root = Path(root) if root is not None else self.csv_path.parent
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.nan_policy = nan_policy
        columns, rows = self._read_csv()
        self.target_columns = [c for c in columns if c != "file"]
        self.files: list[Path] = []
        values: list[list[float]] = []
        all_integer = True
        for line, row in rows:
            name = row["file"].strip()
            file = self.root / name
            if not name or not file.is_file():
                raise DataError(f"{self.csv_path}: line {line}: file {name!r} does not exist in {self.root}")
            self.files.append(file)
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

    def _read_csv(self) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
        check_file(self.csv_path)
        rows: list[tuple[int, dict[str, str]]] = []
        with library_errors(self.csv_path, "CSV"), self.csv_path.open(newline="", encoding="utf-8-sig") as fp:
            reader = csv.reader(fp)
            columns = [c.strip() for c in next(reader, [])]
            if "file" not in columns:
                raise DataError(f"{self.csv_path}: the header row has no 'file' column (it has {columns})")
            if len(columns) < 2:
                raise DataError(f"{self.csv_path}: no target column besides 'file'")
            if len(set(columns)) != len(columns):
                raise DataError(f"{self.csv_path}: the header row repeats a column name ({columns})")
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue  # blank lines, often one at the end
                if len(fields) != len(columns):
                    raise DataError(
                        f"{self.csv_path}: line {reader.line_num} has {len(fields)} fields, "
                        f"the header has {len(columns)}"
                    )
                rows.append((reader.line_num, dict(zip(columns, fields, strict=True))))
        if not rows:
            raise DataError(f"{self.csv_path}: lists no images")
        return columns, rows

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


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def load_labelled(path: str | Path, *, in_channels: int, spatial_dims: int) -> Dataset:
    """A labelled dataset from an HDF5 file, a CSV file, or a folder holding exactly one CSV."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise DataError(f"{path}: a data folder must hold exactly one CSV file (found: {names})")
        path = found[0]
    if path.suffix.lower() == ".csv":
        return FolderCSV(path, in_channels=in_channels, spatial_dims=spatial_dims)
    if file_kind(path) == "hdf5":
        return LabelledHDF5(path, in_channels=in_channels, spatial_dims=spatial_dims)
    raise DataError(f"{path}: a labelled dataset is an HDF5 file, a CSV file or a folder with one CSV")
