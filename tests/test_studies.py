"""Studies over many runs: compare (shared inputs, KPIs, provenance) and the Pareto sweep."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import __version__, scenarios, studies
from universal_service.cli import app
from universal_service.errors import ScenarioError


@pytest.fixture(scope="module")
def files(synth_region_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("scen")
    a = root / "a.yaml"
    a.write_text(
        f"name: cover90\nregion: {synth_region_dir}\npolicy: {{coverage_target: 0.9}}\n"
        "overrides:\n  more: {policy: {coverage_target: 0.95}}\nscenarios:\n  cover95: [more]\n",
        encoding="utf-8",
    )
    b = root / "b.yaml"
    b.write_text(
        f"name: cheap_tariff\nregion: {synth_region_dir}\n"
        "policy: {coverage_target: 0.9, uniform_affordable_share: 1.0}\n",
        encoding="utf-8",
    )
    return [a, b]


def test_parse_ref_and_range(files: list[Path]) -> None:
    assert studies.parse_ref(f"{files[0]}:cover95") == (files[0], "cover95")
    assert studies.parse_ref(str(files[0])) == (files[0], None)
    assert studies.parse_range("0.80:1.00:0.05") == [0.8, 0.85, 0.9, 0.95, 1.0]
    assert studies.parse_range("1e8:3e8:1e8", "--budget") == [1e8, 2e8, 3e8]
    for bad in ("0.9:0.8:0.01", "0.8:1:0", "a:b:c", "0.8:1", "0:1:1e-6"):
        with pytest.raises(ScenarioError):
            studies.parse_range(bad)


def test_run_many_shares_the_costing_where_inputs_are_equal(files: list[Path]) -> None:
    runs = studies.run_many([str(files[0]), f"{files[0]}:cover95", str(files[1])])
    assert [r.name for r in runs] == ["cover90", "cover95", "cheap_tariff"]
    assert runs[0].options is runs[1].options  # only the target differs
    assert runs[2].options is not runs[0].options  # the tariff rule prices the options
    assert runs[0].region is runs[2].region
    table = studies.kpis(runs)
    assert list(table.index) == ["cover90", "cover95", "cheap_tariff"]
    assert table.loc["cover95", "coverage_population"] >= 0.95 - 1e-9
    assert table.loc["cover95", "npv_cost"] >= table.loc["cover90", "npv_cost"] - 1e-6
    for r in runs:
        row = table.loc[r.name]
        assert row["npv_cost"] == pytest.approx(r.plan.attrs["total_npv_cost"])
        assert row["npv_subsidy"] == pytest.approx(r.plan.attrs["total_subsidy"])
        new = r.plan["served"].values & (r.plan["technology"].values.astype(str) != "existing")
        assert row["new_villages"] == int(new.sum())
        assert row["villages_unserved"] == int((~r.plan["served"].values).sum())
    ds = studies.comparison(runs)
    assert list(ds["scenario"].values) == ["cover90", "cover95", "cheap_tariff"]
    assert float(ds["kpi_npv_cost"].sel(scenario="cover95")) == table.loc["cover95", "npv_cost"]
    prov = json.loads(ds.attrs["provenance"])
    assert prov["cover95"]["scenario"]["policy"]["coverage_target"] == 0.95
    assert prov["cover95"]["overrides_applied"] == ["more"]


def test_run_many_refuses_two_runs_with_one_name(files: list[Path]) -> None:
    with pytest.raises(ScenarioError, match="unique"):
        studies.run_many([str(files[0]), str(files[0])])


def test_provenance_hashes_are_the_files(synth_region_dir: Path, files: list[Path]) -> None:
    prov = scenarios.provenance(scenarios.load_scenario(files[0]))
    for name in ("region.toml", "villages.gpkg", "dem.tif", "operators.csv"):
        digest = hashlib.sha256((synth_region_dir / name).read_bytes()).hexdigest()
        assert prov["inputs"][name] == digest
    assert "catalog:technologies.toml" in prov["inputs"]
    assert prov["package_version"] == __version__
    assert prov["seed"] == 0 and prov["solver"] in ("highs", "cbc")
    json.dumps(prov)  # serialisable


@pytest.fixture(scope="module")
def coverage_sweep(files: list[Path]) -> pd.DataFrame:
    return studies.sweep(
        scenarios.load_scenario(files[0]), coverage=studies.parse_range("0.5:1.0:0.05")
    )


def test_coverage_sweep_is_monotone(coverage_sweep: pd.DataFrame) -> None:
    t = coverage_sweep
    assert list(t["coverage_target"]) == studies.parse_range("0.5:1.0:0.05")
    ok = t["status"].isin(studies.USABLE)
    assert ok.all(), t
    assert np.all(np.diff(t["npv_cost"]) >= -1e-6)  # more coverage is never cheaper
    assert np.all(t["coverage_population"] >= t["coverage_target"] - 1e-9)
    assert np.all(t["bound"] <= t["npv_cost"] + 1e-6)  # each bound valid for the plan kept
    assert np.all(np.diff(t["coverage_population"]) >= -1e-9) or t["repaired"].any()


def test_budget_sweep_is_monotone(files: list[Path], coverage_sweep: pd.DataFrame) -> None:
    top = float(coverage_sweep["npv_cost"].max())
    budgets = list(np.linspace(0.2 * top, top, 4))
    t = studies.sweep(scenarios.load_scenario(files[0]), budget=budgets)
    assert t["status"].isin(studies.USABLE).all(), t
    assert np.all(np.diff(t["coverage_population"]) >= -1e-9)  # more money never covers less
    assert np.all(t["npv_cost"] <= t["budget_cny"] + 1e-6)


def test_compare_and_sweep_commands(files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    res = CliRunner().invoke(app, ["compare", str(files[0]), str(files[1]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "cover90" in res.output and "cheap_tariff" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["comparison.nc", "kpis.csv", "manifest.json"]
    table = pd.read_csv(out / "kpis.csv", index_col=0)
    assert studies.format_kpis(table) in res.output  # the printed table is the file's
    ds = xr.load_dataset(out / "comparison.nc")
    assert "provenance" in ds.attrs and ds.sizes["scenario"] == 2
    out2 = tmp_path / "sw"
    res = CliRunner().invoke(
        app,
        ["sweep", "--scenario", str(files[0]), "--coverage", "0.8:0.9:0.05", "--out", str(out2)],
    )
    assert res.exit_code == 0, res.output
    pareto = pd.read_csv(out2 / "pareto.csv")
    assert list(pareto["coverage_target"]) == [0.8, 0.85, 0.9]
    assert {"npv_cost", "subsidy", "shadow_price", "status", "gap"} <= set(pareto.columns)
    res = CliRunner().invoke(app, ["sweep", "--coverage", "0.9:0.8:0.1", "--out", str(out2)])
    assert res.exit_code == 2 and "START <= STOP" in res.output


def test_the_costing_key_lists_every_policy_field_the_costing_reads() -> None:
    import re

    from universal_service import costs

    src = (Path(costs.__file__)).read_text(encoding="utf-8")
    read = set(re.findall(r"policy\.([a-z_]+)", src))
    assert read <= set(costs.POLICY_FIELDS), read - set(costs.POLICY_FIELDS)


def test_plan_and_manifest_carry_the_provenance(files: list[Path], tmp_path: Path) -> None:
    from universal_service import outputs, report

    result = scenarios.run(scenarios.load_scenario(files[0]), with_baseline=False)
    report.write(result, tmp_path / "out")
    plan = xr.load_dataset(tmp_path / "out" / "plan.nc")
    prov = json.loads(plan.attrs["provenance"])
    assert prov["scenario"]["name"] == "cover90"
    digest = hashlib.sha256((result.region.path / "villages.gpkg").read_bytes()).hexdigest()
    assert prov["inputs"]["villages.gpkg"] == digest
    assert outputs.read_manifest(tmp_path / "out")["provenance"] == prov


def test_a_neighbouring_plan_starts_the_solver(files: list[Path]) -> None:
    """``optimize.plan(..., start=)``: the neighbour's plan (it meets the lower target) is a
    candidate start, so the start the solver gets is at least as good as that plan."""
    from universal_service import optimize

    cache = studies.RunCache()
    high = cache.run(scenarios.load_scenario(files[0], scenario="cover95"), with_baseline=False)
    low_sc = scenarios.load_scenario(files[0])
    opts = high.options
    sites = opts.sites[["site_id", "cost", "kind", "capex"]]
    policy = scenarios.policy_for(low_sc.config)
    started = optimize.plan(opts.table, sites, policy, start=high.plan)
    assert started.attrs["warm_start_objective"] <= high.plan.attrs["objective"] + 1e-6
    assert started.attrs["objective"] <= high.plan.attrs["objective"] + 1e-6
    # started from its own optimum, the solver's start is that optimum (the greedy one is worse)
    cold = optimize.plan(opts.table, sites, policy)
    again = optimize.plan(opts.table, sites, policy, start=cold)
    assert cold.attrs["warm_start_objective"] > cold.attrs["objective"] + 1e-6
    assert again.attrs["warm_start_objective"] == pytest.approx(cold.attrs["objective"])
    # a start that leaves the target unmet is simply not used
    empty = high.plan.assign(option_id=("village", np.full(high.plan.sizes["village"], "")))
    strict = dataclasses.replace(policy, coverage_target=0.99)
    assert optimize.plan(opts.table, sites, strict, start=empty).attrs["status"] in studies.USABLE
