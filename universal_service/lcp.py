"""Least-cost paths over a raster cost surface (scikit-image ``MCP_Geometric``), batched by source.

A route between two points follows the cells of the least accumulated cost, where crossing a cell
costs its value times the distance travelled in it (8-connected moves: a diagonal step is
``sqrt(2)`` cells long). :func:`least_cost_edges` answers many such routes at once: edges that
share a start point share one Dijkstra run (``MCP_Geometric.find_costs``) over a window that
provably holds every least-cost path of the group (see :func:`window_margin_m`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .forked import Forked, can_fork

__all__ = ["LcpEdges", "coarsen", "least_cost_edges", "window_margin_m"]


@dataclass(frozen=True)
class LcpEdges:
    """Least-cost routes of a batch of edges.

    Attributes
    ----------
    length_m : numpy.ndarray
        Length of each route's polyline ``paths[k]`` [m] (never below the straight line).
    weight_m : numpy.ndarray
        Cost of each route [m of unit-cost ground]: its length times the mean cost per metre of
        the least-cost cell-centre path (``MCP_Geometric`` averages the two cells of each step).
    paths : list of numpy.ndarray
        Each route's vertices, shape ``(k, 2)`` [m]: the start point, the centres of the cells
        crossed between the start and end cells, the end point.
    """

    length_m: NDArray[np.float64]
    weight_m: NDArray[np.float64]
    paths: list[NDArray[np.float64]]


def window_margin_m(length_m: float, cost_ratio: float) -> float:
    """How far a least-cost path between two points can stray from the straight line [m].

    With cell costs between ``c_min`` and ``c_max`` (``cost_ratio = c_max / c_min``), the
    straight line costs at most ``c_max * d``, so a least-cost path is at most ``cost_ratio * d``
    long and lies inside the ellipse with the two points as foci and that major axis: at most
    ``d / 2 * sqrt(cost_ratio**2 - 1)`` from the line.

    Parameters
    ----------
    length_m : float
        Straight-line distance ``d`` between the points [m].
    cost_ratio : float
        Highest over lowest cell cost in the area [-], at least 1.

    Returns
    -------
    float
        The margin [m].
    """
    r = max(float(cost_ratio), 1.0)
    return 0.5 * float(length_m) * float(np.sqrt(r * r - 1.0))


def coarsen(
    cost: np.ndarray, xs: np.ndarray, ys: np.ndarray, factor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block means of ``factor`` x ``factor`` cells, with their centre coordinates.

    Trailing rows and columns that do not fill a block are dropped.

    Parameters
    ----------
    cost : numpy.ndarray
        Cell values, shape ``(len(ys), len(xs))``.
    xs, ys : numpy.ndarray
        Cell-centre coordinates [m].
    factor : int
        Block size [cells], at least 1 (1 returns the inputs).

    Returns
    -------
    tuple of numpy.ndarray
        The coarse values and their ``xs``, ``ys`` [m].
    """
    f = int(factor)
    if f <= 1:
        return cost, xs, ys
    ny, nx = (ys.size // f) * f, (xs.size // f) * f
    if ny == 0 or nx == 0:
        return cost, xs, ys
    block = cost[:ny, :nx].reshape(ny // f, f, nx // f, f).mean(axis=(1, 3))
    return block, xs[:nx].reshape(-1, f).mean(axis=1), ys[:ny].reshape(-1, f).mean(axis=1)


def _cell_of(x: float, y: float, xs: np.ndarray, ys: np.ndarray) -> tuple[int, int] | None:
    """(row, col) of the cell whose centre is nearest to (x, y); None off the grid."""
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    j = int(round((x - xs[0]) / dx))
    i = int(round((y - ys[0]) / dy))
    if 0 <= i < ys.size and 0 <= j < xs.size:
        return i, j
    return None


#: Least number of start points (Dijkstra runs) for which :func:`least_cost_edges` forks a
#: second process to run half of them: below it the fork costs more than it saves.
FORK_MIN_GROUPS = 200


def least_cost_edges(
    cost: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    *,
    processes: int | None = None,
) -> LcpEdges:
    """Least-cost route of each edge ``p0[k] -> p1[k]`` over the cost surface.

    Edges are grouped by start point; each group runs one ``MCP_Geometric`` search from the
    start cell over a window that holds every least-cost path of the group (the edges' bounding
    box widened by :func:`window_margin_m` of the longest edge and the window's cost ratio), so
    the answer does not depend on the batching. An edge with an end off the grid, or both ends in
    one cell, is the straight line at the cost of the start cell (1 off the grid).

    Parameters
    ----------
    cost : numpy.ndarray
        Cost per metre of each cell [-], shape ``(len(ys), len(xs))``, finite and > 0.
    xs, ys : numpy.ndarray
        Cell-centre coordinates [m], regular and monotone (``ys`` may descend).
    p0, p1 : numpy.ndarray
        Edge end points, shape ``(n, 2)`` [m] in the grid's CRS.
    processes : int, optional
        1 or 2: with 2, a forked process routes every other group
        (:class:`universal_service.forked.Forked`). By default 2 when there are at least
        :data:`FORK_MIN_GROUPS` groups and :func:`universal_service.forked.can_fork`, else 1. The result is the
        same either way (each group is routed on its own).

    Returns
    -------
    LcpEdges
    """
    cost = np.asarray(cost, dtype=float)
    if cost.shape != (ys.size, xs.size):
        raise ValueError(f"cost has shape {cost.shape}, expected {(ys.size, xs.size)}")
    if not (np.isfinite(cost).all() and (cost > 0).all()):
        raise ValueError("cost must be finite and positive in every cell")
    p0, p1 = np.asarray(p0, float).reshape(-1, 2), np.asarray(p1, float).reshape(-1, 2)
    n = len(p0)
    straight = np.hypot(*(p1 - p0).T) if n else np.empty(0)
    length, weight = straight.copy(), straight.copy()
    paths: list[NDArray[np.float64]] = [np.vstack([a, b]) for a, b in zip(p0, p1, strict=True)]
    groups: dict[tuple[float, float], list[int]] = {}
    for k in range(n):
        groups.setdefault((p0[k, 0], p0[k, 1]), []).append(k)
    items = list(groups.items())
    if processes is None:
        processes = 2 if len(items) >= FORK_MIN_GROUPS and can_fork() else 1
    job = (cost, xs, ys, p0, p1, straight)
    if processes >= 2 and len(items) > 1:
        with Forked(_route_groups, *job, items[1::2]) as theirs:
            routed = _route_groups(*job, items[0::2]) + theirs.result()
    else:
        routed = _route_groups(*job, items)
    for k, route_length, route_weight, path in routed:
        length[k], weight[k] = route_length, route_weight
        if path is not None:
            paths[k] = path
    return LcpEdges(length, weight, paths)


def _route_groups(
    cost: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    straight: np.ndarray,
    items: list[tuple[tuple[float, float], list[int]]],
) -> list[tuple[int, float, float, NDArray[np.float64] | None]]:
    """Route the edges of the given start-point groups: ``(k, length_m, weight_m, path)`` each
    (``path`` None for an edge left straight)."""
    from skimage.graph import MCP_Geometric

    out: list[tuple[int, float, float, NDArray[np.float64] | None]] = []
    dx, dy = abs(xs[1] - xs[0]), abs(ys[1] - ys[0])
    for (sx, sy), members in items:
        start = _cell_of(sx, sy, xs, ys)
        if start is None:
            continue
        ends, todo = [], []
        for k in members:
            end = _cell_of(p1[k, 0], p1[k, 1], xs, ys)
            if end is None or end == start:
                out.append((k, float(straight[k]), float(straight[k] * cost[start]), None))
                continue
            ends.append(end)
            todo.append(k)
        if not todo:
            continue
        cells = np.array([start, *ends])
        i_lo, j_lo = cells.min(axis=0)
        i_hi, j_hi = cells.max(axis=0)
        box = cost[i_lo : i_hi + 1, j_lo : j_hi + 1]
        ratio = float(box.max() / box.min())
        # widen until the window's own cost ratio is covered (it can only grow as it widens)
        for _ in range(8):
            margin = window_margin_m(float(straight[todo].max()), ratio)
            mi, mj = int(np.ceil(margin / dy)) + 1, int(np.ceil(margin / dx)) + 1
            r0, r1 = max(i_lo - mi, 0), min(i_hi + mi, ys.size - 1)
            c0, c1 = max(j_lo - mj, 0), min(j_hi + mj, xs.size - 1)
            win = cost[r0 : r1 + 1, c0 : c1 + 1]
            new_ratio = float(win.max() / win.min())
            if new_ratio <= ratio + 1e-12:
                break
            ratio = new_ratio
        mcp = MCP_Geometric(win, sampling=(dy, dx), fully_connected=True)
        local_ends = [(a - r0, b - c0) for a, b in ends]
        acc, _ = mcp.find_costs([(start[0] - r0, start[1] - c0)], local_ends, find_all_ends=True)
        for k, (a, b) in zip(todo, local_ends, strict=True):
            cells_ij = np.asarray(mcp.traceback((a, b)), dtype=int)
            steps = np.diff(cells_ij, axis=0).astype(float)
            centre_len = float(np.hypot(steps[:, 0] * dy, steps[:, 1] * dx).sum())
            xy = np.column_stack([xs[c0 + cells_ij[:, 1]], ys[r0 + cells_ij[:, 0]]])
            # the route runs from the start point through the inner cell centres to the end
            path = np.vstack([p0[k], xy[1:-1], p1[k]])
            seg = np.diff(path, axis=0)
            route_length = float(np.hypot(seg[:, 0], seg[:, 1]).sum())
            # the mean cost per metre of the cell-centre path, over the route's length
            out.append((k, route_length, float(acc[a, b]) / centre_len * route_length, path))
    return out
