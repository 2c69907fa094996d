"""Tests for universal_service.fiberplan: trench-cost attribution and the plan/Steiner iteration."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from universal_service import catalog, costs, fiberplan, io, optimize, scenarios


def _chain() -> nx.Graph:
    G = nx.Graph()
    G.add_edge("p:1", "v:a", weight=10.0, length_m=8.0)
    G.add_edge("v:a", "v:b", weight=4.0, length_m=4.0)
    G.add_edge("v:a", "r:1", weight=6.0, length_m=6.0)
    G.add_edge("r:1", "v:c", weight=2.0, length_m=2.0)
    return G


def test_attribute_tree_splits_edges_among_downstream_villages():
    G = _chain()
    shares = fiberplan.attribute_tree(G, ["p:1"], ["v:a", "v:b", "v:c"], G)
    # edge p-a (10) shared by a, b, c; a-b (4) by b; a-r-c (6 + 2) by c
    assert shares.loc["v:a", "weighted_m"] == pytest.approx(10 / 3)
    assert shares.loc["v:b", "weighted_m"] == pytest.approx(10 / 3 + 4)
    assert shares.loc["v:c", "weighted_m"] == pytest.approx(10 / 3 + 6 + 2)
    total = sum(d["weight"] for _, _, d in G.edges(data=True))
    assert shares["weighted_m"].sum() == pytest.approx(total)
    assert shares["length_m"].sum() == pytest.approx(20.0)


def test_attribute_tree_forest_with_two_roots():
    G = nx.Graph()
    G.add_edge("p:1", "v:a", weight=3.0)
    G.add_edge("p:2", "v:b", weight=5.0)
    shares = fiberplan.attribute_tree(G, ["p:1", "p:2"], ["v:a", "v:b"], G)
    assert shares["weighted_m"].to_dict() == {"v:a": 3.0, "v:b": 5.0}


@pytest.fixture(scope="module")
def synth_plan(synth_region_dir):
    region = io.load_region(synth_region_dir)
    sc = scenarios.load_scenario(set_values={"policy.coverage_target": 1.0})
    opts = costs.build_options(region, sc.config.policy, sc.config.radio)
    policy = scenarios.policy_for(sc.config)
    plan = optimize.plan(opts.table, opts.sites[["site_id", "cost"]], policy)
    return opts, policy, plan


def test_design_never_worse_than_own_routes(synth_plan):
    opts, policy, plan = synth_plan
    fd = fiberplan.design(plan, opts, policy, catalog.load_catalog(), iterations=2)
    a = fd.plan.attrs
    assert a["total_cost"] <= plan.attrs["total_cost"] + 1e-6
    assert a["coverage_share"] >= 1.0 - 1e-9
    assert fd.shared_trench_m <= fd.per_village_trench_m + 1e-6
    assert fd.steiner is None or fd.steiner.lower_bound <= fd.steiner.cost + 1e-6
    # the plan's cost variable adds up to its total (fiber villages carry their trench share)
    built = fd.plan["site_cost"].where(fd.plan["site_built"], 0).sum()
    assert float(fd.plan["cost"].sum() + built) == pytest.approx(a["total_cost"], rel=1e-9)
    # the exported network holds exactly the forest's trench
    if fd.steiner is not None:
        assert fd.lines["weighted_length_m"].sum() == pytest.approx(fd.shared_trench_m)
        per_km = catalog.load_catalog()["fiber"]["capex_cny_per_km"]
        np.testing.assert_allclose(
            fd.lines["capex_cny"], fd.lines["weighted_length_m"] / 1000 * per_km
        )
    assert list(fd.history["iteration"]) == list(range(len(fd.history)))


def test_design_prices_fiber_villages_from_shares(synth_plan):
    opts, policy, plan = synth_plan
    fd = fiberplan.design(plan, opts, policy, catalog.load_catalog(), iterations=0)
    fib = catalog.load_catalog()["fiber"]
    tech = fd.plan["technology"].values.astype(str)
    n_fiber = int((tech == "fiber").sum())
    if n_fiber == 0:
        pytest.skip("no fiber village in this synthetic plan")
    rate, horizon = opts.params["discount_rate"], opts.params["horizon_years"]
    # fiber cost is affine in trench length: total = n x fixed + per-km x forest
    _, fixed_capex, fixed_opex = costs.fiber_cost(np.zeros(1), np.zeros(1), fib, rate, horizon)
    fiber_total = float(fd.plan["cost"].values[tech == "fiber"].sum())
    assert fiber_total > n_fiber * float(fixed_capex[0] + fixed_opex[0])
