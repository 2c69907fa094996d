"""Tests for the district decomposition (universal_service.districts) and Region.subset cropping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from universal_service import catalog, costs, districts, io, optimize, scenarios, uncertainty
from universal_service.errors import ScenarioError


@pytest.fixture(scope="module")
def setup(synth_region_dir):
    region = io.load_region(synth_region_dir)
    scenario = scenarios.load_scenario()
    opts = [
        districts.district_options(region, scenario, d)
        for d in sorted(region.districts["district_id"])
    ]
    return region, scenario, opts


@pytest.fixture(scope="module")
def decomposed(setup):
    region, scenario, opts = setup
    return districts.plan_by_district(region, scenario, options=opts)


def test_subset_with_a_buffer_crops_the_dem_and_the_infrastructure(synth_region_dir) -> None:
    r = io.load_region(synth_region_dir)
    whole = r.subset(["D01"])
    assert whole.dem is r.dem and len(whole.pops) == len(r.pops)
    cut = r.subset(["D01"], buffer_m=2_000.0)
    vb, db = cut.villages.total_bounds, cut.districts.total_bounds  # the kept districts' extent
    x0, y0 = min(vb[0], db[0]), min(vb[1], db[1])
    x1, y1 = max(vb[2], db[2]), max(vb[3], db[3])
    xs, ys = cut.dem["x"].values, cut.dem["y"].values
    assert cut.dem.size < r.dem.size
    assert xs.min() >= x0 - 2_000.0 - 1e-6 and xs.max() <= x1 + 2_000.0 + 1e-6
    assert ys.min() >= y0 - 2_000.0 - 1e-6 and ys.max() <= y1 + 2_000.0 + 1e-6
    for layer in (cut.pops, cut.towers):
        if len(layer):
            assert (layer.geometry.x >= x0 - 2_000.0).all() and (
                layer.geometry.x <= x1 + 2_000.0
            ).all()
    assert cut.meta["subset_of"] == r.name and "subset_of" not in r.meta


def test_reach_buffer_is_the_longest_chain_of_links() -> None:
    cat = catalog.load_catalog()
    radio = scenarios.load_scenario().config.radio
    mw, lte = cat["microwave"], cat["lte"]
    hop = max(mw["max_hop_km"], radio.max_range_m / 1000)
    assert costs.reach_buffer_m(cat, radio) == pytest.approx(
        1000
        * max(
            cat["fiber"]["max_route_km"], hop + max(lte["site_backhaul_max_km"], mw["max_hop_km"])
        )
    )


def test_decomposed_plan_meets_the_target_with_a_valid_bound(setup, decomposed) -> None:
    region, scenario, opts = setup
    a = decomposed.attrs
    target = scenario.config.policy.coverage_target
    assert a["coverage_share"] >= target - 1e-9
    assert a["bound"] <= a["objective"] + 1e-6
    assert a["gap"] == pytest.approx((a["objective"] - a["bound"]) / a["objective"])
    assert a["status"] == "optimal" and a["gap"] <= 0.005
    t = decomposed.districts
    assert t["npv_cost"].sum() == pytest.approx(a["objective"])
    assert (t["covered_weight"] <= t["weight"] + 1e-9).all()
    v = decomposed.villages()
    assert v.index.is_unique and set(v["district_id"]) == set(t.index)
    # the covered weight the districts report is what their villages' choices cover
    w = pd.concat([o.table.drop_duplicates("village_id") for o in opts]).set_index("village_id")
    covered_w = w["weight"].reindex(v.index[v["covered"].astype(bool)]).sum()
    assert covered_w == pytest.approx(t["covered_weight"].sum())


def test_bound_holds_against_the_decomposed_problem_solved_whole(setup, decomposed) -> None:
    """A second method: every district's options in one MILP (sites kept apart per district)
    under the region-wide target. Its optimum lies between the Lagrangian bound and the
    decomposed plan's cost."""
    region, scenario, opts = setup
    tables, sites = [], []
    for o in opts:
        tables.append(
            o.table.assign(
                site_id=np.where(
                    o.table["site_id"] == "", "", o.district + "/" + o.table["site_id"]
                )
            )
        )
        sites.append(o.sites.assign(site_id=o.district + "/" + o.sites["site_id"]))
    policy = dataclasses.replace(scenarios.policy_for(scenario.config), mip_gap=1e-6)
    whole = optimize.plan(
        pd.concat(tables, ignore_index=True), pd.concat(sites, ignore_index=True), policy
    )
    assert whole.attrs["status"] == "optimal"
    best = float(whole.attrs["total_npv_cost"])
    a = decomposed.attrs
    assert a["bound"] <= best * (1 + 1e-6)
    assert best <= a["objective"] * (1 + 1e-6)


def test_dask_gives_the_same_plan_as_the_serial_run(setup, decomposed) -> None:
    region, scenario, opts = setup
    with uncertainty.dask_client(workers=2) as client:
        parallel = districts.plan_by_district(region, scenario, client=client, options=opts)
    pd.testing.assert_frame_equal(parallel.villages(), decomposed.villages())
    assert parallel.attrs["objective"] == pytest.approx(decomposed.attrs["objective"], rel=1e-12)
    timeless = ["seconds"]  # each round's wall time is the one column that may differ
    pd.testing.assert_frame_equal(
        parallel.prices.drop(columns=timeless), decomposed.prices.drop(columns=timeless)
    )


def test_without_a_target_each_district_plans_at_least_cost(setup) -> None:
    region, _, opts = setup
    scenario = scenarios.load_scenario(set_values={"policy.coverage_target": None})
    dp = districts.plan_by_district(region, scenario, options=opts)
    assert dp.prices.empty
    assert dp.attrs["objective"] == pytest.approx(0.0, abs=1e-6)  # nothing needs building


def test_a_budget_scenario_is_refused_with_the_reason(setup) -> None:
    region, _, opts = setup
    scenario = scenarios.load_scenario(
        set_values={
            "policy.budget_cny": 1e6,
            "policy.objective": "max_coverage",
            "policy.coverage_target": None,
        }
    )
    with pytest.raises(ScenarioError, match="least cost only"):
        districts.plan_by_district(region, scenario, options=opts)


def test_mixing_the_two_prices_choices_keeps_the_target_at_less_cost() -> None:
    up = [
        {"covered_weight": 10.0, "cost": 100.0},
        {"covered_weight": 10.0, "cost": 50.0},
        {"covered_weight": 10.0, "cost": 30.0},
    ]
    low = [
        {"covered_weight": 6.0, "cost": 40.0},  # saves 60 for 4: the best move
        {"covered_weight": 9.0, "cost": 45.0},  # saves 5 for 1
        {"covered_weight": 10.0, "cost": 30.0},  # saves nothing
    ]
    mixed = districts._mix(low, up, need=25.0)
    assert [m is lo for m, lo in zip(mixed, low, strict=True)] == [True, True, False]
    assert sum(m["covered_weight"] for m in mixed) >= 25.0
    assert districts._mix(low, up, need=29.0) == [up[0], low[1], up[2]]
    assert districts._mix(low, up, need=29.5) == up


def test_prices_settled_without_solving_agree_with_solving(setup) -> None:
    """A district's answer from earlier prices (same coverage at both ends, or all it can cover
    below) is a plan as cheap as the solver's at that price, and its bound is below the solver's
    objective there (concavity of the price function)."""
    _, scenario, opts = setup
    policy = dataclasses.replace(scenarios.policy_for(scenario.config), mip_gap=0.0)
    ceiling = districts._price_ceiling(opts)
    grid = ceiling * np.geomspace(1e-3, 1.0, 13)
    settled = 0
    for i, o in enumerate(opts):
        curves = districts._Curves([o])
        solved = {p: districts.solve_at_price(o, policy, p) for p in grid}
        for p in grid[::4]:  # every fourth price known, the others asked of the rules
            curves.add(0, p, solved[p])
        for p in grid:
            known = curves.known(0, p)
            if known is None or p in grid[::4]:
                continue
            settled += 1
            net = known["cost"] - p * known["covered_weight"]
            exact = solved[p]["cost"] - p * solved[p]["covered_weight"]
            assert net == pytest.approx(exact, rel=1e-9, abs=1e-6), (i, p)
            assert known["bound"] <= exact + 1e-6
    assert settled > 0  # the rules did settle some prices


def test_one_district_planned_alone_meets_its_own_target(setup) -> None:
    region, scenario, opts = setup
    d = sorted(region.districts["district_id"])[0]
    plan = districts.plan_one_district(region, scenario, d, coverage_target=0.9)
    assert set(plan["district_id"].values.astype(str)) == {d}
    assert plan.attrs["coverage_share"] >= 0.9 - 1e-9
    assert plan.attrs["status"] == "optimal"
    # the same as solving that district's costed options directly
    policy = dataclasses.replace(
        scenarios.policy_for(scenario.config), coverage_target=0.9, district_targets=None
    )
    same = optimize.plan(opts[0].table, opts[0].sites, policy)
    assert plan.attrs["total_npv_cost"] == pytest.approx(same.attrs["total_npv_cost"], rel=1e-6)


def test_each_district_plan_is_its_price_choice_with_a_bound_valid_at_its_own_share(
    setup, decomposed
) -> None:
    """The final plans are not re-solved: each is the choice made at a price, priced, with the
    bound from that solve. Checked against each district's own MILP at the same share."""
    region, scenario, opts = setup
    policy = scenarios.policy_for(scenario.config)
    for o in opts:
        p = decomposed.plans[o.district]
        assert p.attrs["status_method"].startswith(("choice at a coverage price", "milp"))
        share = float(decomposed.districts.loc[o.district, "coverage_share"])
        exact = optimize.plan(
            o.table,
            o.sites,
            dataclasses.replace(
                policy, coverage_target=min(share, 1.0), objective="min_cost", mip_gap=1e-7
            ),
        )
        assert exact.attrs["status"] == "optimal"
        best = float(exact.attrs["total_npv_cost"])
        cost = float(p.attrs["total_npv_cost"])
        assert p.attrs["bound"] <= best * (1 + 1e-6) + 1e-6
        assert best <= cost * (1 + 1e-6) + 1e-6
        if cost:
            assert p.attrs["gap"] == pytest.approx((cost - p.attrs["bound"]) / cost)


def test_price_search_tasks_hold_every_district_once_largest_first() -> None:
    rng = np.random.default_rng(3)
    rows = list(rng.integers(10, 9000, size=50))
    todo = sorted(rng.choice(50, size=40, replace=False).tolist())
    chunks = districts._chunks(todo, rows)
    flat = [i for c in chunks for i in c]
    assert sorted(flat) == todo
    assert [rows[i] for i in flat] == sorted((rows[i] for i in todo), reverse=True)
    for c in chunks:
        assert len(c) <= districts.CHUNK
        assert len(c) == 1 or sum(rows[i] for i in c) <= districts.CHUNK_ROWS


def test_final_plans_whose_milp_runs_go_first() -> None:
    def at(cost: float, bound: float) -> dict:
        # a price-10 solve covering 100 units: cost - 10 x 100 >= bound
        return {"cost": cost, "bound": bound, "price": 10.0, "covered_weight": 100.0, "choice": 1}

    gap = 0.005
    proved = at(1000.0, -4.0)  # bound on the cost 996: within 0.5%
    loose = at(1000.0, -10.0)  # 990: 1% from the cost
    assert districts._proved(proved, gap) and not districts._proved(loose, gap)
    assert not districts._proved(None, gap) and not districts._proved(
        {**proved, "choice": None}, gap
    )
    assert districts._proved(at(0.0, -1000.0), gap)  # costs nothing: 0 bounds it
    chosen = [proved, loose, None, proved, loose]
    rows = [50, 10, 5, 80, 30]
    assert districts._final_order(chosen, rows, gap) == [4, 1, 2, 3, 0]
