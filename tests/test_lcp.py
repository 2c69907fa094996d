"""Least-cost paths over a raster (``universal_service.lcp``), checked by a second method."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from universal_service import forked, lcp

CELL = 100.0


def grid(ny: int, nx_: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a north-up grid of 100 m cells (``ys`` descending)."""
    xs = 50.0 + CELL * np.arange(nx_)
    ys = 50.0 + CELL * np.arange(ny)[::-1]
    return xs, ys


def dijkstra_cost(cost: np.ndarray, start: tuple[int, int], end: tuple[int, int]) -> float:
    """The same accumulated cost by networkx over the 8-connected grid: each step costs its
    length times the mean of its two cells."""
    G = nx.Graph()
    ny, nx_ = cost.shape
    for i in range(ny):
        for j in range(nx_):
            for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
                a, b = i + di, j + dj
                if 0 <= a < ny and 0 <= b < nx_:
                    step = CELL * np.hypot(di, dj)
                    G.add_edge((i, j), (a, b), w=step * (cost[i, j] + cost[a, b]) / 2)
    return nx.dijkstra_path_length(G, start, end, weight="w")


def centre(xs: np.ndarray, ys: np.ndarray, i: int, j: int) -> list[float]:
    return [xs[j], ys[i]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_costs_match_dijkstra_on_the_grid_graph(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(1.0, 3.0, (30, 40))
    xs, ys = grid(*cost.shape)
    cells = rng.integers(0, [30, 40], (8, 2))
    start = (15, 20)
    p0 = np.array([centre(xs, ys, *start)] * len(cells))
    p1 = np.array([centre(xs, ys, i, j) for i, j in cells])
    got = lcp.least_cost_edges(cost, xs, ys, p0, p1)
    for k, (i, j) in enumerate(cells):
        if (i, j) == start:
            continue
        assert got.weight_m[k] == pytest.approx(dijkstra_cost(cost, start, (i, j)), rel=1e-9)
        seg = np.diff(got.paths[k], axis=0)
        assert got.length_m[k] == pytest.approx(np.hypot(*seg.T).sum())
        assert got.length_m[k] >= np.hypot(*(p1[k] - p0[k])) - 1e-9


def test_batching_does_not_change_the_answer() -> None:
    """One search for a group of edges gives each edge what a search of its own gives."""
    rng = np.random.default_rng(7)
    cost = rng.uniform(1.0, 1.3, (60, 60))
    xs, ys = grid(60, 60)
    p0 = np.tile([[3_000.0, 3_000.0]], (6, 1))
    p1 = rng.uniform(200.0, 5_800.0, (6, 2))
    together = lcp.least_cost_edges(cost, xs, ys, p0, p1)
    for k in range(6):
        alone = lcp.least_cost_edges(cost, xs, ys, p0[k : k + 1], p1[k : k + 1])
        assert alone.weight_m[0] == pytest.approx(together.weight_m[k], rel=1e-12)


@pytest.mark.skipif(not forked.can_fork(), reason="needs fork, 2 CPUs and a single thread")
def test_a_forked_helper_gives_the_serial_answer() -> None:
    """With ``processes=2`` a forked process routes every other start point; lengths, weights
    and paths are the serial ones, bit for bit, in the callers' edge order."""
    rng = np.random.default_rng(11)
    cost = rng.uniform(1.0, 2.5, (50, 50))
    xs, ys = grid(50, 50)
    starts = rng.uniform(100.0, 4_900.0, (9, 2))
    p0 = np.repeat(starts, 3, axis=0)
    p1 = rng.uniform(100.0, 4_900.0, (27, 2))
    p1[4] = p0[4]  # an edge inside one cell stays straight
    serial = lcp.least_cost_edges(cost, xs, ys, p0, p1, processes=1)
    forked = lcp.least_cost_edges(cost, xs, ys, p0, p1, processes=2)
    assert np.array_equal(serial.length_m, forked.length_m)
    assert np.array_equal(serial.weight_m, forked.weight_m)
    assert all(np.array_equal(a, b) for a, b in zip(serial.paths, forked.paths, strict=True))
    assert serial.weight_m[4] == pytest.approx(0.0)


def test_the_route_finds_the_gap_in_a_wall() -> None:
    cost = np.ones((41, 41))
    cost[:, 20] = 50.0  # a north-south wall...
    cost[5, 20] = 1.0  # ...with one gap near the top
    xs, ys = grid(41, 41)
    a, b = centre(xs, ys, 30, 5), centre(xs, ys, 30, 35)
    got = lcp.least_cost_edges(cost, xs, ys, np.array([a]), np.array([b]))
    through_wall = dijkstra_cost(cost, (30, 5), (30, 35))
    assert got.weight_m[0] == pytest.approx(through_wall, rel=1e-9)
    assert got.weight_m[0] < 30 * CELL + 49 * CELL  # cheaper than straight through the wall
    crossing = got.paths[0][np.isclose(got.paths[0][:, 0], xs[20])]
    assert np.allclose(crossing[:, 1], ys[5])  # it crosses the wall at the gap
    assert got.length_m[0] > 1.5 * np.hypot(*(np.subtract(b, a)))


def test_uniform_cost_and_edges_off_the_grid() -> None:
    cost = np.full((50, 50), 2.0)
    xs, ys = grid(50, 50)
    p0 = np.array([[120.0, 130.0], [120.0, 130.0], [-500.0, 100.0], [2_010.0, 2_020.0]])
    p1 = np.array([[4_870.0, 3_140.0], [160.0, 140.0], [300.0, 300.0], [2_030.0, 2_040.0]])
    got = lcp.least_cost_edges(cost, xs, ys, p0, p1)
    straight = np.hypot(*(p1 - p0).T)
    np.testing.assert_allclose(got.weight_m[[0, 1, 3]], 2.0 * got.length_m[[0, 1, 3]])
    # 8-connected moves are at most 8.24% longer than the line, plus a cell at each end
    assert got.length_m[0] <= 1.0824 * straight[0] + 2 * CELL
    # in one cell, or off the grid: the straight line (at the start cell's cost, or 1)
    assert got.length_m[1] == pytest.approx(straight[1])
    assert got.length_m[3] == pytest.approx(straight[3]) and got.weight_m[3] == 2 * straight[3]
    assert got.weight_m[2] == pytest.approx(straight[2])


def test_window_margin_and_bad_input() -> None:
    assert lcp.window_margin_m(1_000.0, 1.0) == 0.0
    assert lcp.window_margin_m(1_000.0, np.sqrt(2.0)) == pytest.approx(500.0)
    xs, ys = grid(5, 5)
    with pytest.raises(ValueError, match="positive"):
        lcp.least_cost_edges(np.zeros((5, 5)), xs, ys, np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        lcp.least_cost_edges(np.ones((4, 5)), xs, ys, np.zeros((1, 2)), np.ones((1, 2)))


def test_coarsen_is_the_block_mean() -> None:
    cost = np.arange(24, dtype=float).reshape(4, 6)
    xs, ys = grid(4, 6)
    c, cx, cy = lcp.coarsen(cost, xs, ys, 2)
    assert c.shape == (2, 3)
    assert c[0, 0] == pytest.approx(np.mean([0, 1, 6, 7]))
    np.testing.assert_allclose(cx, [100.0, 300.0, 500.0])
    np.testing.assert_allclose(cy, [300.0, 100.0])
    same = lcp.coarsen(cost, xs, ys, 1)
    assert same[0] is cost
