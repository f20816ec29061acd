"""The classical methods a statistical physicist would use, and the family's file reader.

- T_c: the crossing of the Binder cumulants U_L = 1 - <m^4> / (3 <m^2>^2) of the magnetisation
  between lattice sizes (Binder, Z. Phys. B 43, 119, 1981; Landau and Binder, "A Guide to
  Monte Carlo Simulations in Statistical Physics", ch. 4), with errors from resampling whole
  Markov chains. The estimator has no free parameter to tune: the crossing is chosen where the
  curves separate significantly on both sides (``analysis.pair_crossing``).
- T: the energy per spin is the canonical ensemble's sufficient statistic for T (the Boltzmann
  weight depends on a configuration only through it), so the best estimator is a function of
  E alone (the posterior mean of T given E); a monotone fit of T against E on the training split
  approximates it (0.5 - 1.7 % above the exact posterior mean's RMSE on the default test sets,
  docs/ising.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from astrocnn.data.readers import DataError, library_errors, open_hdf5
from astrocnn.tasks.base import ArraySplit
from astrocnn.tasks.ising import analysis

#: What ``astrocnn generate ising`` writes in each size's group.
FILE_FIELDS = ("configs", "T", "energy", "magnetisation")


def binder_crossing(test: ArraySplit) -> dict[str, Any]:
    m = test.meta
    return analysis.tc_from_cumulants(
        m["magnetisation"], m["temperature"], m["size"], m.get("chain")
    ).as_metrics()


def temperature_from_energy(train: ArraySplit, test: ArraySplit, sizes) -> np.ndarray:
    """T from the energy per spin: an isotonic (monotone) fit of T against E for each L."""
    out = np.empty((len(test.y), 1), dtype=np.float32)
    for L in sizes:
        fit = train.meta["size"] == L
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
        iso.fit(train.meta["energy"][fit], train.meta["temperature"][fit])
        use = test.meta["size"] == L
        out[use, 0] = iso.predict(test.meta["energy"][use])
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
