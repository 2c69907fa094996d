"""End to end on the bundled Qiannan region, and the CLI on a synthetic region.

The regression test asserts the objective (with the solver's gap as tolerance), never which of
several equally cheap sites were picked; post-solve invariants are recomputed from the solution.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import costs, report, rollout, scenarios
from universal_service.cli import app

from .conftest import BUNDLED, ROOT

# Optima of the bundled baseline (min NPV cost, 98% of population), recorded when this test was
# written (HiGHS 1.16, gap 1e-4; see benchmarks/RESULTS.md). Any change to the data, the catalog
# or the cost model moves them: update them deliberately, with the reason in the commit.
# Moved from 326,717,459 and 234,124,599 when one slope (Horn) replaced np.gradient in the route
# weights and in the region builder's village placement (the bundled region was rebuilt); from
# 320,491,332 and 233,283,097 when a 4G site's structure, equipment and power got their own lives;
# from 310,130,963 and 229,699,269 to 97,264,761 and 96,306,094 when the bundled region got its
# dated end-2015 baseline (village masts, existing service from the plan's own coverage and route
# tests, a third of rural villages fibered: 634 villages left to serve instead of 1,130); to
# 89,651,150 and 87,613,095 when fiber followed least-cost paths over the DEM with slope classes
# and aerial cable; to 107,403,584 and 107,356,787 when every option paid for its customer
# equipment and drops and satellite its busy-hour capacity; to these when 4G sites got a
# busy-hour capacity (capacity[s] rows) and 4G villages pay for the carriers they load
# (133,379,394 and 133,066,844); to 133,405,611 and 133,093,061 when new masts on grid power paid
# for their connection; to these when every microwave hop paid for its hub's backhaul (a 2G/3G
# mast feeds one only once upgraded) and the MILP stopped taking the LP solution as a start.
# First MILP, each fiber village priced with its own route to a PoP: its optimum, proved within
# 1e-4 (HiGHS 1.16). The plan command solves it at the shared-trench iteration's tolerance
# (network.mip_gap, 5e-3), so the test checks the plan's objective against this optimum and
# that tolerance.
BASELINE_MILP_OPTIMUM_CNY = 175_292_475.0
# After the plan <-> shared-trench iteration (a heuristic on top of three MILPs within 5e-3 and
# Steiner forests within 0.3% of their bounds), so the tolerance is wider. Moved from 169,879,088
# (re-solves within 1e-4, priced at equal shares of the forest) when the re-solves priced each
# fiber village at its marginal trench, within 5e-3.
BASELINE_SHARED_TOTAL_CNY = 168_341_145.0


@pytest.fixture(scope="module")
def bundled_result() -> scenarios.ScenarioResult:
    return scenarios.run(scenarios.load_scenario())


@pytest.mark.slow
def test_bundled_baseline_objective(bundled_result):
    a = bundled_result.plan.attrs
    # the reported plan comes from the MILP <-> Steiner heuristic: "feasible" with its gap to a
    # valid bound unless that gap closes; the first MILP (own routes) is proved optimal
    assert a["status_method"] == "heuristic" and a["status"] in {"optimal", "feasible"}
    assert a["milp_status"] == "optimal"
    # the first MILP's plan is within its tolerance of the recorded optimum, and its bound is
    # valid for it (below the optimum, up to the 1e-4 to which that optimum is proved)
    tol = bundled_result.scenario.config.network.mip_gap
    assert a["milp_total_cost"] >= BASELINE_MILP_OPTIMUM_CNY * (1 - 1e-4)
    assert a["milp_total_cost"] <= BASELINE_MILP_OPTIMUM_CNY * (1 + tol)
    assert a["milp_bound"] <= BASELINE_MILP_OPTIMUM_CNY * (1 + 1e-4)
    assert a["total_cost"] == pytest.approx(BASELINE_SHARED_TOTAL_CNY, rel=5e-3)
    assert a["total_cost"] <= a["milp_total_cost"]
    assert a["bound"] <= a["objective"] + 1e-6
    assert a["lp_bound"] <= a["milp_bound"] + 1e-3  # the own-routes MILP: LP <= its MILP bound
    assert a["milp_bound"] <= a["milp_objective"] + 1e-6
    assert a["fiber_trench_lower_bound_m"] <= a["fiber_trench_shared_m"] + 1e-6


@pytest.mark.slow
def test_readme_shows_what_the_plan_command_prints(bundled_result):
    """The README's example output is the summary the code prints (timings aside)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = "## What the plan command prints\n\n```\n"
    start = readme.index(head) + len(head)
    shown = readme[start : readme.index("\n```", start)].splitlines()
    printed = [
        line
        for line in report.format_summary(bundled_result).splitlines()
        if not line.startswith("  timings:")
    ]

    def same_solver(lines: list[str]) -> list[str]:  # the installed HiGHS version may differ
        return [re.sub(r"solver highs [0-9.]+", "solver highs X", line) for line in lines]

    assert same_solver(shown) == same_solver(printed), "update README.md's example output"


@pytest.mark.slow
def test_readme_shows_the_bundled_rollout(bundled_result):
    """The README's rollout table is what the code prints for the baseline's rollout section,
    and the schedule keeps the plan: every village the plan serves, within each year's budget."""
    ds = scenarios.schedule_rollout(bundled_result)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("Rollout of 'baseline' from 2016")
    shown = readme[start : readme.index("\n```", start)]
    assert shown == rollout.format_table(ds), "update README.md's rollout table"
    plan = bundled_result.plan
    assert ds["capex_cny"].sum() == pytest.approx(plan.attrs["total_capex"])
    assert np.all(ds["capex_cny"].values <= ds["budget_cny"].values + 1e-6)
    assert ds["coverage_population"].values[-1] == pytest.approx(plan.attrs["coverage_share"])
    assert ds.attrs["greedy_objective"] <= ds.attrs["objective"] <= ds.attrs["bound"]


@pytest.mark.slow
def test_bundled_plan_invariants(bundled_result):
    plan, opts = bundled_result.plan, bundled_result.options
    cfg = bundled_result.scenario.config
    # coverage of population at least the target, recomputed from the villages
    v = opts.villages.set_index("village_id").reindex(plan["village"].values)
    covered = plan["covered"].values
    share = v["population"].to_numpy()[covered].sum() / v["population"].sum()
    assert share >= cfg.policy.coverage_target - 1e-9
    # every village served through a site is served by a built site: by 4G, a site that covers
    # it (pair in coverage); by microwave, the upgraded 2G/3G mast its hop starts from
    site = plan["site_id"].values.astype(str)
    through = site != ""
    built = pd.Series(plan["site_built"].values, index=plan["site"].values)
    assert built.reindex(site[through]).all()
    pairs = set(zip(opts.coverage["site_id"], opts.coverage["village_id"], strict=True))
    tech = plan["technology"].values.astype(str)
    detail = opts.table.set_index(["village_id", "option_id"])["detail"]
    for s, vid, tec, o in zip(
        site[through],
        plan["village"].values[through],
        tech[through],
        plan["option_id"].values[through],
        strict=True,
    ):
        assert (s, vid) in pairs if tec == "lte" else f"from {s}" in detail[(vid, o)]
    # no built site carries more busy-hour demand than its capacity (the capacity[s] rows)
    t = opts.table.set_index(["village_id", "option_id"])
    chosen = [
        (vid, o)
        for vid, o in zip(plan["village"].values, plan["option_id"].values, strict=True)
        if o
    ]
    demand = t.loc[chosen, "demand_mbps"].groupby(t.loc[chosen, "site_id"]).sum()
    demand = demand[demand.index != ""]
    capacity = opts.sites.set_index("site_id")["capacity_mbps"]
    assert len(demand) and (demand <= capacity.reindex(demand.index) + 1e-6).all()
    # total cost recomputed from chosen options and built sites
    total = plan["npv_cost"].sum() + plan["site_cost"].where(plan["site_built"], 0).sum()
    assert float(total) == pytest.approx(plan.attrs["total_cost"], rel=1e-9)
    # the baseline is no cheaper (the acceptance target is >= 10% saving; see benchmarks/)
    assert bundled_result.baseline.attrs["total_cost"] > plan.attrs["total_cost"]


@pytest.mark.slow
def test_bundled_money_invariants_from_plan_nc_alone(bundled_result, tmp_path):
    """Issue 15's invariants, recomputed from the written plan.nc without any other object."""
    paths = report.write(bundled_result, tmp_path)
    with xr.open_dataset(paths["plan"]) as ds:
        p = ds.load()
    a = p.attrs
    built = p["site_built"].values.astype(bool)
    site_cost = float(p["site_cost"].values[built].sum())
    assert a["total_subsidy"] == pytest.approx(float(p["subsidy"].sum()), rel=1e-9)
    # the documented rule: chosen options' NPV cost plus the built sites' cost
    assert a["total_npv_cost"] == pytest.approx(float(p["npv_cost"].sum()) + site_cost, rel=1e-9)
    assert float(p["site_share"].sum()) == pytest.approx(site_cost, rel=1e-9)
    subsidy = np.maximum(p["npv_cost"] + p["site_share"] - p["revenue_npv"], 0.0)
    np.testing.assert_allclose(p["subsidy"].values, subsidy.values, rtol=1e-9, atol=1e-6)
    assert a["objective_name"] == "min_cost"
    assert a["objective"] == pytest.approx(a["total_npv_cost"], rel=1e-9)
    assert a["gap"] == pytest.approx((a["objective"] - a["bound"]) / a["objective"], rel=1e-9)
    assert a["bound"] <= a["objective"] + 1e-6
    assert (a["status"] == "optimal") == (a["gap"] <= a["mip_gap_tolerance"] + 1e-12)
    assert a["coverage_basis"] == bundled_result.scenario.config.policy.coverage_basis


@pytest.mark.slow
def test_bundled_outputs_written(bundled_result, tmp_path):
    paths = report.write(bundled_result, tmp_path)
    assert {p.name for p in paths.values()} == {
        "plan.nc",
        "villages.gpkg",
        "sites.gpkg",
        "fiber.gpkg",
        "summary.csv",
    }
    with xr.open_dataset(paths["plan"]) as ds:
        # the shared-trench plan is a heuristic result: feasible, with its gap to a valid bound
        assert ds.attrs["status_method"] == "heuristic" and ds.sizes["village"] == 1519
        assert ds.attrs["status"] in {"optimal", "feasible"}
    s = pd.read_csv(paths["summary"], index_col=0)
    assert s.loc["total", "villages"] == 1519
    npv = next(c for c in s.columns if c.startswith("NPV cost ["))
    assert s.loc["total", npv] == pytest.approx(
        bundled_result.plan.attrs["total_npv_cost"], rel=1e-6
    )
    assert not list(tmp_path.glob(".*part*"))


def test_cli_plan_on_synthetic_region(synth_region_dir, tmp_path):
    res = CliRunner().invoke(app, ["plan", str(synth_region_dir), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert re.search(r"plan status: (optimal|feasible)", res.output) and "coverage:" in res.output
    assert (tmp_path / "o" / "plan.nc").exists()


def test_cli_set_override_and_bad_key(synth_region_dir, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "plan",
            str(synth_region_dir),
            "--set",
            "policy.coverage_target=0.5",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "target 0.5000" in ok.output
    bad = runner.invoke(
        app,
        [
            "plan",
            str(synth_region_dir),
            "--set",
            "policy.coverage=0.5",
            "--out",
            str(tmp_path / "o2"),
        ],
    )
    assert bad.exit_code == 2
    assert "unknown key 'policy.coverage'" in bad.output


def test_cli_validate_reports_problems(region_copy):
    import geopandas as gpd

    v = gpd.read_file(region_copy / "villages.gpkg")
    v.loc[1, "population"] = np.nan
    v.to_file(region_copy / "villages.gpkg", layer="villages", driver="GPKG")
    res = CliRunner().invoke(app, ["validate", str(region_copy)])
    assert res.exit_code == 2
    assert "villages.gpkg, feature 2: column 'population'" in res.output


def test_cli_help_lists_commands():
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "plan" in res.output and "validate" in res.output and "dashboard" in res.output


def test_same_inputs_same_summary(synth_region_dir):
    a = report.format_summary(scenarios.run(_synth(synth_region_dir)))
    b = report.format_summary(scenarios.run(_synth(synth_region_dir)))
    strip = [ln for ln in a.splitlines() if "timings" not in ln]
    assert strip == [ln for ln in b.splitlines() if "timings" not in ln]


def _synth(path):
    sc = scenarios.load_scenario()
    sc.config = sc.config.model_copy(update={"region": str(path)})
    return sc


def test_options_cover_every_village(synth_region_dir):
    from universal_service import io

    region = io.load_region(synth_region_dir)
    opts = costs.build_options(region)
    assert set(opts.table["village_id"]) == set(region.villages["village_id"])


def test_bundled_region_present():
    assert (BUNDLED / "region.toml").exists()


def test_write_clears_temporaries_of_a_killed_run(synth_region_dir, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".plan.nc.abc123.part.nc"
    stale.write_text("half a file from a run killed with SIGKILL")
    other = out / "notes.txt"
    other.write_text("not ours")
    report.write(scenarios.run(_synth(synth_region_dir)), out)
    assert not stale.exists() and other.exists()
    assert not list(out.glob(".*part*"))
