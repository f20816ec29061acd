"""astrocnn: convolutional networks for scientific images."""

from astrocnn.errors import AstroCNNError, ShapeError
from astrocnn.layers import Norm, conv_output_size
from astrocnn.models import create_model, list_models

__version__ = "0.1.0"
__all__ = [
    "AstroCNNError", "Norm", "ShapeError", "compare", "conv_output_size", "create_model", "evaluate",
    "list_models", "list_tasks", "load_run", "train",
]  # fmt: skip


def __getattr__(name: str):
    """The engine's API, imported on first use (Lightning is slow to import)."""
    if name == "train":
        from astrocnn.engine.train import train

        return train
    if name == "compare":
        from astrocnn.engine.compare import compare

        return compare
    if name == "load_run":
        from astrocnn.engine.run import load_run

        return load_run
    if name == "evaluate":
        from astrocnn.engine.evaluate import evaluate_run

        return evaluate_run
    if name == "list_tasks":
        from astrocnn.tasks import list_tasks

        return list_tasks
    raise AttributeError(f"module 'astrocnn' has no attribute {name!r}")
