"""``astrocnn generate surrogate RUN``: events from a trained ``iact-generate`` run, written in
exactly the format of ``astrocnn generate iact`` (so every Cherenkov task reads them).

Energies are drawn from E^-2 over ``--energy``, which must lie within the energies the run was
trained on; each impact distance from the held-out simulated events of the same particle nearest
in energy (the run's ``predictions.npz``), so the impacts follow what the size cut leaves. The
file is written to a temporary name and moved into place only when complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from astrocnn.data.writers import write_hdf5
from astrocnn.engine.run import Run, RunError
from astrocnn.errors import OptionError

TASK = "iact-generate"


def parse_energy(text: str) -> tuple[float, float]:
    """``LOW:HIGH`` in TeV, 0 < LOW <= HIGH; anything else is an OptionError naming --energy."""
    try:
        low, high = (float(v) for v in str(text).split(":"))
    except ValueError:
        raise OptionError(f"--energy must be LOW:HIGH in TeV (e.g. 1:10), got {text!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise OptionError(f"--energy needs 0 < LOW <= HIGH, got {text!r}")
    return low, high


def write_surrogate(
    run: Run, out: str | Path, *, n: int, particle: str, energy: str, seed: int = 0, batch_size: int = 256
) -> int:
    """Generate ``n`` events of ``particle`` ("gamma", "proton", or "gamma,proton": taken in turn,
    the protons over ``PROTON_ENERGY_FACTOR`` times the range, as ``generate iact`` draws them)
    over ``energy`` ("LOW:HIGH" TeV) with the run's network and write them to ``out``; returns
    the number written."""
    from astrocnn.tasks.iact import generative
    from astrocnn.tasks.iact import simulation as sim
    from astrocnn.tasks.iact.tasks import PROTON_ENERGY_FACTOR

    if run.config.task != TASK:
        raise RunError(
            f"{run.path}: a run of {run.config.task}, not of {TASK}; surrogate needs an {TASK} run"
        )
    kinds = [k.strip() for k in str(particle).split(",") if k.strip()]
    if not kinds or any(k not in sim.PARTICLES for k in kinds) or len(set(kinds)) != len(kinds):
        raise OptionError(f"--type must be gamma, proton or gamma,proton, not {particle!r}")
    low, high = parse_energy(energy)
    factor = {sim.GAMMA: 1.0, sim.PROTON: PROTON_ENERGY_FACTOR if len(kinds) == 2 else 1.0}
    task = run.task
    codes = [sim.PARTICLES.index(k) for k in kinds]
    for code in codes:
        trained, wanted = task.energy_range(code), (low * factor[code], high * factor[code])
        if wanted[0] < trained[0] * (1 - 1e-9) or wanted[1] > trained[1] * (1 + 1e-9):
            raise OptionError(
                f"--energy {energy}: the run was trained on {sim.PARTICLES[code]}s of {trained[0]:g} to "
                f"{trained[1]:g} TeV, not {wanted[0]:g} to {wanted[1]:g}; a generative model does not "
                "extrapolate"
            )
    table_path = run.path / "predictions.npz"
    if not table_path.is_file():
        raise RunError(f"{run.path}: no predictions.npz (the run did not finish)")
    with np.load(table_path) as saved:
        table = {k: saved[f"meta_{k}"] for k in ("particle", "energy", "impact")}
    for code in codes:
        if not np.any(table["particle"] == code):
            raise RunError(
                f"{table_path}: no {sim.PARTICLES[code]} among the held-out events to draw impacts from"
            )
    network = run.model("cnn")
    rng = np.random.default_rng(seed)
    which = np.arange(n) % len(codes)
    parts = []
    for k, code in enumerate(codes):
        count = int(np.sum(which == k))
        energies = generative.draw_energies(count, low * factor[code], high * factor[code], rng)
        impacts = generative.draw_impacts(code, energies, table, rng)
        with torch.no_grad():
            parts.append(
                generative.surrogate_events(
                    network, task, code, energies, impacts, seed=seed + k, batch_size=batch_size
                )
            )
    order = np.argsort(np.concatenate([np.flatnonzero(which == k) for k in range(len(codes))]), kind="stable")
    joined = sim.concatenate(parts)
    events = sim.Events(*(getattr(joined, f)[order] for f in sim.Events.__dataclass_fields__))
    attrs = {
        "generator": "astrocnn.tasks.iact.generative",
        "run": str(run.path.resolve()),
        "seed": seed,
        "camera": task.camera.name,
        "pixel_shape": task.camera.pixel_shape,
        "pitch": task.camera.pitch,
        "focal_length": task.camera.focal_length,
        "particles": ",".join(kinds),
        "energy_range": [low, high],
        "proton_energy_range": [low * factor[sim.PROTON], high * factor[sim.PROTON]],
    }
    write_hdf5(out, sim.to_hdf5_datasets(events, task.camera), attrs)
    return len(events)
