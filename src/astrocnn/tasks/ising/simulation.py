"""Monte-Carlo sampling of the 2-D Ising model, with exact results to check it against.

For each lattice size L and temperature T the sampler
1. starts ordered below T_c and at random above it, and runs a burn-in;
2. measures the integrated autocorrelation time tau of |m| in a pilot run (Sokal's automatic
   windowing), extending the pilot until it is at least 50 tau long;
3. counts burn-in plus pilot as thermalisation (at least 20 tau) and saves configurations
   2 tau sweeps apart, so successive samples of a chain are effectively independent.
Metropolis (64 replicas per word, multi-spin coding) runs away from T_c; the Wolff cluster
algorithm (16 chains) within ``WOLFF_WINDOW``, where Metropolis suffers critical slowing down.
Each saved configuration is flipped globally with probability 1/2: the Hamiltonian is symmetric
under s -> -s, and this gives the symmetric ensemble of a finite lattice at every temperature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ellipk

from astrocnn.tasks.ising import kernels as k

#: Onsager (1944): the exact critical temperature, J = k_B = 1.
TC = 2.0 / math.log(1.0 + math.sqrt(2.0))
WOLFF_WINDOW = (TC - 0.3, TC + 0.4)
WOLFF_CHAINS = 16
MIN_PILOT = 400
MAX_PILOT = 200_000


def onsager_energy(temperature: float | np.ndarray) -> np.ndarray:
    """Exact energy per spin of the infinite lattice (Onsager 1944)."""
    beta = 1.0 / np.asarray(temperature, dtype=np.float64)
    kappa = 2.0 * np.sinh(2 * beta) / np.cosh(2 * beta) ** 2
    factor = 2 * np.tanh(2 * beta) ** 2 - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        # at T_c, K(1) diverges where its factor vanishes; their product tends to 0
        term = np.where(np.abs(factor) < 1e-12, 0.0, factor * ellipk(np.minimum(kappa**2, 1.0)))
    return -1.0 / np.tanh(2 * beta) * (1 + 2 / np.pi * term)


def yang_magnetisation(temperature: float | np.ndarray) -> np.ndarray:
    """Exact spontaneous magnetisation per spin of the infinite lattice (Yang 1952); 0 above T_c."""
    t = np.asarray(temperature, dtype=np.float64)
    inner = 1.0 - np.sinh(2.0 / t) ** -4.0
    return np.where(t < TC, np.clip(inner, 0, None) ** 0.125, 0.0)


def log_partition_function(size: int, temperature: float | np.ndarray) -> np.ndarray:
    """Exact ln Z of the L x L periodic lattice (J = k_B = 1; Kaufman, Phys. Rev. 76, 1232, 1949,
    in the form of Ferdinand and Fisher, Phys. Rev. 185, 832, 1969): with K = 1 / T and
    cosh g_l = cosh 2K coth 2K - cos(pi l / L), g_0 = 2K + ln tanh K (negative below T_c),
    Z = 1/2 (2 sinh 2K)^(L^2 / 2) [prod 2 cosh(L g_odd / 2) + prod 2 sinh(L g_odd / 2)
    + prod 2 cosh(L g_even / 2) + prod 2 sinh(L g_even / 2)], the products over the L odd and the
    L even l < 2L. Summed in logarithms, so that any L is exact to rounding."""
    temps = np.atleast_1d(np.asarray(temperature, dtype=np.float64))
    out = np.empty(temps.shape)
    l_index = np.arange(2 * size)
    for i, t in enumerate(temps):
        coupling = 1.0 / t
        gamma = np.arccosh(
            np.maximum(np.cosh(2 * coupling) / np.tanh(2 * coupling) - np.cos(np.pi * l_index / size), 1.0)
        )
        gamma[0] = 2 * coupling + np.log(np.tanh(coupling))
        terms = []  # (sign, log |product|)
        for g in (gamma[1::2], gamma[0::2]):
            x = size * g / 2
            a = np.abs(x)
            terms.append((1.0, float(np.sum(a + np.log1p(np.exp(-2 * a))))))  # prod 2 cosh x
            with np.errstate(divide="ignore"):
                log_sinh = np.sum(a + np.log(-np.expm1(-2 * a)))  # prod |2 sinh x| (-inf if x = 0)
            terms.append((float(np.prod(np.sign(x))), float(log_sinh)))
        top = max(v for _, v in terms)
        total = sum(sign * np.exp(v - top) for sign, v in terms)
        out[i] = np.log(0.5) + size * size / 2 * np.log(2 * np.sinh(2 * coupling)) + top + np.log(total)
    return out if np.ndim(temperature) else out[0]


def integrated_autocorrelation_time(series: np.ndarray, window_factor: float = 5.0) -> float:
    """tau_int of ``series`` (replicas, steps), from the replica-averaged autocorrelation
    function with Sokal's window: the smallest W with W >= window_factor * tau(W)."""
    x = np.atleast_2d(series).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    n = x.shape[1]
    spectrum = np.fft.rfft(x, n=2 * n)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=2 * n)[:, :n].mean(axis=0)
    if acov[0] <= 1e-15:  # no fluctuation at all (deep in the ordered phase): independent
        return 0.5
    rho = acov / acov[0]
    tau = 0.5
    for w in range(1, n):
        tau += rho[w]
        if w >= window_factor * tau:
            break
    return max(tau, 0.5)


@dataclass
class IsingSamples:
    """``n`` configurations of one (L, T) and how they were made."""

    size: int
    temperature: float
    configs: np.ndarray  # (n, L, L) int8, +1 / -1
    energy: np.ndarray  # (n,) per spin
    magnetisation: np.ndarray  # (n,) per spin
    chain: np.ndarray  # (n,) the Markov chain each configuration comes from (for block resampling)
    tau: float  # integrated autocorrelation time of |m|, in sweeps
    thermalisation: int  # sweeps before the first sample
    spacing: int  # sweeps between samples of a chain
    algorithm: str  # "metropolis" or "wolff"


class _Chains:
    """Either 64 multi-spin-coded Metropolis replicas or 16 Wolff chains, behind one interface."""

    def __init__(self, size: int, temperature: float, rng: np.random.Generator):
        self.size, self.beta = size, 1.0 / temperature
        self.wolff = WOLFF_WINDOW[0] <= temperature <= WOLFF_WINDOW[1]
        cold = temperature < TC
        if self.wolff:
            self.replicas = WOLFF_CHAINS
            shape = (self.replicas, size, size)
            self.spins = (
                np.ones(shape, np.int8) if cold else rng.choice(np.array([-1, 1], np.int8), size=shape)
            )
            self.states = k.seed_states(rng, self.replicas)
            # clusters per sweep-equivalent (L^2 flipped spins on average), from a trial run after
            # a warm-up; the count is then fixed, since any fixed count leaves the sampling unbiased.
            # The warm-up is counted in flipped spins, not clusters: from a random start near T_c
            # the first clusters are far smaller than in equilibrium, and a count of them would
            # make each "sweep" hundreds of real sweeps long.
            self._mean_cluster(5 * size * size)  # warm-up
            self.clusters_per_sweep = max(1, round(size * size / self._mean_cluster(2 * size * size)))
        else:
            self.replicas = 64
            self.words = (
                np.full((size, size), k.ONES, np.uint64)
                if cold
                else rng.integers(0, 2**64, size=(size, size), dtype=np.uint64)
            )
            self.digits = k.probability_digits(math.exp(-4.0 * self.beta))
            self.states = k.seed_states(rng, size)

    def _mean_cluster(self, spins_to_flip: int) -> float:
        """Run Wolff updates until about ``spins_to_flip`` spins per chain have flipped; the
        mean cluster size seen."""
        flipped = np.zeros(self.replicas, np.int64)
        clusters, batch = 0, 8
        while flipped.mean() < spins_to_flip:
            k.wolff_clusters(self.spins, self.beta, batch, self.states, flipped)
            clusters += batch
            batch *= 2
        return flipped.mean() / clusters

    @property
    def algorithm(self) -> str:
        return "wolff" if self.wolff else "metropolis"

    def sweep(self, n: int) -> None:
        if n <= 0:
            return
        if self.wolff:
            flipped = np.zeros(self.replicas, np.int64)
            k.wolff_clusters(self.spins, self.beta, n * self.clusters_per_sweep, self.states, flipped)
        else:
            k.multispin_sweeps(self.words, self.digits, n, self.states)

    def series(self, n: int) -> np.ndarray:
        """``n`` sweeps, and |m| of every replica after each: (n, replicas)."""
        if not self.wolff:
            return k.multispin_series(self.words, self.digits, n, self.states)
        out = np.empty((n, self.replicas))
        k.wolff_series(self.spins, self.beta, n, self.clusters_per_sweep, self.states, out)
        return out

    def snapshot(self) -> np.ndarray:
        if self.wolff:
            return self.spins.copy()
        out = np.empty((64, self.size, self.size), np.int8)
        k.unpack(self.words, out)
        return out


def sample(size: int, temperature: float, n: int, rng: np.random.Generator) -> IsingSamples:
    """``n`` equilibrium configurations of the L = ``size`` lattice at ``temperature``."""
    if not 2 <= size <= 4096 or temperature <= 0:
        raise ValueError(f"need 2 <= L <= 4096 and T > 0, got L={size}, T={temperature}")
    chains = _Chains(size, temperature, rng)
    burn_in = 20 if chains.wolff else 100
    chains.sweep(burn_in)
    series = np.empty((0, chains.replicas))
    length = MIN_PILOT
    while True:
        series = np.concatenate([series, chains.series(length - len(series))])
        tau = integrated_autocorrelation_time(series.T)
        if length >= 50 * tau or length >= MAX_PILOT:
            break
        length = min(2 * length, MAX_PILOT)
    thermalisation = burn_in + len(series)
    extra = max(0, math.ceil(20 * tau) - thermalisation)
    chains.sweep(extra)
    spacing = max(1, math.ceil(2 * tau))
    per_chain = math.ceil(n / chains.replicas)
    snapshots = []
    for _ in range(per_chain):
        chains.sweep(spacing)
        snapshots.append(chains.snapshot())
    # (per_chain, replicas, L, L) read row by row interleaves the chains: sample k of every chain
    # before sample k + 1 of any, so the first n configurations come from as many chains as possible
    configs = np.stack(snapshots, axis=0).reshape(-1, size, size)[:n]
    chain = np.tile(np.arange(chains.replicas), per_chain)[:n]
    configs *= rng.choice(np.array([-1, 1], np.int8), size=(n, 1, 1))
    energy, magnetisation = np.empty(n), np.empty(n)
    k.observables(configs, energy, magnetisation)
    return IsingSamples(
        size,
        float(temperature),
        configs,
        energy,
        magnetisation,
        chain,
        float(tau),
        thermalisation + extra,
        spacing,
        chains.algorithm,
    )


def parse_temperatures(text: str) -> np.ndarray:
    """``"1.0:3.5:0.05"`` (inclusive range) or ``"1.5,2.0,2.5"``."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            values = np.round(np.arange(start, stop + step / 2, step), 10)
        else:
            values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise ValueError(
            f"temperatures {text!r} are not START:STOP:STEP or a comma list of numbers"
        ) from None
    if values.size == 0 or np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"temperatures {text!r} must be positive numbers")
    return values


def generate(
    sizes: Sequence[int],
    temperatures: Sequence[float],
    per_t: int,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
    workers: int = 1,
) -> dict[int, list[IsingSamples]]:
    """Samples for every (L, T). Each pair has its own random stream derived from ``seed`` and
    (L, T)'s position, so a pair's samples do not depend on what else is generated, nor on
    ``workers``: with several, the pairs are shared out to that many threads (the kernels release
    the GIL; each thread runs them on one core), else one pair at a time, its large lattices on
    every core."""
    root = np.random.SeedSequence(seed)
    cells = [(int(size), float(t)) for size in sizes for t in temperatures]

    def one(cell: tuple[int, float]) -> IsingSamples:
        size, t = cell
        child = np.random.SeedSequence(entropy=root.entropy, spawn_key=(size, int(np.rint(t * 1e6))))
        return sample(size, t, per_t, np.random.default_rng(child))

    result: dict[int, list[IsingSamples]] = {int(size): [] for size in sizes}
    if workers <= 1 or len(cells) == 1:
        done = map(one, cells)
        pool = None
    else:
        from concurrent.futures import ThreadPoolExecutor

        import numba

        # numba's thread count is per thread: one core for each pair, the pairs side by side;
        # the largest lattices first, so that no long pair starts last
        pool = ThreadPoolExecutor(min(workers, len(cells)), initializer=numba.set_num_threads, initargs=(1,))
        order = sorted(range(len(cells)), key=lambda i: -cells[i][0])
        futures = {i: pool.submit(one, cells[i]) for i in order}
        done = (futures[i].result() for i in range(len(cells)))
    try:
        for (size, t), samples in zip(cells, done, strict=True):
            result[size].append(samples)
            if progress is not None:
                progress(size, t)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return result


def generate_refined(
    sizes: Sequence[int],
    temperatures: Sequence[float],
    per_t: int,
    seed: int,
    refine: tuple[float, float] | None,
    progress: Callable[[int, float], None] | None = None,
    workers: int = 1,
    on_refine: Callable[[np.ndarray], None] | None = None,
) -> dict[int, list[IsingSamples]]:
    """:func:`generate` on ``temperatures``, then, for ``refine = (half_width, step)``, on the
    finer grid around the crossing that this first scan shows (``analysis.refinement``: the
    magnetisation's Binder cumulants, never the known T_c). ``on_refine`` is told the added
    temperatures before they are simulated. Each pair keeps its own random stream, so the first
    scan's samples are those :func:`generate` gives alone."""
    from astrocnn.tasks.ising import analysis

    data = generate(sizes, temperatures, per_t, seed, progress=progress, workers=workers)
    if refine is None:
        return data
    # the scan's magnetisations only: the configurations are not copied
    cells = [s for samples in data.values() for s in samples]
    _, extra = analysis.refinement(
        np.concatenate([s.magnetisation for s in cells]),
        np.concatenate([np.full(len(s.magnetisation), s.temperature) for s in cells]),
        np.concatenate([np.full(len(s.magnetisation), s.size) for s in cells]),
        np.concatenate([s.chain for s in cells]),
        *refine,
    )
    if extra.size == 0:
        return data
    if on_refine is not None:
        on_refine(extra)
    more = generate(sizes, extra, per_t, seed, progress=progress, workers=workers)
    return {size: sorted(data[size] + more[size], key=lambda s: s.temperature) for size in data}


def numpy_checkerboard_sweep(spins: np.ndarray, beta: float, rng: np.random.Generator) -> None:
    """A straightforward vectorised NumPy Metropolis sweep (the reference the kernels are
    benchmarked and checked against): each colour at once, neighbours by np.roll."""
    i, j = np.indices(spins.shape)
    for colour in (0, 1):
        mask = (i + j) % 2 == colour
        neighbours = (
            np.roll(spins, 1, 0) + np.roll(spins, -1, 0) + np.roll(spins, 1, 1) + np.roll(spins, -1, 1)
        )
        d_e = 2 * spins * neighbours
        accept = mask & ((d_e <= 0) | (rng.random(spins.shape) < np.exp(-beta * d_e)))
        spins[accept] *= -1


def to_hdf5_datasets(data: dict[int, list[IsingSamples]]) -> dict[str, np.ndarray]:
    """One group per size: configurations (int8), T, energy and magnetisation per spin, the chain
    of each configuration, and per
    temperature the autocorrelation time, thermalisation, spacing and algorithm used."""
    out: dict[str, np.ndarray] = {}
    for size, samples in data.items():
        g = f"L{size}"
        out[f"{g}/configs"] = np.concatenate([s.configs for s in samples]).astype(np.int8)
        out[f"{g}/T"] = np.concatenate([np.full(len(s.configs), s.temperature) for s in samples])
        out[f"{g}/energy"] = np.concatenate([s.energy for s in samples])
        out[f"{g}/magnetisation"] = np.concatenate([s.magnetisation for s in samples])
        out[f"{g}/chain"] = np.concatenate([s.chain for s in samples]).astype(np.int16)
        out[f"{g}/temperatures"] = np.array([s.temperature for s in samples])
        out[f"{g}/tau_int"] = np.array([s.tau for s in samples])
        out[f"{g}/thermalisation_sweeps"] = np.array([s.thermalisation for s in samples])
        out[f"{g}/spacing_sweeps"] = np.array([s.spacing for s in samples])
        out[f"{g}/algorithm"] = np.array([s.algorithm for s in samples], dtype="S10")
    return out
