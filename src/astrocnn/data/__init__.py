"""Data I/O: reading user images, writing results atomically, labelled datasets for training."""

from astrocnn.data.datasets import FolderCSV, LabelledHDF5, load_labelled
from astrocnn.data.readers import MAX_PIXELS, DataError, Image, read_image, to_channels_first
from astrocnn.data.writers import atomic_output, write_csv, write_fits, write_hdf5

__all__ = [
    "MAX_PIXELS",
    "DataError",
    "FolderCSV",
    "Image",
    "LabelledHDF5",
    "atomic_output",
    "load_labelled",
    "read_image",
    "to_channels_first",
    "write_csv",
    "write_fits",
    "write_hdf5",
]
