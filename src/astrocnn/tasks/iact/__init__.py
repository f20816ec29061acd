"""Imaging atmospheric Cherenkov telescopes: cameras and the mapping of hexagonal images
(``camera``), the Monte Carlo (``simulation``), the Hillas baseline (``hillas``), the tasks
``iact-gamma-hadron`` and ``iact-energy`` (``tasks``), the surrogate ``iact-generate``
(``generative``, judged by ``fidelity``) and figures (``plots``)."""

from astrocnn.tasks.iact import generative, hexnet, tasks  # noqa: F401  (register the hexnet model and the tasks)
from astrocnn.tasks.iact.camera import BilinearMapping, Camera, get_camera

__all__ = ["BilinearMapping", "Camera", "get_camera"]
