"""Cherenkov-telescope cameras as geometries, built in code: pixel positions, pixel shape and size,
focal length, neighbours; and the two ways a hexagonal image reaches a square-grid CNN.

Hexagonal cameras are pointy-top lattices in axial coordinates (q, r): pixel (q, r) sits at
x = pitch * (q + r / 2), y = pitch * sqrt(3) / 2 * r, and its six neighbours differ by one of
``HEX_DIRECTIONS``. A camera keeps the lattice points nearest its centre (ties broken by angle),
so a camera has exactly the pixel count of the instrument it stands for.

Mappings onto a square grid:

- **axial addressing** (:meth:`Camera.to_axial`, :meth:`Camera.from_axial`): pixel (q, r) goes
  to row r, column q of an image, each row shifted by half a pixel against the one below; exact,
  invertible, charge-conserving by construction (the empty corners hold zeros);
- **bilinear** (:class:`BilinearMapping`): each pixel's charge is shared among the four grid
  nodes around its centre with bilinear weights (the adjoint of bilinear interpolation), so the
  image holds the camera's total charge exactly; the inverse is the least-squares solution, exact
  whenever the grid is fine enough to give every pixel its own nodes (tested).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse, spatial
from scipy.sparse import linalg as splinalg

#: Axial offsets of the six neighbours of a hexagonal pixel, counter-clockwise from +x.
HEX_DIRECTIONS = ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))
#: Offsets of the four neighbours of a square pixel.
SQUARE_DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))


@dataclass(frozen=True)
class Camera:
    """A camera: pixel centres (metres on the focal plane), lattice coordinates, pixel shape
    ("hexagon" or "square"), pitch (centre-to-centre distance of neighbours, metres) and the
    telescope's focal length (metres)."""

    name: str
    pixel_shape: str
    pitch: float
    focal_length: float
    lattice: np.ndarray  # (n, 2) int: axial (q, r) for hexagons, (column, row) for squares
    x: np.ndarray = field(init=False, repr=False)
    y: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        q, r = self.lattice[:, 0].astype(float), self.lattice[:, 1].astype(float)
        if self.pixel_shape == "hexagon":
            x, y = self.pitch * (q + r / 2), self.pitch * math.sqrt(3) / 2 * r
        elif self.pixel_shape == "square":
            x, y = self.pitch * q, self.pitch * r
        else:
            raise ValueError(f"pixel_shape must be 'hexagon' or 'square', not {self.pixel_shape!r}")
        object.__setattr__(self, "x", x - x.mean())
        object.__setattr__(self, "y", y - y.mean())

    @property
    def n_pixels(self) -> int:
        return len(self.lattice)

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in m^2 (a hexagon of flat-to-flat width ``pitch``, or a square)."""
        return self.pitch**2 * (math.sqrt(3) / 2 if self.pixel_shape == "hexagon" else 1.0)

    @property
    def pixel_degrees(self) -> float:
        """Angular size of a pixel's pitch on the sky, in degrees."""
        return math.degrees(math.atan(self.pitch / self.focal_length))

    # ---- neighbours ---------------------------------------------------------------------------
    def offsets(self, radius: int = 1) -> list[tuple[int, int]]:
        """Lattice offsets within ``radius`` steps, the centre first: 1 + 3 r (r + 1) for
        hexagons (a hexagonal kernel), (2 r + 1)^2 for squares (a square kernel)."""
        if radius < 0:
            raise ValueError(f"radius must not be negative, got {radius}")
        span = range(-radius, radius + 1)
        if self.pixel_shape == "hexagon":
            found = [(dq, dr) for dr in span for dq in span if max(abs(dq), abs(dr), abs(dq + dr)) <= radius]
        else:
            found = [(dq, dr) for dr in span for dq in span]
        return sorted(found, key=lambda o: (o != (0, 0), o[1], o[0]))

    def neighbour_table(self, radius: int = 1) -> np.ndarray:
        """(n_pixels, k) indices of every pixel's neighbourhood, in the order of
        :meth:`offsets` (the same order for every pixel: a kernel weight means one direction);
        -1 where the neighbour lies outside the camera."""
        index = {tuple(p): i for i, p in enumerate(self.lattice.tolist())}
        table = np.full((self.n_pixels, len(self.offsets(radius))), -1, dtype=np.int64)
        for i, (q, r) in enumerate(self.lattice.tolist()):
            for k, (dq, dr) in enumerate(self.offsets(radius)):
                table[i, k] = index.get((q + dq, r + dr), -1)
        return table

    def neighbours(self) -> list[list[int]]:
        """Each pixel's adjacent pixels, those sharing an edge (6 for inner hexagons, 4 for inner
        squares)."""
        index = {tuple(p): i for i, p in enumerate(self.lattice.tolist())}
        steps = HEX_DIRECTIONS if self.pixel_shape == "hexagon" else SQUARE_DIRECTIONS
        return [
            [index[(q + dq, r + dr)] for dq, dr in steps if (q + dq, r + dr) in index]
            for q, r in self.lattice.tolist()
        ]

    # ---- symmetries ---------------------------------------------------------------------------
    def symmetries(self) -> np.ndarray:
        """(G, n_pixels) the camera's rotations and reflections as pixel maps: row g holds, for
        every pixel, the pixel whose value it takes under transform g (the identity first), -1
        where that source lies outside the camera. Hexagonal cameras: the 12 elements of D6 about
        the pixel nearest the optical axis; square ones: the 8 of D4 about the centre. The sky is
        isotropic, so a transformed event is another event of the same energy and particle: the
        map is exact wherever the camera is symmetric (all pixels for the square camera, all but
        one for TAIGA, all but at most 12 edge pixels for LST)."""
        xy = np.stack([self.x, self.y], axis=1)
        if self.pixel_shape == "hexagon":
            centre, order = xy[np.argmin(np.hypot(self.x, self.y))], 6
        else:
            centre, order = np.zeros(2), 4
        local = xy - centre
        tree = spatial.cKDTree(local)
        maps = []
        for mirror in (False, True):
            for k in range(order):
                angle = 2 * math.pi * k / order
                c, s = math.cos(angle), math.sin(angle)
                # the source of pixel p is T^-1 p: rotate back by the angle, then mirror (y -> -y)
                u = c * local[:, 0] + s * local[:, 1]
                v = -s * local[:, 0] + c * local[:, 1]
                if mirror:
                    v = -v
                distance, source = tree.query(np.stack([u, v], axis=1))
                maps.append(np.where(distance < 1e-3 * self.pitch, source, -1))
        return np.asarray(maps, dtype=np.int64)

    # ---- axial (row-shift) addressing ---------------------------------------------------------
    @property
    def axial_shape(self) -> tuple[int, int]:
        """(rows, columns) of the axial image."""
        low, high = self.lattice.min(axis=0), self.lattice.max(axis=0)
        return int(high[1] - low[1] + 1), int(high[0] - low[0] + 1)

    def _axial_index(self) -> tuple[np.ndarray, np.ndarray]:
        low = self.lattice.min(axis=0)
        return self.lattice[:, 1] - low[1], self.lattice[:, 0] - low[0]

    def to_axial(self, values: np.ndarray) -> np.ndarray:
        """Camera images (..., n_pixels) -> axial images (..., rows, columns), zeros outside."""
        values = np.asarray(values)
        rows, cols = self._axial_index()
        out = np.zeros((*values.shape[:-1], *self.axial_shape), dtype=values.dtype)
        out[..., rows, cols] = values
        return out

    def from_axial(self, images: np.ndarray) -> np.ndarray:
        """Axial images (..., rows, columns) -> camera images (..., n_pixels)."""
        rows, cols = self._axial_index()
        return np.asarray(images)[..., rows, cols]


def _nearest_lattice(n: int, shape: str) -> np.ndarray:
    """The ``n`` lattice points nearest the origin (ties broken by angle, then position)."""
    radius = math.ceil(math.sqrt(n)) + 2
    span = np.arange(-radius, radius + 1)
    q, r = (a.ravel() for a in np.meshgrid(span, span))
    if shape == "hexagon":
        x, y = q + r / 2, math.sqrt(3) / 2 * r
    else:
        x, y = q.astype(float), r.astype(float)
    distance = np.round(np.hypot(x, y), 9)
    angle = np.round(np.mod(np.arctan2(y, x), 2 * np.pi), 9)
    order = np.lexsort((q, r, angle, distance))[:n]
    return np.stack([q[order], r[order]], axis=1)


def taiga_camera() -> Camera:
    """TAIGA-IACT-like: 560 hexagonal pixels of 0.36 degrees (Winston cones at a 30 mm pitch,
    4.75 m focal length)."""
    return Camera(
        "taiga", "hexagon", pitch=0.030, focal_length=4.75, lattice=_nearest_lattice(560, "hexagon")
    )


def lst_camera() -> Camera:
    """LST-like: 1855 hexagonal pixels of 0.1 degrees (50 mm pitch, 28 m focal length)."""
    return Camera("lst", "hexagon", pitch=0.050, focal_length=28.0, lattice=_nearest_lattice(1855, "hexagon"))


def square_camera() -> Camera:
    """CHEC-like square-pixel camera: a 6 x 6 grid of 8 x 8-pixel modules without its four corner
    modules, 2048 pixels of 6 mm, 2.28 m focal length."""
    cells = [
        (8 * mx + i, 8 * my + j)
        for my in range(6)
        for mx in range(6)
        if (mx, my) not in ((0, 0), (5, 0), (0, 5), (5, 5))
        for j in range(8)
        for i in range(8)
    ]
    return Camera("square", "square", pitch=0.006, focal_length=2.28, lattice=np.array(cells))


CAMERAS = {"taiga": taiga_camera, "lst": lst_camera, "square": square_camera}


@functools.cache
def get_camera(name: str) -> Camera:
    """A camera by name: taiga, lst or square."""
    try:
        return CAMERAS[name]()
    except KeyError:
        raise ValueError(f"unknown camera {name!r}; the cameras are {', '.join(CAMERAS)}") from None


class BilinearMapping:
    """Camera images onto a ``size`` x ``size`` square grid covering the camera and back.

    ``matrix`` (size^2, n_pixels, sparse) shares each pixel's charge among the four grid nodes around its
    centre with bilinear weights; every column sums to one, so the image's total is the camera's.
    The inverse is the least-squares solution: for a grid whose nodes are at most about half a pitch
    apart every pixel owns distinct nodes, the matrix has full column rank, and the round trip
    returns every pixel's charge."""

    def __init__(self, camera: Camera, size: int | None = None):
        self.camera = camera
        extent = max(np.ptp(camera.x), np.ptp(camera.y)) + 2 * camera.pitch
        self.size = size or math.ceil(2 * extent / camera.pitch) + 1
        self.step = extent / (self.size - 1)
        self.origin = (-extent / 2, -extent / 2)
        u = (camera.x - self.origin[0]) / self.step
        v = (camera.y - self.origin[1]) / self.step
        i, j = np.floor(u).astype(int), np.floor(v).astype(int)
        fu, fv = u - i, v - j
        corners = ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)), (0, 1, (1 - fu) * fv), (1, 1, fu * fv))
        nodes = np.concatenate([(j + dj) * self.size + (i + di) for di, dj, _ in corners])
        weights = np.concatenate([w for _, _, w in corners])
        pixels = np.tile(np.arange(camera.n_pixels), 4)
        shape = (self.size * self.size, camera.n_pixels)
        self.matrix = sparse.csr_matrix((weights, (nodes, pixels)), shape=shape)  # duplicates add up
        self._factor = None

    @property
    def _gram(self):
        """The factorised normal equations of the least-squares inverse: M^T M is small, sparse
        and, at full column rank, positive definite. Made on first use, and not pickled (SuperLU
        cannot be), so a mapping travels to the generator's worker processes."""
        if self._factor is None:
            self._factor = splinalg.splu((self.matrix.T @ self.matrix).tocsc())
        return self._factor

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_factor": None}

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Camera images (..., n_pixels) -> (..., size, size), row 0 at the lowest y."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(-1, values.shape[-1])
        grid = np.asarray(self.matrix @ flat.T).T
        return grid.reshape(*values.shape[:-1], self.size, self.size)

    def from_grid(self, images: np.ndarray) -> np.ndarray:
        """(..., size, size) -> camera images (..., n_pixels), the least-squares inverse."""
        images = np.asarray(images, dtype=np.float64)
        flat = images.reshape(-1, self.size * self.size)
        values = self._gram.solve(np.asarray(self.matrix.T @ flat.T)).T
        return values.reshape(*images.shape[:-2], self.camera.n_pixels)
