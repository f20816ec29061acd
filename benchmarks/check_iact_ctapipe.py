"""Cross-check of astrocnn's tail-cuts cleaning, Hillas parameters and leakage against ctapipe's,
on astrocnn's own simulated events (issue 9).

ctapipe is not a dependency of astrocnn and must not enter its environment (ctapipe 0.28, the last
release for Python 3.11, pins astropy<8). This script runs in a separate virtual environment with
ctapipe and h5py and no torch: it does not import the ``astrocnn`` package (whose ``__init__``
needs torch) but loads ``camera.py``, ``simulation.py`` and ``hillas.py`` from
``src/astrocnn/tasks/iact/`` by path (they need only NumPy and SciPy)::

    python3 -m venv /tmp/ctavenv
    /tmp/ctavenv/bin/pip install ctapipe h5py pytest     # ctapipe 0.28.0, astropy 7.2, no torch

    # events written by astrocnn in its own environment ...
    .venv/bin/astrocnn generate iact --camera taiga --n 3000 --out /tmp/w/cta/showers.h5
    /tmp/ctavenv/bin/python benchmarks/check_iact_ctapipe.py --events /tmp/w/cta/showers.h5

    # ... or simulated here by the same simulation.py (the same events as astrocnn generate iact
    # with the same --camera, --n and --seed, and its default energies)
    /tmp/ctavenv/bin/python benchmarks/check_iact_ctapipe.py --camera square --camera lst --n 1000

Both sides clean every image with the same thresholds (astrocnn's defaults: picture 7,
boundary 3.5 photoelectrons, at least one picture neighbour; ctapipe's ``tailcuts_clean`` with
``min_number_picture_neighbors=1, keep_isolated_pixels=False``). The geometry handed to ctapipe is
astrocnn's: the same pixel centres in metres on the focal plane, hexagonal or square pixels of
astrocnn's area; ctapipe finds the neighbours itself (a k-d tree), which the script checks against
astrocnn's lattice neighbours. Where the two masks agree, the Hillas parameters are compared
(ctapipe's ``hillas_parameters`` on ``geom[mask], image[mask]``, its documented use), the leakage
(``leakage_parameters``), and the angular length and width (ctapipe's geometry transformed to the
``TelescopeFrame`` with astrocnn's focal length). Prints markdown tables; the test
``tests/test_iact_ctapipe.py`` asserts the same agreement on a few hundred events.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import astropy.units as u
import numpy as np
from ctapipe.coordinates import CameraFrame, TelescopeFrame
from ctapipe.image import hillas_parameters, leakage_parameters, tailcuts_clean
from ctapipe.instrument import CameraGeometry

SRC = Path(__file__).resolve().parents[1] / "src"


def load_iact_modules(src: Path = SRC) -> SimpleNamespace:
    """astrocnn's camera, simulation and hillas modules, loaded from their files without importing
    the astrocnn package: each is registered under its dotted name only while the next one's
    ``from astrocnn.tasks.iact.camera import Camera`` runs, then sys.modules is restored."""
    names = ("camera", "simulation", "hillas")
    saved = {f"astrocnn.tasks.iact.{n}": sys.modules.get(f"astrocnn.tasks.iact.{n}") for n in names}
    loaded = {}
    try:
        for name in names:
            full = f"astrocnn.tasks.iact.{name}"
            spec = importlib.util.spec_from_file_location(
                full, src / "astrocnn" / "tasks" / "iact" / f"{name}.py"
            )
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
            loaded[name] = module
    finally:
        for full, old in saved.items():
            if old is None:
                sys.modules.pop(full, None)
            else:
                sys.modules[full] = old
    return SimpleNamespace(**loaded)


def ctapipe_geometry(camera) -> CameraGeometry:
    """astrocnn's camera as a ctapipe CameraGeometry: the same pixel centres (metres), pixel shape
    and area; pointy-top hexagons (neighbours along +-x) are ctapipe's ``pix_rotation`` 0; the
    frame carries the focal length for the transformation to angles."""
    n = camera.n_pixels
    return CameraGeometry(
        name=f"astrocnn-{camera.name}",
        pix_id=np.arange(n),
        pix_x=camera.x * u.m,
        pix_y=camera.y * u.m,
        pix_area=np.full(n, camera.pixel_area) * u.m**2,
        pix_type="hexagon" if camera.pixel_shape == "hexagon" else "square",
        pix_rotation=0 * u.deg,
        frame=CameraFrame(focal_length=camera.focal_length * u.m),
    )


def geometry_checks(iact, camera, geom) -> dict[str, bool]:
    """Whether ctapipe's neighbours and border rings are astrocnn's."""
    ours = np.zeros((camera.n_pixels, camera.n_pixels), bool)
    for i, neighbours in enumerate(camera.neighbours()):
        ours[i, neighbours] = True
    first, second = iact.hillas.border_rings(camera)
    return {
        "neighbours": bool(np.array_equal(ours, geom.neighbor_matrix)),
        "border ring 1": bool(np.array_equal(first, geom.get_border_pixel_mask(1))),
        "border rings 1-2": bool(np.array_equal(second, geom.get_border_pixel_mask(2))),
    }


#: Compared quantities: (name, unit, kind) with kind "rel" (relative difference to ctapipe's value)
#: or "abs"; angles in degrees, psi as an axis (the difference taken modulo 180 degrees).
QUANTITIES = (
    ("size", "p.e.", "rel"),
    ("x", "m", "abs"),
    ("y", "m", "abs"),
    ("r", "m", "rel"),
    ("phi", "deg", "abs"),
    ("length", "m", "rel"),
    ("width", "m", "rel"),
    ("length_deg", "deg", "rel"),
    ("width_deg", "deg", "rel"),
    ("psi", "deg", "abs"),
    ("skewness", "", "abs"),
    ("kurtosis", "", "rel"),
    ("alpha", "deg", "abs"),
    ("leakage1", "", "abs"),
    ("leakage2", "", "abs"),
    ("n_pixels", "", "abs"),
)


def ctapipe_parameters(geom, geom_sky, image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """ctapipe's parameters of one cleaned image, in astrocnn's names and units (degrees). alpha is
    not a ctapipe parameter: here it is derived independently of astrocnn's formula (which folds
    phi - psi), as the angle between the major axis u and the centroid's position vector c,
    atan2(|u x c|, |u . c|)."""
    h = hillas_parameters(geom[mask], image[mask])
    sky = hillas_parameters(geom_sky[mask], image[mask])
    leak = leakage_parameters(geom, image, mask)
    x, y, psi = h.x.to_value(u.m), h.y.to_value(u.m), h.psi.to_value(u.rad)
    along, across = math.cos(psi) * x + math.sin(psi) * y, math.cos(psi) * y - math.sin(psi) * x
    return {
        "size": float(h.intensity),
        "x": x,
        "y": y,
        "r": h.r.to_value(u.m),
        "phi": h.phi.to_value(u.deg),
        "length": h.length.to_value(u.m),
        "width": h.width.to_value(u.m),
        "length_deg": sky.length.to_value(u.deg),
        "width_deg": sky.width.to_value(u.deg),
        "psi": h.psi.to_value(u.deg),
        "skewness": float(h.skewness),
        "kurtosis": float(h.kurtosis),
        "alpha": math.degrees(math.atan2(abs(across), abs(along))),
        "leakage1": float(leak.intensity_width_1),
        "leakage2": float(leak.intensity_width_2),
        "n_pixels": float(mask.sum()),
        # ctapipe's pixel leakage, which astrocnn does not compute: checked against the masks
        "pixels_width_1": float(leak.pixels_width_1),
        "pixels_width_2": float(leak.pixels_width_2),
    }


def difference(name: str, ours: np.ndarray, theirs: np.ndarray, kind: str) -> np.ndarray:
    """Per-event |astrocnn - ctapipe|: relative for kind "rel" (over the events where ctapipe's value
    is not zero: the zero widths of collinear images are reported apart), psi modulo 180 degrees."""
    delta = ours - theirs
    if name == "psi":
        delta = (delta + 90.0) % 180.0 - 90.0
    if kind == "rel":
        nonzero = theirs != 0
        return np.abs(delta[nonzero]) / np.abs(theirs[nonzero])
    return np.abs(delta)


def ctapipe_masks(geom, charge: np.ndarray, picture, boundary, min_neighbours, keep_isolated) -> np.ndarray:
    """(n_images, n_pixels) ctapipe's ``tailcuts_clean`` of every image."""
    return np.array(
        [
            tailcuts_clean(
                geom,
                image,
                picture_thresh=picture,
                boundary_thresh=boundary,
                keep_isolated_pixels=keep_isolated,
                min_number_picture_neighbors=min_neighbours,
            )
            for image in charge
        ]
    )


def compare(iact, camera, charge: np.ndarray, picture=7.0, boundary=3.5, min_neighbours=1) -> dict:
    """Both sides on every image: the masks, and the parameters where the masks agree."""
    geom = ctapipe_geometry(camera)
    geom_sky = geom.transform_to(TelescopeFrame())
    charge = np.asarray(charge, dtype=np.float64)
    ours_masks = iact.hillas.tailcuts_masks(camera, charge, picture, boundary, min_neighbours)
    theirs_masks = ctapipe_masks(geom, charge, picture, boundary, min_neighbours, keep_isolated=False)
    same = (ours_masks == theirs_masks).all(axis=1)
    names = [q[0] for q in QUANTITIES]
    ours, theirs, pixel_leakage = [], [], []
    first, second = iact.hillas.border_rings(camera)
    for image, mask in zip(charge[same], ours_masks[same], strict=True):
        if mask.sum() < 2:  # astrocnn's NaN, ctapipe's error (size 0) or a one-pixel ellipse
            continue
        p = iact.hillas.hillas_parameters(camera, image, mask)
        c = ctapipe_parameters(geom, geom_sky, image, mask)
        ours.append([p[n] for n in names])
        theirs.append([c[n] for n in names])
        pixel_leakage.append(
            [
                c["pixels_width_1"] - (mask & first).sum() / mask.sum(),
                c["pixels_width_2"] - (mask & second).sum() / mask.sum(),
            ]
        )
    ours = np.array(ours, dtype=float).reshape(-1, len(names))
    theirs = np.array(theirs, dtype=float).reshape(-1, len(names))
    diffs = {
        name: difference(name, ours[:, k], theirs[:, k], kind) for k, (name, _, kind) in enumerate(QUANTITIES)
    }
    raw_psi = ours[:, names.index("psi")] - theirs[:, names.index("psi")]
    return {
        "n_events": len(charge),
        "geometry": geometry_checks(iact, camera, geom),
        "same_masks": int(same.sum()),
        "empty_masks": int((~ours_masks.any(axis=1) & same).sum()),
        "leaking": int((theirs[:, names.index("leakage1")] > 0).sum()) if len(theirs) else 0,
        "parameterised": len(ours),
        "diffs": diffs,
        "ours": dict(zip(names, ours.T, strict=True)),
        "theirs": dict(zip(names, theirs.T, strict=True)),
        "psi_raw_max": float(np.abs(raw_psi).max()) if len(raw_psi) else math.nan,
        "zero_width": _zero_widths(ours[:, names.index("width")], theirs[:, names.index("width")]),
        "pixel_leakage_max": float(np.abs(np.array(pixel_leakage)).max()) if pixel_leakage else math.nan,
    }


def _zero_widths(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """The images whose width ctapipe gives as exactly zero (pixels in one row: the covariance has
    rank one), and astrocnn's widths there (the rounding of a zero eigenvalue, which ctapipe sets
    to zero below float64's epsilon in the geometry's unit squared and astrocnn only clips at 0)."""
    zero = theirs == 0
    return {
        "n": int(zero.sum()),
        "ours_zero": int((ours[zero] == 0).sum()),
        "ours_max": float(ours[zero].max()) if zero.any() else 0.0,
    }


def cleaning_variants(iact, camera, charge: np.ndarray, picture=7.0, boundary=3.5) -> list[tuple[str, float]]:
    """Identical-mask fractions for astrocnn's ``min_neighbours`` against ctapipe's two switches:
    what astrocnn's ``min_neighbours=0`` corresponds to."""
    geom = ctapipe_geometry(camera)
    charge = np.asarray(charge, dtype=np.float64)
    rows = []
    for ours_min, keep_isolated, theirs_min in ((1, False, 1), (0, False, 0), (0, True, 0), (2, False, 2)):
        ours = iact.hillas.tailcuts_masks(camera, charge, picture, boundary, ours_min)
        theirs = ctapipe_masks(geom, charge, picture, boundary, theirs_min, keep_isolated)
        label = (
            f"astrocnn min_neighbours={ours_min} vs ctapipe min_number_picture_neighbors={theirs_min}, "
            f"keep_isolated_pixels={keep_isolated}"
        )
        rows.append((label, float((ours == theirs).all(axis=1).mean())))
    return rows


def read_events(path: Path, iact):
    """The camera and charges of a file ``astrocnn generate iact`` wrote (checked against the
    camera astrocnn builds under that name)."""
    import h5py

    with h5py.File(path, "r") as f:
        camera = iact.camera.get_camera(str(f.attrs["camera"]))
        if not (np.allclose(f["camera/x"][:], camera.x) and np.allclose(f["camera/y"][:], camera.y)):
            raise SystemExit(f"{path}: its pixel positions are not astrocnn's {camera.name} camera's")
        return camera, f["charge"][:]


def simulate(iact, camera_name: str, n: int, seed: int, energy=(0.3, 100.0), proton_factor=3.0):
    """``n`` events of astrocnn's Monte Carlo, gamma rays and protons in turn, with the energy
    ranges of ``astrocnn generate iact`` (its defaults: 0.3-100 TeV, protons over three times
    that), so the events of ``astrocnn generate iact --seed`` with the same ``--n``."""
    camera = iact.camera.get_camera(camera_name)
    sim = iact.simulation
    ranges = {sim.GAMMA: tuple(energy), sim.PROTON: (energy[0] * proton_factor, energy[1] * proton_factor)}
    return camera, sim.Simulator(camera).simulate(n, seed, energy_range=ranges).charge


def _fmt(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


def markdown(result: dict, camera_name: str) -> str:
    geometry = ", ".join(f"{k}: {'identical' if v else 'DIFFERENT'}" for k, v in result["geometry"].items())
    n, same = result["n_events"], result["same_masks"]
    lines = [
        f"**{camera_name}**: {n} events; ctapipe's geometry from astrocnn's pixels ({geometry}); "
        f"identical cleaning masks {same} / {n} ({same / n:.2%}), {result['empty_masks']} of them "
        f"empty; {result['parameterised']} images parameterised on both sides, {result['leaking']} of them "
        f"with charge in the outermost ring.",
        "",
        "| quantity | unit | difference | median | max |",
        "|---|---|---|---|---|",
    ]
    for name, unit, kind in QUANTITIES:
        d = result["diffs"][name]
        median, largest = (np.median(d), np.max(d)) if len(d) else (math.nan, math.nan)
        label = "relative" if kind == "rel" else ("absolute, modulo 180 deg" if name == "psi" else "absolute")
        lines.append(f"| {name} | {unit} | {label} | {_fmt(median)} | {_fmt(largest)} |")
    lines += [
        "",
        f"psi without the modulo: max |difference| {result['psi_raw_max']:.2e} deg; ctapipe's pixel "
        f"leakage (pixels_width_1/2) against the fraction of cleaned pixels in astrocnn's border rings: "
        f"max |difference| {result['pixel_leakage_max']:.1e}.",
    ]
    z = result["zero_width"]
    if z["n"]:
        lines.append(
            f"Zero width on ctapipe's side (pixels in one row): {z['n']} images, not in the relative "
            f"width rows; astrocnn's width there is 0 on {z['ours_zero']} and at most {z['ours_max']:.1e} m."
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, action="append", help="HDF5 from astrocnn generate iact")
    parser.add_argument("--camera", action="append", choices=("taiga", "lst", "square"))
    parser.add_argument("--n", type=int, default=1000, help="events to simulate per --camera")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--picture", type=float, default=7.0)
    parser.add_argument("--boundary", type=float, default=3.5)
    parser.add_argument("--min-neighbours", type=int, default=1)
    parser.add_argument("--src", type=Path, default=SRC, help="astrocnn's src directory")
    args = parser.parse_args(argv)
    import astropy
    import ctapipe

    iact = load_iact_modules(args.src)
    print(
        f"ctapipe {ctapipe.__version__}, astropy {astropy.__version__}, numpy {np.__version__}; "
        f"astrocnn from {args.src}; "
        f"cleaning picture {args.picture}, boundary {args.boundary}, min neighbours {args.min_neighbours}\n"
    )
    jobs = [("file", p) for p in args.events or []] + [("simulate", c) for c in args.camera or []]
    if not jobs:
        jobs = [("simulate", "taiga")]
    for kind, what in jobs:
        start = time.perf_counter()
        if kind == "file":
            camera, charge = read_events(what, iact)
            source = str(what)
        else:
            camera, charge = simulate(iact, what, args.n, args.seed)
            source = f"simulated here, seed {args.seed}"
        result = compare(iact, camera, charge, args.picture, args.boundary, args.min_neighbours)
        print(markdown(result, f"{camera.name} ({source})"))
        print()
        print("| cleaning switches | identical masks |")
        print("|---|---|")
        for label, fraction in cleaning_variants(iact, camera, charge, args.picture, args.boundary):
            print(f"| {label} | {fraction:.2%} |")
        print(f"\n({time.perf_counter() - start:.0f} s)\n")


if __name__ == "__main__":
    main()
