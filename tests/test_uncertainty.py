"""Monte Carlo: reproducible from its seed, different across seeds, each draw a real plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import scenarios, uncertainty
from universal_service.catalog import load_catalog
from universal_service.cli import app
from universal_service.errors import ScenarioError

PARAMS = (
    "uncertainty:\n  draws: 4\n  seed: 3\n  parameters:\n"
    "    policy.take_up: [0.2, 0.4, 0.6]\n"
    "    catalog.fiber.capex_cny_per_km: [0.5, 2.0]\n"
    "    demand.population: [0.8, 1.2]\n"
)


@pytest.fixture(scope="module")
def scenario_file(synth_region_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("mc") / "mc.yaml"
    f.write_text(f"region: {synth_region_dir}\npolicy: {{coverage_target: 0.9}}\n" + PARAMS)
    return f


@pytest.fixture(scope="module")
def ds(scenario_file: Path) -> xr.Dataset:
    return uncertainty.monte_carlo(scenarios.load_scenario(scenario_file))


def test_draws_are_seeded() -> None:
    p = {"a": [0.0, 1.0], "b": [1.0, 2.0, 4.0]}
    a = uncertainty.draw_parameters(p, 5, seed=1)
    np.testing.assert_array_equal(a, uncertainty.draw_parameters(p, 5, seed=1))
    assert not np.allclose(a, uncertainty.draw_parameters(p, 5, seed=2))
    assert a["a"].between(0, 1).all() and a["b"].between(1, 4).all()


def test_monte_carlo_is_reproducible_and_each_draw_is_a_plan(
    ds: xr.Dataset, scenario_file: Path
) -> None:
    assert ds.sizes["draw"] == 4 and list(ds["parameter"].values) == sorted(
        ["policy.take_up", "catalog.fiber.capex_cny_per_km", "demand.population"]
    )
    again = uncertainty.monte_carlo(scenarios.load_scenario(scenario_file))
    np.testing.assert_array_equal(ds["total_cost"], again["total_cost"])
    np.testing.assert_array_equal(ds["technology_chosen"], again["technology_chosen"])
    other = uncertainty.monte_carlo(scenarios.load_scenario(scenario_file), seed=4)
    assert not np.allclose(ds["value"], other["value"])
    assert not np.allclose(ds["total_cost"], other["total_cost"])
    np.testing.assert_allclose(ds["technology_share"].sum("technology"), 1.0)
    assert set(ds["status"].values) <= {"optimal", "feasible", "time_limit"}
    # draw 0 recomputed by hand through apply_draw and scenarios.run
    sc = scenarios.load_scenario(scenario_file)
    region = __import__("universal_service").io.load_region(sc.region_path())
    values = dict(zip(ds["parameter"].values, ds["value"].values[0], strict=True))
    cfg, cat, reg = uncertainty.apply_draw(sc.config, load_catalog(), region, values)
    assert cat["fiber"]["capex_cny_per_km"] == pytest.approx(
        load_catalog()["fiber"]["capex_cny_per_km"] * values["catalog.fiber.capex_cny_per_km"]
    )
    assert reg.villages["population"].sum() == pytest.approx(
        region.villages["population"].sum() * values["demand.population"]
    )
    assert cfg.policy.take_up == pytest.approx(values["policy.take_up"])


def test_bad_parameters_are_refused(scenario_file: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("uncertainty:\n  parameters:\n    policy.objective: [0, 1]\n    x.y: [2, 1]\n")
    with pytest.raises(ScenarioError, match="not a numeric policy field"):
        scenarios.load_scenario(f)
    sc = scenarios.load_scenario(
        scenario_file, set_values={"uncertainty.parameters": {"catalog.fiber.nope": [0.5, 1.5]}}
    )
    with pytest.raises(ScenarioError, match="no number fiber.nope"):
        uncertainty.monte_carlo(sc, draws=1)


def test_montecarlo_command(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "mc"
    res = CliRunner().invoke(
        app, ["montecarlo", "--scenario", str(scenario_file), "--draws", "2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "Monte Carlo: 2 draws, seed 3" in res.output
    assert (out / "montecarlo.nc").is_file() and (out / "montecarlo.csv").is_file()
    # the command ran its draws on a local Dask cluster (Dask is a test dependency): the same
    # result as the serial run, draw for draw
    on_dask = xr.open_dataset(out / "montecarlo.nc")
    serial = uncertainty.monte_carlo(scenarios.load_scenario(scenario_file), draws=2)
    np.testing.assert_array_equal(on_dask["total_cost"], serial["total_cost"])
    np.testing.assert_array_equal(on_dask["technology_chosen"], serial["technology_chosen"])


def test_a_failed_draw_is_named(scenario_file: Path) -> None:
    sc = scenarios.load_scenario(
        scenario_file, set_values={"uncertainty.parameters": {"catalog.fiber.nope": [0.5, 1.5]}}
    )
    with uncertainty.dask_client(workers=1) as client:
        with pytest.raises(ScenarioError, match="Monte Carlo draw 0 failed.*no number fiber.nope"):
            uncertainty.monte_carlo(sc, draws=1, client=client)


def _malloc_env() -> tuple[str | None, str | None]:
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_local_workers_keep_glibc_malloc_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dask's default MALLOC_TRIM_THRESHOLD_ (65536) made the costing 20% slower (uncertainty.py);
    # the other settings of Dask's worker environment stay
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with uncertainty.dask_client(workers=1) as client:
        assert client.submit(_malloc_env, pure=False).result() == (None, "1")


def _new_solver() -> None:
    import highspy

    highspy.Highs()  # HiGHS prints its banner at a process's first solver


def _array(i: int) -> np.ndarray:
    return np.full(1000, float(i))


def test_local_workers_print_no_solver_banner(capfd: pytest.CaptureFixture[str]) -> None:
    # the workers share the command's terminal: the national summary must not carry the banner
    pytest.importorskip("highspy")
    with uncertainty.dask_client(workers=1) as client:
        client.submit(_new_solver, pure=False).result()
    assert "HiGHS" not in capfd.readouterr().out


def test_local_cluster_frees_its_results_before_closing() -> None:
    # a worker still freeing a large memory when the scheduler closed logged a heartbeat
    # traceback at the end of the whole-country run; results are released and freed first
    with uncertainty.dask_client(workers=1) as client:
        futures = client.map(_array, range(5), pure=False)
        client.gather(futures)
        assert sum(client.run(uncertainty._held_keys).values()) == 5
        uncertainty._release_all(client)
        assert sum(client.run(uncertainty._held_keys).values()) == 0
        assert not client.futures
        assert all(f.cancelled() for f in futures)


def test_sensitivity_moves_one_parameter_at_a_time(scenario_file: Path, tmp_path: Path) -> None:
    sc = scenarios.load_scenario(scenario_file)
    table = uncertainty.sensitivity(sc)
    assert sorted(table.index) == sorted(sc.config.uncertainty.parameters)
    swings = table["swing_npv_cost"].abs().to_numpy()
    assert np.all(np.diff(swings) <= 1e-9)  # widest swing first
    # the base case is the scenario as given (own fiber routes, as every run here)
    own = {"network.shared_trench": False}
    base = scenarios.run(
        scenarios.load_scenario(scenario_file, set_values=own), with_baseline=False
    )
    assert table.attrs["base_npv_cost"] == pytest.approx(base.plan.attrs["total_npv_cost"])
    assert table.loc["policy.take_up", "base"] == pytest.approx(sc.config.policy.take_up)
    assert table.loc["catalog.fiber.capex_cny_per_km", "base"] == 1.0
    # a dearer trench never makes the least-cost plan cheaper (within the solver's gap)
    r = table.loc["catalog.fiber.capex_cny_per_km"]
    assert r["npv_cost_high"] >= r["npv_cost_low"] * (1 - 2e-4)
    # more take-up means more equipment and site capacity for every option (and tighter
    # sites): the least-cost plan is never cheaper (its subsidy may go either way)
    t = table.loc["policy.take_up"]
    assert t["npv_cost_high"] >= t["npv_cost_low"] * (1 - 2e-4)
    # the low end of the take-up range is the plan of the scenario with that take-up
    low = scenarios.run(
        scenarios.load_scenario(scenario_file, set_values={**own, "policy.take_up": 0.2}),
        with_baseline=False,
    )
    assert t["npv_cost_low"] == pytest.approx(low.plan.attrs["total_npv_cost"])
    out = tmp_path / "s"
    res = CliRunner().invoke(
        app,
        ["sensitivity", "--scenario", str(scenario_file), "--workers", "0", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "Sensitivity (one at a time)" in res.output
    csv = __import__("pandas").read_csv(out / "sensitivity.csv", index_col="parameter")
    assert list(csv.index) == list(table.index)
