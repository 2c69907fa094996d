"""The Allocation on a synthetic region: every regime's invariants, the command, the wiring."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import allocate, io, report, scenarios, synthetic
from universal_service.allocate import CoalitionCosts, footprint
from universal_service.cli import app
from universal_service.errors import ScenarioError


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.write_region(
        tmp_path_factory.mktemp("alloc") / "region", n_villages=40, n_districts=4, seed=7
    )


@pytest.fixture(scope="module")
def setup(region_dir: Path) -> tuple[io.Region, scenarios.Scenario]:
    # tolerance 0.2: wide enough that the seeded region keeps a fair assignment when unit costs
    # move (at 0.1 it flips with every cost-model change), narrow enough to bind
    sc = scenarios.load_scenario(
        set_values={"policy.coverage_target": 0.9, "allocation.tolerance": 0.2}
    )
    return io.load_region(region_dir), sc


@pytest.fixture(scope="module")
def ds(setup: tuple[io.Region, scenarios.Scenario]) -> xr.Dataset:
    region, sc = setup
    return allocate.allocate(region, sc.config, scenarios.policy_for(sc.config))


def test_dataset_has_every_regime_on_the_same_districts_and_operators(ds: xr.Dataset) -> None:
    assert list(ds["regime"].values) == ["lots", "auction", "fund", "shared"]
    assert list(ds["district"].values) == ["D01", "D02", "D03", "D04"]
    assert list(ds["operator"].values) == ["cmcc", "ct", "cu"]
    for v in ("assigned", "cost", "subsidy"):
        assert ds[v].dims == ("regime", "district", "operator")
    for v in ("levy", "net_burden", "burden_share"):
        assert ds[v].dims == ("regime", "operator")
    for v in ("total_cost", "total_subsidy", "cost_of_fairness", "coverage", "levy_rate"):
        assert ds[v].dims == ("regime",)
    assert float(ds["reference_share"].sum()) == pytest.approx(1.0)


def test_lots_assigns_each_district_once_within_tolerance(ds: xr.Dataset) -> None:
    lots = ds.sel(regime="lots")
    # the seeded region has a fair assignment at tolerance 0.2 (infeasible would be a regression)
    assert str(lots["status"].values) == "optimal", ds.attrs.get("lots_infeasible_reason")
    np.testing.assert_array_equal(lots["assigned"].sum("operator").values, 1.0)
    gap = np.abs(lots["burden_share"].values - ds["reference_share"].values)
    assert np.all(gap <= ds.attrs["tolerance"] + 1e-9)
    assert float(lots["cost_of_fairness"]) >= -1e-6


def test_auction_within_budget_and_fund_balances(ds: xr.Dataset) -> None:
    a = ds.sel(regime="auction")
    assert float(a["total_subsidy"]) <= ds.attrs["auction_budget"] + 1e-6
    paid = a["subsidy"].sum("operator").values
    least = np.nanmin(ds["standalone_need"].values, axis=1)
    assert np.all(paid <= 1.2 * np.maximum(least, 0) + 1e-6)  # reserve_margin 0.2
    f = ds.sel(regime="fund")
    assert float(f["levy"].sum()) == pytest.approx(float(f["total_subsidy"]))
    assert float(f["levy_rate"]) > 0


def test_shared_charges_add_up_and_sharing_never_costs_more(
    ds: xr.Dataset, setup: tuple[io.Region, scenarios.Scenario]
) -> None:
    s = ds.sel(regime="shared")
    total_need = float(s["need"].sum())
    for rule in ("shapley", "nucleolus", "proportional_revenue", "proportional_market_share"):
        assert float(ds["sharing"].sel(rule=rule).sum()) == pytest.approx(total_need, rel=1e-9)
    np.testing.assert_allclose(s["net_burden"].values, ds["sharing"].sel(rule="shapley").values)
    # the shared network never needs more subsidy in a district than its best single operator
    grand = s["need"].sum("operator").values
    assert np.all(grand <= np.nanmin(ds["standalone_need"].values, axis=1) + 1e-6)


def test_coalition_costs_are_monotone_and_cached(
    setup: tuple[io.Region, scenarios.Scenario],
) -> None:
    region, sc = setup
    game = CoalitionCosts(
        region, sc.config.policy, sc.config.radio, scenarios.policy_for(sc.config)
    )
    for d in game.districts:
        alone = [game.value([o], d) for o in game.players]
        pair = game.value(game.players[:2], d)
        assert pair <= min(alone[:2]) + 1e-6
        assert game.value(game.players, d) <= pair + 1e-6
    builds = game.n_builds
    game.value(game.players)
    assert game.n_builds == builds  # every coalition priced once


def test_footprint_keeps_members_and_neutral_hosts(
    setup: tuple[io.Region, scenarios.Scenario],
) -> None:
    region, _ = setup
    towers = region.towers.copy()
    towers.loc[towers.index[0], "operator_id"] = allocate.NEUTRAL_HOST
    r = footprint(dataclasses.replace(region, towers=towers), ["ct"])
    assert set(r.pops["operator_id"]) == {"ct"}
    assert set(r.towers["operator_id"]) <= {"ct", allocate.NEUTRAL_HOST}
    assert allocate.NEUTRAL_HOST in set(r.towers["operator_id"])


def test_budget_only_scenario_is_refused(setup: tuple[io.Region, scenarios.Scenario]) -> None:
    region, _ = setup
    sc = scenarios.load_scenario(scenario="austerity")
    with pytest.raises(ScenarioError, match="coverage_target"):
        allocate.allocate(region, sc.config, scenarios.policy_for(sc.config))


def test_allocate_command(region_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "allocate",
            str(region_dir),
            "--regime",
            "fund",
            "--regime",
            "lots",
            "--set",
            "policy.coverage_target=0.9",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "lots" in res.output and "fund" in res.output and "auction" not in res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "allocation.csv",
        "allocation.nc",
        "manifest.json",
    ]
    ds = xr.load_dataset(out / "allocation.nc")
    assert list(ds["regime"].values) == ["lots", "fund"]
    assert allocate.format_table(ds) in res.output  # the printed table is the file's
    table = pd.read_csv(out / "allocation.csv")
    assert list(table.columns[:3]) == ["regime", "operator", "districts"]
    assert len(table) == 2 * 3
    assert json.loads((out / "manifest.json").read_text())["files"]


def test_allocate_command_refuses_an_unknown_regime(region_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["allocate", str(region_dir), "--regime", "beauty_contest", "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 2
    assert "allocation.regimes" in res.output and "Traceback" not in res.output


def test_plan_writes_the_allocation_when_the_scenario_has_the_section(
    region_dir: Path, tmp_path: Path
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        f"region: {region_dir}\npolicy: {{coverage_target: 0.9}}\n"
        "allocation: {regimes: [fund], basis: profit}\n",
        encoding="utf-8",
    )
    result = scenarios.run(f)
    assert result.allocation is not None
    assert list(result.allocation["regime"].values) == ["fund"]
    assert result.allocation.attrs["basis"] == "profit"
    paths = report.write(result, tmp_path / "out")
    assert {"allocation", "allocation_csv", "plan"} <= set(paths)
    # a later `allocate` in the same folder replaces the whole set: no stale plan files
    report.write_allocation(result.allocation, tmp_path / "out")
    assert not (tmp_path / "out" / "plan.nc").exists()
    assert scenarios.run(f, with_allocation=False).allocation is None


def test_an_operator_without_infrastructure_is_never_assigned_and_pays_by_revenue_only(
    region_dir: Path, tmp_path: Path
) -> None:
    """A licensed operator with no PoP or tower in the region (e.g. China Netcom in Guizhou in
    2004): it cannot meet an obligation there, the Shapley value and nucleolus of the game among
    owners charge it nothing, a revenue-proportional rule does."""
    import shutil

    root = tmp_path / "region"
    shutil.copytree(region_dir, root)
    ops = pd.read_csv(root / "operators.csv")
    extra = pd.DataFrame([["newco", "New Co", 1.0e11, 1.0e10, 0.0, "fiber"]], columns=ops.columns)
    pd.concat([ops, extra]).to_csv(root / "operators.csv", index=False)
    sc = scenarios.load_scenario(
        set_values={"policy.coverage_target": 0.9, "allocation.regimes": ["fund", "shared"]}
    )
    ds = allocate.allocate(io.load_region(root), sc.config, scenarios.policy_for(sc.config))
    assert "newco" in ds["operator"].values
    assert float(ds["assigned"].sel(regime="fund", operator="newco").sum()) == 0
    assert float(ds["sharing"].sel(rule="shapley", operator="newco")) == 0
    assert float(ds["sharing"].sel(rule="nucleolus", operator="newco")) == 0
    assert float(ds["sharing"].sel(rule="proportional_revenue", operator="newco")) > 0
    assert np.isnan(ds["standalone_need"].sel(operator="newco")).all()
    # the levy base counts its revenue too
    assert float(ds["levy"].sel(regime="fund", operator="newco")) > 0
