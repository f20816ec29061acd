"""Locating T_c: crossings, finite-size extrapolation and bootstrap errors.

Both the networks' estimate (where the mean "ordered" output crosses 1/2) and the Binder
baseline (where the cumulants U_L = 1 - <m^4> / (3 <m^2>^2) of two sizes cross) come with an
uncertainty from resampling the configurations of every (L, T) cell with replacement."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from astrocnn.sim.ising import TC

NU = 1.0  # the correlation-length exponent of the 2-D Ising model
BOOTSTRAP = 200
BINDER_WINDOW = (2.0, 2.6)  # crossings searched here: far above T_c both cumulants are ~0 and noisy


@dataclass
class TcEstimate:
    estimate: float
    uncertainty: float
    per_size: dict[int, float] = field(default_factory=dict)  # T_c(L), or pair crossings
    amplitude: float | None = None  # a in T_c(L) = T_c + a L^(-1/nu)
    pairs: dict[tuple[int, int], float] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        error = abs(self.estimate - TC) / TC
        out = {
            "tc_estimate": self.estimate,
            "tc_uncertainty": self.uncertainty,
            "tc_relative_error": error,
            "tc_pull": (self.estimate - TC) / self.uncertainty if self.uncertainty > 0 else float("nan"),
        }
        out.update({f"tc_L{L}": v for L, v in self.per_size.items()})
        out.update({f"tc_binder_L{a}_L{b}": v for (a, b), v in self.pairs.items()})
        if self.amplitude is not None:
            out["tc_fit_amplitude"] = self.amplitude
        return out


def crossing(temperatures: np.ndarray, values: np.ndarray, level: float = 0.5) -> float:
    """Where ``values`` (on increasing ``temperatures``) cross ``level``, by linear interpolation;
    the median if noise makes it cross several times; NaN if it never does."""
    d = np.asarray(values) - level
    idx = np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)
    exact = np.flatnonzero(d == 0)
    points = [
        temperatures[i] - d[i] * (temperatures[i + 1] - temperatures[i]) / (d[i + 1] - d[i]) for i in idx
    ]
    points += [temperatures[i] for i in exact]
    return float(np.median(points)) if points else float("nan")


def extrapolate(sizes: np.ndarray, tcs: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of T_c(L) = T_c + a L^(-1/nu): returns (T_c, a)."""
    ok = np.isfinite(tcs)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    design = np.stack([np.ones(ok.sum()), np.asarray(sizes, float)[ok] ** (-1 / NU)], axis=1)
    (tc, a), *_ = np.linalg.lstsq(design, tcs[ok], rcond=None)
    return float(tc), float(a)


def _cells(t: np.ndarray, size: np.ndarray):
    """Indices of each (L, T) cell, sizes and temperatures in increasing order."""
    sizes = np.unique(size)
    temps = np.unique(t)
    return sizes, temps, {(L, T): np.flatnonzero((size == L) & (t == T)) for L in sizes for T in temps}


def _resamples(cells: dict, rng: np.random.Generator | None) -> dict:
    if rng is None:
        return cells
    return {key: rng.choice(idx, size=len(idx)) if len(idx) else idx for key, idx in cells.items()}


def _network_tc(p: np.ndarray, sizes, temps, cells) -> tuple[float, float, dict[int, float]]:
    per_size = {}
    for L in sizes:
        curve = np.array([p[cells[(L, T)]].mean() if len(cells[(L, T)]) else np.nan for T in temps])
        per_size[int(L)] = crossing(temps, curve)
    tc, a = extrapolate(np.array(list(per_size)), np.array(list(per_size.values())))
    return tc, a, per_size


def tc_from_outputs(p_ordered: np.ndarray, t: np.ndarray, size: np.ndarray, seed: int = 0) -> TcEstimate:
    """T_c from a network's mean "ordered" output on configurations at temperatures ``t``."""
    sizes, temps, cells = _cells(t, size)
    tc, a, per_size = _network_tc(p_ordered, sizes, temps, cells)
    rng = np.random.default_rng(seed)
    boot = [_network_tc(p_ordered, sizes, temps, _resamples(cells, rng))[0] for _ in range(BOOTSTRAP)]
    return TcEstimate(tc, float(np.nanstd(boot)), per_size, a)


def binder_cumulant(m: np.ndarray) -> float:
    m2 = np.mean(m**2)
    return float(1.0 - np.mean(m**4) / (3.0 * m2**2)) if m2 > 0 else float("nan")


def _binder_tc(m: np.ndarray, sizes, temps, cells) -> tuple[float, dict]:
    window = (temps >= BINDER_WINDOW[0]) & (temps <= BINDER_WINDOW[1])
    u = {L: np.array([binder_cumulant(m[cells[(L, T)]]) for T in temps[window]]) for L in sizes}
    pairs = {
        (int(a), int(b)): crossing(temps[window], u[a] - u[b], 0.0)
        for a, b in itertools.combinations(sizes, 2)
    }
    values = [v for v in pairs.values() if np.isfinite(v)]
    return (float(np.mean(values)) if values else float("nan")), pairs


def tc_from_binder(m: np.ndarray, t: np.ndarray, size: np.ndarray, seed: int = 0) -> TcEstimate:
    """T_c as the mean crossing temperature of the Binder cumulants of every pair of sizes
    (Binder 1981); the crossings move little with L, so no extrapolation is made."""
    sizes, temps, cells = _cells(t, size)
    tc, pairs = _binder_tc(m, sizes, temps, cells)
    rng = np.random.default_rng(seed)
    boot = [_binder_tc(m, sizes, temps, _resamples(cells, rng))[0] for _ in range(BOOTSTRAP)]
    return TcEstimate(tc, float(np.nanstd(boot)), pairs=pairs)


def binder_curves(m: np.ndarray, t: np.ndarray, size: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    sizes, temps, cells = _cells(t, size)
    return {int(L): (temps, np.array([binder_cumulant(m[cells[(L, T)]]) for T in temps])) for L in sizes}
