"""Numba kernels for the 2-D Ising model (J = k_B = 1, periodic boundaries).

Metropolis uses multi-spin coding: bit r of the uint64 word at site (i, j) is the spin of
replica r (1 = up), so one word operation updates 64 independent replicas at one temperature.
For a site with c of its four neighbours anti-aligned, dE = 8 - 4c: the move is accepted when
c >= 2, with probability p4 = exp(-4 beta) when c = 1 and p8 = p4^2 when c = 0. The two
checkerboard colours are updated in turn (sites of one colour only see the other colour), and
each row has its own xorshift128+ random stream, so results do not depend on the thread count.

Near T_c, where Metropolis slows down critically, the Wolff cluster algorithm (Wolff 1989)
updates ordinary int8 lattices, one chain per replica.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def probability_digits(p: float, n_digits: int = 40) -> np.ndarray:
    """Binary digits of p in [0, 1), most significant first (2^-40 resolution)."""
    digits = np.zeros(n_digits, dtype=np.bool_)
    for k in range(n_digits):
        p *= 2
        digits[k] = p >= 1.0
        p -= digits[k]
    return digits


def seed_states(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent xorshift128+ states (never all-zero)."""
    return rng.integers(1, 2**63, size=(n, 2), dtype=np.uint64)


@njit(inline="always")
def _xorshift(s0: np.uint64, s1: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64]:
    """xorshift128+ (Vigna 2014): new state words and one uint64 output."""
    x = s0
    y = s1
    x ^= x << np.uint64(23)
    s1_new = x ^ y ^ (x >> np.uint64(17)) ^ (y >> np.uint64(26))
    return y, s1_new, s1_new + y


@njit(inline="always")
def _bernoulli_word(
    digits: np.ndarray, s0: np.uint64, s1: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64]:
    """64 independent bits, each 1 with probability p (given by its binary ``digits``): fresh
    random words are compared with p digit by digit until every bit is decided (about
    log2(64) + 2 words on average)."""
    result = np.uint64(0)
    undecided = ONES
    for k in range(digits.shape[0]):
        s0, s1, u = _xorshift(s0, s1)
        if digits[k]:
            result |= undecided & ~u  # random digit 0 below p's digit 1: below p
            undecided &= u
        else:
            undecided &= ~u  # random digit 1 above p's digit 0: above p
        if undecided == 0:
            break
    return result, s0, s1


@njit(inline="always")
def _sweep_row(words: np.ndarray, digits: np.ndarray, states: np.ndarray, i: int, colour: int) -> None:
    n = words.shape[0]
    s0 = states[i, 0]
    s1 = states[i, 1]
    iu = i - 1 if i > 0 else n - 1
    idn = i + 1 if i < n - 1 else 0
    for j in range((i + colour) & 1, n, 2):
        jl = j - 1 if j > 0 else n - 1
        jr = j + 1 if j < n - 1 else 0
        s = words[i, j]
        a1 = s ^ words[iu, j]  # 1 where anti-aligned
        a2 = s ^ words[idn, j]
        a3 = s ^ words[i, jl]
        a4 = s ^ words[i, jr]
        none = ~(a1 | a2 | a3 | a4)  # c = 0
        one = ((a1 ^ a2) ^ (a3 ^ a4)) & ~((a1 & a2) | (a3 & a4))  # c = 1
        flip = ~(none | one)  # c >= 2: dE <= 0, always accepted
        if (one | none) != 0:
            b1, s0, s1 = _bernoulli_word(digits, s0, s1)
            flip |= one & b1
            if (none & b1) != 0:
                b2, s0, s1 = _bernoulli_word(digits, s0, s1)  # p8 = p4 * p4
                flip |= none & b1 & b2
        words[i, j] = s ^ flip
    states[i, 0] = s0
    states[i, 1] = s1


@njit(parallel=True, cache=True, nogil=True)
def _multispin_parallel(words: np.ndarray, digits: np.ndarray, n_sweeps: int, states: np.ndarray) -> None:
    for _ in range(n_sweeps):
        for colour in range(2):
            for i in prange(words.shape[0]):
                _sweep_row(words, digits, states, i, colour)


@njit(cache=True, nogil=True)
def _multispin_serial(words: np.ndarray, digits: np.ndarray, n_sweeps: int, states: np.ndarray) -> None:
    for _ in range(n_sweeps):
        for colour in range(2):
            for i in range(words.shape[0]):
                _sweep_row(words, digits, states, i, colour)


#: Below this size a thread launch per colour costs more than the sweep itself.
PARALLEL_MIN_L = 48


def multispin_sweeps(words: np.ndarray, digits: np.ndarray, n_sweeps: int, states: np.ndarray) -> None:
    """``n_sweeps`` checkerboard Metropolis sweeps of the 64 replicas packed in ``words`` (L, L)."""
    kernel = _multispin_parallel if words.shape[0] >= PARALLEL_MIN_L else _multispin_serial
    kernel(words, digits, n_sweeps, states)


def multispin_series(words: np.ndarray, digits: np.ndarray, n_sweeps: int, states: np.ndarray) -> np.ndarray:
    """``n_sweeps`` sweeps as :func:`multispin_sweeps`, with |m| of every replica after each:
    (n_sweeps, 64), the series the autocorrelation time is measured on."""
    out = np.empty((n_sweeps, 64))
    for s in range(n_sweeps):
        multispin_sweeps(words, digits, 1, states)
        abs_magnetisations(words, out[s])
    return out


@njit(cache=True, nogil=True)
def unpack(words: np.ndarray, out: np.ndarray) -> None:
    """Spins (+1/-1 int8) of all 64 replicas: ``out`` (64, L, L)."""
    n = words.shape[0]
    for r in range(64):
        shift = np.uint64(r)
        for i in range(n):
            for j in range(n):
                out[r, i, j] = 1 if (words[i, j] >> shift) & np.uint64(1) else -1


@njit(cache=True, nogil=True)
def abs_magnetisations(words: np.ndarray, out: np.ndarray) -> None:
    """|m| per spin of each replica (for the autocorrelation pilot runs)."""
    n = words.shape[0]
    counts = np.zeros(64, dtype=np.int64)
    for i in range(n):
        for j in range(n):
            w = words[i, j]
            for r in range(64):
                counts[r] += (w >> np.uint64(r)) & np.uint64(1)
    for r in range(64):
        out[r] = abs(2 * counts[r] - n * n) / (n * n)


# ---- Wolff cluster updates on int8 lattices ----------------------------------------------------


@njit(cache=True, nogil=True)
def _wolff_cluster(spins: np.ndarray, threshold: np.uint64, s0: np.uint64, s1: np.uint64, stack: np.ndarray):
    """Grow one Wolff cluster from a random seed site and flip it: a neighbour of the seed's
    sign joins with probability 1 - exp(-2 beta) per bond (Wolff 1989). Returns its size."""
    n = spins.shape[0]
    s0, s1, u = _xorshift(s0, s1)
    site = np.int64(u % np.uint64(n * n))
    s = spins[site // n, site % n]
    spins[site // n, site % n] = -s  # flipped on joining, so no site joins twice
    stack[0] = site
    top = 1
    size = 1
    while top > 0:
        top -= 1
        i = stack[top] // n
        j = stack[top] % n
        for k in range(4):
            ni, nj = i, j
            if k == 0:
                ni = i - 1 if i > 0 else n - 1
            elif k == 1:
                ni = i + 1 if i < n - 1 else 0
            elif k == 2:
                nj = j - 1 if j > 0 else n - 1
            else:
                nj = j + 1 if j < n - 1 else 0
            if spins[ni, nj] == s:
                s0, s1, u = _xorshift(s0, s1)
                if u < threshold:
                    spins[ni, nj] = -s
                    stack[top] = ni * n + nj
                    top += 1
                    size += 1
    return size, s0, s1


@njit(parallel=True, cache=True, nogil=True)
def wolff_clusters(
    spins: np.ndarray, beta: float, n_clusters: int, states: np.ndarray, flipped: np.ndarray
) -> None:
    """``n_clusters`` Wolff cluster updates on each chain of ``spins`` (chains, L, L) int8; adds
    the number of flipped spins to ``flipped``. The count of updates is fixed in advance: a
    count that depended on the cluster sizes seen would bias the states observed after it."""
    n = spins.shape[1]
    threshold = np.uint64((1.0 - np.exp(-2.0 * beta)) * 18446744073709551615.0)
    for c in prange(spins.shape[0]):
        stack = np.empty(n * n, dtype=np.int64)
        s0, s1 = states[c, 0], states[c, 1]
        total = 0
        for _ in range(n_clusters):
            size, s0, s1 = _wolff_cluster(spins[c], threshold, s0, s1, stack)
            total += size
        states[c, 0] = s0
        states[c, 1] = s1
        flipped[c] += total


@njit(parallel=True, cache=True, nogil=True)
def wolff_series(
    spins: np.ndarray,
    beta: float,
    n_sweeps: int,
    clusters_per_sweep: int,
    states: np.ndarray,
    out: np.ndarray,
) -> None:
    """``n_sweeps`` times ``clusters_per_sweep`` updates as :func:`wolff_clusters` (the same random
    streams), writing |m| of every chain after each sweep into ``out`` (n_sweeps, chains): one
    call instead of one per sweep, whose thread launches cost more than the clusters at small L."""
    n = spins.shape[1]
    threshold = np.uint64((1.0 - np.exp(-2.0 * beta)) * 18446744073709551615.0)
    for c in prange(spins.shape[0]):
        stack = np.empty(n * n, dtype=np.int64)
        s0, s1 = states[c, 0], states[c, 1]
        for sweep in range(n_sweeps):
            for _ in range(clusters_per_sweep):
                _, s0, s1 = _wolff_cluster(spins[c], threshold, s0, s1, stack)
            m = 0
            for i in range(n):
                for j in range(n):
                    m += spins[c, i, j]
            out[sweep, c] = abs(m) / (n * n)
        states[c, 0] = s0
        states[c, 1] = s1


@njit(cache=True, nogil=True)
def observables(spins: np.ndarray, energy: np.ndarray, magnetisation: np.ndarray) -> None:
    """Energy per spin (each bond once) and magnetisation per spin of int8 lattices (N, L, L)."""
    n = spins.shape[1]
    for c in range(spins.shape[0]):  # serial: cheap next to a thread launch per call
        e = 0
        m = 0
        for i in range(n):
            for j in range(n):
                s = spins[c, i, j]
                e -= s * (spins[c, (i + 1) % n, j] + spins[c, i, (j + 1) % n])
                m += s
        energy[c] = e / (n * n)
        magnetisation[c] = m / (n * n)
