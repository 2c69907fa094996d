"""Steiner tree heuristics: Mehlhorn, shortest-path tree and shortest-path-heuristic starts."""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.sparse import csgraph

from . import graph, local_search
from .limits import Budget, WorkLimits


def _sph(cg, csr, terms, start, is_term, budget: Budget) -> np.ndarray | None:
    """Shortest-path heuristic (Takahashi and Matsuyama 1980) grown from ``start``.

    None if the budget stops it before every terminal is joined.
    """
    in_tree = np.zeros(cg.n, bool)
    in_tree[start] = True
    remaining = np.array([t for t in terms.tolist() if t != start], dtype=np.int64)
    edges: list[int] = []
    while remaining.size:
        if budget.stop():
            return None
        dist, pred = graph.dijkstra(csr, np.flatnonzero(in_tree), budget)
        t = int(remaining[np.argmin(dist[remaining])])
        path = graph.path_edges(cg, pred, t, in_tree)
        edges += path
        in_tree[cg.u[path]] = True
        in_tree[cg.v[path]] = True
        remaining = remaining[~in_tree[remaining]]
    budget.spend(len(cg.w) / 2)
    return graph.mst_prune(cg, np.array(edges, dtype=np.int64), is_term)


def heuristic_tree(cg, terms, root, is_term, limits: WorkLimits, budget: Budget, target=0.0):
    """Best of Mehlhorn (networkx), shortest-path tree and SPH starts, each locally improved.

    The Mehlhorn tree and the union of shortest paths from the root are always built and
    improved by key-path exchange; the cheaper of the two then gets the full
    :func:`.local_search.improve`. Shortest-path-heuristic starts from the root and up to
    ``limits.sph_starts - 1`` other terminals (in node order) follow, each improved by
    :func:`.local_search.improve`, while the work left in ``budget`` is at least what that first
    local search took and the best cost is above ``target`` (a lower bound). Work order and
    stopping points depend only on the input (and on the safety-net deadline of ``budget``).
    """
    csr = cg.csr()
    H = nx.Graph()
    H.add_weighted_edges_from(zip(cg.u.tolist(), cg.v.tolist(), cg.weff.tolist(), strict=True))
    T = nx.approximation.steiner_tree(H, terms.tolist(), weight="weight", method="mehlhorn")
    cands = [np.array([cg.pair[(a, b)] for a, b in T.edges], dtype=np.int64)]
    # Union of shortest paths from the root: a feasible tree no dearer than the per-terminal sum.
    _, pred = csgraph.dijkstra(csr, indices=root, return_predecessors=True)
    stop = np.zeros(cg.n, bool)
    stop[root] = True
    spt = {e for t in terms.tolist() if t != root for e in graph.path_edges(cg, pred, t, stop)}
    cands.append(np.array(sorted(spt), dtype=np.int64))
    budget.spend(60 * csr.nnz)  # networkx's Mehlhorn: pure Python
    cands = [graph.mst_prune(cg, c, is_term) for c in cands]
    best, best_cost = cands[0], graph.tree_cost(cg, cands[0])  # Mehlhorn: spans by construction
    for c in cands:
        if best_cost <= target * (1 + 1e-9):
            return best
        c = local_search.key_path_exchange(cg, csr, c, is_term, limits, budget)
        if graph.tree_cost(cg, c) < best_cost and graph.spans(cg, c, terms):
            best, best_cost = c, graph.tree_cost(cg, c)
    if best_cost <= target * (1 + 1e-9):
        return best
    before = budget.spent
    c = local_search.improve(cg, csr, best, is_term, limits, budget)
    if graph.tree_cost(cg, c) < best_cost and graph.spans(cg, c, terms):
        best, best_cost = c, graph.tree_cost(cg, c)
    first_search = budget.spent - before
    others = [t for t in terms.tolist() if t != root]
    starts = [root] + others[: limits.sph_starts - 1] if limits.sph_starts else []
    for i, s in enumerate(starts):
        if best_cost <= target * (1 + 1e-9):
            break
        if budget.stop() or budget.work - budget.spent < first_search:
            # Too little work left to search a new start as far as the first one.
            budget.cut_short = f"{i} of {len(starts)} shortest-path starts searched"
            break
        c = _sph(cg, csr, terms, s, is_term, budget)
        if c is None:
            break
        c = local_search.improve(cg, csr, c, is_term, limits, budget)
        if graph.tree_cost(cg, c) < best_cost and graph.spans(cg, c, terms):
            best, best_cost = c, graph.tree_cost(cg, c)
    return best
