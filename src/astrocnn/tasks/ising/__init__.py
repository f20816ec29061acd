"""The 2-D Ising family: Monte Carlo (``simulation``, ``kernels``), the tasks (``tasks``), the
classical Binder-cumulant baseline (``baseline``), locating T_c (``analysis``) and figures (``plots``)."""

from astrocnn.tasks.ising import tasks  # noqa: F401  (registers the tasks)
