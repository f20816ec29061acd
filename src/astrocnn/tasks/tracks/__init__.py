"""Particle tracks in 2-D and 3-D detectors: the Monte Carlo (``simulation``), the Hough and RANSAC
track finder (``baseline``), the tasks ``tracks-segment-2d``, ``tracks-segment-3d`` and
``tracks-count`` (``tasks``) and event displays (``plots``)."""

from astrocnn.tasks.tracks import tasks  # noqa: F401  (registers the tasks)
