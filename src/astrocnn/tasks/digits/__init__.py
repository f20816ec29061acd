"""Handwritten digits, a real data set: scikit-learn's copy of the UCI optical digits (``data``:
the images padded and split), the task ``digits`` (``tasks``), a support-vector machine on the
pixels as its classical method (``baseline``) and figures (``plots``)."""

from astrocnn.tasks.digits import tasks  # noqa: F401  (registers the task)
