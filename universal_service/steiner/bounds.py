"""Lower bounds on Steiner tree cost: Wong's dual ascent on the bidirected graph."""

from __future__ import annotations

import heapq
import time

import networkx as nx
import numpy as np

from ..errors import InputDataError
from . import graph
from .graph import CompactGraph
from .limits import WorkLimits


def dual_ascent_bound(
    G: nx.Graph,
    terminals,
    root=None,
    *,
    weight: str = "weight",
    time_limit_s: float = 60.0,
    max_iterations: int | None = None,
) -> float:
    """Lower bound on the Steiner tree cost by Wong's dual ascent on the bidirected graph.

    Wong, R. T. (1984). "A dual ascent approach for Steiner tree problems on a directed graph."
    Mathematical Programming 28, 271-287. For every non-root terminal ``t``, ``W(t)`` is the
    set of nodes that reach ``t`` through arcs of zero reduced cost. While some ``W(t)`` misses
    the root, the one with the fewest entering arcs (Wong's rule) has the dual of its cut
    ``delta^-(W(t))`` raised by the least reduced cost of an entering arc, and the reduced costs
    of all entering arcs lowered by as much. Reduced costs stay >= 0, so the raised duals are a
    feasible dual of the directed cut relaxation and their sum is a valid lower bound at every
    step; stopping early still returns a valid (weaker) bound.

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with non-negative edge attribute ``weight`` (missing: 1).
    terminals : iterable
        Nodes to connect.
    root : node, optional
        Terminal the arcs are directed away from (default: the first terminal).
    weight : str
        Edge attribute used as the cost.
    time_limit_s : float
        Wall-time safety net [s]; a bound cut short by it may differ between runs.
    max_iterations : int, optional
        Deterministic limit on dual ascent steps (default
        ``WorkLimits().dual_ascent_iterations``).

    Returns
    -------
    float
        Lower bound [weight units]; 0 for fewer than two terminals.
    """
    terminals = list(dict.fromkeys(terminals))
    missing = [t for t in terminals if t not in G]
    if missing:
        raise InputDataError(
            f"dual_ascent_bound: terminal(s) {missing[:10]} are not nodes of the graph"
        )
    if len(terminals) <= 1:
        return 0.0
    root = terminals[0] if root is None else root
    if root not in terminals:
        raise ValueError(f"root {root!r} must be one of the terminals")
    if max_iterations is None:
        max_iterations = WorkLimits().dual_ascent_iterations
    cg, index = graph.compact_graph(G, weight)
    terms = np.array([index[t] for t in terminals], dtype=np.int64)
    deadline = time.monotonic() + time_limit_s
    lb, _ = dual_ascent(cg, terms, index[root], None, max_iterations, deadline)
    return lb


def dual_ascent(
    cg: CompactGraph,
    terms: np.ndarray,
    root: int,
    mask: np.ndarray | None,
    max_iterations: int,
    deadline: float,
) -> tuple[float, str]:
    """Dual ascent (see :func:`dual_ascent_bound`); returns (bound, how it ended).

    How it ended: "complete", "iterations" (``max_iterations`` reached) or "time_limit".
    One function of about 100 lines on purpose: its two closures (``grow_r``, ``extend``) and
    the main loop share the reduced costs, the root's zero-arc reach and every ``W(t)`` with its
    cut, which split-out functions would all have to pass back and forth.

    Parameters
    ----------
    cg : CompactGraph
        Graph (edge weights >= 0).
    terms : numpy.ndarray
        Terminal node indices.
    root : int
        Root terminal index.
    mask : numpy.ndarray of bool or None
        Edges to use (None: all).
    max_iterations : int
        Deterministic limit on dual ascent steps.
    deadline : float
        ``time.monotonic()`` value of the wall-clock safety net [s].

    Returns
    -------
    tuple of float and str
        Lower bound [weight units] and how it ended.
    """
    m = np.ones(len(cg.w), bool) if mask is None else mask
    tails = np.r_[cg.u[m], cg.v[m]]
    heads = np.r_[cg.v[m], cg.u[m]]
    red = np.r_[cg.w[m], cg.w[m]].astype(float)
    eps = 1e-12 * max(1.0, float(red.max(initial=0.0)))
    order_in = np.argsort(heads, kind="stable")
    in_ptr = np.searchsorted(heads[order_in], np.arange(cg.n + 1))
    order_out = np.argsort(tails, kind="stable")
    out_ptr = np.searchsorted(tails[order_out], np.arange(cg.n + 1))
    in_r = np.zeros(cg.n, bool)  # nodes the root reaches through zero arcs
    is_term = np.zeros(cg.n, bool)
    is_term[terms] = True

    def grow_r(starts):
        stack = [s for s in starts if not in_r[s]]
        while stack:
            x = stack.pop()
            if in_r[x]:
                continue
            in_r[x] = True
            for a in order_out[out_ptr[x] : out_ptr[x + 1]].tolist():
                if red[a] <= eps and not in_r[heads[a]]:
                    stack.append(int(heads[a]))

    grow_r([root])
    active = {int(t) for t in terms.tolist() if t != root}
    members: dict[int, set] = {t: set() for t in active}
    cut: dict[int, list] = {t: [] for t in active}

    def extend(t, starts) -> bool:
        """Add ``starts`` and their zero-arc predecessors to W(t); False if t is now inactive."""
        w, c, stack = members[t], cut[t], list(starts)
        done = True
        while stack:
            x = stack.pop()
            if x in w:
                continue
            w.add(x)
            if in_r[x] or (x != t and is_term[x] and x in active):
                done = False
            for a in order_in[in_ptr[x] : in_ptr[x + 1]].tolist():
                y = int(tails[a])
                if y in w:
                    continue
                if red[a] <= eps:
                    stack.append(y)
                else:
                    c.append(a)
        return done

    heap = []
    for t in sorted(active):
        if extend(t, [t]):
            heapq.heappush(heap, (len(cut[t]), t))
        else:
            active.discard(t)
    lb, steps = 0.0, 0
    while heap:
        if steps >= max_iterations:
            return lb, "iterations"
        if time.monotonic() > deadline:
            return lb, "time_limit"
        steps += 1
        _, t = heapq.heappop(heap)
        if t not in active:
            continue
        w = members[t]
        arcs = np.array([a for a in cut[t] if int(tails[a]) not in w], dtype=np.int64)
        zero = arcs[red[arcs] <= eps]
        arcs = arcs[red[arcs] > eps]
        cut[t] = arcs.tolist()
        if zero.size and not extend(t, [int(x) for x in tails[zero]]):
            active.discard(t)
            continue
        arcs = np.array([a for a in cut[t] if int(tails[a]) not in w], dtype=np.int64)
        cut[t] = arcs.tolist()
        if arcs.size == 0:  # root unreachable from W(t): cannot happen on a connected instance
            active.discard(t)
            continue
        if heap and len(arcs) > heap[0][0]:  # Wong's rule: grow the smallest cut first
            heapq.heappush(heap, (len(arcs), t))
            continue
        delta = float(red[arcs].min())
        lb += delta
        red[arcs] -= delta
        newly = arcs[red[arcs] <= eps]
        red[newly] = 0.0
        grow_r([int(heads[a]) for a in newly.tolist() if in_r[tails[a]]])
        if extend(t, [int(x) for x in tails[newly]]):
            cut[t] = [a for a in cut[t] if int(tails[a]) not in w]
            heapq.heappush(heap, (len(cut[t]), t))
        else:
            active.discard(t)
    return lb, "complete"
