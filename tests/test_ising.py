"""The Ising sampler against exact results: full enumeration of a 4 x 4 lattice, Onsager's
energy and Yang's magnetisation at L = 64; the autocorrelation estimator; the T_c analysis."""

import itertools
import json

import numpy as np
import pytest

import astrocnn
from astrocnn.tasks.ising import analysis
from astrocnn.tasks.ising import simulation as ising


def exact_small_lattice(size: int, temperature: float) -> tuple[float, float]:
    """<E>/N and <|m|> of an L x L periodic lattice by summing over all 2^(L^2) states."""
    n = size * size
    codes = np.arange(2**n, dtype=np.int64)
    spins = (((codes[:, None] >> np.arange(n)) & 1) * 2 - 1).reshape(-1, size, size)
    energy = -(spins * (np.roll(spins, 1, axis=1) + np.roll(spins, 1, axis=2))).sum(axis=(1, 2))
    m = np.abs(spins.sum(axis=(1, 2))) / n
    w = np.exp(-(energy - energy.min()) / temperature)
    return float((w * energy).sum() / w.sum() / n), float((w * m).sum() / w.sum())


@pytest.mark.parametrize("temperature", [1.5, 2.0, 2.4, 3.0])  # Metropolis, Wolff, Wolff, Metropolis
def test_sampler_reproduces_exact_enumeration_of_a_4x4_lattice(temperature):
    e_exact, m_exact = exact_small_lattice(4, temperature)
    s = ising.sample(4, temperature, 12_800, np.random.default_rng(1))
    assert s.algorithm == (
        "wolff" if ising.WOLFF_WINDOW[0] <= temperature <= ising.WOLFF_WINDOW[1] else "metropolis"
    )
    for values, exact in ((s.energy, e_exact), (np.abs(s.magnetisation), m_exact)):
        sigma = values.std() / np.sqrt(len(values))
        assert abs(values.mean() - exact) < 4 * sigma, (values.mean(), exact, sigma)


def test_numpy_reference_sweep_reproduces_exact_enumeration():
    temperature = 2.5
    e_exact, _ = exact_small_lattice(4, temperature)
    rng = np.random.default_rng(2)
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(4, 4))
    energies = []
    for sweep in range(20_000):
        ising.numpy_checkerboard_sweep(spins, 1 / temperature, rng)
        if sweep >= 100 and sweep % 4 == 0:
            energies.append(-(spins * (np.roll(spins, 1, 0) + np.roll(spins, 1, 1))).sum() / 16)
    energies = np.array(energies)
    assert abs(energies.mean() - e_exact) < 4 * energies.std() / np.sqrt(len(energies))


@pytest.mark.parametrize("temperature", [1.5, 1.8, 3.0, 3.5])
def test_energy_at_l64_matches_onsager(temperature):
    """Away from T_c the correlation length is a few sites, so at L = 64 finite-size corrections
    are exponentially small and the statistical error (samples 2 tau apart) dominates."""
    s = ising.sample(64, temperature, 512, np.random.default_rng(3))
    sigma = s.energy.std() / np.sqrt(len(s.energy))
    assert abs(s.energy.mean() - ising.onsager_energy(temperature)) < 4 * sigma


@pytest.mark.parametrize("temperature", [1.5, 1.8, 2.0])
def test_magnetisation_at_l64_matches_yang(temperature):
    s = ising.sample(64, temperature, 512, np.random.default_rng(4))
    m = np.abs(s.magnetisation)
    sigma = m.std() / np.sqrt(len(m))
    assert abs(m.mean() - ising.yang_magnetisation(temperature)) < 4 * sigma + 1e-4


def test_exact_values_at_known_points():
    assert ising.TC == pytest.approx(2.269185, abs=1e-6)
    assert ising.onsager_energy(ising.TC) == pytest.approx(-np.sqrt(2), rel=1e-4)  # -sqrt(2) at T_c
    assert float(ising.yang_magnetisation(3.0)) == 0.0
    assert float(ising.yang_magnetisation(1e-3)) == pytest.approx(1.0)


def enumerated_log_z(size: int, temperature: float) -> float:
    n = size * size
    codes = np.arange(2**n, dtype=np.int64)
    spins = (((codes[:, None] >> np.arange(n)) & 1) * 2 - 1).reshape(-1, size, size)
    energy = -(spins * (np.roll(spins, 1, axis=1) + np.roll(spins, 1, axis=2))).sum(axis=(1, 2))
    top = (-energy / temperature).max()
    return float(top + np.log(np.exp(-energy / temperature - top).sum()))


@pytest.mark.parametrize("size", [2, 3, 4])
def test_kaufman_partition_function_equals_enumeration(size):
    """Kaufman's exact ln Z against the sum over all 2^(L^2) states, below, at and above T_c."""
    temps = np.array([0.5, 1.5, ising.TC, 3.0, 10.0])
    exact = [enumerated_log_z(size, t) for t in temps]
    assert ising.log_partition_function(size, temps) == pytest.approx(exact, rel=1e-12, abs=1e-12)


def test_kaufman_partition_function_gives_onsagers_energy_for_a_large_lattice():
    """<E> / N = T^2 d ln Z / dT / N tends to Onsager's energy; at L = 128, within 1e-4 away from
    T_c (finite-size corrections are exponentially small there)."""
    size, h = 128, 1e-4
    for t in (1.8, 3.0):
        d_log_z = (ising.log_partition_function(size, t + h) - ising.log_partition_function(size, t - h)) / (
            2 * h
        )
        assert t * t * d_log_z / size**2 == pytest.approx(float(ising.onsager_energy(t)), abs=1e-4)


def test_energy_baseline_is_the_exact_posterior_mean():
    """On a 4 x 4 lattice the posterior mean of T given E, over a grid with a uniform prior, from
    the enumerated density of states, equals the baseline's; and no function of E does better on
    exactly drawn samples (the posterior mean minimises the mean squared error)."""
    from astrocnn.tasks.base import ArraySplit
    from astrocnn.tasks.ising import baseline

    size, temps = 4, np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    n = size * size
    codes = np.arange(2**n, dtype=np.int64)
    spins = (((codes[:, None] >> np.arange(n)) & 1) * 2 - 1).reshape(-1, size, size)
    energy = -(spins * (np.roll(spins, 1, axis=1) + np.roll(spins, 1, axis=2))).sum(axis=(1, 2))
    levels, degeneracy = np.unique(energy, return_counts=True)
    # exact posterior mean per energy level: sum_k T_k g(E) exp(-E/T_k) / Z(T_k), normalised
    weights = (
        degeneracy[:, None]
        * np.exp(-levels[:, None] / temps[None, :])
        / np.array([np.sum(degeneracy * np.exp(-levels / t)) for t in temps])
    )
    posterior = (weights @ temps) / weights.sum(axis=1)
    train_t = np.repeat(temps, 3)
    train = ArraySplit(
        [None] * len(train_t), train_t, {"temperature": train_t, "size": np.full(len(train_t), 4)}
    )
    test = ArraySplit([None] * len(levels), levels, {"energy": levels / n, "size": np.full(len(levels), 4)})
    got = baseline.temperature_from_energy(train, test, [4])[:, 0]
    assert got == pytest.approx(posterior, rel=1e-6)


def test_thermalisation_and_spacing_come_from_the_measured_tau():
    s = ising.sample(32, 2.6, 64, np.random.default_rng(5))
    assert s.thermalisation >= 20 * s.tau
    assert s.spacing >= 2 * s.tau and s.spacing == int(np.ceil(2 * s.tau))


def test_autocorrelation_time_of_an_ar1_process():
    """x_t = phi x_(t-1) + noise has tau_int = (1 + phi) / (2 (1 - phi))."""
    phi = 0.8
    rng = np.random.default_rng(6)
    x = np.zeros((32, 20_000))
    noise = rng.normal(size=x.shape)
    for t in range(1, x.shape[1]):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    assert ising.integrated_autocorrelation_time(x) == pytest.approx((1 + phi) / (2 * (1 - phi)), rel=0.1)


def test_same_seed_same_configurations():
    a = ising.generate([8], [2.0, 3.0], 16, seed=7)
    b = ising.generate([8], [2.0, 3.0], 16, seed=7)
    for x, y in zip(a[8], b[8], strict=True):
        assert np.array_equal(x.configs, y.configs)


def test_generate_command_writes_the_metadata(tmp_path):
    import h5py

    from astrocnn.cli import main

    out = tmp_path / "ising.h5"
    assert main(["generate", "ising", "--sizes", "8,16", "--temperatures", "1.5:3.0:0.5", "--refine", "no",
                 "--per-t", "20", "--out", str(out)]) == 0  # fmt: skip
    with h5py.File(out) as f:
        assert f.attrs["seed"] == 0 and list(f.attrs["sizes"]) == [8, 16]
        g = f["L16"]
        assert g["configs"].dtype == np.int8 and g["configs"].shape == (4 * 20, 16, 16)
        assert set(np.unique(g["configs"][()])) == {-1, 1}
        assert np.allclose(np.unique(g["T"][()]), [1.5, 2.0, 2.5, 3.0])
        assert np.all(g["thermalisation_sweeps"][()] >= 20 * g["tau_int"][()])
        assert [a.decode() for a in g["algorithm"][()]] == ["metropolis", "wolff", "wolff", "metropolis"]


def test_generate_refuses_bad_temperatures(capsys):
    from astrocnn.cli import main

    assert main(["generate", "ising", "--temperatures", "3:1:0.1", "--out", "x.h5"]) == 2
    assert "not START:STOP:STEP" in capsys.readouterr().err


# ---- locating T_c ----------------------------------------------------------------------------


def test_output_crossings_recover_a_planted_drift():
    temps = np.round(np.arange(1.5, 3.0, 0.05), 10)
    tc, a = 2.269185, 0.9
    t = np.repeat(temps, 3 * 10)
    size = np.tile(np.repeat([16, 24, 32], 10), len(temps))
    p = 1 / (1 + np.exp((t - (tc + a / size)) / 0.05))  # a sharp, noiseless "ordered" output
    result = analysis.output_crossings(p, t, size)
    assert result["tc_output_crossing"] == pytest.approx(tc, abs=2e-3)
    assert result["tc_fit_amplitude"] == pytest.approx(a, rel=0.05)
    for L in (16, 24, 32):
        assert result[f"tc_L{L}"] == pytest.approx(tc + a / L, abs=2e-3)


def test_binder_crossing_of_real_monte_carlo_data():
    temps = np.round(np.arange(2.0, 2.6, 0.05), 10)
    data = ising.generate([8, 16], temps, 400, seed=8)
    m = np.concatenate([s.magnetisation for L in data for s in data[L]])
    t = np.concatenate([np.full(400, s.temperature) for L in data for s in data[L]])
    size = np.concatenate([np.full(400, L) for L in data for _ in data[L]])
    chain = np.concatenate([s.chain for L in data for s in data[L]])
    estimate = analysis.tc_from_cumulants(m, t, size, chain)
    # within three bootstrap standard errors of Onsager's value, the error itself a few percent
    assert 0 < estimate.uncertainty < 0.05
    assert abs(estimate.estimate - ising.TC) < 3 * estimate.uncertainty


# ---- the tasks through the engine ------------------------------------------------------------


@pytest.mark.parametrize("task", ["ising-phase", "ising-temperature"])
def test_ising_tasks_run_end_to_end(task, tmp_path):
    small = {"sizes": "8,16", "temperatures": "1.0:3.5:0.25+2.1:2.45:0.05"}
    run = astrocnn.train(
        task, out=str(tmp_path / task), n_train=6, n_val=2, n_test=12, epochs=1, ensemble=1,
        task_options=small, progress_bar=False,
    )  # fmt: skip
    metrics = json.loads((run.path / "metrics.json").read_text())
    results = metrics["results"]
    assert set(results) == {"cnn", "mlp", "baseline"}
    plots = {p.name for p in (run.path / "plots").glob("*.png")}
    if task == "ising-phase":
        keys = {"tc_estimate", "tc_uncertainty", "tc_relative_error", "tc_pull", "tc_members", "tc_L8",
                "tc_L16", "tc_output_crossing", "accuracy_L8", "accuracy_L16"}  # fmt: skip
        assert keys <= set(results["cnn"]) and keys <= set(results["mlp"])
        assert {"tc_estimate", "tc_uncertainty", "tc_relative_error", "tc_pull"} <= set(results["baseline"])
        expected = {"ordered_output_vs_T.png", "output_crossing_vs_L.png", "configurations.png",
                    "tc_estimates.png", "first_layer_filters.png", "binder_cumulant.png",
                    "binder_cumulant_cnn.png"}  # fmt: skip
        assert expected <= plots
    else:
        assert {"rmse", "mae", "rmse_vs_T", "rmse_vs_T_bins"} <= set(results["cnn"])
        assert len(results["cnn"]["rmse_vs_T_bins"]) == len(results["cnn"]["rmse_vs_T"]) + 1
        # the energy determines T well: the classical estimate is good even from few samples
        assert results["baseline"]["rmse"] < 0.35
        assert "rmse_vs_T.png" in plots
    assert (run.path / "report.html").read_text().count("data:image/png") == len(plots)


def test_multi_size_batches_never_mix_sizes():
    import torch
    from torch.utils.data import RandomSampler

    from astrocnn.engine.sampling import GroupedBatchSampler, GroupedTensors

    xs = [torch.zeros(1, L, L) for L in itertools.islice(itertools.cycle([8, 12, 16]), 100)]
    data = GroupedTensors(xs, torch.zeros(100))
    batches = list(GroupedBatchSampler(RandomSampler(data), 7, drop_last=False))
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert all(len({data.groups[i] for i in b}) == 1 for b in batches)


def test_the_lattices_have_periodic_boundaries_so_shifts_roll_them():
    """The recorded energy per spin is the periodic lattice's: it is unchanged by rolling the
    lattice, which is why the Ising tasks are ``periodic`` (``astrocnn compare`` rolls them)."""
    from astrocnn.tasks import get_task

    samples = ising.sample(12, 2.3, 6, np.random.default_rng(4))
    spins = samples.configs.astype(np.int64)

    def energy(s):
        return -(s * np.roll(s, 1, axis=-1) + s * np.roll(s, 1, axis=-2)).sum(axis=(-1, -2)) / 144

    np.testing.assert_allclose(energy(spins), samples.energy, rtol=0, atol=1e-12)
    for shift, axis in ((5, -1), (7, -2)):
        np.testing.assert_allclose(energy(np.roll(spins, shift, axis=axis)), samples.energy, atol=1e-12)
    assert get_task("ising-phase").periodic and get_task("ising-temperature").periodic
