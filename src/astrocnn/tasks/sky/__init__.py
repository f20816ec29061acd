"""Cleaning CCD frames of the sky: the simulation of frames in electrons with their ground truth
(``simulation``), the tasks ``sky-denoise``, ``sky-cosmic-rays`` and ``sky-inpaint`` (``tasks``),
the classical methods and photometry (``baseline``) and figures (``plots``)."""

from astrocnn.tasks.sky import tasks  # noqa: F401  (registers the tasks)
