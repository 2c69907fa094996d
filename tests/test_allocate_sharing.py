"""Cost-sharing rules: published examples, a brute-force nucleolus check, and invariants."""

from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from universal_service.allocate import excesses, nucleolus, shapley, shapley_tree


def _coalitions(players):
    for size in range(1, len(players)):
        yield from (frozenset(c) for c in combinations(players, size))


def _in_core(cost, players, charges, tol=1e-7):
    grand = cost(frozenset(players))
    assert charges.sum() == pytest.approx(grand, abs=tol * max(1.0, abs(grand)))
    return bool((excesses(cost, players, charges) <= tol * max(1.0, abs(grand))).all())


def _table(table):
    """Cost function from ``{bitmask over players 0..n-1: cost}``."""
    return lambda s: table[sum(1 << i for i in s)]


def _brute_nucleolus(table, n=3, denominator=12, box=None):
    """Nucleolus of a 3-player integer cost game by exhaustive lexicographic search.

    Every imputation (with ``box = (lo, hi)``: every efficient vector with coordinates in the
    box, for the prenucleolus) on the grid of step ``1 / denominator`` is scored by its excesses over the
    six proper coalitions sorted in decreasing order (integer arithmetic, exact); the
    lexicographic minimum is returned.
    """
    d = denominator
    grand = table[(1 << n) - 1] * d
    single = [table[1 << i] * d for i in range(n)]
    low = [grand - (sum(single) - single[i]) for i in range(n)]
    if box is not None:
        low, single = [box[0] * d] * n, [box[1] * d] * n
    x0, x1 = np.meshgrid(
        np.arange(low[0], single[0] + 1), np.arange(low[1], single[1] + 1), indexing="ij"
    )
    x0, x1 = x0.ravel(), x1.ravel()
    x2 = grand - x0 - x1
    keep = (x2 >= low[2]) & (x2 <= single[2])
    x = np.stack([x0[keep], x1[keep], x2[keep]], axis=1)
    ex = np.stack(
        [
            x @ np.array([(m >> i) & 1 for i in range(n)]) - table[m] * d
            for m in range(1, (1 << n) - 1)
        ],
        axis=1,
    )
    ex = -np.sort(-ex, axis=1)  # decreasing
    best = np.lexsort(ex.T[::-1])[0]
    return x[best] / d, ex[best]


def _sorted_excesses(table, x, n=3):
    return sorted(
        (sum(x[i] for i in range(n) if m >> i & 1) - table[m] for m in range(1, (1 << n) - 1)),
        reverse=True,
    )


# Airport game, Littlechild and Owen (1973), "A simple expression for the Shapley value in a
# special case", Management Science 20(3): 370-372. Runway segments with cumulative costs
# c1 = 12 <= c2 = 24 <= c3 = 36 [CNY]; p1 needs segment 1, p2 segments 1-2, p3 and p4 all three.
# (Their Birmingham airport data are not reproduced here; this is a small instance of their
# closed form.) Player i pays sum_{j <= i} (c_j - c_{j-1}) / #{players needing >= j}:
# p1 = 12/4 = 3; p2 = 3 + 12/3 = 7; p3 = p4 = 7 + 12/2 = 13.
AIRPORT_NEED = {"p1": 12.0, "p2": 24.0, "p3": 36.0, "p4": 36.0}
AIRPORT_SHAPLEY = {"p1": 3.0, "p2": 7.0, "p3": 13.0, "p4": 13.0}


def _airport_cost(coalition):
    return max(AIRPORT_NEED[p] for p in coalition)


def _airport_tree():
    tree = nx.Graph()
    tree.add_edge("runway start", "s1", weight=12.0)
    tree.add_edge("s1", "s2", weight=12.0)
    tree.add_edge("s2", "s3", cost=12.0)
    tree.add_edge("s3", "gate p3", weight=0.0)
    tree.add_edge("s3", "gate p4", weight=0.0)
    return tree, {"s1": "p1", "s2": "p2", "gate p3": "p3", "gate p4": "p4"}


def test_airport_game_shapley_matches_littlechild_owen_closed_form():
    exact = shapley(_airport_cost, AIRPORT_NEED)
    tree, users = _airport_tree()
    closed = shapley_tree(tree, "runway start", users)
    expected = pd.Series(AIRPORT_SHAPLEY)
    pd.testing.assert_series_equal(exact, expected, check_names=False)
    pd.testing.assert_series_equal(closed, expected, check_names=False)
    assert exact.sum() == pytest.approx(36.0)


def test_airport_game_nucleolus_is_in_the_core():
    x = nucleolus(_airport_cost, AIRPORT_NEED)
    assert x.sum() == pytest.approx(36.0)
    assert _in_core(_airport_cost, list(AIRPORT_NEED), x)


# Bankruptcy games, Aumann and Maschler (1985), "Game theoretic analysis of a bankruptcy problem
# from the Talmud", J. Economic Theory 36: 195-213. Claims 100, 200, 300; estate E; the game
# v(S) = max(0, E - sum of claims outside S). Their Table (the Talmud's Ketubot 93a) and theorem:
# the nucleolus awards (33 1/3, 33 1/3, 33 1/3) for E = 100, (50, 75, 75) for E = 200 and
# (50, 100, 150) for E = 300. As a cost game c = -v the charges are minus the awards.
CLAIMS = {"wife 1": 100.0, "wife 2": 200.0, "wife 3": 300.0}


@pytest.mark.parametrize(
    ("estate", "awards"),
    [
        (100.0, (100 / 3, 100 / 3, 100 / 3)),
        (200.0, (50.0, 75.0, 75.0)),
        (300.0, (50.0, 100.0, 150.0)),
    ],
)
def test_talmud_bankruptcy_nucleolus_aumann_maschler(estate, awards):
    def cost(coalition):
        return -max(0.0, estate - sum(d for p, d in CLAIMS.items() if p not in coalition))

    x = nucleolus(cost, CLAIMS)
    np.testing.assert_allclose(-x.to_numpy(), awards, atol=1e-6)
    assert _in_core(cost, list(CLAIMS), x)
    assert shapley(cost, CLAIMS).sum() == pytest.approx(-estate)


# Glove game (textbook, e.g. Maschler, Solan and Zamir, "Game Theory", 2013): player L holds a
# left glove, R1 and R2 a right glove each; a pair is worth 1. Its core is the single point
# (1, 0, 0) (competition between R1 and R2 drives their share to zero), so the nucleolus is that
# point. As a cost game c = -v.
def test_glove_game_single_point_core():
    def cost(coalition):
        return -1.0 if "L" in coalition and ({"R1", "R2"} & coalition) else 0.0

    x = nucleolus(cost, ["L", "R1", "R2"])
    np.testing.assert_allclose(x.to_numpy(), [-1.0, 0.0, 0.0], atol=1e-7)
    assert _in_core(cost, ["L", "R1", "R2"], x)
    np.testing.assert_allclose(
        shapley(cost, ["L", "R1", "R2"]).to_numpy(), [-2 / 3, -1 / 6, -1 / 6], atol=1e-12
    )


# A 3-player cost game (costs indexed by bitmask: 1 = {0}, 2 = {1}, 4 = {2}), found by searching
# random integer games, where fixing every coalition tight in the first LP's HiGHS solution gives
# (5, 4, 8) -- the mistake described by Guajardo and Jörnsten (2015), "Common mistakes in
# computing the nucleolus", EJOR 247(2): 558-565. The true nucleolus, confirmed by exhaustive
# lexicographic search over the imputation grid, is (5, 8, 4).
TRAP = {1: 5.0, 2: 8.0, 3: 13.0, 4: 11.0, 5: 2.0, 6: 1.0, 7: 17.0}


def test_nucleolus_where_naive_tight_set_fixing_fails():
    x = nucleolus(_table(TRAP), [0, 1, 2]).to_numpy()
    brute, _ = _brute_nucleolus(TRAP)
    np.testing.assert_allclose(x, brute, atol=1e-7)
    np.testing.assert_allclose(x, [5.0, 8.0, 4.0], atol=1e-7)
    naive = _sorted_excesses(TRAP, [5.0, 4.0, 8.0])
    assert naive > _sorted_excesses(TRAP, x)  # the naive answer is lexicographically worse


# The same search's first hit for the prenucleolus (no bounds x_i <= c({i})): naive fixing gives
# (4, 0, 4); the prenucleolus, confirmed by exhaustive search over a box, is (4, -3, 7).
PRE_TRAP = {1: 3.0, 2: 6.0, 3: 3.0, 4: 9.0, 5: 19.0, 6: 3.0, 7: 8.0}


def test_prenucleolus_where_naive_tight_set_fixing_fails():
    x = nucleolus(_table(PRE_TRAP), [0, 1, 2], imputations=False).to_numpy()
    brute, _ = _brute_nucleolus(PRE_TRAP, box=(-20, 20))
    np.testing.assert_allclose(x, brute, atol=1e-7)
    np.testing.assert_allclose(x, [4.0, -3.0, 7.0], atol=1e-7)
    assert _sorted_excesses(PRE_TRAP, [4.0, 0.0, 4.0]) > _sorted_excesses(PRE_TRAP, x)


@pytest.mark.parametrize("seed", range(8))
def test_nucleolus_matches_brute_force_on_random_three_player_games(seed):
    rng = np.random.default_rng(seed)
    table = {m: float(rng.integers(1, 15)) for m in range(1, 7)}
    table[7] = float(rng.integers(1, sum(table[1 << i] for i in range(3)) + 1))
    x = nucleolus(_table(table), [0, 1, 2]).to_numpy()
    brute, _ = _brute_nucleolus(table)
    np.testing.assert_allclose(x, brute, atol=1e-7)


def _random_tree_game(seed, players=6):
    rng = np.random.default_rng(seed)
    tree = nx.random_labeled_tree(12, seed=seed) if hasattr(nx, "random_labeled_tree") else None
    if tree is None:  # networkx < 3.2
        tree = nx.random_tree(12, seed=seed)
    for u, v in tree.edges:
        tree.edges[u, v]["weight"] = float(rng.integers(1, 10))
    nodes = rng.choice(np.arange(1, 12), size=players, replace=False)
    users = {int(node): f"op{k}" for k, node in enumerate(nodes)}

    def cost(coalition):
        terminals = [0] + [node for node, p in users.items() if p in coalition]
        keep = set()
        for t in terminals:
            keep.update(nx.shortest_path(tree, 0, t))
        return float(tree.subgraph(keep).size(weight="weight"))

    return tree, users, cost


@pytest.mark.parametrize("seed", range(3))
def test_tree_games_shapley_closed_form_and_nucleolus_in_core(seed):
    tree, users, cost = _random_tree_game(seed, players=5)
    players = list(users.values())
    exact = shapley(cost, players)
    closed = shapley_tree(tree, 0, users)
    pd.testing.assert_series_equal(exact, closed[players], check_names=False, atol=1e-9)
    grand = cost(frozenset(players))
    assert exact.sum() == pytest.approx(grand)
    x = nucleolus(cost, players)
    assert x.sum() == pytest.approx(grand)
    assert _in_core(cost, players, x)


def _random_game(seed, n=6):
    rng = np.random.default_rng(seed)
    table = {m: float(rng.uniform(1, 10) * bin(m).count("1") ** 0.7) for m in range(1, 1 << n)}
    return _table(table), list(range(n))


def test_sampled_shapley_within_four_standard_errors_and_deterministic():
    cost, players = _random_game(5)
    exact = shapley(cost, players)
    est = shapley(cost, players, samples=400, seed=3)
    err = est.attrs["stderr"]
    assert (err > 0).all()
    assert ((est - exact).abs() <= 4 * err).all()
    assert est.sum() == pytest.approx(cost(frozenset(players)))
    again = shapley(cost, players, samples=400, seed=3)
    pd.testing.assert_series_equal(est, again)
    pd.testing.assert_series_equal(est.attrs["stderr"], again.attrs["stderr"])


def test_prenucleolus_and_nucleolus_agree_with_non_empty_core_and_sum():
    cost, players = _random_game(7, n=5)
    x = nucleolus(cost, players, imputations=False)
    assert x.sum() == pytest.approx(cost(frozenset(players)))
    if _in_core(cost, players, x):
        pd.testing.assert_series_equal(x, nucleolus(cost, players), atol=1e-6)


def test_refusals():
    many = list(range(17))
    with pytest.raises(ValueError, match="samples"):
        shapley(len, many)
    assert shapley(len, many, samples=3).sum() == pytest.approx(17)
    with pytest.raises(ValueError, match="at most 12"):
        nucleolus(len, list(range(13)))
    with pytest.raises(ValueError, match="distinct"):
        shapley(len, [1, 1])
    with pytest.raises(ValueError, match="imputation set is empty"):
        nucleolus(lambda s: 10.0 if len(s) == 2 else 1.0, [0, 1])
    cycle = nx.cycle_graph(3)
    with pytest.raises(ValueError, match="tree"):
        shapley_tree(cycle, 0, [1, 2])
    path = nx.path_graph(3)
    with pytest.raises(ValueError, match="weight"):
        shapley_tree(path, 0, [2])
