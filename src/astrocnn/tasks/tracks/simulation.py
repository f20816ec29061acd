"""astrocnn's own Monte Carlo of charged tracks and electromagnetic showers in a liquid-argon
detector read out as a 2-D pixel plane or a 3-D voxel volume, one code for both.

The detector is a block of liquid argon (density 1.396 g/cm^3, Z/A = 18/39.95, mean excitation
energy 188 eV, radiation length 14.0 cm, critical energy 32.8 MeV; PDG tables) read out in
cubic cells of ``pitch`` cm (0.5 cm by default, near MicroBooNE's 0.3 cm wire pitch) in a
magnetic field along axis 0 (perpendicular to the plane in 2-D). In 2-D the particles move in
the plane: the same code with two coordinates instead of three.

Every charged particle is stepped in ``step`` cm steps, all particles of a chunk of events at
once (NumPy over the particles):

- **Energy loss**: the Bethe-Bloch mean rate (PDG eq. 34.5 without the density effect and
  with T_max ~ 2 m_e c^2 beta^2 gamma^2), which rises as 1/beta^2 as a particle slows: the Bragg
  peak at the stopping end. Each step's deposit fluctuates (a Gamma distribution of shape 8,
  a stand-in for the Landau tail). Particles stop below 1 MeV and deposit the rest there.
- **Multiple Coulomb scattering**: Highland's formula (PDG eq. 34.16),
  theta0(s) = 13.6 MeV / (beta c p) sqrt(s / X0) (1 + 0.038 ln(s / (X0 beta^2))). Each step adds
  the increment theta0(s + ds)^2 - theta0(s)^2 to the projected angle's variance, so the spread
  after any path length s is Highland's theta0(s) (exactly while p stays constant).
- **Magnetic field**: the direction turns about the field by 0.3 q B ds / p per step
  (GeV, T, m), a helix of radius p_T / (0.3 |q| B).
- **Delta rays**: knock-on electrons above ``delta_min`` MeV at the Bethe rate
  (K/2) (Z/A) rho / beta^2 (1/T_min - 1/T_max) per cm, energies from the 1/T^2 spectrum, emitted at
  cos theta = (T/p_e) (E + m_e)/p; they keep their parent's track id.
- **Electromagnetic showers** (the second class): an electron or a photon of 100-1000 MeV;
  electrons above the critical energy radiate bremsstrahlung photons (energy fraction from the
  1/y spectrum, at the rate that radiates E/X0 per cm), photons convert after an exponential path
  of 9/7 X0 into an electron pair (Heitler's picture of a cascade), and every electron ionises
  and scatters as above.
- **Readout**: Gaussian electronic noise of ``noise_sigma`` MeV on every cell, spurious noise hits
  at ``noise_rate`` per cell (exponential amplitudes), dead channels (a fraction ``dead_fraction``
  of the lines along axis 0 read zero), and zero suppression below ``threshold`` MeV. Each event
  has a noise level drawn log-uniformly from ``noise_levels``, multiplying the noise and the rate.

Ground truth per cell: a class (0 background, 1 track, 2 shower) for every hit (a cell read out
above threshold) from the particle kind that deposited most energy there, a hit whose true
deposit is below half the threshold being noise (background); the track id of every track hit
(1, 2, ...; delta rays belong to their parent); per event the track parameters (vertex, direction,
momentum, particle, charge, hits) and the number of visible tracks (``MIN_TRACK_HITS`` hits or more).

Events are simulated in chunks of ``CHUNK`` from the streams (seed, chunk index): the same events
for any number of processes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

# liquid argon (PDG "Atomic and nuclear properties of materials")
DENSITY = 1.396  # g/cm^3
Z_OVER_A = 18 / 39.948
EXCITATION = 188e-6  # MeV
RADIATION_LENGTH = 14.0  # cm
CRITICAL_ENERGY = 32.8  # MeV
K_BETHE = 0.307075  # MeV cm^2 / mol
M_E = 0.51099895  # MeV
MASSES = {"muon": 105.658, "pion": 139.570, "proton": 938.272, "electron": M_E}
PDG_CODES = {"muon": 13, "pion": 211, "proton": 2212, "electron": 11}
STOP_ENERGY = 1.0  # MeV: a particle below it deposits the rest where it is
PHOTON_CUT = 2.0  # MeV: softer photons are not followed (Compton electrons of a few mm)
BACKGROUND, TRACK, SHOWER = 0, 1, 2
CLASSES = ("background", "track", "shower")
#: Smallest photon energy fraction of the bremsstrahlung spectrum followed, and the spectrum's
#: mean fraction (1 - Y_MIN) / ln(1 / Y_MIN): photons are emitted at 1 / (X0 * mean) per cm so
#: that an electron radiates on average E / X0 per cm, the definition of X0.
Y_MIN = 0.01
BREMS_MEAN_FRACTION = (1 - Y_MIN) / math.log(1 / Y_MIN)
#: Hits a track needs to count as seen (the truth of tracks-count, and of track efficiency).
MIN_TRACK_HITS = 5
#: Events per independently seeded chunk.
CHUNK = 100
MAX_STEPS = 4000


@dataclass(frozen=True)
class Settings:
    dims: int = 2
    size: int = 64  # cells per axis
    pitch: float = 0.5  # cm
    step: float = 0.125  # cm
    b_field: float = 1.0  # tesla, along axis 0 (out of the plane in 2-D)
    tracks: tuple[int, int] = (1, 5)  # charged tracks per event, drawn uniformly
    common_vertex: float = 0.5  # probability that an event's tracks share one vertex
    shower_probability: float = 0.5  # probability of one electromagnetic shower in an event
    particles: dict[str, float] = field(default_factory=lambda: {"muon": 0.5, "pion": 0.2, "proton": 0.3})
    momentum: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"muon": (100.0, 1000.0), "pion": (100.0, 1000.0), "proton": (350.0, 900.0)}
    )  # MeV/c; muons and pions log-uniform, protons uniform
    shower_energy: tuple[float, float] = (100.0, 1000.0)  # MeV, log-uniform
    delta_min: float = 2.0  # MeV
    scattering: bool = True
    energy_loss: bool = True
    fluctuation_shape: float = 8.0
    noise_sigma: float = 0.03  # MeV
    noise_rate: float = 2e-3  # spurious hits per cell
    noise_amplitude: float = 0.5  # MeV, mean of the spurious hits' amplitude above threshold
    noise_levels: tuple[float, float] = (0.5, 2.0)
    dead_fraction: float = 0.02
    threshold: float = 0.2  # MeV

    @property
    def max_tracks(self) -> int:
        return self.tracks[1]

    def as_attrs(self) -> dict:
        """Flat values for HDF5 attributes."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                for k, v in value.items():
                    out[f"{key}_{k}"] = list(v) if isinstance(v, tuple) else v
            else:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass
class Events:
    image: np.ndarray  # (n, *S) float32, MeV per cell after readout
    label: np.ndarray  # (n, *S) int8: 0 background, 1 track, 2 shower
    track_id: np.ndarray  # (n, *S) int8: the track of each track hit, 0 elsewhere
    n_tracks: np.ndarray  # (n,) visible tracks
    noise: np.ndarray  # (n,) noise level (1: nominal)
    vertex: np.ndarray  # (n, T, d) cm, NaN beyond the event's tracks
    direction: np.ndarray  # (n, T, d)
    momentum: np.ndarray  # (n, T) MeV/c
    pdg: np.ndarray  # (n, T) PDG code, 0 beyond the event's tracks
    charge: np.ndarray  # (n, T)
    hits: np.ndarray  # (n, T) hits of each track
    n_showers: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.image)


EVENT_FIELDS = tuple(Events.__dataclass_fields__)


# ---- physics -------------------------------------------------------------------------------------


def bethe_dedx(beta_gamma: np.ndarray, charge: np.ndarray | float = 1.0) -> np.ndarray:
    """Mean ionisation loss in liquid argon, MeV/cm (PDG eq. 34.5 with T_max ~ 2 m_e beta^2
    gamma^2, no density effect): 2.1 MeV/cm at its minimum near beta gamma = 3.5."""
    bg2 = np.asarray(beta_gamma, np.float64) ** 2
    beta2 = bg2 / (1 + bg2)
    log = np.log(np.maximum(2 * M_E * bg2 / EXCITATION, 1.0))
    return K_BETHE * DENSITY * Z_OVER_A * np.asarray(charge) ** 2 / beta2 * np.maximum(log - beta2, 1.0)


def highland(beta_p: np.ndarray | float, path: np.ndarray | float, beta2: np.ndarray | float = 1.0):
    """Highland's projected scattering angle theta0 (rad) after ``path`` cm for beta c p in MeV
    (PDG eq. 34.16, unit charge): the rms of the angle in a plane."""
    x = np.asarray(path, np.float64) / RADIATION_LENGTH
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = 13.6 / np.asarray(beta_p) * np.sqrt(x) * (1 + 0.038 * np.log(x / np.asarray(beta2)))
    return np.where(x > 0, theta, 0.0)


def helix_radius(p_transverse: float, field_tesla: float) -> float:
    """Radius in cm of a unit-charge helix: R = p_T / (0.3 B) (GeV, T, m)."""
    return p_transverse / 1000 / (0.3 * field_tesla) * 100


@dataclass
class Particles:
    """Charged particles being stepped (one row each)."""

    event: np.ndarray
    pos: np.ndarray  # (P, d) cm
    direction: np.ndarray  # (P, d)
    kinetic: np.ndarray  # MeV
    mass: np.ndarray
    charge: np.ndarray
    label: np.ndarray  # TRACK or SHOWER
    owner: np.ndarray  # track id (0 for showers)

    @staticmethod
    def empty(dims: int) -> Particles:
        z = np.zeros(0)
        return Particles(z.astype(np.int64), np.zeros((0, dims)), np.zeros((0, dims)), z, z, z,
                         z.astype(np.int8), z.astype(np.int16))  # fmt: skip

    def __len__(self) -> int:
        return len(self.kinetic)


def _join(parts: list[Particles], dims: int) -> Particles:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Particles.empty(dims)
    return Particles(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Particles.__dataclass_fields__)
    )


def _perpendicular_kick(direction: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Directions turned by a small random angle whose projection on every plane containing the
    direction has standard deviation ``sigma`` (any number of dimensions)."""
    n = rng.standard_normal(direction.shape) * sigma[:, None]
    n -= np.sum(n * direction, axis=1, keepdims=True) * direction
    turned = direction + n
    return turned / np.linalg.norm(turned, axis=1, keepdims=True)


def _rotate(direction: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Turn the two coordinates transverse to the field (the last two axes) by ``angle``."""
    out = direction.copy()
    a, b = direction[:, -2], direction[:, -1]
    c, s = np.cos(angle), np.sin(angle)
    out[:, -2], out[:, -1] = c * a - s * b, s * a + c * b
    return out


@dataclass
class Deposits:
    event: np.ndarray
    pos: np.ndarray  # (N, d) cm, the middle of each step
    energy: np.ndarray  # MeV
    label: np.ndarray
    owner: np.ndarray
    path: np.ndarray  # cm travelled by the particle at the deposit (for tests of dE/dx)
    particle: np.ndarray  # row of the particle in its round


def transport(
    particles: Particles, settings: Settings, rng: np.random.Generator, extent: float
) -> tuple[Deposits, Particles, list[tuple], np.ndarray]:
    """Step every particle until it stops or leaves the cube [0, extent)^d. Returns the energy
    deposits, the delta rays to follow next, the photons emitted, and every particle's last
    direction."""
    s = settings
    d = particles.pos.shape[1]
    pos, u, kin = particles.pos.copy(), particles.direction.copy(), particles.kinetic.copy()
    mass, q = particles.mass, particles.charge
    path = np.zeros(len(kin))
    alive = (kin > STOP_ENERGY) & np.all((pos >= 0) & (pos < extent), axis=1)
    records: list[tuple] = []
    secondaries: list[Particles] = []
    photons: list[tuple] = []
    is_electron = mass < 1.0
    for _ in range(MAX_STEPS):
        idx = np.flatnonzero(alive)
        if len(idx) == 0:
            break
        T, m = kin[idx], mass[idx]
        p = np.sqrt(T * (T + 2 * m))
        E = T + m
        beta2 = (p / E) ** 2
        ds = np.full(len(idx), s.step)
        loss = np.zeros(len(idx))
        if s.energy_loss:
            mean = bethe_dedx(p / m, q[idx]) * ds
            loss = mean * rng.gamma(s.fluctuation_shape, 1 / s.fluctuation_shape, len(idx))
            loss = np.minimum(loss, T)
        deposit = loss.copy()  # what stays here; the delta rays carry theirs away
        # delta rays from the tracks: rate above delta_min per cm, T from 1/T^2
        heavy = particles.label[idx] == TRACK
        t_max = 2 * M_E * p**2 / m**2
        rate = 0.5 * K_BETHE * DENSITY * Z_OVER_A / beta2 * np.clip(1 / s.delta_min - 1 / t_max, 0, None)
        knock = heavy & (t_max > s.delta_min) & (rng.random(len(idx)) < rate * ds)
        if s.energy_loss and np.any(knock):
            k = np.flatnonzero(knock)
            t_e = 1 / (1 / s.delta_min - rng.random(len(k)) * (1 / s.delta_min - 1 / t_max[k]))
            t_e = np.minimum(t_e, 0.5 * (T[k] - loss[k]))
            ok = t_e > STOP_ENERGY
            k, t_e = k[ok], t_e[ok]
            p_e = np.sqrt(t_e * (t_e + 2 * M_E))
            cos = np.clip(t_e / p_e * (E[k] + M_E) / p[k], -1, 1)
            secondaries.append(_emitted(particles, idx[k], pos[idx[k]], u[idx[k]], cos, t_e, rng, M_E, -1.0))
            loss[k] += t_e
        # bremsstrahlung of shower electrons above the critical energy: photons with a fraction y
        # of T from the 1/y spectrum on [Y_MIN, 1], at the rate that radiates E/X0 per unit length
        radiating = is_electron[idx] & (particles.label[idx] == SHOWER) & (T > CRITICAL_ENERGY)
        brems = radiating & (rng.random(len(idx)) < ds / RADIATION_LENGTH / BREMS_MEAN_FRACTION)
        if np.any(brems):
            k = np.flatnonzero(brems)
            k_gamma = T[k] * Y_MIN ** rng.random(len(k))
            k_gamma = np.minimum(k_gamma, T[k] - loss[k] - STOP_ENERGY)
            keep = k_gamma > PHOTON_CUT
            k, k_gamma = k[keep], k_gamma[keep]
            photons.append((particles.event[idx[k]], pos[idx[k]].copy(), u[idx[k]].copy(), k_gamma))
            kin[idx[k]] -= k_gamma
        middle = pos[idx] + 0.5 * ds[:, None] * u[idx]
        records.append((idx, middle, deposit, path[idx] + 0.5 * ds))
        # scattering: the increment of Highland's theta0^2 over this step
        if s.scattering:
            beta_p = beta2 * E
            here = path[idx]
            var = highland(beta_p, here + ds, beta2) ** 2 - highland(beta_p, here, beta2) ** 2
            u[idx] = _perpendicular_kick(u[idx], np.sqrt(np.maximum(var, 0)), rng)
        if s.b_field:
            u[idx] = _rotate(u[idx], 0.3 * q[idx] * s.b_field * (ds / 100) / (p / 1000))
        pos[idx] += ds[:, None] * u[idx]
        path[idx] += ds
        kin[idx] -= loss
        stopped = kin[idx] <= STOP_ENERGY
        if np.any(stopped):  # the remainder where it stops
            k = idx[stopped]
            records.append((k, pos[k].copy(), np.maximum(kin[k], 0.0), path[k]))
            kin[k] = 0
        alive[idx] = (kin[idx] > STOP_ENERGY) & np.all((pos[idx] >= 0) & (pos[idx] < extent), axis=1)
    if records:
        rows = np.concatenate([r[0] for r in records])
        pos, energy, path = (np.concatenate([r[k] for r in records]) for k in (1, 2, 3))
        deposits = Deposits(
            particles.event[rows], pos, energy, particles.label[rows], particles.owner[rows], path, rows
        )
    else:
        z = np.zeros(0)
        deposits = Deposits(
            z.astype(int), np.zeros((0, d)), z, z.astype(np.int8), z.astype(np.int16), z, z.astype(int)
        )
    return deposits, _join(secondaries, d), photons, u


def _emitted(parents: Particles, rows, pos, u, cos, kinetic, rng, mass: float, charge: float) -> Particles:
    """Electrons leaving ``pos`` at polar angle arccos(cos) about ``u`` (random azimuth)."""
    sin = np.sqrt(np.clip(1 - cos**2, 0, None))
    n = rng.standard_normal(u.shape)
    n -= np.sum(n * u, axis=1, keepdims=True) * u
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    direction = cos[:, None] * u + sin[:, None] * n
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    k = len(rows)
    return Particles(
        parents.event[rows], pos.copy(), direction, kinetic, np.full(k, mass), np.full(k, charge),
        parents.label[rows], parents.owner[rows],
    )  # fmt: skip


def convert(
    photons: list[tuple], dims: int, rng: np.random.Generator, extent: float, *, gap: bool = True
) -> Particles:
    """Each photon converts after an exponential path of 9/7 X0 (or where it is, without ``gap``)
    into an electron and a positron sharing its energy uniformly, at angles ~ m_e / E; those
    converting outside the volume are lost."""
    if not photons:
        return Particles.empty(dims)
    event = np.concatenate([p[0] for p in photons])
    pos = np.concatenate([p[1] for p in photons])
    u = np.concatenate([p[2] for p in photons])
    energy = np.concatenate([p[3] for p in photons])
    where = pos + (rng.exponential(9 / 7 * RADIATION_LENGTH, len(energy))[:, None] * u if gap else 0)
    inside = np.all((where >= 0) & (where < extent), axis=1)
    event, where, u, energy = event[inside], where[inside], u[inside], energy[inside]
    share = rng.random(len(energy))
    kinetic = np.concatenate([share, 1 - share]) * np.tile(energy, 2) - M_E
    k = len(energy)
    both = Particles(
        np.tile(event, 2), np.tile(where, (2, 1)), np.tile(u, (2, 1)), kinetic, np.full(2 * k, M_E),
        np.concatenate([-np.ones(k), np.ones(k)]), np.full(2 * k, SHOWER, np.int8), np.zeros(2 * k, np.int16),
    )  # fmt: skip
    angle = M_E / np.maximum(both.kinetic, M_E)
    both.direction = _perpendicular_kick(both.direction, angle, rng)
    return both


# ---- events --------------------------------------------------------------------------------------


def _isotropic(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, dims))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def primaries(n: int, settings: Settings, rng: np.random.Generator):
    """The event content: charged tracks (with their parameters), showers and noise levels."""
    s, d = settings, settings.dims
    extent = s.size * s.pitch
    low, high = s.tracks
    counts = rng.integers(low, high + 1, n)
    common = rng.random(n) < s.common_vertex
    names = list(s.particles)
    weights = np.array([s.particles[k] for k in names], np.float64)
    T = s.max_tracks
    vertex = np.full((n, T, d), np.nan)
    direction = np.full((n, T, d), np.nan)
    momentum = np.full((n, T), np.nan)
    pdg = np.zeros((n, T), np.int32)
    charge = np.zeros((n, T))
    rows = []
    for i in range(n):
        shared = rng.uniform(0.2, 0.8, d) * extent
        for t in range(counts[i]):
            kind = names[rng.choice(len(names), p=weights / weights.sum())]
            lo, hi = s.momentum[kind]
            p = rng.uniform(lo, hi) if kind == "proton" else math.exp(rng.uniform(math.log(lo), math.log(hi)))
            vertex[i, t] = shared if common[i] else rng.uniform(0.2, 0.8, d) * extent
            direction[i, t] = _isotropic(1, d, rng)[0]
            momentum[i, t] = p
            pdg[i, t] = PDG_CODES[kind]
            charge[i, t] = 1.0 if kind == "proton" else rng.choice([-1.0, 1.0])
            rows.append((i, t, kind))
    shower = rng.random(n) < s.shower_probability
    lo, hi = s.shower_energy
    shower_energy = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
    shower_photon = rng.random(n) < 0.5
    shower_vertex = rng.uniform(0.2, 0.8, (n, d)) * extent
    shower_direction = _isotropic(n, d, rng)
    noise = np.exp(rng.uniform(*np.log(s.noise_levels), n))
    idx = [(i, t) for i, t, _ in rows]
    ev = np.array([i for i, _ in idx], np.int64)
    tt = np.array([t for _, t in idx], np.int64)
    mass = np.array([MASSES[k] for *_, k in rows])
    p = momentum[ev, tt]
    tracks = Particles(
        ev, vertex[ev, tt], direction[ev, tt], np.sqrt(p**2 + mass**2) - mass, mass, charge[ev, tt],
        np.full(len(ev), TRACK, np.int8), (tt + 1).astype(np.int16),
    )  # fmt: skip
    truth = {"vertex": vertex, "direction": direction, "momentum": momentum, "pdg": pdg, "charge": charge}
    showers = (np.flatnonzero(shower), shower_vertex, shower_direction, shower_energy, shower_photon)
    return tracks, showers, noise, truth


def _shower_starts(showers, dims: int, rng: np.random.Generator, extent: float) -> Particles:
    events, vertex, direction, energy, photon = showers
    electrons = events[~photon[events]]
    k = len(electrons)
    primary = Particles(
        electrons, vertex[electrons], direction[electrons], energy[electrons] - M_E, np.full(k, M_E),
        -np.ones(k), np.full(k, SHOWER, np.int8), np.zeros(k, np.int16),
    )  # fmt: skip
    # a photon is followed from where it converts (the gap to its parent vertex is not simulated):
    # an electron pair at the shower's start, where an electron shower starts with one track
    gammas = events[photon[events]]
    starts = [(gammas, vertex[gammas], direction[gammas], energy[gammas])]
    converted = convert(starts, dims, rng, extent, gap=False)
    return _join([primary, converted], dims)


def simulate(n: int, rng: np.random.Generator, settings: Settings) -> Events:
    """``n`` events drawn from ``rng``."""
    return _simulate(n, rng, settings)[0]


def _simulate(n: int, rng: np.random.Generator, settings: Settings):
    """The events, and the true energy per cell (n, *S) in MeV that tracks (delta rays
    included), showers and the tracks' delta rays alone left."""
    s, d = settings, settings.dims
    extent = s.size * s.pitch
    shape = (s.size,) * d
    tracks, showers, noise, truth = primaries(n, s, rng)
    queue = _join([tracks, _shower_starts(showers, d, rng, extent)], d)
    deposits: list[Deposits] = []
    while len(queue):
        found, secondaries, photons, _ = transport(queue, s, rng, extent)
        deposits.append(found)
        queue = _join([secondaries, convert(photons, d, rng, extent)], d)
    # the first round is the primaries; a track deposit of a later one is a delta ray's
    secondary = np.concatenate([np.full(len(x.energy), k > 0) for k, x in enumerate(deposits)])
    event = np.concatenate([x.event for x in deposits])
    pos = np.concatenate([x.pos for x in deposits])
    energy = np.concatenate([x.energy for x in deposits])
    label = np.concatenate([x.label for x in deposits])
    owner = np.concatenate([x.owner for x in deposits]).astype(np.int64)
    cell = np.floor(pos / s.pitch).astype(np.int64)
    inside = np.all((cell >= 0) & (cell < s.size), axis=1)
    cells = n * s.size**d
    flat = np.ravel_multi_index((event[inside], *cell[inside].T), (n, *shape))
    energy, label, owner, secondary = energy[inside], label[inside], owner[inside], secondary[inside]
    e_track = np.bincount(flat, energy * (label == TRACK), minlength=cells).reshape(n, *shape)
    e_shower = np.bincount(flat, energy * (label == SHOWER), minlength=cells).reshape(n, *shape)
    e_delta = np.bincount(flat, energy * (label == TRACK) * secondary, minlength=cells).reshape(n, *shape)
    # the track depositing most in each cell owns it
    sel = label == TRACK
    key = flat[sel] * (s.max_tracks + 1) + owner[sel]
    keys, summed = np.unique(key, return_inverse=True)
    per_key = np.bincount(summed, energy[sel])
    cell_of, owner_of = np.divmod(keys[np.lexsort((per_key, keys // (s.max_tracks + 1)))], s.max_tracks + 1)
    last = np.append(cell_of[1:] != cell_of[:-1], True)  # each cell's largest deposit comes last
    best = np.zeros(cells, np.int8)
    best[cell_of[last]] = owner_of[last]
    best = best.reshape(n, *shape)
    image = readout(e_track + e_shower, noise, s, rng)
    hit = image > 0
    signal = hit & (e_track + e_shower >= 0.5 * s.threshold)
    labels = np.where(signal, np.where(e_track >= e_shower, TRACK, SHOWER), BACKGROUND).astype(np.int8)
    track_id = np.where(labels == TRACK, best, 0).astype(np.int8)
    ids = np.arange(1, s.max_tracks + 1)
    hits = (track_id.reshape(n, -1)[:, :, None] == ids).sum(axis=1)
    events = Events(
        image=image, label=labels, track_id=track_id, n_tracks=(hits >= MIN_TRACK_HITS).sum(axis=1),
        noise=noise, hits=hits, n_showers=np.isin(np.arange(n), showers[0]).astype(np.int64), **truth,
    )  # fmt: skip
    return events, {"track": e_track, "shower": e_shower, "delta": e_delta}


def shared_hits(n: int, rng: np.random.Generator, settings: Settings) -> dict[str, float]:
    """How ambiguous the per-hit labels are in themselves: of the track hits (shower hits) of
    ``n`` events, the fraction that also hold shower (track) charge, and the fraction where the
    other class left at least a quarter as much as the owner. Each hit has one label, that of
    the larger deposit, and the image holds only the sum: a method that labels every hit by the
    other information there is (shape, context) still cannot tell a cell's shares apart, so
    these fractions bound what it loses to overlaps."""
    events, true = _simulate(n, rng, settings)
    e_track, e_shower = true["track"], true["shower"]
    track, shower = events.label == TRACK, events.label == SHOWER
    return {
        "track_hits_with_shower_charge": _ratio(track & (e_shower > 0), track),
        "track_hits_with_shower_quarter": _ratio(track & (e_shower >= 0.25 * e_track), track),
        "shower_hits_with_track_charge": _ratio(shower & (e_track > 0), shower),
        "shower_hits_with_track_quarter": _ratio(shower & (e_track >= 0.25 * e_shower), shower),
    }


def _ratio(part: np.ndarray, whole: np.ndarray) -> float:
    return float(part.sum() / whole.sum()) if whole.any() else float("nan")


def readout(deposit: np.ndarray, noise: np.ndarray, s: Settings, rng: np.random.Generator) -> np.ndarray:
    """Noise, spurious hits, dead channels and zero suppression on the true deposits (n, *S)."""
    n = len(deposit)
    level = noise.reshape(n, *([1] * s.dims))
    image = deposit + rng.standard_normal(deposit.shape) * s.noise_sigma * level
    spurious = rng.random(deposit.shape) < s.noise_rate * level
    image += spurious * (s.threshold + rng.exponential(s.noise_amplitude, deposit.shape))
    dead = rng.random((n, *deposit.shape[2:])) < s.dead_fraction  # lines along axis 0
    image *= ~dead[:, None]
    image[image < s.threshold] = 0
    return image.astype(np.float32)


def concatenate(parts: list[Events]) -> Events:
    return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in EVENT_FIELDS))


def take(events: Events, idx) -> Events:
    return Events(*(getattr(events, f)[idx] for f in EVENT_FIELDS))


def _chunk(settings: Settings, n: int, seed: int, index: int) -> Events:
    return simulate(n, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,))), settings)


def generate(settings: Settings, n: int, seed: int, *, workers: int = 1, progress=None) -> Events:
    """``n`` events in chunks of ``CHUNK`` from the streams (seed, chunk), shared out to
    ``workers`` processes: the same events for any number of them."""
    starts = list(range(0, n, CHUNK)) or [0]
    jobs = [(settings, min(CHUNK, n - start), seed, k) for k, start in enumerate(starts)]
    parts: list[Events] = []
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            parts.append(_chunk(*job))
            if progress is not None:
                progress(len(parts[-1]))
        return concatenate(parts)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # NumPy only: forking is safe, and a user's script needs no __main__ guard
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
        for future in [pool.submit(_chunk, *job) for job in jobs]:
            parts.append(future.result())
            if progress is not None:
                progress(len(parts[-1]))
    return concatenate(parts)


# ---- files ---------------------------------------------------------------------------------------


def to_hdf5_datasets(events: Events) -> dict[str, np.ndarray]:
    """What ``astrocnn generate tracks`` writes: ``images`` and ``labels`` (so that the generic
    ``segment`` task reads it too), the track ids and the per-event truth."""
    out = {"images": events.image, "labels": events.label}
    out.update({f: getattr(events, f) for f in EVENT_FIELDS if f not in ("image", "label")})
    return out


def read_events(path) -> tuple[Events, dict]:
    """The events and attributes of a file ``astrocnn generate tracks`` wrote; every problem is
    one DataError naming the file."""
    from pathlib import Path

    from astrocnn.data.readers import DataError, hdf5_dataset_names, hdf5_listing, library_errors, open_hdf5

    path = Path(path)
    names = {"image": "images", "label": "labels"}
    with library_errors(path, "HDF5"), open_hdf5(path) as f:
        held = hdf5_dataset_names(f)
        missing = [names.get(k, k) for k in EVENT_FIELDS if names.get(k, k) not in held]
        if missing:
            raise DataError(
                f"{path}: no dataset {missing[0]!r}: not a file of `astrocnn generate tracks` "
                f"(it holds: {hdf5_listing(held)})"
            )
        values = {k: f[names.get(k, k)][()] for k in EVENT_FIELDS}
        attrs = dict(f.attrs)
    n = len(values["image"])
    for k, v in values.items():
        if len(v) != n:
            raise DataError(f"{path}: {names.get(k, k)} holds {len(v)} events, images {n}")
    if values["label"].shape != values["image"].shape or values["image"].ndim not in (3, 4):
        raise DataError(
            f"{path}: images {values['image'].shape} and labels {values['label'].shape} must both be "
            "(N, H, W) or (N, D, H, W)"
        )
    return Events(**values), attrs
