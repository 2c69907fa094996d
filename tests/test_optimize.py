"""Tests for optimize: brute force, reference builds, published optima, infeasibility and statistics."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pulp
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from universal_service import instances, milp, optimize
from universal_service.errors import InputDataError, ScenarioError

DATA = Path(__file__).parent / "data"

# OR-Library uncapacitated warehouse location, optimal values from the `uncapopt` table:
# Beasley, J.E. (1990) "OR-Library: distributing test problems by electronic mail", J. Oper. Res.
# Soc. 41(11):1069-1072, http://people.brunel.ac.uk/~mastjjb/jeb/orlib/uncapinfo.html. The instance
# files (capacities ignored for the uncapacitated problem) are copied from the public repository
# KanekiYokan/LP-Solution-Optimizer, data/beasley-cap/ (commit 2b82fd6), see tests/data/orlib/README.md.
UNCAPOPT = {"cap71": 932615.750, "cap101": 796648.437, "cap131": 793439.562}


def read_orlib_cap(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OR-Library ``cap`` file as (options, sites): customer = village, warehouse = site."""
    return instances.orlib_tables(*instances.read_orlib_cap(path))


def random_instance(
    seed: int,
    n_villages: int = 4,
    n_sites: int = 3,
    districts: int = 1,
    mixed: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tiny seeded instance: 2-3 options per village, some needing one of ``n_sites`` shared sites."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(n_villages):
        weight = float(rng.integers(1, 10))
        district = f"d{v % districts}"
        for k in range(int(rng.integers(2, 4))):
            shared = rng.random() < 0.7
            cost = float(rng.integers(5, 60))
            rows.append(
                {
                    "village_id": f"v{v:02d}",
                    "option_id": f"o{k}",
                    "technology": "4g" if shared else "satellite",
                    "site_id": f"s{int(rng.integers(n_sites))}" if shared else "",
                    "cost": cost,
                    "net_cost": cost - float(rng.integers(0, 40)) if mixed else cost,
                    "weight": weight,
                    "district_id": district,
                    "counts_as_covered": bool(rng.random() < 0.8) if mixed else True,
                    "quality": int(rng.integers(1, 4)),
                }
            )
    sites = pd.DataFrame(
        {
            "site_id": [f"s{j}" for j in range(n_sites)],
            "cost": rng.integers(10, 80, n_sites).astype(float),
        }
    )
    return pd.DataFrame(rows), sites


def brute_force(
    options: pd.DataFrame, sites: pd.DataFrame, policy: optimize.Policy
) -> dict[str, float]:
    """Enumerate every assignment (each village: one of its options or none) with NumPy arrays.

    Returns the optimum (``objective``; for max_coverage the covered weight and, among plans with that
    coverage, the least ``cost``), or ``objective`` NaN when nothing is feasible.
    """
    opts = options.sort_values(["village_id", "option_id"]).reset_index(drop=True)
    village_ids = sorted(opts["village_id"].unique())
    table = [np.flatnonzero(opts["village_id"].to_numpy() == v) for v in village_ids]
    width = max(len(t) for t in table) + 1
    pick = np.full((len(village_ids), width), -1)
    for i, t in enumerate(table):
        pick[i, : len(t)] = t
    combos = np.array(list(itertools.product(*[range(len(t) + 1) for t in table])))
    combos = np.where(combos == np.array([len(t) for t in table]), width - 1, combos)
    chosen = pick[np.arange(len(village_ids)), combos]  # (n_combos, n_villages), -1: none
    on = chosen >= 0
    idx = np.maximum(chosen, 0)
    site_code = pd.Index(sites["site_id"]).get_indexer(opts["site_id"].fillna(""))
    cost = np.where(on, opts["cost"].to_numpy()[idx], 0.0).sum(axis=1)
    net_col = opts["net_cost"] if "net_cost" in opts else opts["cost"]
    net = np.where(on, net_col.to_numpy()[idx], 0.0).sum(axis=1)
    used = np.zeros((len(combos), len(sites)), dtype=bool)
    for j in range(len(sites)):
        used[:, j] = (on & (site_code[idx] == j)).any(axis=1)
    site_total = used @ sites["cost"].to_numpy(dtype=float)
    cost, net = cost + site_total, net + site_total
    cov_col = (
        opts["counts_as_covered"].to_numpy(dtype=bool)
        if "counts_as_covered" in opts
        else np.ones(len(opts), bool)
    )
    weight = (
        opts.groupby("village_id")["weight"].first().reindex(village_ids).to_numpy()
        if "weight" in opts
        else np.ones(len(village_ids))
    )
    covered = on & cov_col[idx]
    cov_w = (covered * weight).sum(axis=1)
    feasible = np.ones(len(combos), dtype=bool)
    if policy.coverage_target is not None:
        feasible &= cov_w >= policy.coverage_target * weight.sum() - 1e-9
    if policy.district_targets:
        district = opts.groupby("village_id")["district_id"].first().reindex(village_ids).to_numpy()
        for d, t in policy.district_targets.items():
            member = district == d
            feasible &= (covered[:, member] * weight[member]).sum(axis=1) >= t * weight[
                member
            ].sum() - 1e-9
    if policy.budget is not None:
        feasible &= cost <= policy.budget + 1e-9
    if "demand_mbps" in opts and "capacity_mbps" in sites:
        demand = np.where(on, opts["demand_mbps"].to_numpy()[idx], 0.0)
        for j, cap in enumerate(sites["capacity_mbps"].to_numpy(dtype=float)):
            feasible &= (demand * (site_code[idx] == j)).sum(axis=1) <= cap + 1e-9
    if not feasible.any():
        return {"objective": math.nan}
    if policy.objective == "max_coverage":
        best = cov_w[feasible].max()
        tied = feasible & (cov_w >= best - 1e-9)
        return {"objective": best, "cost": cost[tied].min()}
    value = net if policy.objective == "min_subsidy" else cost
    return {"objective": value[feasible].min()}


def exact(**kwargs: object) -> optimize.Policy:
    return optimize.Policy(mip_gap=0.0, **kwargs)


def check_plan(
    plan: xr.Dataset, options: pd.DataFrame, sites: pd.DataFrame, policy: optimize.Policy
) -> None:
    """Post-solve invariants recomputed from the plan itself."""
    served = plan["served"].to_numpy()
    assert (plan["option_id"].to_numpy()[~served] == "").all()
    assert (plan["technology"].to_numpy()[~served] == "none").all()
    chosen = options.set_index(["village_id", "option_id"])
    keys = list(
        zip(plan["village"].to_numpy()[served], plan["option_id"].to_numpy()[served], strict=True)
    )
    np.testing.assert_allclose(
        plan["npv_cost"].to_numpy()[served], chosen.loc[keys, "cost"].to_numpy()
    )
    needed = {s for s in chosen.loc[keys, "site_id"].fillna("") if s}
    built = set(plan["site"].to_numpy()[plan["site_built"].to_numpy()])
    assert needed == built, "a site is built exactly when a chosen option needs it"
    total = float(plan["npv_cost"].sum() + plan["site_cost"].sum())
    assert plan.attrs["total_cost"] == pytest.approx(total)
    w = plan["weight"].to_numpy()
    assert plan.attrs["coverage_share"] == pytest.approx(
        w[plan["covered"].to_numpy()].sum() / w.sum()
    )
    if policy.budget is not None:
        assert total <= policy.budget * (1 + 1e-9) + 1e-9
    if policy.coverage_target is not None:
        assert plan.attrs["coverage_share"] >= policy.coverage_target - 1e-9


# ----------------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("seed", range(8))
def test_min_cost_with_target_matches_brute_force(seed: int) -> None:
    options, sites = random_instance(seed)
    policy = exact(coverage_target=[0.5, 0.75, 1.0][seed % 3])
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["status"] == "optimal"
    assert plan.attrs["objective"] == pytest.approx(
        brute_force(options, sites, policy)["objective"]
    )
    check_plan(plan, options, sites, policy)


@pytest.mark.parametrize("seed", range(8))
def test_min_cost_with_budget_and_districts_matches_brute_force(seed: int) -> None:
    options, sites = random_instance(100 + seed, n_villages=5, districts=2)
    best = brute_force(options, sites, exact(coverage_target=0.6))["objective"]
    policy = exact(coverage_target=0.6, district_targets={"d0": 0.5}, budget=best * 1.3)
    expected = brute_force(options, sites, policy)["objective"]
    plan = optimize.plan(options, sites, policy)
    if math.isnan(expected):
        assert plan.attrs["status"] == "infeasible"
    else:
        assert plan.attrs["status"] == "optimal"
        assert plan.attrs["objective"] == pytest.approx(expected)
        check_plan(plan, options, sites, policy)


@pytest.mark.parametrize("seed", range(8))
def test_site_capacity_matches_brute_force(seed: int) -> None:
    """Busy-hour demand on a site never exceeds its capacity (capacity[s] rows), and the optimum
    is the enumerated one, under a coverage target and under max_coverage."""
    options, sites = random_instance(seed, n_villages=5, n_sites=2)
    rng = np.random.default_rng(100 + seed)
    options["demand_mbps"] = np.where(
        options["site_id"] != "", rng.uniform(10, 60, len(options)), 0
    )
    sites["capacity_mbps"] = rng.uniform(40, 120, len(sites))
    for policy in (exact(coverage_target=0.6), exact(objective="max_coverage", budget=150.0)):
        plan = optimize.plan(options, sites, policy)
        ref = brute_force(options, sites, policy)
        if math.isnan(ref["objective"]):
            assert plan.attrs["status"] == "infeasible"
            continue
        assert plan.attrs["status"] == "optimal"
        if policy.objective == "max_coverage":
            covered = plan.attrs["coverage_share"] * float(plan["weight"].sum())
            assert covered == pytest.approx(ref["objective"])
            assert plan.attrs["total_cost"] == pytest.approx(ref["cost"])
        else:
            assert plan.attrs["objective"] == pytest.approx(ref["objective"], abs=1e-6)
        check_plan(plan, options, sites, policy)
        chosen = options.set_index(["village_id", "option_id"]).loc[
            [
                (v, o)
                for v, o in zip(plan["village"].values, plan["option_id"].values, strict=True)
                if o
            ]
        ]
        load = chosen.groupby("site_id")["demand_mbps"].sum().drop("", errors="ignore")
        cap = sites.set_index("site_id")["capacity_mbps"]
        assert (load <= cap.reindex(load.index) + 1e-9).all()


@pytest.mark.parametrize("seed", range(8))
def test_max_coverage_matches_brute_force(seed: int) -> None:
    options, sites = random_instance(200 + seed)
    policy = exact(objective="max_coverage", budget=float(60 + 15 * seed))
    expected = brute_force(options, sites, policy)
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["status"] == "optimal"
    covered_weight = plan.attrs["coverage_share"] * float(plan["weight"].sum())
    assert covered_weight == pytest.approx(expected["objective"])
    assert plan.attrs["total_cost"] == pytest.approx(expected["cost"]), (
        "the tie-break picks the cheapest"
    )
    check_plan(plan, options, sites, policy)


@pytest.mark.parametrize("seed", range(6))
def test_min_subsidy_with_degraded_options_matches_brute_force(seed: int) -> None:
    options, sites = random_instance(300 + seed, mixed=True)
    policy = exact(objective="min_subsidy", coverage_target=0.5)
    expected = brute_force(options, sites, policy)["objective"]
    plan = optimize.plan(options, sites, policy)
    if math.isnan(expected):
        assert plan.attrs["status"] == "infeasible"
        return
    assert plan.attrs["objective"] == pytest.approx(expected)
    assert plan.attrs["total_net_cost"] == pytest.approx(expected)
    check_plan(plan, options, sites, policy)


@settings(max_examples=20, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), budget=st.floats(0.0, 300.0), extra=st.floats(0.0, 200.0))
def test_budget_respected_and_coverage_monotone_in_budget(
    seed: int, budget: float, extra: float
) -> None:
    options, sites = random_instance(seed, n_villages=4)
    low = optimize.plan(options, sites, exact(objective="max_coverage", budget=budget))
    high = optimize.plan(options, sites, exact(objective="max_coverage", budget=budget + extra))
    for plan, b in ((low, budget), (high, budget + extra)):
        assert plan.attrs["status"] == "optimal"
        assert plan.attrs["total_cost"] <= b * (1 + 1e-9) + 1e-9
    assert high.attrs["coverage_share"] >= low.attrs["coverage_share"] - 1e-12


# ------------------------------------------------------------------------- reference builds, back-ends


def reference_pulp(
    options: pd.DataFrame, sites: pd.DataFrame, policy: optimize.Policy
) -> pulp.LpProblem:
    """The model written term by term, the straightforward way, without dominance removal."""
    prob = pulp.LpProblem("reference", pulp.LpMinimize)
    site_cost = dict(zip(sites["site_id"], sites["cost"], strict=True))
    x, one, objective, budget, coverage = {}, {}, [], [], []
    y = {
        s: pulp.LpVariable(f"y_{s}", cat=pulp.LpBinary)
        for s in sorted(set(options["site_id"]) - {""})
    }
    weights = options.groupby("village_id")["weight"].first()
    for r in options.itertuples():
        var = x[r.village_id, r.option_id] = pulp.LpVariable(
            f"x_{r.village_id}_{r.option_id}", cat=pulp.LpBinary
        )
        one.setdefault(r.village_id, []).append(var)
        objective.append((var, r.cost))
        budget.append((var, r.cost))
        coverage.append((var, weights[r.village_id]))
        if r.site_id:
            prob += var <= y[r.site_id], f"link_{r.village_id}_{r.option_id}"
    for s, var in y.items():
        objective.append((var, site_cost[s]))
        budget.append((var, site_cost[s]))
    for v, terms in one.items():
        prob += pulp.lpSum(terms) <= 1, f"one_{v}"
    prob += pulp.LpAffineExpression(coverage) >= policy.coverage_target * weights.sum(), "coverage"
    if policy.budget is not None:
        prob += pulp.LpAffineExpression(budget) <= policy.budget, "budget"
    prob += pulp.LpAffineExpression(objective)
    return prob


def cbc() -> pulp.COIN_CMD:
    return pulp.COIN_CMD(path=pulp.apis.coin_api.pulp_cbc_path, msg=False, gapRel=0)


@pytest.mark.parametrize("seed", range(5))
def test_columnar_model_matches_term_by_term_reference(seed: int) -> None:
    options, sites = random_instance(400 + seed, n_villages=6, n_sites=3)
    policy = exact(coverage_target=0.7, budget=400.0)
    reference = reference_pulp(options, sites, policy)
    reference.solve(cbc())
    plan = optimize.plan(options, sites, policy)
    if reference.status == pulp.LpStatusInfeasible:
        assert plan.attrs["status"] == "infeasible"
    else:
        assert plan.attrs["objective"] == pytest.approx(pulp.value(reference.objective))


def test_highs_and_pulp_models_are_the_same() -> None:
    options, sites = random_instance(7, n_villages=6, districts=2)
    policy = exact(coverage_target=0.6, district_targets={"d1": 0.5}, budget=300.0)
    highs = optimize.to_highs(options, sites, policy)
    prob = optimize.to_pulp(options, sites, policy)
    model = optimize.formulation(options, sites, policy)
    assert (
        highs.getNumCol() == len(prob.variables()) == model.n_cols == model.n_x + len(model.y_site)
    )
    assert highs.getNumRow() == len(prob.constraints) == model.n_rows
    assert highs.getNumNz() == sum(len(c) for c in prob.constraints.values()) == model.n_nonzeros
    lp = highs.getLp()
    by_name = dict(zip(lp.col_names_, lp.col_cost_, strict=True))
    translate = str.maketrans("-+[] ->/", "________")
    objective = {v.name: coef for v, coef in prob.objective.items()}
    assert {n.translate(translate): c for n, c in by_name.items() if c} == pytest.approx(objective)
    assert {n.translate(translate) for n in lp.row_names_} == set(prob.constraints)


@pytest.mark.parametrize("seed", range(4))
def test_highs_and_cbc_reach_the_same_optimum(seed: int) -> None:
    options, sites = random_instance(500 + seed, n_villages=8, n_sites=4, districts=2)
    results = {}
    for solver in ("highs", "cbc"):
        policy = exact(coverage_target=0.7, district_targets={"d0": 0.6}, solver=solver)
        results[solver] = optimize.plan(options, sites, policy)
        assert results[solver].attrs["solver"] == solver
        check_plan(results[solver], options, sites, policy)
    assert results["highs"].attrs["objective"] == pytest.approx(results["cbc"].attrs["objective"])
    assert results["highs"].attrs["lp_bound"] == pytest.approx(results["cbc"].attrs["lp_bound"])
    assert results["highs"].attrs["dual_coverage"] == pytest.approx(
        results["cbc"].attrs["dual_coverage"], abs=1e-6
    )


def test_cbc_is_the_fallback_without_highspy(monkeypatch: pytest.MonkeyPatch) -> None:
    options, sites = random_instance(3, n_villages=6)
    expected = optimize.plan(options, sites, exact(coverage_target=0.7)).attrs["objective"]
    monkeypatch.setattr(milp, "highspy", None)
    plan = optimize.plan(options, sites, exact(coverage_target=0.7))
    assert plan.attrs["solver"] == "cbc" and plan.attrs["objective"] == pytest.approx(expected)


def test_cbc_reaches_cap71_optimum() -> None:
    options, sites = read_orlib_cap(DATA / "orlib" / "cap71.txt")
    plan = optimize.plan(options, sites, exact(coverage_target=1.0, solver="cbc"))
    assert plan.attrs["objective"] == pytest.approx(UNCAPOPT["cap71"], abs=1e-3)


def test_lp_export_matches_stored_file(tmp_path: Path) -> None:
    options = pd.DataFrame(
        {
            "village_id": ["v001", "v001", "v002", "v002", "v003"],
            "option_id": ["fiber", "4g_s7", "4g_s7", "sat", "4g_s8"],
            "technology": ["fiber", "4g", "4g", "satellite", "4g"],
            "site_id": ["", "s7", "s7", "", "s8"],
            "cost": [120.0, 30.0, 25.0, 90.0, 40.0],
            "weight": [100, 100, 150, 150, 80],
            "district_id": ["522701", "522701", "522701", "522701", "522702"],
        }
    )
    sites = pd.DataFrame({"site_id": ["s7", "s8"], "cost": [100.0, 60.0]})
    policy = optimize.Policy(coverage_target=0.5, district_targets={"522701": 0.4}, budget=500.0)
    path = tmp_path / "optimize_3village.lp"
    optimize.to_pulp(options, sites, policy).writeLP(str(path))
    assert path.read_text() == (DATA / "optimize_3village.lp").read_text()


# -------------------------------------------------------------------------------- model features


def test_dominated_options_removed_without_changing_the_objective() -> None:
    options, sites = random_instance(11, n_villages=5)
    extra = pd.DataFrame(
        {
            "village_id": ["v00", "v00", "v01"],
            "option_id": ["zz_cheap_free", "zz_dear_shared", "zz_twin"],
            "technology": ["fiber", "4g", "fiber"],
            "site_id": ["", "s1", ""],
            "cost": [1.0, 2.0, 1.0],
            "net_cost": [1.0, 2.0, 1.0],
            "weight": [options.loc[options.village_id == "v00", "weight"].iloc[0]] * 2
            + [options.loc[options.village_id == "v01", "weight"].iloc[0]],
            "district_id": "d0",
            "counts_as_covered": True,
            "quality": 3,
        }
    )
    twin = extra.iloc[[2]].assign(option_id="zz_twin2")
    options = pd.concat([options, extra, twin], ignore_index=True)
    policy = exact(coverage_target=0.8)
    inst = optimize.prepare(options, sites, policy)
    reduced = optimize.remove_dominated(inst, policy)
    kept = set(zip(inst.village_ids[reduced.option_village], reduced.option_id, strict=True))
    assert ("v00", "zz_cheap_free") in kept and ("v00", "zz_dear_shared") not in kept
    assert ("v01", "zz_twin") in kept and ("v01", "zz_twin2") not in kept, (
        "of two equal options the lower id stays"
    )
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["n_options_removed_dominated"] == inst.n_options - reduced.n_options > 0
    assert plan.attrs["objective"] == pytest.approx(
        brute_force(options, sites, policy)["objective"]
    )


def test_min_quality_and_degraded_options() -> None:
    options = pd.DataFrame(
        {
            "village_id": ["a", "a", "b", "b"],
            "option_id": ["sat", "fiber", "2g", "4g"],
            "technology": ["satellite", "fiber", "2g", "4g"],
            "site_id": "",
            "cost": [10.0, 50.0, 5.0, 30.0],
            "quality": [1, 3, 1, 2],
            "counts_as_covered": [True, True, False, True],
        }
    )
    sites = pd.DataFrame(columns=["site_id", "cost"])
    plan = optimize.plan(options, sites, exact(coverage_target=1.0))
    assert list(plan["option_id"].values) == ["sat", "4g"], "the degraded 2g option does not count"
    plan = optimize.plan(options, sites, exact(coverage_target=1.0, min_quality=2))
    assert list(plan["option_id"].values) == ["fiber", "4g"]
    assert plan.attrs["n_options_removed_quality"] == 2


def test_statistics_attrs_present_and_consistent(tmp_path: Path) -> None:
    options, sites = random_instance(21, n_villages=8, districts=2)
    policy = exact(coverage_target=0.6, district_targets={"d0": 0.5}, budget=600.0)
    plan = optimize.plan(options, sites, policy)
    a = plan.attrs
    assert a["status"] == "optimal" and a["infeasible_reason"] == ""
    inst = optimize.remove_dominated(optimize.prepare(options, sites, policy), policy)
    kept = inst.n_options
    assert a["n_x"] == kept == len(options) - a["n_options_removed_dominated"]
    assert a["n_y"] == len(np.unique(inst.site[inst.site >= 0])) <= len(sites)
    assert a["n_cols"] == a["n_x"] + a["n_y"]
    n_links = int((inst.site >= 0).sum())
    villages = options["village_id"].nunique()
    assert (
        a["n_rows"] == villages + n_links + 3
    )  # one[v], link[v,o], coverage, coverage[d0], budget
    forced = optimize.forced_villages(inst, policy)[inst.option_village]
    counted = inst.covered & ~forced  # weights are >= 1 here
    in_d0 = inst.village_district[inst.option_village] == "d0"
    n_budget = int((inst.cost != 0).sum()) + a["n_y"]  # site costs are > 0 here
    expected = kept + 2 * n_links + counted.sum() + (counted & in_d0).sum() + n_budget
    assert a["n_nonzeros"] == expected
    assert a["lp_bound"] <= a["bound"] + 1e-9 <= a["objective"] + 2e-9
    assert a["gap"] == pytest.approx(0.0, abs=1e-9)
    assert a["objective"] == pytest.approx(a["total_cost"])
    assert a["build_seconds"] >= 0 and a["solve_seconds"] >= 0
    assert a["coverage_target"] == 0.6 and a["budget"] == 600.0
    assert isinstance(a["binding_constraints"], str)
    assert math.isfinite(a["dual_coverage"]) and math.isfinite(a["dual_budget"])
    assert set(plan.sizes) == {"village", "site"}
    assert list(plan["village"].values) == sorted(options["village_id"].unique())
    assert list(plan["site"].values) == sorted(sites["site_id"])
    for key, value in a.items():
        assert isinstance(value, str | int | float), key
    path = tmp_path / "plan.nc"
    plan.to_netcdf(path)
    with xr.open_dataset(path) as back:
        assert back.attrs["status"] == "optimal"
        assert back["site_cost"].attrs["units"].startswith("CNY")


def test_shadow_price_of_coverage_and_binding_constraints() -> None:
    options = pd.DataFrame(
        {
            "village_id": ["a", "b", "c"],
            "option_id": "f",
            "technology": "fiber",
            "site_id": "",
            "cost": [10.0, 20.0, 30.0],
        }
    )
    sites = pd.DataFrame({"site_id": [], "cost": []})
    plan = optimize.plan(options, sites, exact(coverage_target=0.5))
    assert plan.attrs["objective"] == 30.0 and plan.attrs["lp_bound"] == pytest.approx(20.0)
    assert plan.attrs["dual_coverage"] == pytest.approx(20.0), (
        "raising the target by one village costs village b"
    )
    assert plan.attrs["binding_constraints"] == "coverage"
    assert math.isnan(plan.attrs["dual_budget"])
    plan = optimize.plan(options, sites, exact(objective="max_coverage", budget=25.0))
    assert plan.attrs["binding_constraints"] == "budget"
    eps = 1 / (
        2 * 60
    )  # tie-break weight: 1 / (2 x dearest possible plan), see optimize.tie_break_weight
    assert plan.attrs["dual_budget"] == pytest.approx(1 / 20 - eps), (
        "one more CNY buys 1/20 of village b"
    )


def test_forced_villages_presolve() -> None:
    options = pd.DataFrame(
        {
            "village_id": ["a", "b", "c", "d"],
            "option_id": "f",
            "technology": "fiber",
            "site_id": "",
            "cost": [1.0, 2.0, 3.0, 4.0],
            "weight": [50.0, 30.0, 15.0, 5.0],
        }
    )
    sites = pd.DataFrame(columns=["site_id", "cost"])
    policy = exact(coverage_target=0.6)  # 60 of 100 needed: only a (50) cannot be spared
    inst = optimize.prepare(options, sites, policy)
    assert list(optimize.forced_villages(inst, policy)) == [True, False, False, False]
    model = optimize.build_formulation(inst, policy)
    assert model.row_lower[0] == model.row_upper[0] == 1.0, "one[a] becomes = 1"
    row = model.policy_rows["coverage"]
    assert model.row_lower[row] == pytest.approx(10.0), "a's weight moves to the right-hand side"
    assert model.matrix[row, 0] == 0 and model.matrix[row, 1] == 30.0
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["objective"] == pytest.approx(
        brute_force(options, sites, policy)["objective"]
    )


def test_guarded_child_process_gives_the_same_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    options, sites = hard_instance(12, 6)  # small, but its LP relaxation is fractional
    # a time limit far above need: the child's limit counts from its "ready", so load cannot eat it
    policy = exact(coverage_target=1.0, time_limit_s=3600.0)
    in_process = optimize.plan(options, sites, policy)
    monkeypatch.setattr(milp, "GUARD_COLS", 0)  # every MILP in a spawned child
    child = optimize.plan(options, sites, policy)
    assert not child.attrs["termination"].startswith("LP relaxation integral"), "the MILP ran"
    assert child.attrs["objective"] == pytest.approx(in_process.attrs["objective"])
    assert child.attrs["status"] == in_process.attrs["status"] == "optimal"
    options, sites = hard_instance(40, 20)  # branch and bound runs: the greedy start goes in late
    policy = optimize.Policy(coverage_target=1.0, time_limit_s=1.5)
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["status"] in ("time_limit", "optimal"), plan.attrs["termination"]
    assert plan.attrs["objective"] <= plan.attrs["warm_start_objective"] + 1e-6
    check_plan(plan, options, sites, policy)


def test_plan_is_deterministic() -> None:
    options, sites = random_instance(5, n_villages=10, n_sites=4)
    policy = optimize.Policy(coverage_target=0.7)
    first = optimize.plan(options, sites, policy)
    shuffled = options.sample(frac=1.0, random_state=1)
    second = optimize.plan(shuffled, sites.iloc[::-1], policy)
    for attr in ("build_seconds", "solve_seconds"):
        first.attrs.pop(attr), second.attrs.pop(attr)
    xr.testing.assert_identical(first, second)


def test_threads_can_change_between_solves() -> None:
    options, sites = hard_instance(12, 6)
    values = [
        optimize.plan(options, sites, exact(coverage_target=1.0, threads=t)).attrs["objective"]
        for t in (1, 2, 1)
    ]
    assert values[0] == pytest.approx(values[1]) == pytest.approx(values[2])


def test_warm_start_off_reaches_the_same_optimum() -> None:
    options, sites = random_instance(31, n_villages=10, n_sites=4)
    on = optimize.plan(options, sites, exact(coverage_target=0.8))
    off = optimize.plan(options, sites, exact(coverage_target=0.8, warm_start=False))
    assert on.attrs["objective"] == pytest.approx(off.attrs["objective"])


# ------------------------------------------------------------------------ infeasible, time limit


def test_unreachable_district_target_is_named() -> None:
    options, sites = random_instance(41, n_villages=6, districts=2)
    options = options[~((options["village_id"] == "v01") & (options["site_id"] == ""))].copy()
    options.loc[options["village_id"] == "v01", "counts_as_covered"] = False
    plan = optimize.plan(
        options, sites, optimize.Policy(coverage_target=0.3, district_targets={"d1": 0.95})
    )
    assert plan.attrs["status"] == "infeasible"
    assert plan.attrs["infeasible_reason"].startswith("coverage[d1]: at most ")
    assert "(target 0.95)" in plan.attrs["infeasible_reason"]
    assert not plan["served"].any() and math.isnan(plan.attrs["objective"])


def test_budget_below_cheapest_plan_is_explained() -> None:
    options, sites = random_instance(42, n_villages=5)
    cheapest = optimize.plan(options, sites, exact(coverage_target=0.9)).attrs["total_cost"]
    plan = optimize.plan(options, sites, exact(coverage_target=0.9, budget=cheapest * 0.8))
    assert plan.attrs["status"] == "infeasible"
    reason = plan.attrs["infeasible_reason"]
    assert (
        f"budget: the cheapest plan meeting the target costs {cheapest:,.0f} CNY > budget" in reason
    )
    assert "budget: budget reaches at most" in reason and "(target 0.9)" in reason


def hard_instance(
    n_villages: int = 100, n_sites: int = 50, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Non-metric uncapacitated facility location with costs uniform on [1000, 2000]: a wide LP gap
    that HiGHS does not close in seconds (cf. the hard instances of Koerkel (1989), EJOR 39:157-173)."""
    rng = np.random.default_rng(seed)
    cost = rng.integers(1000, 2001, size=(n_villages, n_sites)).astype(float)
    villages = np.array([f"v{i:03d}" for i in range(n_villages)], dtype=object)
    site_ids = np.array([f"s{j:02d}" for j in range(n_sites)], dtype=object)
    options = pd.DataFrame(
        {
            "village_id": np.repeat(villages, n_sites),
            "option_id": np.tile(site_ids, n_villages),
            "technology": "4g",
            "site_id": np.tile(site_ids, n_villages),
            "cost": cost.ravel(),
        }
    )
    return options, pd.DataFrame({"site_id": site_ids, "cost": 3000.0})


def test_time_limit_returns_best_feasible_plan_with_gap() -> None:
    options, sites = hard_instance()
    policy = optimize.Policy(coverage_target=1.0, time_limit_s=1.0)
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["status"] in ("time_limit", "optimal")
    assert plan["served"].all()
    check_plan(plan, options, sites, policy)
    assert plan.attrs["bound"] <= plan.attrs["objective"] + 1e-6
    if plan.attrs["status"] == "time_limit":
        assert 0 < plan.attrs["gap"] < 1
        assert plan.attrs["gap"] == pytest.approx(
            (plan.attrs["objective"] - plan.attrs["bound"]) / plan.attrs["objective"]
        )


def test_lp_out_of_time_keeps_greedy_plan_and_share_bound() -> None:
    options, sites = hard_instance()
    policy = optimize.Policy(coverage_target=1.0, time_limit_s=1e-4)  # not even the LP finishes
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["status"] == "time_limit" and plan["served"].all()
    check_plan(plan, options, sites, policy)
    assert math.isnan(plan.attrs["lp_bound"])
    inst = optimize.prepare(options, sites, policy)
    assert plan.attrs["bound"] == pytest.approx(optimize.share_bound(inst, policy))
    assert 0 < plan.attrs["gap"] < 1


@pytest.mark.parametrize("seed", range(6))
def test_share_bound_is_valid(seed: int) -> None:
    options, sites = random_instance(700 + seed, n_villages=5, districts=2, mixed=seed % 2 == 1)
    for policy in (
        exact(coverage_target=0.6, district_targets={"d0": 0.8}),
        exact(objective="min_subsidy", coverage_target=0.5),
        exact(objective="max_coverage", budget=90.0),
    ):
        best = brute_force(options, sites, policy)["objective"]
        bound = optimize.share_bound(optimize.prepare(options, sites, policy), policy)
        if policy.objective == "max_coverage":
            assert bound >= best - 1e-9
        elif not math.isnan(best):
            assert bound <= best + 1e-9


# --------------------------------------------------------------------------- published optimum


@pytest.mark.parametrize("name", sorted(UNCAPOPT))
def test_orlib_uncapacitated_optimum(name: str) -> None:
    options, sites = read_orlib_cap(DATA / "orlib" / f"{name}.txt")
    plan = optimize.plan(options, sites, exact(coverage_target=1.0))
    assert plan.attrs["status"] == "optimal"
    assert plan.attrs["objective"] == pytest.approx(UNCAPOPT[name], abs=1e-3)
    assert plan.attrs["total_cost"] == pytest.approx(UNCAPOPT[name], abs=1e-3)
    assert plan["served"].all()


def test_baseline_pays_sites_alone_and_plan_saves() -> None:
    options, sites = read_orlib_cap(DATA / "orlib" / "cap71.txt")
    policy = exact(coverage_target=1.0)
    base = optimize.baseline(options, sites, policy)
    plan = optimize.plan(options, sites, policy)
    assert base.attrs["status"] == "feasible" and base["served"].all()
    assert base.attrs["total_cost"] > plan.attrs["total_cost"]
    cost = options.assign(
        total=options["cost"] + options["site_id"].map(sites.set_index("site_id")["cost"])
    )
    cheapest_alone = cost.groupby("village_id")["total"].min().sum()
    assert base.attrs["total_cost"] == pytest.approx(cheapest_alone)


def test_improve_plan_keeps_feasibility_and_lowers_cost() -> None:
    options, sites = read_orlib_cap(DATA / "orlib" / "cap71.txt")
    policy = exact(coverage_target=1.0)
    inst = optimize.prepare(options, sites, policy)
    start = optimize.greedy_choice(inst, policy)
    better = optimize.improve_plan(inst, policy, start)
    before, after = optimize.evaluate(inst, start, policy), optimize.evaluate(inst, better, policy)
    assert not after["violated"] and (better >= 0).all()
    assert UNCAPOPT["cap71"] - 1e-3 <= after["total_cost"] < before["total_cost"]


def test_baseline_meets_target_greedily_by_cost_per_weight() -> None:
    options = pd.DataFrame(
        {
            "village_id": ["a", "b", "c"],
            "option_id": "f",
            "technology": "fiber",
            "site_id": "",
            "cost": [10.0, 30.0, 30.0],
            "weight": [1.0, 6.0, 2.0],
        }
    )
    base = optimize.baseline(
        options, pd.DataFrame(columns=["site_id", "cost"]), optimize.Policy(coverage_target=0.7)
    )
    assert list(base["served"].values) == [True, True, False]  # 10/1 > 30/6: b first, then a
    assert base.attrs["coverage_share"] == pytest.approx(7 / 9)


# ------------------------------------------------------------------------------------- validation


def small() -> tuple[pd.DataFrame, pd.DataFrame]:
    options = pd.DataFrame(
        {
            "village_id": ["a", "a", "b"],
            "option_id": ["x", "y", "x"],
            "technology": "4g",
            "site_id": ["s1", "", "s1"],
            "cost": [1.0, 2.0, 3.0],
        }
    )
    return options, pd.DataFrame({"site_id": ["s1"], "cost": [5.0]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.drop(columns="cost"), "missing column(s) ['cost']"),
        (lambda o: o.assign(option_id=["x", "x", "x"]), "(village_id, option_id) repeated"),
        (
            lambda o: o.assign(cost=[1.0, np.nan, 3.0]),
            "options, row 1: cost must be a finite number >= 0",
        ),
        (
            lambda o: o.assign(cost=[1.0, -2.0, 3.0]),
            "cost must be a finite number >= 0 (got [-2.0])",
        ),
        (lambda o: o.assign(site_id=["s1", "", "s9"]), "site_id ['s9'] not in sites"),
        (
            lambda o: o.assign(weight=[1.0, 2.0, 3.0]),
            "weight differs between the rows of village(s) ['a']",
        ),
        (lambda o: o.assign(village_id=["a", None, "b"]), "village_id is empty"),
    ],
)
def test_invalid_options_raise_input_data_error(change, message: str) -> None:
    options, sites = small()
    with pytest.raises(InputDataError) as info:
        optimize.plan(change(options), sites, optimize.Policy())
    assert message in str(info.value)


def test_invalid_sites_and_districts_raise() -> None:
    options, sites = small()
    with pytest.raises(InputDataError, match="site_id repeated"):
        optimize.plan(options, pd.concat([sites, sites]), optimize.Policy())
    with pytest.raises(InputDataError, match=r"district\(s\) \['nowhere'\]"):
        optimize.plan(options, sites, optimize.Policy(district_targets={"nowhere": 0.5}))
    with pytest.raises(InputDataError, match="no 'quality' column"):
        optimize.plan(options, sites, optimize.Policy(min_quality=2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coverage_target": 1.5}, "coverage_target must be a share"),
        ({"objective": "max_coverage"}, "needs a budget"),
        ({"objective": "cheapest"}, "objective must be one of"),
        ({"budget": -1.0}, "budget must be a finite amount"),
        ({"solver": "gurobi"}, "solver must be one of"),
        ({"time_limit_s": 0}, "time_limit_s must be > 0"),
        ({"district_targets": {"d": 2}}, "district_targets must be shares"),
        ({"coverage_basis": "people"}, "coverage_basis must be one of"),
    ],
)
def test_invalid_policy_raises_scenario_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        optimize.Policy(**kwargs)


def test_villages_basis_counts_villages() -> None:
    options = pd.DataFrame(
        {
            "village_id": ["a", "b"],
            "option_id": "f",
            "technology": "fiber",
            "site_id": "",
            "cost": [10.0, 1.0],
            "weight": [100.0, 1.0],
        }
    )
    sites = pd.DataFrame(columns=["site_id", "cost"])
    by_weight = optimize.plan(options, sites, exact(coverage_target=0.5))
    by_count = optimize.plan(options, sites, exact(coverage_target=0.5, coverage_basis="villages"))
    assert list(by_weight["served"].values) == [True, False]
    assert list(by_count["served"].values) == [False, True]


# ------------------------------------------------------- one Policy, budget basis, status rule


def test_policy_speaks_the_scenario_vocabulary() -> None:
    assert optimize.COVERAGE_BASES == ("population", "villages")
    assert optimize.Policy().coverage_basis == "population"
    with pytest.raises(ScenarioError, match="coverage_basis must be one of"):
        optimize.Policy(coverage_basis="weight")
    with pytest.raises(ScenarioError, match="budget_basis must be one of"):
        optimize.Policy(budget=1.0, budget_basis="opex")


def test_policy_for_maps_every_policy_field() -> None:
    """Every PolicyConfig field reaches optimize.Policy, or costs.build_options reads it."""
    import inspect

    from universal_service import costs, scenarios, schema

    cfg = schema.ScenarioConfig.model_validate(
        {
            "policy": {
                "coverage_target": 0.9,
                "coverage_basis": "villages",
                "district_targets": {"d1": 0.5},
                "budget_cny": 1.5e7,
                "budget_basis": "subsidy",
                "objective": "min_subsidy",
                "min_quality": 2,
            },
            "solve": {
                "solver": "cbc",
                "time_limit_s": 7.0,
                "mip_gap": 0.01,
                "threads": 2,
                "seed": 5,
            },
        }
    )
    got = scenarios.policy_for(cfg)
    mapped = {
        "coverage_target": 0.9,
        "coverage_basis": "villages",
        "district_targets": {"d1": 0.5},
        "budget_cny": 1.5e7,
        "budget_basis": "subsidy",
        "objective": "min_subsidy",
        "min_quality": 2,
    }
    renamed = {"budget_cny": "budget"}
    for name, value in mapped.items():
        assert getattr(got, renamed.get(name, name)) == value, name
    for name, value in {
        "solver": "cbc",
        "time_limit_s": 7.0,
        "mip_gap": 0.01,
        "threads": 2,
        "seed": 5,
    }.items():
        assert getattr(got, name) == value, name
    priced = inspect.getsource(costs)
    for name in schema.PolicyConfig.model_fields:
        assert name in mapped or f"policy.{name}" in priced, (
            f"policy.{name} reaches neither optimize.Policy nor costs.build_options"
        )
    for name in schema.SolveConfig.model_fields:
        assert hasattr(got, name), f"solve.{name} does not reach optimize.Policy"


def _budget_instance() -> tuple[pd.DataFrame, pd.DataFrame]:
    """a: dear but profitable and cheap to build; b, c: share site s, cheap NPV, dear capex."""
    options = pd.DataFrame(
        {
            "village_id": ["a", "b", "c"],
            "option_id": ["f", "m", "m"],
            "technology": ["fiber", "4g", "4g"],
            "site_id": ["", "s", "s"],
            "cost": [10.0, 3.0, 3.0],
            "capex": [2.0, 8.0, 8.0],
            "subsidy": [0.0, 3.0, 3.0],
            "weight": [5.0, 3.0, 3.0],
        }
    )
    sites = pd.DataFrame({"site_id": ["s"], "cost": [4.0], "capex": [1.0]})
    return options, sites


@pytest.mark.parametrize(
    ("basis", "served"),
    [("npv_cost", {"b", "c"}), ("capex", {"a"}), ("subsidy", {"a", "b", "c"})],
)
def test_budget_limits_the_money_of_its_basis(basis: str, served: set[str]) -> None:
    options, sites = _budget_instance()
    policy = exact(objective="max_coverage", budget=10.0, budget_basis=basis)
    plan = optimize.plan(options, sites, policy)
    assert plan.attrs["status"] == "optimal"
    assert set(plan["village"].values[plan["served"].values]) == served
    # the money spent, recomputed from the solution and the tables
    chosen = options.set_index("village_id").loc[sorted(served)]
    per_option = {"npv_cost": "cost", "capex": "capex", "subsidy": "subsidy"}[basis]
    per_site = "capex" if basis == "capex" else "cost"
    built = plan["site"].values[plan["site_built"].values]
    spent = chosen[per_option].sum() + sites.set_index("site_id").loc[built, per_site].sum()
    assert spent <= 10.0 + 1e-9
    assert plan.attrs["budget_spent"] == pytest.approx(spent)
    assert plan.attrs["budget_basis"] == basis


def test_budget_shadow_price_is_cny_per_unit_covered() -> None:
    options, sites = _budget_instance()
    plan = optimize.plan(options, sites, exact(objective="max_coverage", budget=9.0))
    dual = plan.attrs["dual_budget"]
    assert dual > 0
    assert plan.attrs["budget_cny_per_unit_covered"] == pytest.approx(1.0 / dual)
    slack = optimize.plan(options, sites, exact(objective="max_coverage", budget=100.0))
    assert math.isnan(slack.attrs["budget_cny_per_unit_covered"])


def test_capex_budget_needs_capex_columns() -> None:
    options, sites = _budget_instance()
    policy = exact(objective="max_coverage", budget=10.0, budget_basis="capex")
    with pytest.raises(InputDataError, match="no 'capex' column"):
        optimize.plan(options.drop(columns="capex"), sites, policy)
    with pytest.raises(InputDataError, match="sites have no 'capex' column"):
        optimize.plan(options, sites.drop(columns="capex"), policy)


def test_greedy_and_dominance_respect_the_budget_basis() -> None:
    """A cheaper-NPV, dearer-capex option must not replace the one a capex budget allows."""
    options = pd.DataFrame(
        {
            "village_id": ["a", "a"],
            "option_id": ["cheap_npv", "cheap_capex"],
            "technology": ["fiber", "4g"],
            "site_id": "",
            "cost": [1.0, 2.0],
            "capex": [9.0, 1.0],
            "weight": 1.0,
        }
    )
    sites = pd.DataFrame(columns=["site_id", "cost", "capex"])
    for warm in (True, False):
        policy = exact(objective="max_coverage", budget=5.0, budget_basis="capex", warm_start=warm)
        plan = optimize.plan(options, sites, policy)
        assert list(plan["option_id"].values) == ["cheap_capex"]
        base = optimize.baseline(options, sites, policy)
        assert list(base["option_id"].values) == ["cheap_capex"]


@pytest.mark.parametrize(
    ("status", "objective", "bound", "expected"),
    [
        ("optimal", 100.0, 99.995, "optimal"),  # gap 5e-5 <= 1e-4
        ("optimal", 100.0, 99.0, "time_limit"),  # gap 1e-2 > 1e-4: no proof of optimality
        ("time_limit", 100.0, 100.0, "optimal"),
        ("time_limit", 100.0, math.nan, "time_limit"),
        ("optimal", 0.0, -1e-9, "optimal"),  # within the absolute tolerance
        ("infeasible", math.nan, math.nan, "infeasible"),
    ],
)
def test_status_is_optimal_only_within_mip_gap(status, objective, bound, expected) -> None:
    from universal_service.optimize import solve

    assert solve._status(status, objective, bound, 1, optimize.Policy(mip_gap=1e-4)) == expected


@pytest.mark.parametrize(
    ("name", "objective", "basis"),
    [
        (None, "min_cost", "npv_cost"),
        ("villages_98_least_subsidy", "min_subsidy", "npv_cost"),
        ("villages_98_fund", "max_coverage", "subsidy"),
    ],
)
def test_villages_98_scenario_is_one_line_each(name, objective, basis) -> None:
    from universal_service import scenarios

    path = Path(__file__).parents[1] / "data" / "scenarios" / "villages_98.yaml"
    policy = scenarios.policy_for(scenarios.load_scenario(path, scenario=name).config)
    assert policy.coverage_basis == "villages"
    assert (policy.objective, policy.budget_basis) == (objective, basis)
    assert policy.coverage_target == (None if objective == "max_coverage" else 0.98)


@pytest.mark.parametrize("seed", range(4))
def test_solve_brief_gives_the_plans_figures(seed: int) -> None:
    """The price search's light solve reports the same choice, cost and coverage as the Plan."""
    options, sites = random_instance(seed, n_villages=6, n_sites=3, mixed=True)
    for policy in (exact(objective="min_subsidy"), exact(coverage_target=0.6)):
        ds = optimize.plan(options, sites, policy)
        brief = optimize.solve_brief(options, sites, policy)
        assert brief["status"] == ds.attrs["status"]
        assert brief["total_cost"] == pytest.approx(ds.attrs["total_npv_cost"], abs=1e-9)
        covered = ds["weight"].values[ds["covered"].values.astype(bool)].sum()
        assert brief["covered_weight"] == pytest.approx(float(covered))
        assert list(brief["option_id"]) == list(ds["option_id"].values.astype(str))
        assert brief["objective"] == pytest.approx(ds.attrs["objective"])


@pytest.mark.parametrize("seed", range(3))
def test_plan_of_choice_prices_a_given_choice_like_plan(seed: int) -> None:
    """A choice made elsewhere becomes the same Plan as the solver's; its status follows the
    bound given; a choice short of the target is infeasible and names the row."""
    options, sites = random_instance(seed, n_villages=6, n_sites=3, mixed=True)
    policy = exact(coverage_target=0.6)
    ds = optimize.plan(options, sites, policy)
    ids = pd.Series(ds["option_id"].values.astype(str), index=ds["village"].values.astype(str))
    cost = float(ds.attrs["total_npv_cost"])
    same = optimize.plan_of_choice(options, sites, policy, ids, bound=cost, method="test")
    assert same.attrs["status"] == "optimal" and same.attrs["status_method"] == "test"
    assert same.attrs["total_npv_cost"] == pytest.approx(cost)
    for var in ("option_id", "npv_cost", "subsidy", "covered"):
        assert list(same[var].values) == list(ds[var].values)
    loose = optimize.plan_of_choice(options, sites, policy, ids, bound=0.5 * cost, method="t")
    assert loose.attrs["status"] == ("time_limit" if cost > 0 else "optimal")
    assert loose.attrs["gap"] == pytest.approx(0.5 if cost > 0 else 0.0)
    nothing = ids.iloc[:0]
    broken = optimize.evaluate_plan(options, sites, policy, nothing)["violated"]
    none = optimize.plan_of_choice(options, sites, policy, nothing, bound=0.0, method="t")
    assert (none.attrs["status"] == "infeasible") == bool(broken)
    assert none.attrs["infeasible_reason"] == "; ".join(broken)
