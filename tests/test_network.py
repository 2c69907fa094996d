"""Tests for the fiber route graph, nearest-PoP routes and shared-trench Steiner forests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from tests.test_steiner import brute_force_steiner, random_graph
from universal_service import network, steiner
from universal_service.errors import InputDataError

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def ridge_dem() -> xr.DataArray:
    """A gentle plane (rising 1 m per km eastwards from 100 m) with a 600 m north-south ridge.

    The ridge is Gaussian with a 300 m length scale, centred on x = 5000 m; its flanks reach
    about 60 degrees, the plane stays under 1 degree and under 500 m.
    """
    x = np.arange(25.0, 10_000.0, 50.0)
    y = np.arange(10_000.0 - 25.0, 0.0, -50.0)  # north-up raster order
    X, _ = np.meshgrid(x, y)
    z = 100.0 + 0.001 * X + 600.0 * np.exp(-(((X - 5000.0) / 300.0) ** 2))
    return xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x})


def village_nodes(seed: int = 1, n_villages: int = 40, n_pops: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(500.0, 9_500.0, (n_villages + n_pops, 2))
    return pd.DataFrame(
        {
            "node_id": [f"v:{i:03d}" for i in range(n_villages)]
            + [f"p:ct-{i}" for i in range(n_pops)],
            "kind": ["village"] * n_villages + ["pop"] * n_pops,
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )


# ------------------------------------------------------------------------------------------
# Trench multiplier
# ------------------------------------------------------------------------------------------


def test_trench_multiplier_reference_values():
    # Flat lowland: best class on both counts.
    assert network.trench_multiplier(0.0, 0.0) == pytest.approx(1.0)
    # Class bounds are inclusive (OnSSET: slope <= 10 is class 5).
    assert network.trench_multiplier(10.0, 500.0) == pytest.approx(1.0)
    # Worst classes: d = 4, 1 + (e^(0.85 * 4) - 1) / 100.
    assert network.trench_multiplier(45.0, 3500.0) == pytest.approx(1 + np.expm1(3.4) / 100)
    # One slope class up, lowland: d = 2/3.
    assert network.trench_multiplier(15.0, 200.0) == pytest.approx(1 + np.expm1(0.85 * 2 / 3) / 100)
    # One elevation class up, flat: d = 1/3.
    assert network.trench_multiplier(2.0, 700.0) == pytest.approx(1 + np.expm1(0.85 / 3) / 100)
    assert np.isnan(network.trench_multiplier(np.nan, 100.0))


def test_trench_multiplier_is_at_least_one_and_monotone():
    slope = np.linspace(0.0, 80.0, 161)
    elev = np.linspace(-100.0, 5000.0, 103)
    m = network.trench_multiplier(slope[:, None], elev[None, :])
    assert m.shape == (161, 103)
    assert (m >= 1.0).all()
    assert (np.diff(m, axis=0) >= 0).all()
    assert (np.diff(m, axis=1) >= 0).all()


# ------------------------------------------------------------------------------------------
# Shared trench (Steiner forest to the PoP set); the solvers are tested in test_steiner.py
# ------------------------------------------------------------------------------------------


def test_shared_trench_matches_brute_force_with_virtual_root():
    G, _ = random_graph(3, n=10)
    pops, villages = [0, 9], [2, 5, 7]
    H = G.copy()
    H.add_edges_from((("root", p) for p in pops), weight=0.0)
    opt = brute_force_steiner(H, villages + ["root"])
    res = network.shared_trench(G, villages, pops, method="exact")
    assert res.status == "optimal"
    assert res.cost == pytest.approx(opt)
    assert nx.is_forest(res.tree)
    for v in villages:  # every village reaches a PoP inside the forest
        assert set(nx.node_connected_component(res.tree, v)) & set(pops)
    heur = network.shared_trench(G, villages, pops, method="heuristic")
    assert heur.cost >= opt - 1e-9
    assert heur.lower_bound <= opt + 1e-9


# ------------------------------------------------------------------------------------------
# Route graph
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("routing", ["straight", "raster"])
def test_route_graph_on_ridge_dem(routing):
    nodes = village_nodes()
    G = network.route_graph(
        nodes, ridge_dem(), k_neighbors=6, sample_spacing_m=50.0, routing=routing
    )
    assert nx.is_connected(G)
    assert set(G.nodes) == set(nodes["node_id"])
    assert {k for _, k in G.nodes(data="kind")} == {"village", "pop"}
    data = pd.DataFrame([d for _, _, d in G.edges(data=True)])
    assert (data["kind"] == "terrain").all()
    assert (data["weight"] > 0).all()
    assert (data["multiplier"] >= 1.0).all()
    np.testing.assert_allclose(data["weight"], data["length_m"] * data["multiplier"])
    # Edges crossing the ridge pay for it; edges away from it stay at the flat-lowland rate.
    xs = np.array([(G.nodes[a]["x"], G.nodes[b]["x"]) for a, b in G.edges])
    crosses = (xs.min(axis=1) < 4_000.0) & (xs.max(axis=1) > 6_000.0)
    away = (xs.max(axis=1) < 3_500.0) | (xs.min(axis=1) > 6_500.0)
    mult = np.array([d for _, _, d in G.edges(data="multiplier")])
    assert crosses.any() and away.any()
    assert (mult[crosses] > 1.0).all()
    np.testing.assert_allclose(mult[away], 1.0)
    # Straight: lengths are planar distances. Raster: at least the planar distance, at most the
    # 8-connected grid's detour on flat ground (1.0824) plus a cell at each end, off the ridge.
    planar = np.array(
        [
            np.hypot(G.nodes[a]["x"] - G.nodes[b]["x"], G.nodes[a]["y"] - G.nodes[b]["y"])
            for a, b in G.edges
        ]
    )
    length = np.array([d for _, _, d in G.edges(data="length_m")])
    if routing == "straight":
        np.testing.assert_allclose(length, planar)
    else:
        assert (length >= planar - 1e-6).all()
        cell = network.ROUTING_CELL_M
        assert (length[away] <= 1.0824 * planar[away] + 2 * cell).all()
        for a, b, path in G.edges(data="path"):
            ends = {(G.nodes[a]["x"], G.nodes[a]["y"]), (G.nodes[b]["x"], G.nodes[b]["y"])}
            assert {tuple(path[0]), tuple(path[-1])} == ends


def test_route_graph_without_dem_and_with_nodata():
    nodes = village_nodes(n_villages=10, n_pops=1)
    G = network.route_graph(nodes)
    assert nx.is_connected(G)
    assert all(m == 1.0 for _, _, m in G.edges(data="multiplier"))
    dem = ridge_dem().where(lambda z: z.x > 20_000)  # all nodata
    G2 = network.route_graph(nodes, dem)
    assert all(m == 1.0 for _, _, m in G2.edges(data="multiplier"))


def test_route_graph_with_roads():
    nodes = village_nodes(n_villages=12, n_pops=2)
    roads = gpd.GeoDataFrame(
        geometry=[
            shapely.LineString([(0, 5_000), (10_000, 5_000)]),
            shapely.LineString([(5_000, 0), (5_000, 10_000)]),
        ],
        crs="EPSG:32650",
    )
    G = network.route_graph(
        nodes, ridge_dem(), roads=roads, road_cost_factor=0.4, routing="straight"
    )
    assert nx.is_connected(G)
    assert G.graph["crs"] == roads.crs
    kinds = {k for _, _, k in G.edges(data="kind")}
    assert kinds == {"terrain", "road", "spur"}
    road_nodes = [n for n, k in G.nodes(data="kind") if k == "road"]
    assert all(n.startswith("r:") for n in road_nodes)
    # The crossing is noded: one road node of road-degree 4 at (5000, 5000).
    cross = [n for n in road_nodes if (G.nodes[n]["x"], G.nodes[n]["y"]) == (5_000.0, 5_000.0)]
    assert len(cross) == 1
    assert sum(1 for _, _, k in G.edges(cross[0], data="kind") if k == "road") == 4
    for _, _, d in G.edges(data=True):
        if d["kind"] == "road":
            assert d["multiplier"] == pytest.approx(0.4)
        assert d["weight"] == pytest.approx(d["length_m"] * d["multiplier"])
    # Every village and PoP has a spur to its projection on the nearest road.
    for n, x, y in nodes[["node_id", "x", "y"]].itertuples(index=False):
        spurs = [m for _, m, k in G.edges(n, data="kind") if k == "spur"]
        assert len(spurs) == 1
        d_road = min(abs(x - 5_000.0), abs(y - 5_000.0))
        assert G.edges[n, spurs[0]]["length_m"] == pytest.approx(d_road, abs=1e-2)
    G2 = network.route_graph(nodes, roads=roads, road_spur_k=3)
    assert all(
        sum(1 for _, _, k in G2.edges(n, data="kind") if k == "spur") == 3 for n in nodes["node_id"]
    )


def test_route_graph_reports_every_input_problem():
    nodes = village_nodes(n_villages=4, n_pops=1)
    nodes.loc[1, "node_id"] = nodes.loc[0, "node_id"]
    nodes.loc[2, "kind"] = "tower"
    nodes.loc[3, "x"] = np.nan
    with pytest.raises(InputDataError) as err:
        network.route_graph(nodes)
    assert len(err.value.problems) == 3
    with pytest.raises(InputDataError, match="missing column"):
        network.route_graph(nodes.drop(columns="kind"))


# ------------------------------------------------------------------------------------------
# Nearest PoP and shared trench on a route graph
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ridge_graph() -> nx.Graph:
    return network.route_graph(village_nodes(), ridge_dem(), crs="EPSG:32650")


def test_nearest_pop_routes_match_single_source_dijkstra(ridge_graph):
    G = ridge_graph
    routes = nearest = network.nearest_pop_routes(G)
    villages = [n for n, k in G.nodes(data="kind") if k == "village"]
    pops = [n for n, k in G.nodes(data="kind") if k == "pop"]
    assert sorted(routes["node_id"]) == sorted(villages)
    from_pop = {p: nx.single_source_dijkstra_path_length(G, p, weight="weight") for p in pops}
    for row in nearest.itertuples(index=False):
        best = min(from_pop[p][row.node_id] for p in pops)
        assert row.weighted_length_m == pytest.approx(best)
        assert from_pop[row.pop_id][row.node_id] == pytest.approx(best)
        assert row.path[0] == row.node_id and row.path[-1] == row.pop_id
        pairs = list(nx.utils.pairwise(row.path))
        assert sum(G.edges[e]["weight"] for e in pairs) == pytest.approx(best)
        assert sum(G.edges[e]["length_m"] for e in pairs) == pytest.approx(row.length_m)


def test_shared_trench_is_no_dearer_than_per_village_paths(ridge_graph):
    G = ridge_graph
    villages = [n for n, k in G.nodes(data="kind") if k == "village"]
    pops = [n for n, k in G.nodes(data="kind") if k == "pop"]
    alone = network.nearest_pop_routes(G)["weighted_length_m"].sum()
    for method in ("exact", "heuristic"):
        res = network.shared_trench(G, villages, pops, method=method, time_limit_s=30)
        assert res.cost <= alone + 1e-6
        assert res.lower_bound <= res.cost + 1e-9
        assert nx.is_forest(res.tree)
        assert not set(res.tree.nodes) - set(G.nodes)
        for v in villages:
            assert set(nx.node_connected_component(res.tree, v)) & set(pops)
        assert res.edges["cost"].sum() == pytest.approx(res.cost)
        assert set(res.edges.columns) >= {"u", "v", "cost", "length_m", "multiplier", "kind"}
    comparison = network.per_village_cost_vs_shared(G, villages, pops, shared=res)
    assert comparison["per_village_m"] == pytest.approx(alone)
    assert comparison["saving_m"] >= 0.0
    assert comparison["saving_m"] == pytest.approx(alone - res.cost)
    assert 0.0 <= comparison["saving_share"] < 1.0


def test_tree_to_lines(ridge_graph):
    G = ridge_graph
    villages = [n for n, k in G.nodes(data="kind") if k == "village"][:10]
    pops = [n for n, k in G.nodes(data="kind") if k == "pop"]
    res = network.shared_trench(G, villages, pops)
    lines = network.tree_to_lines(res.tree, G)
    assert isinstance(lines, gpd.GeoDataFrame)
    assert len(lines) == res.tree.number_of_edges()
    assert lines.crs == "EPSG:32650"
    assert (lines.geometry.geom_type == "LineString").all()
    np.testing.assert_allclose(lines.geometry.length, lines["length_m"])
    assert lines["weighted_length_m"].sum() == pytest.approx(res.cost)
    assert set(lines["kind"]) == {"terrain"}


# ------------------------------------------------------------------------------------------
# Determinism of the shared trench: same inputs, same forest, byte for byte
# ------------------------------------------------------------------------------------------


def crossing_roads() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        geometry=[
            shapely.LineString([(0, 3_000), (10_000, 6_000)]),
            shapely.LineString([(4_000, 0), (6_000, 10_000)]),
        ],
        crs="EPSG:32650",
    )


def synthetic_region() -> tuple[nx.Graph, list, list]:
    """150 villages and 4 PoPs on the ridge DEM with two roads: 311 nodes, 954 edges (straight
    routes: the work limit below is set for this graph)."""
    nodes = village_nodes(seed=5, n_villages=150, n_pops=4)
    G = network.route_graph(
        nodes, ridge_dem(), roads=crossing_roads(), crs="EPSG:32650", routing="straight"
    )
    villages = [n for n, k in G.nodes(data="kind") if k == "village"]
    pops = [n for n, k in G.nodes(data="kind") if k == "pop"]
    return G, villages, pops


def fingerprint(res: steiner.SteinerResult, G: nx.Graph) -> str:
    """Everything a plan keeps of a shared trench, as text: forest, edge table, lines, figures."""
    lines = network.tree_to_lines(res.tree, G).to_wkt()
    return "\n".join(
        [
            repr(list(res.tree.edges)),
            res.edges.to_csv(),
            lines.to_csv(),
            repr((res.cost, res.lower_bound, res.gap, res.method, res.status)),
            res.bound_method,
            res.note,
        ]
    )


@pytest.fixture(scope="module")
def region() -> tuple[nx.Graph, list, list]:
    return synthetic_region()


def test_shared_trench_is_deterministic(region):
    G, villages, pops = region
    first = network.shared_trench(G, villages, pops, time_limit_s=60)
    assert first.method == "heuristic"
    assert first.status in ("optimal", "feasible")
    again = network.shared_trench(G, villages, pops, time_limit_s=60)
    assert fingerprint(again, G) == fingerprint(first, G)
    # Work limits that bind after a fraction of a second: a tight and a generous time limit
    # (both far above it) give the same forest, and the note says the work limit bound.
    limits = steiner.WorkLimits(heuristic_work=1_000_000)
    tight = network.shared_trench(G, villages, pops, time_limit_s=20, limits=limits)
    loose = network.shared_trench(G, villages, pops, time_limit_s=600, limits=limits)
    assert fingerprint(tight, G) == fingerprint(loose, G)
    assert tight.status in ("optimal", "feasible")
    assert "work limit" in tight.note
    assert tight.cost >= first.lower_bound - 1e-6


def test_shared_trench_time_limit_hit_is_reported(region):
    G, villages, pops = region
    res = network.shared_trench(G, villages, pops, time_limit_s=1e-9)
    assert res.status == "time_limit"
    assert "safety net" in res.note
    assert nx.is_forest(res.tree)
    for v in villages:  # still a feasible forest
        assert set(nx.node_connected_component(res.tree, v)) & set(pops)
    assert 0.0 <= res.lower_bound <= res.cost


_SUBPROCESS = """
import hashlib
from tests.test_network import fingerprint, synthetic_region
from universal_service import network
G, villages, pops = synthetic_region()
res = network.shared_trench(G, villages[::5], pops, method="heuristic")
print(hashlib.sha256(fingerprint(res, G).encode()).hexdigest())
"""


def test_shared_trench_is_identical_across_processes():
    """Node labels are strings, whose hashes change per process (PYTHONHASHSEED).

    A forest that covers under half the graph (30 of 150 villages) is the case where a
    networkx edge subgraph would iterate its nodes in set order.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SUBPROCESS],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    out = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, out, strict=True):
        assert p.returncode == 0, err
    digests = [o.strip().splitlines()[-1] for o, _ in out]
    assert digests[0] == digests[1]
