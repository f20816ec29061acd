"""astrocnn's own Monte Carlo of Cherenkov-telescope images of gamma-ray and proton showers.

A deliberately compact model whose ingredients are the physics the real analyses rely on:

- **Primaries**: gamma rays and protons, energies from a power law dN/dE ~ E^-index over
  ``energy_range`` TeV, vertical showers whose core falls uniformly over a disc of ``max_impact``
  metres around the telescope; gamma rays come from the source, a small random offset from the
  camera centre; protons arrive isotropically within ``proton_cone`` degrees (the diffuse
  background), so their images do not point at the source.
- **Longitudinal development** in an isothermal atmosphere (X(h) = 1030 g/cm^2 exp(-h / 8.4 km),
  observation level ``altitude``): electromagnetic showers follow Greisen's profile in radiation
  lengths (X0 = 36.7 g/cm^2, critical energy 84 MeV) from a first interaction exponentially
  distributed with mean 9/7 X0; hadronic showers follow Gaisser-Hillas (lambda = 70 g/cm^2) from a
  first interaction with mean 80 g/cm^2 and a depth of maximum with 40 g/cm^2 fluctuations, and
  carry electromagnetic sub-showers displaced from the axis and, at random, a muon whose
  Cherenkov light makes a ring or an arc. The first interaction's most energetic neutral pion
  starts an electromagnetic sub-shower along the axis (a gamma-ray image) with the fraction x of
  the proton's energy that the leading pi0 of a p-air collision carries (:func:`leading_pi0_fraction`):
  the rare protons with x near 1 are the gamma-like hadronic background of real analyses
  (Maier & Knapp 2007, Astropart. Phys. 28, 72; Sobczynska 2007, J. Phys. G 34, 2279).
- **Light**: Cherenkov yield along the shower proportional to the number of particles times the
  refractivity n - 1 ~ density (2.9e-4 at sea level), normalised so that a shower gives
  ``yield_per_tev`` photoelectrons per TeV inside the light pool (120 m), falling exponentially
  beyond; lateral spread of the emitting particles by the Molière radius (9.1 g/cm^2 / density),
  wider for hadrons; photoelectrons Poisson-distributed.
- **Projection**: a point at height d above the telescope and r off the axis (the core at
  distance R) is seen at angle (R - r_parallel) / d along the core-to-telescope direction (so the
  image is an ellipse pointing at the source, longer for larger R) plus the optical spread;
  arrival times from the path difference sqrt(d^2 + R^2) - d.
- **Camera**: pixels as built in :mod:`camera`; night-sky background (Poisson, pedestal
  subtracted) and electronic noise per pixel. Two channels: charge (photoelectrons) and arrival
  time (ns, relative to the charge-weighted mean time of the pixels read above 5 p.e.): the mean
  time of the photoelectrons the pixel read, signal ones at the shower's delay, background ones
  anywhere in the +-12 ns readout window, clipped to it, so that a faint pixel's time is as
  uncertain as its charge.

Every event draws from its own random stream (seed, event index), so events do not depend on
how many are generated together, in how many processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from astrocnn.tasks.iact.camera import Camera

GAMMA, PROTON = 0, 1
PARTICLES = ("gamma", "proton")

RADIATION_LENGTH = 36.7  # g/cm^2 in air
CRITICAL_ENERGY = 0.084  # GeV
SCALE_HEIGHT = 8.4  # km
SEA_LEVEL_DEPTH = 1030.0  # g/cm^2
MOLIERE_DEPTH = 9.1  # g/cm^2 (Moliere radius times density)
SPEED_OF_LIGHT = 0.299792458  # m/ns
MUON_CHERENKOV_ANGLE = 1.2  # degrees, a relativistic muon at ground level
MUON_PHOTOELECTRONS = 400.0  # a full ring (muon through the mirror centre)
REFRACTIVITY = 2.9e-4  # n - 1 at sea level
PROTON_X_MAX_1TEV = 280.0  # g/cm^2 after the first interaction
PROTON_ELONGATION = 58.0  # g/cm^2 per decade of energy
#: Neutral pions of a p-air collision at TeV energies: x dN/dx = c (1 - x)^n in Feynman x = E_pi / E_p
#: (the scaling form of Gaisser, Engel & Resconi, "Cosmic Rays and Particle Physics", 2nd ed. 2016,
#: ch. 5), with n = 4 and c set so that the pi0 carry a third of the inelasticity K = 0.55 (p-air at
#: TeV energies: about half the energy goes into new particles, a third of the pions neutral):
#: integral of x dN/dx = c / (n + 1) = K / 3.
PI0_SPECTRUM_POWER = 4.0
INELASTICITY = 0.55
PI0_SPECTRUM_NORM = (PI0_SPECTRUM_POWER + 1.0) * INELASTICITY / 3.0
#: Mean transverse momentum of produced pions (GeV/c): the leading pi0's sub-shower leaves the axis
#: at an angle p_t / (x E).
PI0_MEAN_PT = 0.35
#: Spread of the emitting particles about the axis, in Moliere radii (most of an electromagnetic
#: shower's particles lie well inside one Moliere radius).
LATERAL = 0.05


@dataclass(frozen=True)
class Settings:
    """What the simulated instrument and sky are (defaults: a TAIGA-like site and telescope)."""

    energy_range: tuple[float, float] = (0.3, 100.0)  # TeV
    index: float = 2.0  # dN/dE ~ E^-index
    max_impact: float = 300.0  # m
    source_offset: float = 0.0  # degrees: the source lies within this of the camera centre
    proton_cone: float = 7.0  # degrees: protons arrive isotropically within this of the axis
    altitude: float = 0.675  # km above sea level
    yield_per_tev: float = 100.0  # photoelectrons per TeV inside the light pool
    pool_radius: float = 120.0  # m
    pool_falloff: float = 60.0  # m, exponential beyond the pool
    psf: float = 0.05  # degrees, optical spread
    nsb: float = 0.5  # photoelectrons of night-sky background per pixel and event
    noise: float = 0.4  # photoelectrons, electronic noise per pixel
    time_jitter: float = 0.8  # ns
    readout_window: float = 12.0  # ns: background photoelectrons arrive uniformly within +-this
    trigger_charge: float = 5.0  # photoelectrons: pixels read above this place the readout window
    heights: np.ndarray = field(default_factory=lambda: np.linspace(0.8, 30.0, 240), repr=False)  # km
    #: Whether a proton's first interaction sends part of its energy into a leading pi0 whose
    #: electromagnetic sub-shower develops along the axis (False: the model before it existed).
    leading_pi0: bool = True


@dataclass
class Events:
    """Simulated events: camera images and the truth."""

    charge: np.ndarray  # (n, pixels) photoelectrons
    time: np.ndarray  # (n, pixels) ns, relative to the charge-weighted mean of the bright pixels
    particle: np.ndarray  # (n,) 0 gamma, 1 proton
    energy: np.ndarray  # (n,) TeV
    core: np.ndarray  # (n, 2) m, the core's position relative to the telescope
    direction: np.ndarray  # (n, 2) degrees, the primary's arrival direction in the camera frame
    source: np.ndarray  # (n, 2) degrees, the source position in the camera
    x_max: np.ndarray  # (n,) g/cm^2, depth of the shower maximum
    muon: np.ndarray  # (n,) whether a muon's light was added

    def __len__(self) -> int:
        return len(self.energy)

    @property
    def impact(self) -> np.ndarray:
        return np.hypot(self.core[:, 0], self.core[:, 1])


def depth(height_km: np.ndarray) -> np.ndarray:
    """Vertical atmospheric depth (g/cm^2) at a height above sea level (km)."""
    return SEA_LEVEL_DEPTH * np.exp(-np.asarray(height_km) / SCALE_HEIGHT)


def density_ratio(height_km: np.ndarray) -> np.ndarray:
    """Air density relative to sea level."""
    return np.exp(-np.asarray(height_km) / SCALE_HEIGHT)


def greisen(depth_gcm2: np.ndarray, energy_tev: float, first: float) -> np.ndarray:
    """Greisen's electromagnetic profile: particles at slant depth ``depth`` for a primary of
    ``energy`` TeV that first interacted at depth ``first`` (g/cm^2)."""
    beta0 = math.log(energy_tev * 1000.0 / CRITICAL_ENERGY)
    t = np.clip((np.asarray(depth_gcm2) - first) / RADIATION_LENGTH, 1e-6, None)
    s = 3 * t / (t + 2 * beta0)
    particles = 0.31 / math.sqrt(beta0) * np.exp(t * (1 - 1.5 * np.log(s)))
    return np.where(np.asarray(depth_gcm2) > first, particles, 0.0)


def gaisser_hillas(depth_gcm2: np.ndarray, first: float, x_max: float, lam: float = 70.0) -> np.ndarray:
    """Gaisser-Hillas hadronic profile, normalised to 1 at ``x_max``."""
    x = np.asarray(depth_gcm2)
    span = max(x_max - first, 1.0)
    ratio = np.clip((x - first) / span, 1e-12, None)
    profile = ratio ** (span / lam) * np.exp((x_max - x) / lam)
    return np.where(x > first, profile, 0.0)


def greisen_x_max(energy_tev: float, first: float) -> float:
    """Depth of Greisen's maximum, t_max = ln(E / E_c) radiation lengths after ``first``."""
    return first + RADIATION_LENGTH * math.log(energy_tev * 1000.0 / CRITICAL_ENERGY)


def _pi0_above(x: np.ndarray) -> np.ndarray:
    """Mean number of neutral pions above Feynman x in one p-air collision: the integral of
    c (1 - u)^n / u from x to 1, summed on a fine logarithmic grid."""
    u = np.geomspace(1e-4, 1.0, 20001)
    density = PI0_SPECTRUM_NORM * (1.0 - u) ** PI0_SPECTRUM_POWER / u
    steps = 0.5 * (density[1:] + density[:-1]) * np.diff(u)
    above = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])
    return np.interp(x, u, above)


_LEADING_X = np.geomspace(1e-4, 1.0, 4001)
#: P(leading x < grid): pions emitted independently (Poisson), so no pion above x has probability
#: exp(-N(>x)).
_LEADING_CDF = np.exp(-_pi0_above(_LEADING_X))


def leading_pi0_fraction(rng: np.random.Generator, size=None):
    """The fraction of the primary's energy that the most energetic pi0 of a p-air collision
    carries, drawn from P(x_lead < x) = exp(-N(>x)) with N(>x) the mean number of pi0 above x of
    the inclusive spectrum x dN/dx = c (1 - x)^n (independent emission). About 18 % of
    collisions give the leading pi0 more than a fifth of the energy, 1 % more than half."""
    u = rng.random(size)
    # below the grid's start (a leading pi0 under 1e-4 of the energy): no light worth following
    return np.where(u < _LEADING_CDF[0], 0.0, np.interp(u, _LEADING_CDF, _LEADING_X))


#: The mean leading-pi0 fraction, E[x_lead] = integral of P(x_lead > x) dx (about 0.11).
MEAN_LEADING_PI0 = float(
    np.sum(0.5 * ((1 - _LEADING_CDF[1:]) + (1 - _LEADING_CDF[:-1])) * np.diff(_LEADING_X))
)


def height_of_depth(depth_gcm2: float) -> float:
    """Height above sea level (km) of a vertical atmospheric depth (g/cm^2)."""
    return SCALE_HEIGHT * math.log(SEA_LEVEL_DEPTH / max(depth_gcm2, 1e-6))


class Simulator:
    """Events for one camera; :meth:`simulate` draws them, each from its own random stream."""

    def __init__(self, camera: Camera, settings: Settings | None = None):
        self.camera, self.settings = camera, settings or Settings()
        self.tree = cKDTree(np.stack([camera.x, camera.y], axis=1))
        self.rad_to_m = camera.focal_length  # small angles: camera position = f * angle

    # ---- primaries ------------------------------------------------------------------------------
    def _energy(self, rng: np.random.Generator, energy_range=None) -> float:
        low, high = energy_range or self.settings.energy_range
        g = 1.0 - self.settings.index
        if abs(g) < 1e-9:
            return float(low * (high / low) ** rng.random())
        return float((low**g + rng.random() * (high**g - low**g)) ** (1 / g))

    def event(self, particle: int, rng: np.random.Generator, energy_range=None) -> dict:
        """One event: its images and truth."""
        s = self.settings
        energy = self._energy(rng, energy_range)
        radius = s.max_impact * math.sqrt(rng.random())
        azimuth = rng.uniform(0, 2 * math.pi)
        core = np.array([radius * math.cos(azimuth), radius * math.sin(azimuth)])
        offset = s.source_offset * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        source = np.array([offset * math.cos(angle), offset * math.sin(angle)])
        if particle == GAMMA:
            direction = source.copy()
        else:  # isotropic within the cone: uniform in solid angle
            cone = s.proton_cone * math.sqrt(rng.random())
            angle = rng.uniform(0, 2 * math.pi)
            direction = np.array([cone * math.cos(angle), cone * math.sin(angle)])
        points, x_max, pi0 = self._shower(particle, energy, core, direction, rng)
        # a muon passing within 8 m of the mirror: local muon density ~ E^0.9, falling with impact
        muon_rate = 0.05 * energy**0.9 * math.exp(-float(np.hypot(*core)) / 150.0)
        muon = particle == PROTON and rng.random() < min(0.9, muon_rate)
        if muon:
            points = np.concatenate([points, self._muon(rng, direction)])
        charge, time = self._camera(points, rng)
        return {
            "charge": charge, "time": time, "particle": particle, "energy": energy, "core": core,
            "direction": direction, "source": source, "x_max": x_max, "muon": muon, "pi0_fraction": pi0,
        }  # fmt: skip

    # ---- the shower ---------------------------------------------------------------------------
    def _profile(
        self, particle: int, energy: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, float, float]:
        """The longitudinal profile at ``settings.heights``, its x_max and the depth of the first
        interaction (g/cm^2)."""
        heights = self.settings.heights
        x = depth(heights)
        if particle == GAMMA:
            # Greisen's profile counts from the photon's entry; the first pair production only
            # fluctuates it (its mean, 9/7 X0, is taken out so the mean X_max stays Greisen's)
            first = rng.exponential(9 / 7 * RADIATION_LENGTH) - 9 / 7 * RADIATION_LENGTH
            return greisen(x, energy, first), greisen_x_max(energy, first), first
        # hadronic showers: first interaction with mean 80 g/cm^2, X_max rising ~58 g/cm^2 per
        # decade of energy (the electromagnetic 85 is steeper), 40 g/cm^2 fluctuations on top
        first = rng.exponential(80.0)
        x_max = first + PROTON_X_MAX_1TEV + PROTON_ELONGATION * math.log10(energy) + rng.normal(0.0, 40.0)
        x_max = max(x_max, first + 20.0)
        return gaisser_hillas(x, first, x_max), x_max, first

    def _light(self, profile: np.ndarray) -> np.ndarray | None:
        """Cherenkov light per height: particles times refractivity (n - 1 ~ density), normalised;
        the emitting height above the telescope must exceed a few hundred metres to be seen.
        None where nothing is seen."""
        s = self.settings
        light = profile * density_ratio(s.heights) * ((s.heights - s.altitude) * 1000.0 > 200.0)
        return light / light.sum() if light.sum() > 0 else None

    def _shower(self, particle, energy, core, direction, rng) -> tuple[np.ndarray, float, float]:
        """Photoelectrons as (camera x, camera y, time) rows; the shower's x_max; the energy
        fraction of a proton's leading pi0 (0 for gamma rays)."""
        s = self.settings
        heights = s.heights
        profile, x_max, first = self._profile(particle, energy, rng)
        above = (heights - s.altitude) * 1000.0  # m
        light = self._light(profile)
        impact = float(np.hypot(*core))
        pool = 1.0 if impact <= s.pool_radius else math.exp(-(impact - s.pool_radius) / s.pool_falloff)
        expected = s.yield_per_tev * energy * pool
        lateral_factor = 1.0 if particle == GAMMA else 2.5
        no_tilt = np.zeros(2)
        # (where the part's axis meets the ground, mean photoelectrons, lateral widening, light
        # per height, tilt of its axis in radians, height in m above the telescope it starts from)
        parts = [(core, expected, lateral_factor, light, no_tilt, 0.0)]
        pi0 = 0.0
        if particle == PROTON:
            # a proton gives about 0.35-0.5 of a gamma ray's light (on average over the leading
            # pi0's share, which below goes into a gamma-ray-like sub-shower at full yield)
            total = 0.35 + 0.05 * math.log10(energy / 0.3)
            parts = []
            if s.leading_pi0:
                pi0 = float(leading_pi0_fraction(rng))
                # the rest keeps the average light of a proton what it was: total on average
                rest = max(total - MEAN_LEADING_PI0, 0.0) / (1.0 - MEAN_LEADING_PI0)
                total = pi0 + (1.0 - pi0) * rest
                if pi0 * energy * 1000.0 > 10 * CRITICAL_ENERGY:
                    em = self._light(greisen(depth(heights), pi0 * energy, first))
                    if em is not None:
                        # the two photons of the pi0 decay, one sub-shower along the pion's
                        # direction: p_t / (x E) off the axis (p_t ~ p exp(-2 p / <p_t>))
                        pt = rng.gamma(2.0, PI0_MEAN_PT / 2.0)
                        phi = rng.uniform(0, 2 * math.pi)
                        tilt = pt / (pi0 * energy * 1000.0) * np.array([math.cos(phi), math.sin(phi)])
                        start = (height_of_depth(max(first, 1.0)) - s.altitude) * 1000.0
                        parts.append((core, s.yield_per_tev * pi0 * energy * pool, 1.0, em, tilt, start))
                hadronic = expected * (total - pi0)
            else:
                hadronic = expected * total
            # the rest shared between the hadronic core and electromagnetic sub-showers from
            # later neutral pions, displaced from the axis
            n_sub = rng.poisson(1.0 + 1.5 * math.log10(energy / 0.3))
            shares = rng.dirichlet([3.0] + [1.0] * n_sub)
            parts.append((core, hadronic * shares[0], lateral_factor, light, no_tilt, 0.0))
            for share in shares[1:]:
                parts.append(
                    (core + rng.normal(0.0, 60.0, size=2), hadronic * share, 1.0, light, no_tilt, 0.0)
                )
        rows = []
        for where, mean, widen, weights, tilt, start in parts:
            if weights is None:
                continue
            n = min(rng.poisson(mean), 200_000)
            if n == 0:
                continue
            k = rng.choice(len(heights), size=n, p=weights)
            d = above[k]
            moliere = MOLIERE_DEPTH / (density_ratio(heights[k]) * 1.2e-3) / 100.0  # m
            lateral = rng.normal(0.0, 1.0, size=(n, 2)) * (LATERAL * widen * moliere)[:, None]
            # an emitting point at horizontal position p from the telescope and height d above it
            # is seen p / d (radians) from the arrival direction: high points near the source,
            # low ones further out along the core's direction (the image points at the source);
            # a tilted axis starting at height `start` has moved tilt * (start - d) sideways
            p = where[None, :] + lateral + tilt[None, :] * np.maximum(start - d, 0.0)[:, None]
            angle = np.degrees(p / d[:, None])
            position = direction[None, :] + angle + rng.normal(0.0, s.psf, size=(n, 2))
            # light emitted at height d reaches the telescope after the shower front reaches the
            # ground by the path difference
            delay = (np.sqrt(d**2 + np.sum(p**2, axis=1)) - d) / SPEED_OF_LIGHT
            # the light is slower than the particles by the refractivity along its path: light from
            # high up arrives later (which flattens the time gradient at small impact distances)
            h_em = s.altitude + d / 1000.0  # km
            excess = (
                SCALE_HEIGHT
                * 1000.0
                * REFRACTIVITY
                * (math.exp(-s.altitude / SCALE_HEIGHT) - np.exp(-h_em / SCALE_HEIGHT))
            )
            delay = delay + excess * np.sqrt(1 + np.sum(p**2, axis=1) / d**2) / SPEED_OF_LIGHT
            rows.append(np.column_stack([np.radians(position) * self.rad_to_m, delay]))
        return (np.concatenate(rows) if rows else np.zeros((0, 3))), x_max, pi0

    def _muon(self, rng: np.random.Generator, direction: np.ndarray) -> np.ndarray:
        """A muon's Cherenkov ring: the whole ring when it hits the mirror, an arc (the part of
        the ring the mirror sees) when it passes beside it."""
        impact = 8.0 * math.sqrt(rng.random())  # m from the mirror centre; mirror radius ~2 m
        # ~34 photons per metre: a muon through a 1.8 m mirror gives ~400 photoelectrons at this
        # telescope's efficiency; beside the mirror only an arc of the ring is seen
        n = rng.poisson(MUON_PHOTOELECTRONS * (1.0 if impact < 2.0 else 2.0 / impact))
        phi = rng.uniform(0, 2 * math.pi, size=n)
        if impact >= 2.0:  # an arc facing the impact point
            centre = rng.uniform(0, 2 * math.pi)
            phi = centre + rng.normal(0.0, 0.6, size=n)
        radius = MUON_CHERENKOV_ANGLE + rng.normal(0.0, 0.03, size=n)
        ring_centre = direction + rng.normal(0.0, 0.5, size=2)
        xy = ring_centre[None, :] + radius[:, None] * np.column_stack([np.cos(phi), np.sin(phi)])
        return np.column_stack([np.radians(xy) * self.rad_to_m, np.zeros(n)])

    # ---- the camera ---------------------------------------------------------------------------
    def _camera(self, points: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, n_pix = self.settings, self.camera.n_pixels
        signal = np.zeros(n_pix)
        times = np.zeros(n_pix)
        if len(points):
            distance, pixel = self.tree.query(points[:, :2])
            inside = distance <= self.camera.pitch * 0.6  # off the camera: lost
            pixel = pixel[inside]
            signal = np.bincount(pixel, minlength=n_pix).astype(float)
            times = np.bincount(pixel, weights=points[inside, 2], minlength=n_pix)
            times = np.divide(times, signal, out=np.zeros(n_pix), where=signal > 0)
        detected = rng.poisson(signal + s.nsb)
        charge = detected - s.nsb + rng.normal(0.0, s.noise, n_pix)
        # A pixel's time is the mean arrival time of the photoelectrons it actually read, so that
        # it carries no more about the shower than its charge does: which of them are night-sky
        # background is a binomial split; signal ones arrive at the shower's delay in that pixel
        # (each with time_jitter), background ones anywhere in the readout window; a pixel that
        # read nothing gives a time anywhere in it, and no time falls outside it (a peak finder
        # reports a time inside its window).
        rate = signal + s.nsb
        background = rng.binomial(detected, np.divide(s.nsb, rate, out=np.ones(n_pix), where=rate > 0))
        n_signal = detected - background
        jitter = s.time_jitter / np.sqrt(np.maximum(n_signal, 1))
        signal_time = times + rng.normal(0.0, 1.0, n_pix) * jitter
        # The window is centred on the image's time as the camera reads it: the charge-weighted
        # mean signal time of the pixels read above trigger_charge (all the signal's, if none is)
        bright = (charge >= s.trigger_charge) & (n_signal > 0)
        weights = charge * bright if bright.any() else signal
        total = weights.sum()
        reference = (weights * signal_time).sum() / total if total > 0 else 0.0
        window = s.readout_window
        most = int(background.max())
        uniform = rng.uniform(-window, window, (n_pix, max(most, 1)))
        background_sum = np.where(np.arange(uniform.shape[1]) < background[:, None], uniform, 0.0).sum(axis=1)
        time = np.where(
            detected > 0,
            (n_signal * (signal_time - reference) + background_sum) / np.maximum(detected, 1),
            rng.uniform(-window, window, n_pix),
        ).clip(-window, window)
        return charge.astype(np.float32), time.astype(np.float32)

    def simulate(
        self, n: int, seed: int, *, particles=(GAMMA, PROTON), energy_range=None, first: int = 0
    ) -> Events:
        """Events ``first`` ... ``first + n - 1`` of the stream ``seed``: particle kinds taken in
        turn from ``particles``; event i draws from SeedSequence(seed, spawn_key=(i, particle)).
        ``energy_range`` (TeV) is one (low, high) for all, or a mapping particle -> (low, high)."""
        rows = []
        for i in range(first, first + n):
            kind = particles[i % len(particles)]
            # keyed by the particle too: gamma-only and proton-only files of one seed are unrelated
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i, kind)))
            kind_range = energy_range.get(kind) if isinstance(energy_range, dict) else energy_range
            rows.append(self.event(kind, rng, kind_range))
        if not rows:
            empty = np.zeros((0, self.camera.n_pixels), np.float32)
            pairs = np.zeros((0, 2))
            return Events(
                empty,
                empty,
                np.zeros(0, np.int64),
                np.zeros(0),
                pairs,
                pairs,
                pairs,
                np.zeros(0),
                np.zeros(0, bool),
            )
        return Events(
            charge=np.stack([r["charge"] for r in rows]),
            time=np.stack([r["time"] for r in rows]),
            particle=np.array([r["particle"] for r in rows], dtype=np.int64),
            energy=np.array([r["energy"] for r in rows]),
            core=np.stack([r["core"] for r in rows]),
            direction=np.stack([r["direction"] for r in rows]),
            source=np.stack([r["source"] for r in rows]),
            x_max=np.array([r["x_max"] for r in rows]),
            muon=np.array([r["muon"] for r in rows]),
        )


#: Events per independently generated chunk (one process each).
CHUNK = 500


def _chunk(
    camera_name: str, settings: Settings, n: int, seed: int, particles, energy_range, first: int
) -> Events:
    from astrocnn.tasks.iact.camera import get_camera

    return Simulator(get_camera(camera_name), settings).simulate(
        n, seed, particles=particles, energy_range=energy_range, first=first
    )


def concatenate(parts: list[Events]) -> Events:
    return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in Events.__dataclass_fields__))


def generate(
    camera: Camera,
    n: int,
    seed: int,
    *,
    particles=(GAMMA, PROTON),
    energy_range=None,
    settings: Settings | None = None,
    workers: int = 1,
    progress=None,
) -> Events:
    """``n`` events in chunks of ``CHUNK``, shared out to ``workers`` processes; event i is the
    same whatever the chunking (its stream is (seed, i)). ``progress(done)`` after each chunk."""
    settings = settings or Settings()
    starts = list(range(0, n, CHUNK)) or [0]
    jobs = [
        (camera.name, settings, min(CHUNK, n - s), seed, tuple(particles), energy_range, s) for s in starts
    ]
    if workers <= 1 or len(jobs) == 1:
        parts = []
        for job in jobs:
            parts.append(_chunk(*job))
            if progress is not None:
                progress(len(parts[-1]))
        return concatenate(parts)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # NumPy and SciPy only: forking is safe, and a user's script needs no __main__ guard
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_chunk, *job) for job in jobs]
        parts = []
        for future in futures:
            parts.append(future.result())
            if progress is not None:
                progress(len(parts[-1]))
    return concatenate(parts)


def to_hdf5_datasets(events: Events, camera: Camera) -> dict[str, np.ndarray]:
    """The file ``astrocnn generate iact`` writes: the images, the truth, the camera."""
    return {
        "charge": events.charge.astype(np.float32),
        "time": events.time.astype(np.float32),
        "particle": events.particle.astype(np.int8),
        "energy": events.energy,
        "core": events.core,
        "direction": events.direction,
        "source": events.source,
        "x_max": events.x_max,
        "muon": events.muon.astype(np.int8),
        "camera/x": camera.x,
        "camera/y": camera.y,
        "camera/lattice": camera.lattice.astype(np.int32),
    }


#: The per-event datasets of a file ``astrocnn generate iact`` writes.
EVENT_FIELDS = ("charge", "time", "particle", "energy", "core", "direction", "source", "x_max", "muon")


def read_events(path, camera: Camera | None = None, rows: np.ndarray | None = None) -> tuple[Events, Camera]:
    """The events and the camera of a file ``astrocnn generate iact`` wrote; with ``camera``,
    a file from another camera is refused; with ``rows`` (increasing), only those events, read
    block by block. Every problem is one DataError naming the file."""
    from pathlib import Path

    from astrocnn.data.readers import DataError, hdf5_dataset_names, hdf5_listing, library_errors, open_hdf5

    path = Path(path)
    with library_errors(path, "HDF5"), open_hdf5(path) as f:
        held = hdf5_dataset_names(f)
        missing = [
            name for name in (*EVENT_FIELDS, "camera/x", "camera/y", "camera/lattice") if name not in held
        ]
        if missing:
            raise DataError(
                f"{path}: no dataset {missing[0]!r}: not a file of `astrocnn generate iact` "
                f"(it holds: {hdf5_listing(held)})"
            )
        name = str(f.attrs.get("camera", ""))
        from astrocnn.tasks.iact.camera import CAMERAS, get_camera

        if name not in CAMERAS:
            raise DataError(f"{path}: unknown camera {name!r} (the cameras are {', '.join(CAMERAS)})")
        own = get_camera(name)
        lattice = f["camera/lattice"][()]
        if lattice.shape != own.lattice.shape or not np.array_equal(lattice, own.lattice):
            raise DataError(
                f"{path}: its camera geometry is not astrocnn's {name} camera ({len(lattice)} pixels)"
            )
        if camera is not None and camera.name != own.name:
            raise DataError(
                f"{path}: events of the {own.name} camera ({own.n_pixels} pixels); this task uses the "
                f"{camera.name} camera ({camera.n_pixels} pixels)"
            )
        charge = f["charge"]
        if charge.ndim != 2 or charge.shape[1] != own.n_pixels:
            raise DataError(
                f"{path}: charge has shape {charge.shape}; the {name} camera has {own.n_pixels} pixels"
            )
        n = charge.shape[0]
        for field_name in EVENT_FIELDS:
            if len(f[field_name]) != n:
                raise DataError(f"{path}: {field_name} holds {len(f[field_name])} events, charge {n}")
        values = {k: f[k][()] if rows is None else read_rows(f[k], rows) for k in EVENT_FIELDS}
    events = Events(
        charge=values["charge"].astype(np.float32),
        time=values["time"].astype(np.float32),
        particle=values["particle"].astype(np.int64),
        energy=values["energy"].astype(np.float64),
        core=values["core"].astype(np.float64),
        direction=values["direction"].astype(np.float64),
        source=values["source"].astype(np.float64),
        x_max=values["x_max"].astype(np.float64),
        muon=values["muon"].astype(bool),
    )
    return events, own


#: Events per block when a file is read in parts (about 18 MB of TAIGA charges).
READ_BLOCK = 8192


def read_rows(dataset, rows: np.ndarray, block: int = READ_BLOCK) -> np.ndarray:
    """``dataset[rows]`` for increasing ``rows``, read as contiguous blocks: HDF5's selection of
    many scattered rows, and of rows of a compressed file, is far slower than reading the blocks
    that hold them."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), *dataset.shape[1:]), dataset.dtype)
    if not len(rows):
        return out
    starts = np.arange(rows[0] // block * block, rows[-1] + 1, block)
    bounds = np.searchsorted(rows, np.append(starts, starts[-1] + block))
    for k in range(len(starts)):
        lo, hi = bounds[k], bounds[k + 1]
        if hi > lo:
            stop = int(rows[hi - 1]) + 1
            out[lo:hi] = dataset[int(rows[lo]) : stop][rows[lo:hi] - rows[lo]]
    return out
