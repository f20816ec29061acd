"""The classical methods a statistical physicist would use, and the family's file reader.

- T_c: the crossing of the Binder cumulants U_L = 1 - <m^4> / (3 <m^2>^2) of the magnetisation
  between lattice sizes (Binder, Z. Phys. B 43, 119, 1981; Landau and Binder, "A Guide to
  Monte Carlo Simulations in Statistical Physics", ch. 4), with errors from resampling whole
  Markov chains. The estimator has no free parameter to tune: the crossing is chosen where the
  curves separate significantly on both sides (``analysis.pair_crossing``).
- T: the energy per spin is the canonical ensemble's sufficient statistic for T (the Boltzmann
  weight depends on a configuration only through it), so the best estimator is a function of
  E alone: the posterior mean of T given E, computed exactly from Kaufman's partition function
  (``simulation.log_partition_function``), with the training split's temperatures as the prior.
  No fit: this is the bound that no estimator of T from a configuration can beat on average
  (an isotonic fit of T on E, used before, was 0.5 - 1.7 % above it: docs/ising.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from astrocnn.data.readers import DataError, library_errors, open_hdf5
from astrocnn.tasks.base import ArraySplit
from astrocnn.tasks.ising import analysis
from astrocnn.tasks.ising import simulation as ising

#: What ``astrocnn generate ising`` writes in each size's group.
FILE_FIELDS = ("configs", "T", "energy", "magnetisation")


def binder_crossing(test: ArraySplit) -> dict[str, Any]:
    m = test.meta
    return analysis.tc_from_cumulants(
        m["magnetisation"], m["temperature"], m["size"], m.get("chain")
    ).as_metrics()


def temperature_from_energy(train: ArraySplit, test: ArraySplit, sizes) -> np.ndarray:
    """The posterior mean of T given the energy per spin E, for each L: p(T_k | E) is
    proportional to pi_k exp(-L^2 E / T_k) / Z_L(T_k), with Z_L exact and pi_k the share of the
    training split's configurations of size L at T_k."""
    out = np.empty((len(test.y), 1), dtype=np.float32)
    for L in sizes:
        temps, counts = np.unique(train.meta["temperature"][train.meta["size"] == L], return_counts=True)
        log_prior = np.log(counts / counts.sum()) - ising.log_partition_function(int(L), temps)
        use = test.meta["size"] == L
        log_w = log_prior[None, :] - np.outer(L * L * test.meta["energy"][use], 1.0 / temps)
        log_w -= log_w.max(axis=1, keepdims=True)
        w = np.exp(log_w)
        out[use, 0] = (w @ temps) / w.sum(axis=1)
    return out


def read_ising_file(path: str | Path, sizes) -> dict[str, np.ndarray]:
    """The groups ``L{size}`` of a file from ``astrocnn generate ising``, checked; a missing
    ``chain`` dataset (older files) makes every configuration its own chain."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with library_errors(path, "HDF5"), open_hdf5(path) as f:
        held = sorted(k for k in f if k.startswith("L"))
        for L in sizes:
            g = f.get(f"L{L}")
            if g is None:
                raise DataError(
                    f"{path}: no lattices of size {L} (the file holds {', '.join(held) or 'no L* groups'}; "
                    f"choose sizes with --task-option sizes=...)"
                )
            missing = [k for k in FILE_FIELDS if k not in g]
            if missing:
                raise DataError(
                    f"{path}: group L{L} lacks {', '.join(missing)} (not written by generate ising)"
                )
            for key in (*FILE_FIELDS, "chain"):
                if key in g:
                    out[f"L{L}/{key}"] = g[key][()]
            n = len(out[f"L{L}/T"])
            if out[f"L{L}/configs"].shape != (n, L, L):
                raise DataError(
                    f"{path}: L{L}/configs has shape {out[f'L{L}/configs'].shape}, expected ({n}, {L}, {L})"
                )
            out.setdefault(f"L{L}/chain", np.arange(n))
    return out
