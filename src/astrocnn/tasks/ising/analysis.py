"""Locating T_c from Monte-Carlo configurations: Binder-cumulant crossings, with errors.

The estimator (used both by the classical baseline and by the networks) is the crossing of the
Binder cumulant U_L(T) = 1 - <phi^4> / (3 <phi^2>^2) of an order parameter phi between lattice
sizes (Binder 1981). U_L is a function of (T - T_c) L^(1/nu) alone up to corrections to scaling,
so the curves of all L cross at T_c, and the crossing converges to T_c as L grows (for the 2-D
Ising model the corrections are small already at L = 16). For the baseline phi is the
magnetisation m; for a network it is the learned order parameter of :func:`learned_order_parameter`.

Any local observable that is odd under the global flip s -> -s, summed over the lattice, scales
like the magnetisation (its leading component in the renormalisation-group sense is the spin
field), so its Binder cumulant crosses at T_c too: the estimator does not need to be told T_c,
nor that the network learned exactly m.

Why not where a classifier's "ordered" output crosses 1/2 (Carrasquilla and Melko 2017, kept as
``tc_output_crossing`` for comparison): a network trained on T < 2.0 against T > 2.5 learns a
threshold on the order, and the temperature at which the order reaches a fixed threshold tends,
as L grows, to a temperature below T_c; no extrapolation in L repairs that (docs/ising.md).

The estimate is the crossing of the smallest and the largest lattice (the steepest difference of
cumulants), chosen before the data are seen; weighting all pairs by their bootstrap variances
made the quoted error too small (:func:`tc_from_cumulants`).

Errors: every (L, T) cell is resampled by whole Markov chains (block bootstrap), so the remaining
correlation between successive samples of one chain is respected, and rescaled for the few chains
a cell holds (Rao and Wu 1988).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np

from astrocnn.tasks.ising.simulation import TC

NU = 1.0  # the correlation-length exponent of the 2-D Ising model
BOOTSTRAP = 200
#: Points on each side of a candidate crossing that judge how clearly the curves separate there.
NEIGHBOURS = 3
#: A crossing counts only where the curves separate by this many standard errors on each side.
SIGNIFICANT = 2.0
#: The test grid's refinement, ``HALF_WIDTH:STEP``: points STEP apart within HALF_WIDTH of where a
#: coarse scan's cumulants cross (:func:`refinement`).
REFINE = "0.16:0.02"
#: The grid's step at the crossing, times the largest lattice size, above which the estimate is
#: known to be biased: on the Ising data sets 6.4 / L (a 0.1 grid at L = 64) came out 1.7 % low
#: and 2.6 / L 0.0041 +- 0.0016 low, 1.3 / L unbiased within 0.0013; on the planted model 1.3 / L
#: was 0.0024 +- 0.0005 low (docs/ising.md).
COARSE_STEP_TIMES_L = 1.5


@dataclass
class TcEstimate:
    estimate: float
    uncertainty: float
    pairs: dict[tuple[int, int], float] = field(default_factory=dict)  # crossing of each size pair
    statistical: float | None = None  # from the test configurations (bootstrap)
    training: float | None = None  # from the spread between independently trained networks
    members: list[float] = field(default_factory=list)  # each network's estimate
    grid_step: float | None = None  # the test grid's step at the crossing

    def as_metrics(self) -> dict[str, float | list[float]]:
        out: dict[str, float | list[float]] = {
            "tc_estimate": self.estimate,
            "tc_uncertainty": self.uncertainty,
            "tc_relative_error": abs(self.estimate - TC) / TC,
            "tc_pull": (self.estimate - TC) / self.uncertainty if self.uncertainty > 0 else float("nan"),
        }
        out.update({f"tc_binder_L{a}_L{b}": v for (a, b), v in self.pairs.items()})
        if self.statistical is not None:
            out["tc_uncertainty_statistical"] = self.statistical
        if self.training is not None:
            out["tc_uncertainty_training"] = self.training
        if self.members:
            out["tc_members"] = list(self.members)
        if self.grid_step is not None:
            out["tc_grid_step"] = self.grid_step
        return out


# ---- cells and resampling ------------------------------------------------------------------------


@dataclass
class Cells:
    """The samples of each (L, T) cell, grouped into blocks (one per Markov chain)."""

    sizes: np.ndarray
    temps: np.ndarray
    blocks: dict[tuple[int, float], list[np.ndarray]]

    @classmethod
    def of(cls, t: np.ndarray, size: np.ndarray, chain: np.ndarray | None = None) -> Cells:
        sizes, temps = np.unique(size), np.unique(t)
        blocks = {}
        for L in sizes:
            for T in temps:
                idx = np.flatnonzero((size == L) & (t == T))
                if chain is None:  # no chain ids (a user's file): every sample is its own block
                    blocks[(L, T)] = [idx[i : i + 1] for i in range(len(idx))]
                else:
                    blocks[(L, T)] = [idx[chain[idx] == c] for c in np.unique(chain[idx])]
        return cls(sizes, temps, blocks)

    def indices(self, rng: np.random.Generator | None = None) -> dict[tuple[int, float], np.ndarray]:
        """Every cell's sample indices, or a resample of whole blocks with replacement."""
        out = {}
        for key, blocks in self.blocks.items():
            if not blocks:
                out[key] = np.empty(0, dtype=np.int64)
            elif rng is None:
                out[key] = np.concatenate(blocks)
            else:
                out[key] = np.concatenate([blocks[i] for i in rng.integers(len(blocks), size=len(blocks))])
        return out


def binder_cumulant(phi: np.ndarray) -> float:
    m2 = np.mean(phi**2)
    return float(1.0 - np.mean(phi**4) / (3.0 * m2**2)) if len(phi) and m2 > 0 else float("nan")


def _cumulants(phi: np.ndarray, cells: Cells, index: dict) -> np.ndarray:
    """U[L, T] for each size and temperature."""
    return np.array([[binder_cumulant(phi[index[(L, T)]]) for T in cells.temps] for L in cells.sizes])


# ---- crossings -----------------------------------------------------------------------------------


def pair_crossing(
    temps: np.ndarray,
    u_small: np.ndarray,
    u_large: np.ndarray,
    sigma_small: np.ndarray,
    sigma_large: np.ndarray,
) -> float:
    """Where the cumulant of the smaller lattice, ``u_small``, crosses that of the larger one.

    Below T_c the larger lattice is more ordered (U closer to 2/3), above it less (U closer to
    0), so d = u_small - u_large rises through zero. Far from T_c the cumulants agree and d is
    noise that changes sign at random. Candidates are the rising sign changes where both
    cumulants are measurably above their disordered limit 0 (by three standard errors); the one
    kept is where the curves separate most clearly on both sides (d / sigma summed over
    ``NEIGHBOURS`` points each way), then located by the root of a parabola fitted to the four
    nearest points, anywhere among those points (the chord only where it has no root there).
    ``sigma_*`` are the standard errors of the cumulants.
    NaN when there is no crossing."""
    u_small, u_large = np.asarray(u_small, float), np.asarray(u_large, float)
    d = u_small - u_large
    sigma = np.hypot(sigma_small, sigma_large)
    ok = np.isfinite(d) & np.isfinite(sigma) & (sigma > 0)
    z = np.where(ok, d / np.where(ok, sigma, 1.0), 0.0)
    with np.errstate(invalid="ignore"):
        ordered = (u_small > 3 * np.asarray(sigma_small)) & (u_large > 3 * np.asarray(sigma_large))
    rising = np.flatnonzero(ok[:-1] & ok[1:] & ordered[:-1] & ordered[1:] & (d[:-1] < 0) & (d[1:] >= 0))
    if rising.size == 0:
        return float("nan")
    k = NEIGHBOURS

    def separation(i: int) -> float:
        left = np.clip(-z[max(0, i - k + 1) : i + 1], 0, 3)
        right = np.clip(z[i + 1 : i + 1 + k], 0, 3)
        return float(left.sum() + right.sum())

    def significant(i: int) -> bool:
        """The nearest significant difference (``SIGNIFICANT`` standard errors) above is
        positive, and the nearest below, if any, negative: the signs of a crossing. In the
        saturated ordered phase both cumulants sit at 2/3 and their difference changes sign at
        random; the nearest significant difference above such a sign change is the transition's
        own negative one (a coarse grid can leave these as the only candidates). In the
        disordered tail the nearest one below is the transition's positive one."""
        left, right = z[: i + 1][::-1], z[i + 1 :]
        left, right = left[np.abs(left) >= SIGNIFICANT], right[np.abs(right) >= SIGNIFICANT]
        return bool((left.size == 0 or left[0] < 0) and right.size and right[0] > 0)

    rising = [i for i in rising if significant(i)]
    if not rising:
        return float("nan")
    i = max(rising, key=separation)
    t0 = temps[i] - d[i] * (temps[i + 1] - temps[i]) / (d[i + 1] - d[i])  # linear interpolation
    # d is convex there (the larger lattice's cumulant falls ever faster above T_c), so a chord or
    # a line through the nearby points puts the root too low; a parabola through four points,
    # weighted by 1 / sigma^2, follows the curvature. Its root is accepted anywhere among the four
    # points it was fitted to: a fitted curve need not change sign exactly where the noisy points
    # do, and keeping only roots between those two points (the chord otherwise) made the estimate
    # jump between the parabola and the biased chord as the data changed, a scatter between data
    # sets that the bootstrap did not see (docs/ising.md)
    window = np.arange(max(0, i - 1), min(len(d), i + 3))
    window = window[ok[window]]
    if len(window) >= 4:
        coef = np.polyfit(temps[window] - t0, d[window], 2, w=1.0 / sigma[window])
        roots = np.roots(coef)
        roots = roots[np.isreal(roots)].real + t0
        roots = roots[(roots >= temps[window[0]]) & (roots <= temps[window[-1]])]
        if roots.size:
            return float(roots[np.argmin(np.abs(roots - t0))])
    return float(t0)


def _by_lever_arm(pair_keys: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pairs of sizes in the order they are trusted, fixed before any data are seen: the largest
    ratio of sizes first (the cumulants' difference rises most steeply through T_c there), then
    the larger lattices (smaller corrections to scaling)."""
    return sorted(pair_keys, key=lambda p: (-p[1] / p[0], -p[1], -p[0]))


def tc_from_cumulants(
    phi: np.ndarray,
    t: np.ndarray,
    size: np.ndarray,
    chain: np.ndarray | None = None,
    *,
    seed: int = 0,
    bootstrap: int = BOOTSTRAP,
    check_resolution: bool = True,
) -> TcEstimate:
    """T_c from the Binder-cumulant crossing of order parameter ``phi`` between the smallest and
    the largest lattice (every pair's crossing is kept in ``pairs``); the uncertainty is the
    bootstrap spread of the whole procedure (chains resampled within every cell).

    Why one pair, not all of them weighted by 1 / variance: those weights were estimated from the
    same resamples that then measured the combination's spread, so a pair whose variance the
    resamples happened to underestimate got more weight and lowered the quoted error. Over 20
    independent data sets the combination scattered 0.0073, only 8 % less than the smallest and
    largest lattices' crossing alone (0.0079), while its quoted error was 17 % smaller (0.0060
    against 0.0072): a pull of 1.2 RMS, against 1.0 for the one pair (docs/ising.md). Where that
    pair has no crossing in the data or in a fifth of the resamples, the next pair in
    :func:`_by_lever_arm` order is used.

    The bootstrap draws every cell's chains with replacement; a cell of n chains then has a
    bootstrap variance (n - 1) / n times the unbiased one (6 % for the 16 Wolff chains near T_c),
    so each resampled cumulant's deviation is scaled by sqrt(n / (n - 1)), the rescaling
    bootstrap of Rao and Wu (J. Am. Stat. Assoc. 83, 231, 1988) for strata with few units."""
    cells = Cells.of(t, size, chain)
    rng = np.random.default_rng(seed)
    u = _cumulants(phi, cells, cells.indices())
    n_blocks = np.array([[len(cells.blocks[(L, T)]) for T in cells.temps] for L in cells.sizes])
    rescale = np.sqrt(n_blocks / np.maximum(n_blocks - 1, 1))
    boot = np.stack(
        [u + rescale * (_cumulants(phi, cells, cells.indices(rng)) - u) for _ in range(bootstrap)]
    )
    sigma = np.nanstd(boot, axis=0)
    pair_keys = [(int(a), int(b)) for a, b in itertools.combinations(cells.sizes, 2)]
    where = {int(L): k for k, L in enumerate(cells.sizes)}

    def crossings(values: np.ndarray) -> dict[tuple[int, int], float]:
        return {
            (a, b): pair_crossing(
                cells.temps, values[where[a]], values[where[b]], sigma[where[a]], sigma[where[b]]
            )
            for a, b in pair_keys
        }

    pairs = crossings(u)
    boot_pairs = [crossings(b) for b in boot]
    for p in _by_lever_arm(pair_keys):
        values = np.array([bp[p] for bp in boot_pairs])
        values = values[np.isfinite(values)]
        # a pair whose crossing the resamples often lose is not a measurement
        if np.isfinite(pairs[p]) and len(values) >= 0.8 * bootstrap and values.std() > 0:
            error = float(values.std())
            step = grid_step(cells.temps, pairs[p])
            if check_resolution and step * cells.sizes.max() > COARSE_STEP_TIMES_L:
                warnings.warn(
                    f"the test grid's step at the Binder crossing, {step:g}, is coarse for L = "
                    f"{cells.sizes.max()} (more than {COARSE_STEP_TIMES_L:g} / L): the estimate of T_c "
                    "may be biased low; refine the grid there (--task-option refine=...)",
                    stacklevel=2,
                )
            return TcEstimate(pairs[p], error, pairs, statistical=error, grid_step=step)
    if check_resolution:
        warnings.warn(
            "no Binder crossing that the resamples keep: the test grid may miss the transition or "
            "hold too few configurations per (L, T); T_c is NaN",
            stacklevel=2,
        )
    return TcEstimate(float("nan"), float("nan"), pairs, statistical=float("nan"))


def grid_step(temps: np.ndarray, where: float) -> float:
    """The larger of the grid's two steps around temperature ``where``."""
    i = int(np.clip(np.searchsorted(temps, where), 1, len(temps) - 1))
    steps = np.diff(temps)[max(0, i - 2) : i + 1]
    return round(float(steps.max()), 6)


def parse_refine(value: str | None) -> tuple[float, float] | None:
    """``"HALF_WIDTH:STEP"``, or ``"no"`` (None): the refinement of :func:`refinement`."""
    if value is None or str(value).strip().lower() in ("no", "none", "off", "false", "0"):
        return None
    try:
        half, step = (float(v) for v in str(value).split(":"))
    except ValueError:
        raise ValueError(f"refine {value!r} is not HALF_WIDTH:STEP (e.g. {REFINE}) or no") from None
    if not (0 < step <= half <= 2.0):
        raise ValueError(f"refine {value!r}: need 0 < STEP <= HALF_WIDTH <= 2")
    return half, step


def refinement(
    m: np.ndarray,
    t: np.ndarray,
    size: np.ndarray,
    chain: np.ndarray | None,
    half_width: float,
    step: float,
    *,
    bootstrap: int = 50,
) -> tuple[float, np.ndarray]:
    """Where a scan should measure more finely, from the scan alone (never from the known T_c):
    the crossing of the magnetisation's Binder cumulants on the coarse grid, and the multiples of
    ``step`` within ``half_width`` of it that the grid lacks. An experimentalist's two passes:
    on a uniform 0.1 grid that crossing came out about 0.04 low (docs/ising.md), well inside the
    window, and the fine points then carry the estimate. (NaN, no temperatures) when the scan shows no
    transition."""
    coarse = tc_from_cumulants(m, t, size, chain, bootstrap=bootstrap, check_resolution=False)
    # on a coarse grid the largest lattice can go from ordered to disordered between two points,
    # so that its crossing is lost; the centre is then where the largest lattice's cumulant first
    # falls through 1/3, half its ordered value 2/3, coming from the ordered side: the order melts
    # there. (Another pair's crossing, and the steepest fall, were tried first: with few
    # configurations per cell either could be noise in the disordered tail.)
    if np.isfinite(coarse.estimate):
        centre = coarse.estimate
    else:
        temps, u = binder_curves(m, t, size)[int(np.max(size))]
        falls = np.flatnonzero((u[:-1] >= 1 / 3) & (u[1:] < 1 / 3))
        if falls.size == 0:
            return float("nan"), np.empty(0)
        j = int(falls[0])
        centre = float(temps[j] + temps[j + 1]) / 2
    k = np.arange(-round(half_width / step), round(half_width / step) + 1)
    fine = np.round((round(centre / step) + k) * step, 6)
    fine = fine[(fine > 0) & ~np.isin(fine, np.round(np.unique(t), 6))]
    return centre, fine


def binder_curves(
    phi: np.ndarray, t: np.ndarray, size: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    cells = Cells.of(t, size)
    u = _cumulants(phi, cells, cells.indices())
    return {int(L): (cells.temps, u[k]) for k, L in enumerate(cells.sizes)}


def combine_members(members: list[TcEstimate]) -> TcEstimate:
    """An ensemble of networks trained with different seeds on the same data: the mean estimate;
    its uncertainty adds the test configurations' noise (common to all members) and the spread
    between members (the standard error of their mean) in quadrature."""
    values = np.array([m.estimate for m in members])
    good = np.isfinite(values)
    if not good.any():
        return TcEstimate(float("nan"), float("nan"), members=values.tolist())
    statistical = float(np.sqrt(np.nanmean([m.statistical**2 for m in members if m.statistical is not None])))
    # one network cannot measure the spread between networks: unknown, not zero
    training = float(values[good].std(ddof=1) / np.sqrt(good.sum())) if good.sum() > 1 else float("nan")
    pairs = {p: float(np.nanmean([m.pairs.get(p, np.nan) for m in members])) for p in members[0].pairs}
    steps = [m.grid_step for m in members if m.grid_step is not None]
    return TcEstimate(
        float(values[good].mean()),
        float(np.hypot(statistical, training)),
        pairs,
        statistical=statistical,
        training=training,
        members=values.tolist(),
        grid_step=max(steps) if steps else None,
    )


def learned_order_parameter(odd_features: np.ndarray, size: np.ndarray) -> np.ndarray:
    """A scalar order parameter from a network's flip-odd features (N, C): for each lattice size,
    their projection on the leading principal direction (unsupervised: no label, no temperature).
    The features of a symmetric ensemble average to zero, so no centring is needed."""
    phi = np.zeros(len(odd_features))
    for L in np.unique(size):
        use = size == L
        f = odd_features[use].astype(np.float64)
        if not np.any(f):
            continue
        _, _, vt = np.linalg.svd(f, full_matrices=False)
        phi[use] = f @ vt[0]
    return phi


# ---- the classifier's output crossing (kept for comparison) --------------------------------------


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
    """Least-squares fit of T(L) = T_inf + a L^(-1/nu): returns (T_inf, a)."""
    ok = np.isfinite(tcs)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    design = np.stack([np.ones(ok.sum()), np.asarray(sizes, float)[ok] ** (-1 / NU)], axis=1)
    (tc, a), *_ = np.linalg.lstsq(design, tcs[ok], rcond=None)
    return float(tc), float(a)


def output_crossings(p_ordered: np.ndarray, t: np.ndarray, size: np.ndarray) -> dict[str, float]:
    """Where the mean "ordered" output crosses 1/2 for each L, and their 1/L extrapolation."""
    cells = Cells.of(t, size)
    index = cells.indices()
    per_size = {}
    for L in cells.sizes:
        curve = np.array([p_ordered[index[(L, T)]].mean() for T in cells.temps])
        per_size[int(L)] = crossing(cells.temps, curve)
    tc, a = extrapolate(np.array(list(per_size)), np.array(list(per_size.values())))
    return {
        **{f"tc_L{L}": v for L, v in per_size.items()},
        "tc_output_crossing": tc,
        "tc_fit_amplitude": a,
    }


# ---- learning by confusion (van Nieuwenburg, Liu and Huber 2017), a study -----------------------


def confusion_labels(t: np.ndarray, trial: float) -> np.ndarray:
    """Labels of the confusion scheme for a trial critical temperature: 1 below it, 0 above."""
    return (np.asarray(t) < trial).astype(np.int64)


def confusion_peak(
    trials: np.ndarray, accuracy: np.ndarray, t_train: np.ndarray, balance: float = 0.25
) -> float:
    """The middle peak of the W-shaped test accuracy over trial critical temperatures.

    At the two ends of the trial range the accuracy is trivially high (almost every training
    configuration has the same label), so the peak is searched only among trials that leave at
    least ``balance`` of the training configurations on each side, and it must be a local maximum
    with a neighbour inside that range on both sides (the edge of the range is the rising arm of
    the W, not its peak). The highest such point is refined by a parabola through it and its two
    neighbours, its vertex kept within them. NaN if there is no interior peak.
    """
    trials, accuracy = np.asarray(trials, float), np.asarray(accuracy, float)
    t_train = np.asarray(t_train, float)
    below = np.array([(t_train < trial).mean() for trial in trials])
    inside = (below >= balance) & (1 - below >= balance)
    peaks = [
        i
        for i in range(1, len(trials) - 1)
        if inside[i - 1 : i + 2].all() and accuracy[i] >= accuracy[i - 1] and accuracy[i] >= accuracy[i + 1]
    ]
    if not peaks:
        return float("nan")
    i = max(peaks, key=lambda j: accuracy[j])
    x, y = trials[i - 1 : i + 2], accuracy[i - 1 : i + 2]
    a, b, _ = np.polyfit(x, y, 2)
    if a >= 0:  # three equal points: flat top
        return float(trials[i])
    return float(np.clip(-b / (2 * a), x[0], x[-1]))
