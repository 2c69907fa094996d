"""Tests for the Steiner-tree solvers: SteinLib reader, dual ascent, heuristics, exact MILP, forests."""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from universal_service import instances, network, steiner
from universal_service.errors import InputDataError

STEINLIB = Path(__file__).parent / "data" / "steinlib"

# Published optima of SteinLib set B (Beasley 1989 instances): Koch, T., Martin, A. and Voss, S.
# (2000), "SteinLib: An updated library on Steiner tree problems in graphs", ZIB-Report 00-37,
# https://steinlib.zib.de/showset.php?B ; the same values are on the "Optimal" line of the stored
# files (tests/data/steinlib/README.md).
B_OPTIMA = {"b01": 82, "b02": 83, "b04": 59, "b07": 111}


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def brute_force_steiner(G: nx.Graph, terminals: list) -> float:
    """Optimum by enumeration: min over Steiner-node subsets S of MST(G[T + S])."""
    others = [n for n in G if n not in set(terminals)]
    best = np.inf
    for r in range(len(others) + 1):
        for extra in itertools.combinations(others, r):
            H = G.subgraph(list(terminals) + list(extra))
            if nx.is_connected(H):
                best = min(best, nx.minimum_spanning_tree(H).size(weight="weight"))
    return float(best)


def random_graph(seed: int, n: int = 9, n_terminals: int = 4) -> tuple[nx.Graph, list]:
    rng = np.random.default_rng(seed)
    G = nx.gnp_random_graph(n, 0.4, seed=int(seed))
    G.add_edges_from(zip(range(n - 1), range(1, n), strict=True))  # connected
    for a, b in G.edges:
        G.edges[a, b]["weight"] = float(rng.integers(1, 11))
    terminals = sorted(rng.choice(n, n_terminals, replace=False).tolist())
    return G, terminals


def grid_instance(seed: int = 7, side: int = 30, n_terminals: int = 60) -> tuple[nx.Graph, list]:
    """A side x side grid with random integer weights 1-20 and random terminals."""
    rng = np.random.default_rng(seed)
    G = nx.convert_node_labels_to_integers(nx.grid_2d_graph(side, side))
    for a, b in G.edges:
        G.edges[a, b]["weight"] = float(rng.integers(1, 21))
    terminals = sorted(rng.choice(G.number_of_nodes(), n_terminals, replace=False).tolist())
    return G, terminals


def assert_spanning_tree(tree: nx.Graph, terminals) -> None:
    assert nx.is_tree(tree)
    assert set(terminals) <= set(tree.nodes)


def assert_same(a: steiner.SteinerResult, b: steiner.SteinerResult) -> None:
    """Identical results: edges in the same order, cost, bound, status, note."""
    assert list(a.tree.edges) == list(b.tree.edges)
    assert list(a.tree.nodes) == list(b.tree.nodes)
    assert a.edges.equals(b.edges)
    assert (a.cost, a.lower_bound, a.status, a.bound_method, a.method, a.note) == (
        b.cost,
        b.lower_bound,
        b.status,
        b.bound_method,
        b.method,
        b.note,
    )


# ------------------------------------------------------------------------------------------
# SteinLib reader, exact and heuristic solves
# ------------------------------------------------------------------------------------------


def test_read_steinlib_b01():
    inst = instances.read_steinlib(STEINLIB / "b01.stp")
    assert inst.name == "B01"
    assert inst.graph.number_of_nodes() == 50
    assert inst.graph.number_of_edges() == 63
    assert len(inst.terminals) == 9
    assert inst.optimum == 82
    assert inst.graph.edges[2, 8]["weight"] == 8


def test_the_solvers_have_one_home():
    """The solvers are public in ``steiner`` only (no re-export from ``network``)."""
    assert set(steiner.__all__) == {
        "SteinerResult",
        "WorkLimits",
        "dual_ascent_bound",
        "steiner_forest",
        "steiner_tree",
    }
    for name in ("steiner_tree", "SteinerResult", "read_steinlib", "WorkLimits"):
        assert not hasattr(network, name)


@pytest.mark.parametrize("name", sorted(B_OPTIMA))
def test_exact_reaches_published_optimum(name):
    inst = instances.read_steinlib(STEINLIB / f"{name}.stp")
    res = steiner.steiner_tree(inst.graph, inst.terminals, method="exact", time_limit_s=60)
    assert res.status == "optimal"
    assert res.cost == pytest.approx(B_OPTIMA[name])
    assert res.lower_bound == pytest.approx(B_OPTIMA[name])
    assert res.gap == pytest.approx(0.0, abs=1e-9)
    assert_spanning_tree(res.tree, inst.terminals)
    assert res.tree.size(weight="weight") == pytest.approx(res.cost)
    assert res.edges["cost"].sum() == pytest.approx(res.cost)


@pytest.mark.parametrize("name", sorted(B_OPTIMA))
def test_heuristic_within_five_percent_and_above_its_bound(name):
    inst = instances.read_steinlib(STEINLIB / f"{name}.stp")
    res = steiner.steiner_tree(inst.graph, inst.terminals, method="heuristic", time_limit_s=20)
    opt = B_OPTIMA[name]
    assert_spanning_tree(res.tree, inst.terminals)
    assert opt - 1e-9 <= res.cost <= 1.05 * opt
    assert res.lower_bound <= opt + 1e-9
    assert res.lower_bound <= res.cost + 1e-9
    assert res.gap == pytest.approx((res.cost - res.lower_bound) / res.cost)
    assert res.status in ("optimal", "feasible")


@pytest.mark.parametrize("name", sorted(B_OPTIMA))
def test_dual_ascent_bound_is_valid(name):
    inst = instances.read_steinlib(STEINLIB / f"{name}.stp")
    for root in inst.terminals[:3]:
        lb = steiner.dual_ascent_bound(inst.graph, inst.terminals, root)
        assert 0.8 * B_OPTIMA[name] <= lb <= B_OPTIMA[name] + 1e-9


def test_dual_ascent_iteration_limit_gives_a_weaker_valid_bound():
    inst = instances.read_steinlib(STEINLIB / "b07.stp")
    G, T = inst.graph, inst.terminals
    full = steiner.dual_ascent_bound(G, T, T[0])
    bounds = [steiner.dual_ascent_bound(G, T, T[0], max_iterations=k) for k in range(60)]
    assert bounds[0] == 0.0
    assert all(b1 <= b2 + 1e-12 for b1, b2 in itertools.pairwise(bounds))  # monotone in k
    assert bounds[-1] == pytest.approx(full)
    assert full <= B_OPTIMA["b07"] + 1e-9


@pytest.mark.parametrize("seed", range(15))
def test_exact_and_heuristic_against_brute_force(seed):
    G, terminals = random_graph(seed)
    opt = brute_force_steiner(G, terminals)
    exact = steiner.steiner_tree(G, terminals, method="exact", time_limit_s=30)
    assert exact.status == "optimal"
    assert exact.cost == pytest.approx(opt)
    assert exact.lower_bound <= opt + 1e-6
    assert_spanning_tree(exact.tree, terminals)
    heur = steiner.steiner_tree(G, terminals, method="heuristic", time_limit_s=5)
    assert_spanning_tree(heur.tree, terminals)
    assert heur.cost >= opt - 1e-9
    assert heur.lower_bound <= opt + 1e-6
    assert steiner.dual_ascent_bound(G, terminals, terminals[-1]) <= opt + 1e-9


@pytest.mark.parametrize("name", ["b01", "b04"])
def test_lp_relaxation_bound_between_dual_ascent_and_optimum(name):
    inst = instances.read_steinlib(STEINLIB / f"{name}.stp")
    cg, index = steiner.graph.compact_graph(inst.graph, "weight")
    terms = np.array([index[t] for t in inst.terminals])
    mask = np.ones(len(cg.w), bool)
    _, lp, bound, status = steiner.flow.solve_flow(cg, mask, terms, int(terms[0]), True, 30)
    assert status == "optimal"
    assert bound == pytest.approx(lp)
    assert steiner.dual_ascent_bound(inst.graph, inst.terminals) - 1e-6 <= lp
    assert lp <= B_OPTIMA[name] + 1e-6


def test_exact_falls_back_to_heuristic_above_size_limit(monkeypatch):
    inst = instances.read_steinlib(STEINLIB / "b01.stp")
    monkeypatch.setattr(steiner.flow, "EXACT_MAX_FLOW_VARS", 10)
    res = steiner.steiner_tree(inst.graph, inst.terminals, method="exact")
    assert res.method == "heuristic"
    assert "too large" in res.note
    assert res.lower_bound <= B_OPTIMA["b01"] <= res.cost


def test_steiner_tree_trivial_and_bad_input():
    G, terminals = random_graph(0)
    one = steiner.steiner_tree(G, terminals[:1])
    assert one.cost == 0.0 and one.tree.number_of_nodes() == 1
    with pytest.raises(InputDataError, match="not nodes of the graph"):
        steiner.steiner_tree(G, [terminals[0], "nowhere"])
    H = G.copy()
    H.add_node("island")
    with pytest.raises(InputDataError, match="not connected"):
        steiner.steiner_tree(H, [terminals[0], "island"], method="heuristic")
    a, b = next(iter(G.edges))
    H = G.copy()
    H.edges[a, b]["weight"] = -1.0
    with pytest.raises(InputDataError, match="negative"):
        steiner.steiner_tree(H, terminals)
    with pytest.raises(ValueError, match="heuristic_work"):
        steiner.WorkLimits(heuristic_work=-1)


# ------------------------------------------------------------------------------------------
# Determinism: work limits, not the clock, decide
# ------------------------------------------------------------------------------------------


#: Work limit for the grid instance: binds after about a second, long before any time limit.
GRID_LIMITS = steiner.WorkLimits(heuristic_work=3_000_000)


@pytest.fixture(scope="module")
def grid_result() -> steiner.SteinerResult:
    G, terminals = grid_instance()
    return steiner.steiner_tree(
        G, terminals, method="heuristic", time_limit_s=30.0, limits=GRID_LIMITS
    )


def test_heuristic_is_repeatable_and_ignores_a_generous_time_limit(grid_result):
    G, terminals = grid_instance()
    for t in (30.0, 300.0):
        res = steiner.steiner_tree(
            G, terminals, method="heuristic", time_limit_s=t, limits=GRID_LIMITS
        )
        assert_same(grid_result, res)
    assert grid_result.status == "feasible"
    assert "work limit" in grid_result.note
    assert_spanning_tree(grid_result.tree, terminals)


def test_heuristic_does_not_read_the_clock_except_as_safety_net(grid_result, monkeypatch):
    """A machine 1,000 times slower (every clock read advances 1 ms) gives the same tree."""

    class SlowClock:
        now = 0.0

        def monotonic(self) -> float:
            self.now += 1e-3
            return self.now

    clock = SlowClock()
    for module in (steiner.limits, steiner.bounds, steiner.solve):  # every clock read
        monkeypatch.setattr(module, "time", clock)
    G, terminals = grid_instance()
    slow = steiner.steiner_tree(
        G, terminals, method="heuristic", time_limit_s=1e6, limits=GRID_LIMITS
    )
    assert_same(grid_result, slow)


def test_exact_is_repeatable():
    """HiGHS runs on one thread with a fixed seed: the same optimal tree every time."""
    inst = instances.read_steinlib(STEINLIB / "b04.stp")
    a, b = (
        steiner.steiner_tree(inst.graph, inst.terminals, method="exact", time_limit_s=t)
        for t in (30.0, 300.0)
    )
    assert a.status == "optimal"
    assert_same(a, b)


def test_time_limit_safety_net_is_reported():
    G, terminals = grid_instance()
    res = steiner.steiner_tree(G, terminals, method="heuristic", time_limit_s=1e-9)
    assert res.status == "time_limit"
    assert "safety net" in res.note
    assert_spanning_tree(res.tree, terminals)  # still a feasible tree with a valid bound
    assert 0.0 <= res.lower_bound <= res.cost


# ------------------------------------------------------------------------------------------
# Steiner forests: every terminal joined to one of the roots
# ------------------------------------------------------------------------------------------


def three_root_graph() -> nx.Graph:
    """Roots r1, r2, r3, terminals a, b, c, Steiner node s; the optimum is seen by hand.

    a and b share s on their way to r1 (1 + 1 + 1 = 3, against 5 and 4 alone), c takes r2 (2,
    against 3 to r3); r3 is left out: the optimal forest costs 5.
    """
    G = nx.Graph()
    G.add_weighted_edges_from(
        [
            ("r1", "a", 5.0),
            ("r1", "s", 1.0),
            ("s", "a", 1.0),
            ("s", "b", 1.0),
            ("b", "r2", 4.0),
            ("c", "r2", 2.0),
            ("c", "r3", 3.0),
            ("r3", "a", 10.0),
        ]
    )
    return G


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_steiner_forest_hand_optimum(method):
    G = three_root_graph()
    roots = ["r1", "r2", "r3"]
    res = steiner.steiner_forest(G, ["a", "b", "c", "r2"], roots, method=method)
    assert res.cost == pytest.approx(5.0)
    assert res.status == "optimal"
    assert res.lower_bound == pytest.approx(5.0)
    assert {frozenset(e) for e in res.tree.edges} == {
        frozenset(e) for e in [("r1", "s"), ("s", "a"), ("s", "b"), ("c", "r2")]
    }
    assert "r3" not in res.tree
    assert nx.is_forest(res.tree)
    for part in nx.connected_components(res.tree):  # one root per tree
        assert len(part & set(roots)) == 1
    assert res.edges["cost"].sum() == pytest.approx(res.cost)


def test_steiner_forest_matches_the_former_shared_trench():
    """The case of ``test_network.test_shared_trench_matches_brute_force_with_virtual_root``.

    Expected: the forest that ``network.shared_trench`` returned before the virtual-root
    construction moved into ``steiner.steiner_forest`` (same edges, in the same order).
    """
    G, _ = random_graph(3, n=10)
    for method in ("exact", "heuristic"):
        res = steiner.steiner_forest(G, [2, 5, 7], [0, 9], method=method)
        assert list(res.tree.edges) == [(0, 3), (0, 7), (2, 3), (5, 9)]
        assert (res.cost, res.lower_bound, res.status) == (8.0, 8.0, "optimal")
        assert_same(res, network.shared_trench(G, [2, 5, 7], [0, 9], method=method))


def test_steiner_forest_trivial_and_bad_input():
    G = three_root_graph()
    none_left = steiner.steiner_forest(G, ["r1", "r2"], ["r1", "r2"])
    assert none_left.cost == 0.0 and none_left.tree.number_of_nodes() == 0
    with pytest.raises(InputDataError, match="not in the graph"):
        steiner.steiner_forest(G, ["a", "nowhere"], ["r1"])
    with pytest.raises(InputDataError, match="no root"):
        steiner.steiner_forest(G, ["a"], [])
    with pytest.raises(ValueError, match="method"):
        steiner.steiner_forest(G, ["a"], ["r1"], method="auto")
