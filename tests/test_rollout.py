"""Rollout over years: the plan's works, the multi-period MILP against brute force, milestones."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import rollout, scenarios
from universal_service.cli import app
from universal_service.errors import ScenarioError
from universal_service.schema import RolloutConfig


def small_plan() -> tuple[xr.Dataset, pd.DataFrame]:
    """Six villages: two on one 4G site, two fiber on one trench (PoP - road node - a - b), one
    microwave, one already served and one left unserved."""
    village = ["lte1", "lte2", "fa", "fb", "mw", "old", "far"]
    tech = ["lte", "lte", "fiber", "fiber", "microwave", "existing", "none"]
    served = [True, True, True, True, True, True, False]
    capex = [10.0, 12.0, 30.0 + 60.0, 30.0 + 20.0, 45.0, 0.0, 0.0]
    trench = [0.0, 0.0, 60.0, 20.0, 0.0, 0.0, 0.0]
    plan = xr.Dataset(
        {
            "technology": ("village", tech),
            "served": ("village", served),
            "covered": ("village", served),
            "capex": ("village", capex),
            "trench_capex": ("village", trench),
            "site_id": ("village", ["s1", "s1", "", "", "", "", ""]),
            "population": ("village", [500.0, 300.0, 800.0, 200.0, 100.0, 1000.0, 50.0]),
            "site_capex": ("site", [40.0, 99.0]),
            "site_built": ("site", [True, False]),
        },
        coords={"village": village, "site": ["s1", "s2"]},
        attrs={"scenario": "small"},
    )
    # trench p:0 -(50)- r:1 -(10)- v:fa -(20)- v:fb: the road node has one child, so p:0..fa is
    # one segment (60 CNY) and fa..fb another (20); the villages' trench shares sum to the 80.
    lines = pd.DataFrame(
        {
            "u": ["p:0", "r:1", "v:fa"],
            "v": ["r:1", "v:fa", "v:fb"],
            "capex_cny": [50.0, 10.0, 20.0],
        }
    )
    return plan, lines


def test_works_keep_the_plans_capex_and_its_prerequisites() -> None:
    plan, lines = small_plan()
    w = rollout.works(plan, lines)
    kinds = dict(zip(w.unit_id, w.kind, strict=True))
    assert sorted(u for u, k in kinds.items() if k == "village") == [
        "fa",
        "fb",
        "lte1",
        "lte2",
        "mw",
    ]
    assert sorted(u for u, k in kinds.items() if k == "trench") == ["v:fa", "v:fb"]
    assert [u for u, k in kinds.items() if k == "site"] == ["s1"]
    total = plan["capex"].sum().item() + 40.0  # the built site, once
    assert w.capex.sum() == pytest.approx(total)
    cap = dict(zip(w.unit_id, w.capex, strict=True))
    assert cap["v:fa"] == pytest.approx(60.0) and cap["v:fb"] == pytest.approx(20.0)
    assert cap["fa"] == pytest.approx(30.0) and cap["fb"] == pytest.approx(30.0)
    name = w.unit_id
    pairs = {(name[a], name[b]) for a, b in w.requires}
    assert pairs == {
        ("lte1", "s1"),
        ("lte2", "s1"),
        ("fa", "v:fa"),
        ("fb", "v:fb"),
        ("v:fb", "v:fa"),
    }
    assert list(name[w.edge_unit]) == ["v:fa", "v:fa", "v:fb"]
    # without the lines each fiber village's trench is its own, in its capex
    alone = rollout.works(plan, None)
    assert alone.capex.sum() == pytest.approx(total)
    assert "trench" not in set(alone.kind)


def _brute_force(w: rollout.Works, config: RolloutConfig, target: np.ndarray, rate: float):
    """Best schedule by enumeration of every build year (or never) of every unit."""
    T = config.years
    budgets = rollout.annual_budgets(config)
    counts = w.weight * (w.kind == "village")
    best = None
    for combo in itertools.product(range(-1, T), repeat=w.n):
        year = np.array(combo)
        ok = all(
            year[a] >= 0 and (year[b] >= 0 and year[b] <= year[a])
            for a, b in w.requires
            if year[a] >= 0
        )
        if not ok:
            continue
        spent = np.array([w.capex[year == t].sum() for t in range(T)])
        if config.carry_over:
            if np.any(np.cumsum(spent) > np.cumsum(budgets) + 1e-9):
                continue
        elif np.any(spent > budgets + 1e-9):
            continue
        done = np.array([counts[(year >= 0) & (year <= t)].sum() for t in range(T)])
        if np.any(np.isfinite(target) & (done < target - 1e-9)):
            continue
        value = rollout._value(w, year, config, rate)
        if best is None or (value > best if config.objective == "earliest" else value < best):
            best = value
    return best


@pytest.mark.parametrize(
    ("objective", "carry_over", "budget", "milestones"),
    [
        ("earliest", False, 70.0, {2021: 0.45}),
        ("earliest", True, 70.0, {}),
        ("cheapest", False, 90.0, {2021: 0.6, 2022: 1.0}),
        ("cheapest", True, [30.0, 50.0, 170.0], {2021: 0.4, 2022: 1.0}),
    ],
)
def test_the_milp_schedule_is_the_best_one(objective, carry_over, budget, milestones) -> None:
    plan, lines = small_plan()
    config = RolloutConfig(
        start_year=2020,
        years=3,
        annual_budget_cny=budget,
        carry_over=carry_over,
        milestones=milestones,
        objective=objective,
    )
    ds = rollout.schedule(plan, config, lines=lines, rate=0.08)
    w = rollout.works(plan, lines)
    target = rollout._targets(w, plan, config, "population")
    assert ds.attrs["status"] == "optimal"
    assert ds.attrs["objective"] == pytest.approx(_brute_force(w, config, target, 0.08), rel=1e-6)
    # the schedule respects what it says: budgets, prerequisites, milestones
    year = ds["unit_build_year"].values
    for a, b in w.requires:
        if np.isfinite(year[a]):
            assert np.isfinite(year[b]) and year[b] <= year[a]
    spent = ds["capex_cny"].values
    allowed = ds["budget_cny"].values
    if carry_over:
        assert np.all(np.cumsum(spent) <= np.cumsum(allowed) + 1e-6)
    else:
        assert np.all(spent <= allowed + 1e-6)
    assert ds["milestone_met"].values.all()
    # the greedy rule is a schedule too, no better than the MILP's where it meets the milestones
    greedy = ds.attrs["greedy_objective"]
    if not ds.attrs["greedy_meets_milestones"]:
        assert np.isnan(ds.attrs["greedy_gap"])
    elif objective == "earliest":
        assert greedy <= ds.attrs["objective"] + 1e-9 <= ds.attrs["bound"] + 1e-6
    else:
        assert greedy >= ds.attrs["objective"] - 1e-9 >= ds.attrs["bound"] - 1e-6


def test_a_milestone_out_of_reach_is_a_status_naming_the_year() -> None:
    plan, lines = small_plan()
    config = RolloutConfig(
        start_year=2020, years=3, annual_budget_cny=60.0, milestones={2020: 0.2, 2021: 0.9}
    )
    ds = rollout.schedule(plan, config, lines=lines)
    w = rollout.works(plan, lines)
    target = rollout._targets(w, plan, config, "population")
    assert _brute_force(w, config, target, 0.08) is None  # truly out of reach
    assert ds.attrs["status"] == "infeasible"
    assert ds.attrs["unmet_years"] == "2021"
    assert "milestone 2021 not met" in ds.attrs["message"]
    assert list(ds["milestone_met"].values) == [True, False, True]
    assert ds["shortfall"].sel(year=2021).item() > 0
    # the closest schedule still keeps to the budget
    assert np.all(ds["capex_cny"].values <= 60.0 + 1e-6)


def test_greedy_keeps_budgets_and_prerequisites_on_random_plans() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n_v = int(rng.integers(3, 12))
        n_s = int(rng.integers(1, 4))
        kind = np.array(["village"] * n_v + ["site"] * n_s)
        site_of = rng.integers(-1, n_s, n_v)
        requires = np.array([(v, n_v + s) for v, s in enumerate(site_of) if s >= 0]).reshape(-1, 2)
        w = rollout.Works(
            kind,
            np.array([f"u{i}" for i in range(n_v + n_s)]),
            rng.uniform(1, 50, n_v + n_s),
            np.concatenate([rng.uniform(10, 500, n_v), np.zeros(n_s)]),
            np.ones(n_v + n_s, bool),
            requires,
            np.arange(n_v),
            np.zeros(0, int),
        )
        budgets = rng.uniform(20, 80, 4)
        carry = bool(rng.integers(0, 2))
        year = rollout.greedy(w, budgets, carry)
        spent = np.array([w.capex[year == t].sum() for t in range(4)])
        if carry:
            assert np.all(np.cumsum(spent) <= np.cumsum(budgets) + 1e-6)
        else:
            assert np.all(spent <= budgets + 1e-6)
        for a, b in requires:
            if year[a] >= 0:
                assert 0 <= year[b] <= year[a]


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("{years: 3, milestones: {2030: 0.5}}", "outside the rollout 2016-2018"),
        ("{milestones: {2017: 0.8, 2018: 0.6}}", "must not fall"),
        ("{years: 2, annual_budget_cny: [1.0e7, 2.0e7, 3.0e7]}", "3 values for 2 years"),
        ("{objective: cheapest}", "needs milestones"),
        ("{milestones: {2017: 1.5}}", "share in [0, 1]"),
    ],
)
def test_a_bad_rollout_section_is_named(tmp_path: Path, section: str, fragment: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(f"name: s\nrollout: {section}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="rollout") as err:
        scenarios.load_scenario(f)
    assert fragment in str(err.value)


@pytest.fixture(scope="module")
def rollout_file(synth_region_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("roll") / "r.yaml"
    f.write_text(
        f"name: phased\nregion: {synth_region_dir}\npolicy: {{coverage_target: 0.9}}\n"
        "rollout: {start_year: 2016, years: 4, milestones: {2017: 0.5, 2019: 1.0}}\n"
        "overrides:\n  starved: {rollout: {annual_budget_cny: 1.0}}\n",
        encoding="utf-8",
    )
    return f


def test_rollout_command_writes_years_and_meets_the_plan(
    rollout_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["rollout", "--scenario", str(rollout_file), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Rollout of 'phased' from 2016" in res.output
    ds = xr.open_dataset(out / "rollout.nc")
    plan = xr.open_dataset(out / "plan.nc")
    assert list(ds["year"].values) == [2016, 2017, 2018, 2019]
    assert ds.attrs["status"] == "optimal"
    # no budget: everything in the first year, and then the coverage is the plan's own
    assert ds["obligation_share"].values[0] == pytest.approx(1.0)
    assert ds["capex_cumulative_cny"].values[-1] == pytest.approx(plan.attrs["total_capex"])
    assert ds["coverage_population"].values[-1] == pytest.approx(plan.attrs["coverage_share"])
    built = np.isfinite(ds["build_year"].values)
    new = plan["served"].values & ~np.isin(plan["technology"].values.astype(str), rollout.NOT_BUILT)
    assert (built == new).all()
    prov = json.loads(ds.attrs["provenance"])
    assert prov["scenario"]["rollout"]["milestones"] == {"2017": 0.5, "2019": 1.0}
    table = pd.read_csv(out / "rollout.csv", index_col="year")
    assert list(table.index) == [2016, 2017, 2018, 2019]
    assert table["capex_cny"].sum() == pytest.approx(plan.attrs["total_capex"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"rollout.nc", "rollout.csv", "plan.nc"} <= set(manifest["files"])


def test_rollout_command_names_a_missed_year(rollout_file: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["rollout", "--scenario", str(rollout_file), "-o", "starved", "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 1
    assert "milestone 2017 not met" in res.output
    ds = xr.open_dataset(tmp_path / "o" / "rollout.nc")
    assert ds.attrs["status"] == "infeasible"
    assert ds.attrs["unmet_years"] == "2017,2019"
    assert float(ds["capex_cny"].max()) <= 1.0


def test_run_reports_each_stage_as_it_ends(rollout_file: Path) -> None:
    sc = scenarios.load_scenario(rollout_file)
    seen: list[str] = []
    result = scenarios.run(sc, with_baseline=False, with_rollout=True, progress=seen.append)
    assert seen == ["options", "optimize", "fiber_design", "rollout"]
    assert len(seen) == scenarios.stages(sc, with_rollout=True)
    assert result.rollout is not None
