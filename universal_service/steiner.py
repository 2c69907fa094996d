"""Steiner trees in graphs: SteinLib reader, dual-ascent bound, heuristics, exact flow MILP.

Every stopping rule is a deterministic work limit (:class:`WorkLimits`), so the same graph gives
the same tree, cost and bound on any machine and under any load. The wall-clock
``time_limit_s`` is only a safety net: when it stops anything before its work limit, the
result's ``status`` is "time_limit" and its ``note`` says where.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from pathlib import Path

import highspy
import networkx as nx
import numpy as np
import pandas as pd
import pulp
from scipy import sparse
from scipy.sparse import csgraph

from .errors import InputDataError

#: Seed of HiGHS's random number generator, fixed so that MILP and LP solves repeat exactly.
RANDOM_SEED = 0

#: Largest multi-commodity flow model (arcs x commodities) solved by default: the exact MILP
#: beyond it falls back to the heuristic, the heuristic's bound to dual ascent beyond LP_MAX.
EXACT_MAX_FLOW_VARS = 400_000
LP_MAX_FLOW_VARS = 150_000


# --------------------------------------------------------------------------------------------
# Results and work limits
# --------------------------------------------------------------------------------------------


@dataclass
class SteinerResult:
    """A Steiner tree (or forest, for ``network.shared_trench``) with its cost and a lower bound.

    Attributes
    ----------
    tree : networkx.Graph
        Subgraph of ``G`` (edge attributes copied).
    cost : float
        Sum of edge weights of ``tree`` [weight units; m flat-equivalent for a route graph].
    lower_bound : float
        Proven lower bound on the optimum [same units].
    method : str
        "exact" or "heuristic" (what produced ``tree``).
    status : str
        "optimal" (the bound meets the cost, or the MILP proved optimality), "feasible" (a gap
        remains; every work limit was honoured, so the result is reproducible) or "time_limit"
        (the wall-clock safety net stopped a stage, the MILP or the LP before its own limit:
        the tree is feasible and the bound valid, but another run may return a different
        result; ``note`` says which stage).
    gap : float
        ``(cost - lower_bound) / cost`` [-], 0 if cost is 0.
    bound_method : str
        Source of the bound: "milp" (MILP dual bound), "lp" (LP relaxation of the flow
        formulation), "dual_ascent" (Wong 1984) or "trivial".
    edges : pandas.DataFrame
        One row per tree edge: ``u``, ``v``, ``cost`` and, when present in ``G``, ``length_m``,
        ``multiplier``, ``kind``.
    runtime_s : float
        Wall time [s] (the one field that differs between runs).
    note : str
        Anything the caller should know (fallbacks, work limits reached, time limit hit).
    """

    tree: nx.Graph
    cost: float
    lower_bound: float
    method: str
    status: str
    gap: float
    bound_method: str
    edges: pd.DataFrame = field(repr=False)
    runtime_s: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class WorkLimits:
    """Deterministic stopping rules of the heuristic and of dual ascent.

    Counts of work, never the clock, end each stage, so a result depends only on the input.
    The defaults find the published optimum on 17 of the 18 SteinLib set-B instances (the
    heuristic never reaches its work limit there) and solve the bundled region's 385 fiber
    villages (a 10,000-node route graph) in about 3 s of one 2020s laptop core.

    Attributes
    ----------
    sph_starts : int
        Shortest-path-heuristic starts (Takahashi and Matsuyama 1980): the root, then the
        first ``sph_starts - 1`` other terminals in node order.
    local_search_rounds : int
        Rounds of local search per start: key-path exchange and key-vertex elimination, then,
        in a round where those two improve nothing, vertex moves; the search ends earlier
        when a whole round improves nothing.
    move_passes : int
        Passes of one neighbourhood within a round (a pass of key-vertex elimination ends at
        its first improving move, so this also caps those moves); a pass that improves nothing
        ends the neighbourhood earlier.
    heuristic_work : int
        Budget of the whole heuristic in arc scans [-]: every shortest-path search is charged
        the arcs it can reach (settled nodes times mean degree), every minimum spanning tree
        the edges it reads, plus set-up proportional to the node count; about 10^7 run in a
        second. The heuristic stops (keeping its best tree) once the budget is spent, and
        begins a shortest-path start only while the budget left covers the first local
        search. The default, 4 x 10^7, covers the two first starts and their local search on
        the bundled case (about 2.6 x 10^7; its best tree, 1,687,375 m, is found at 1.8 x
        10^7) and reaches the costs that the former wall-clock budget (36 s) gave on the 200- and
        1,600-village synthetic regions of ``benchmarks/steiner.py``.
    dual_ascent_iterations : int
        Dual ascent steps (one terminal's cut examined, and raised unless it has grown) [-].
        Dual ascent runs to completion within it on every instance here: 33 to 120 steps on
        SteinLib set B, 7,446 on the bundled case, 10,124 on the 1,600-village synthetic
        region.
    """

    sph_starts: int = 8
    local_search_rounds: int = 20
    move_passes: int = 20
    heuristic_work: int = 40_000_000
    dual_ascent_iterations: int = 200_000

    def __post_init__(self) -> None:
        for name in (
            "sph_starts",
            "local_search_rounds",
            "move_passes",
            "heuristic_work",
            "dual_ascent_iterations",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"WorkLimits.{name} must be an integer >= 0 (got {value!r})")


class _Budget:
    """Deterministic work counter [arc scans] with a wall-clock safety net.

    Each step of the heuristic is charged from counts alone (arcs reachable from the nodes a
    shortest-path search settled, edges read by a minimum spanning tree, plus array set-up
    proportional to the node count), with factors set so that on a 2020s laptop core about
    10^7 units run per second whatever the mix of steps.

    ``stop()`` is True once the work is spent (reproducible) or past ``deadline`` (not
    reproducible: ``timed_out`` records it so that the result says so).
    """

    def __init__(self, work: int, deadline: float):
        self.work = work
        self.spent = 0
        self.deadline = deadline
        self.timed_out = False
        self.cut_short = ""  # what the work limit left out, for the note

    def spend(self, units: float) -> None:
        self.spent += int(units)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.work

    def stop(self) -> bool:
        if self.exhausted:
            return True
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        return False


# --------------------------------------------------------------------------------------------
# Compact graph
# --------------------------------------------------------------------------------------------


@dataclass
class CompactGraph:
    """Undirected graph as arrays: node labels, edge end points ``u``, ``v`` and weights ``w``.

    Attributes
    ----------
    labels : list
        Node labels; node ``i`` of the arrays is ``labels[i]``.
    u, v : numpy.ndarray
        Edge end points (node indices), one entry per edge, no parallel edges.
    w : numpy.ndarray
        Edge weights, >= 0 [weight units].
    """

    labels: list
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray

    def __post_init__(self):
        self.n = len(self.labels)
        pos = self.w[self.w > 0]
        self.tiny = 1e-9 * (float(pos.mean()) if pos.size else 1.0)
        self.weff = np.maximum(self.w, self.tiny)  # csgraph drops zeros in MST
        self.pair = {}
        for e, (a, b) in enumerate(zip(self.u.tolist(), self.v.tolist(), strict=True)):
            self.pair[(a, b)] = e
            self.pair[(b, a)] = e

    def csr(self, mask: np.ndarray | None = None) -> sparse.csr_matrix:
        """Symmetric adjacency matrix of the edges in ``mask`` (weights ``weff``)."""
        u, v, w = (
            (self.u, self.v, self.weff)
            if mask is None
            else (self.u[mask], self.v[mask], self.weff[mask])
        )
        return sparse.csr_matrix((np.r_[w, w], (np.r_[u, v], np.r_[v, u])), shape=(self.n, self.n))


def compact_graph(G: nx.Graph, weight: str = "weight") -> tuple[CompactGraph, dict]:
    """Arrays of an undirected networkx graph, and the index of each node label.

    Parameters
    ----------
    G : networkx.Graph
        Undirected, not a multigraph; self-loops are dropped.
    weight : str
        Edge attribute used as the weight (missing: 1); must be finite and >= 0.

    Returns
    -------
    tuple of CompactGraph and dict
        The arrays (nodes in ``G.nodes`` order) and ``{label: index}``.
    """
    labels = list(G.nodes)
    index = {lab: i for i, lab in enumerate(labels)}
    rows = [(index[a], index[b], w) for a, b, w in G.edges(data=weight, default=1.0) if a != b]
    arr = np.array(rows, dtype=float).reshape(-1, 3)
    w = arr[:, 2]
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise InputDataError(
            f"graph: {int(bad.sum())} edge(s) have a negative or non-finite '{weight}'; "
            f"Steiner trees need weights >= 0."
        )
    cg = CompactGraph(labels, arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), w)
    return cg, index


def _prune(cg: CompactGraph, edges: np.ndarray, is_term: np.ndarray) -> np.ndarray:
    """Remove non-terminal leaves repeatedly; ``edges`` is an array of edge indices."""
    edges = np.asarray(edges, dtype=np.int64)
    while edges.size:
        deg = np.bincount(np.r_[cg.u[edges], cg.v[edges]], minlength=cg.n)
        leaf = (deg == 1) & ~is_term
        drop = leaf[cg.u[edges]] | leaf[cg.v[edges]]
        if not drop.any():
            break
        edges = edges[~drop]
    return edges


def _nodes_on(cg: CompactGraph, edges: np.ndarray) -> np.ndarray:
    on = np.zeros(cg.n, bool)
    on[cg.u[edges]] = True
    on[cg.v[edges]] = True
    return on


def _mst_prune(cg: CompactGraph, edges: np.ndarray, is_term: np.ndarray) -> np.ndarray:
    """MST of the subgraph of ``G`` induced by the tree's nodes, then non-terminal leaf pruning."""
    edges = np.asarray(edges, dtype=np.int64)
    if len(edges) == 0:
        return edges
    on = _nodes_on(cg, edges)
    mst = csgraph.minimum_spanning_tree(cg.csr(on[cg.u] & on[cg.v])).tocoo()
    new = [cg.pair[(a, b)] for a, b in zip(mst.row.tolist(), mst.col.tolist(), strict=True)]
    return _prune(cg, np.array(new, dtype=np.int64), is_term)


def _spans(cg: CompactGraph, edges: np.ndarray, terms: np.ndarray) -> bool:
    """True if ``edges`` form a tree joining every terminal (guard on every local-search result)."""
    if len(edges) == 0:
        return len(terms) <= 1
    mask = np.zeros(len(cg.w), bool)
    mask[edges] = True
    _, lab = csgraph.connected_components(cg.csr(mask), directed=False)
    n_nodes = np.unique(np.r_[cg.u[edges], cg.v[edges]]).size
    return np.unique(lab[terms]).size == 1 and len(edges) == n_nodes - 1


def _cost(cg: CompactGraph, edges: np.ndarray) -> float:
    return float(cg.w[np.asarray(edges, dtype=np.int64)].sum())


def _improves(new: float, old: float) -> bool:
    return new < old - 1e-9 * max(1.0, abs(old))


def _path_edges(cg: CompactGraph, pred: np.ndarray, end: int, stop: np.ndarray) -> list[int]:
    out, x = [], end
    while not stop[x]:
        p = int(pred[x])
        out.append(cg.pair[(p, x)])
        x = p
    return out


def _dijkstra(csr: sparse.csr_matrix, sources: np.ndarray, budget: _Budget, limit=np.inf):
    """Multi-source Dijkstra (distances, predecessors), charged its settled nodes' arcs."""
    n = max(csr.shape[0], 1)
    dist, pred, _ = csgraph.dijkstra(
        csr, indices=sources, min_only=True, return_predecessors=True, limit=limit
    )
    budget.spend(0.4 * np.isfinite(dist).sum() * csr.nnz / n + n / 8)
    return dist, pred


# --------------------------------------------------------------------------------------------
# Heuristics
# --------------------------------------------------------------------------------------------


def _sph(cg, csr, terms, start, is_term, budget: _Budget) -> np.ndarray | None:
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
        dist, pred = _dijkstra(csr, np.flatnonzero(in_tree), budget)
        t = int(remaining[np.argmin(dist[remaining])])
        path = _path_edges(cg, pred, t, in_tree)
        edges += path
        in_tree[cg.u[path]] = True
        in_tree[cg.v[path]] = True
        remaining = remaining[~in_tree[remaining]]
    budget.spend(len(cg.w) / 2)
    return _mst_prune(cg, np.array(edges, dtype=np.int64), is_term)


def _key_paths(cg: CompactGraph, edges: np.ndarray, is_term: np.ndarray) -> list[list[int]]:
    """Key paths of a tree: maximal paths whose inner nodes are degree-2 non-terminals."""
    adj: dict[int, list[tuple[int, int]]] = {}
    for e in edges.tolist():
        a, b = int(cg.u[e]), int(cg.v[e])
        adj.setdefault(a, []).append((b, e))
        adj.setdefault(b, []).append((a, e))
    key = sorted(x for x, nb in adj.items() if is_term[x] or len(nb) >= 3)
    key_set = set(key)
    seen: set[int] = set()
    out = []
    for s in key:
        for nb, e in adj[s]:
            if e in seen:
                continue
            path, x = [e], nb
            seen.add(e)
            while x not in key_set:
                ((y, f),) = [(y, f) for y, f in adj[x] if f != path[-1]]
                path.append(f)
                seen.add(f)
                x = y
            out.append(path)
    return out


def _euler(adj: dict[int, set], root: int, n: int):
    """Pre-order entry/exit indices of a tree; ``order[tin[x]:tout[x] + 1]`` is x's subtree."""
    tin = np.full(n, -1)
    tout = np.full(n, -1)
    depth = np.zeros(n, dtype=np.int64)
    order: list[int] = []
    stack = [(root, -1, False)]
    while stack:
        x, parent, done = stack.pop()
        if done:
            tout[x] = len(order) - 1
            continue
        tin[x] = len(order)
        order.append(x)
        stack.append((x, parent, True))
        for y in sorted(adj[x]):
            if y != parent:
                depth[y] = depth[x] + 1
                stack.append((y, x, False))
    return tin, tout, depth, np.array(order, dtype=np.int64)


def _key_path_exchange(cg, csr, edges, is_term, limits: WorkLimits, budget: _Budget):
    """Local search: replace a key path by a shorter path joining the two parts it separates.

    Key-path exchange after Duin and Voss (1997, "Efficient path and vertex exchange in Steiner
    tree algorithms", Networks 29, 89-105) and Uchoa and Werneck (2010, "Fast local search for
    Steiner trees in graphs", ALENEX). The two sides come from an Euler tour of the tree; the
    reconnecting path is a multi-source Dijkstra from the smaller side, bounded by the key
    path's cost. Passes (at most ``limits.move_passes``), each closed by :func:`_mst_prune`,
    repeat until none improves.
    """
    edges = np.asarray(edges, dtype=np.int64)
    for _ in range(limits.move_passes):
        if edges.size <= 1 or budget.stop():
            break
        adj: dict[int, set] = {}
        for e in edges.tolist():
            a, b = int(cg.u[e]), int(cg.v[e])
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
        in_tree = set(edges.tolist())
        paths = sorted(_key_paths(cg, edges, is_term), key=lambda p: -cg.w[p].sum())
        root = next(iter(x for x in adj if is_term[x]))
        tin, tout, depth, order = _euler(adj, root, cg.n)
        budget.spend(4 * edges.size)
        dirty, improved = False, False
        for p in paths:
            if budget.stop():
                break
            if any(e not in in_tree for e in p):
                continue
            nodes, count = np.unique(np.r_[cg.u[p], cg.v[p]], return_counts=True)
            ends = nodes[count == 1].tolist()
            inner = nodes[count == 2].tolist()
            if len(ends) != 2 or any(len(adj[x]) != 2 or is_term[x] for x in inner):
                continue  # no longer a key path after an earlier move
            if dirty:
                tin, tout, depth, order = _euler(adj, root, cg.n)
                budget.spend(2 * len(order))
                dirty = False
            b = ends[0] if depth[ends[0]] > depth[ends[1]] else ends[1]
            side = np.zeros(cg.n, dtype=np.int8)  # 1: subtree of b, 2: the rest
            side[order] = 2
            side[order[tin[b] : tout[b] + 1]] = 1
            side[inner] = 0
            n1, n2 = int((side == 1).sum()), int((side == 2).sum())
            src, dst = (1, 2) if n1 <= n2 else (2, 1)
            pcost = float(cg.w[p].sum())
            dist, pred = _dijkstra(csr, np.flatnonzero(side == src), budget, limit=pcost)
            targets = np.flatnonzero(side == dst)
            t = int(targets[np.argmin(dist[targets])])
            if not dist[t] < pcost - 1e-9 * max(1.0, pcost):
                continue
            new = _path_edges(cg, pred, t, side == src)
            for e in p:
                a, c = int(cg.u[e]), int(cg.v[e])
                adj[a].discard(c)
                adj[c].discard(a)
                in_tree.discard(e)
            for e in new:
                a, c = int(cg.u[e]), int(cg.v[e])
                adj.setdefault(a, set()).add(c)
                adj.setdefault(c, set()).add(a)
                in_tree.add(e)
            for x in inner:
                if not adj[x]:
                    del adj[x]
            dirty, improved = True, True
        budget.spend(len(cg.w) / 2)
        new_edges = _mst_prune(cg, np.array(sorted(in_tree), dtype=np.int64), is_term)
        if not improved or _cost(cg, new_edges) >= _cost(cg, edges) - 1e-9:
            return new_edges if _cost(cg, new_edges) <= _cost(cg, edges) else edges
        edges = new_edges
    return edges


def _prune_local(r, c, d, keep: np.ndarray):
    """Non-terminal leaf pruning on local edge arrays (``keep``: local terminal flags)."""
    while r.size:
        deg = np.bincount(r, minlength=keep.size) + np.bincount(c, minlength=keep.size)
        leaf = (deg == 1) & ~keep
        drop = leaf[r] | leaf[c]
        if not drop.any():
            break
        r, c, d = r[~drop], c[~drop], d[~drop]
    return r, c, d


def _vertex_moves(cg, csr, edges, is_term, limits: WorkLimits, budget: _Budget) -> np.ndarray:
    """Steiner vertex insertion and elimination with MST re-optimisation (Minoux 1990).

    Minoux, M. (1990). "Efficient greedy heuristics for Steiner tree problems using
    reoptimization and supermodularity." INFOR 28(3). A non-tree node next to the tree is
    inserted, or a Steiner node removed, when the pruned MST of the induced subgraph is cheaper
    (first improvement; at most ``limits.move_passes`` passes over the candidates). Each trial
    works on the subgraph induced by the tree's nodes, renumbered; a node with fewer than two
    neighbours in the tree is not tried for insertion, since pruning would remove it again.
    """
    edges = np.asarray(edges, dtype=np.int64)
    if edges.size == 0:
        return edges
    ptr, nbr, nbw = csr.indptr, csr.indices, csr.data

    def induced(on):
        nodes = np.flatnonzero(on)
        loc = np.full(cg.n, -1, dtype=np.int64)
        loc[nodes] = np.arange(nodes.size)
        e = np.flatnonzero(on[cg.u] & on[cg.v])
        budget.spend(len(cg.w) / 2)
        return nodes, loc, loc[cg.u[e]], loc[cg.v[e]], cg.weff[e], is_term[nodes]

    cost = float(cg.weff[edges].sum())
    for _ in range(limits.move_passes):
        if budget.stop():
            break
        improved = False
        on = _nodes_on(cg, edges)
        near = np.zeros(cg.n, bool)
        near[csr[np.flatnonzero(on)].indices] = True
        moves = np.r_[np.flatnonzero(near & ~on), np.flatnonzero(on & ~is_term)]
        nodes, loc, lu, lv, lw, lterm = induced(on)
        k = nodes.size
        for x in moves.tolist():
            if budget.stop():
                break
            if on[x]:  # elimination: drop x and its edges
                lx = loc[x]
                keep = (lu != lx) & (lv != lx)
                r, c, d = lu[keep], lv[keep], lw[keep]
                size, n_trial, ext = k, k - 1, nodes
                term = lterm
            else:  # insertion: x becomes local node k
                nb = nbr[ptr[x] : ptr[x + 1]]
                sel = on[nb]
                if int(sel.sum()) < 2:
                    continue
                r = np.r_[lu, np.full(int(sel.sum()), k)]
                c = np.r_[lv, loc[nb[sel]]]
                d = np.r_[lw, nbw[ptr[x] : ptr[x + 1]][sel]]
                size, n_trial, ext = k + 1, k + 1, np.r_[nodes, x]
                term = np.r_[lterm, False]
            budget.spend(1.2 * (d.size + size))
            mst = csgraph.minimum_spanning_tree(
                sparse.csr_matrix((d, (r, c)), shape=(size, size))
            ).tocoo()
            if mst.nnz != n_trial - 1:
                continue  # disconnected
            mr, mc, md = _prune_local(mst.row, mst.col, mst.data, term)
            if not _improves(float(md.sum()), cost):
                continue
            new = np.array(
                [cg.pair[(a, b)] for a, b in zip(ext[mr].tolist(), ext[mc].tolist(), strict=True)],
                dtype=np.int64,
            )
            edges, cost, improved = new, float(cg.weff[new].sum()), True
            on = _nodes_on(cg, edges)
            nodes, loc, lu, lv, lw, lterm = induced(on)
            k = nodes.size
        if not improved:
            break
    return edges


def _key_vertex_elimination(cg, csr, edges, is_term, limits: WorkLimits, budget: _Budget):
    """Local search: drop a Steiner key vertex with its key paths, rejoin the parts by an MST.

    Key-vertex elimination of Duin and Voss (1997) as used by Uchoa and Werneck (2010): the
    parts left are joined by a minimum spanning tree over their pairwise shortest paths
    (Dijkstra from each part, bounded by the removed cost); the result is re-optimised by
    :func:`_mst_prune` and kept if cheaper. A pass ends at its first improving move; at most
    ``limits.move_passes`` passes.
    """
    cost = _cost(cg, edges)
    for _ in range(limits.move_passes):
        if budget.stop():
            break
        improved = False
        deg = np.bincount(np.r_[cg.u[edges], cg.v[edges]], minlength=cg.n)
        keys = np.flatnonzero((deg >= 3) & ~is_term)
        paths = _key_paths(cg, edges, is_term)
        budget.spend(4 * len(edges))
        for x in keys.tolist():
            if budget.stop():
                break
            mine = [p for p in paths if x in (cg.u[p[0]], cg.v[p[0]], cg.u[p[-1]], cg.v[p[-1]])]
            drop = np.unique(np.concatenate(mine))
            removed = float(cg.w[drop].sum())
            rest = np.setdiff1d(edges, drop)
            mask = np.zeros(len(cg.w), bool)
            mask[rest] = True
            _, lab = csgraph.connected_components(cg.csr(mask), directed=False)
            budget.spend(len(cg.w) / 4)
            ends = set()
            for p in mine:
                for y in (cg.u[p[0]], cg.v[p[0]], cg.u[p[-1]], cg.v[p[-1]]):
                    if y != x and (is_term[y] or deg[y] >= 3):
                        ends.add(int(y))
            parts = sorted({int(lab[y]) for y in ends})
            if len(parts) < 2:
                continue
            members = [np.flatnonzero(lab == c) for c in parts]
            k = len(parts)
            d = np.full((k, k), np.inf)
            link: dict[tuple[int, int], list[int]] = {}
            for i in range(k):
                src = np.zeros(cg.n, bool)
                src[members[i]] = True
                dist, pred = _dijkstra(csr, members[i], budget, limit=removed)
                for j in range(i + 1, k):
                    t = int(members[j][np.argmin(dist[members[j]])])
                    if np.isfinite(dist[t]):
                        d[i, j] = d[j, i] = dist[t]
                        link[(i, j)] = _path_edges(cg, pred, t, src)
            if not np.isfinite(d).sum() >= 2 * (k - 1):
                continue
            dm = np.where(np.isfinite(d), d, 0.0) + np.where(np.isfinite(d), cg.tiny, 0.0)
            mst = csgraph.minimum_spanning_tree(sparse.csr_matrix(dm)).tocoo()
            if mst.nnz != k - 1 or float(d[mst.row, mst.col].sum()) >= removed - 1e-9:
                continue
            add = [
                e
                for i, j in zip(mst.row.tolist(), mst.col.tolist(), strict=True)
                for e in link[(min(i, j), max(i, j))]
            ]
            budget.spend(len(cg.w) / 2)
            new = _mst_prune(cg, np.unique(np.r_[rest, np.array(add, dtype=np.int64)]), is_term)
            if _improves(_cost(cg, new), cost):
                edges, cost, improved = new, _cost(cg, new), True
                break
        if not improved:
            break
    return edges


def _local_search(cg, csr, edges, is_term, limits: WorkLimits, budget: _Budget) -> np.ndarray:
    """Key-path exchange and key-vertex elimination, then vertex moves, until nothing improves.

    Each round applies the two cheap neighbourhoods (key-path exchange, key-vertex
    elimination); only a round in which they improve nothing goes on to the costlier vertex
    moves, and the search ends when those improve nothing either. At most
    ``limits.local_search_rounds`` rounds; every neighbourhood also stops when ``budget`` is
    spent.
    """
    for _ in range(limits.local_search_rounds):
        if budget.stop():
            break
        cost = _cost(cg, edges)
        edges = _key_path_exchange(cg, csr, edges, is_term, limits, budget)
        edges = _key_vertex_elimination(cg, csr, edges, is_term, limits, budget)
        if _improves(_cost(cg, edges), cost):
            continue
        edges = _vertex_moves(cg, csr, edges, is_term, limits, budget)
        if not _improves(_cost(cg, edges), cost):
            break
    return edges


def _heuristic(cg, terms, root, is_term, limits: WorkLimits, budget: _Budget, target=0.0):
    """Best of Mehlhorn (networkx), shortest-path tree and SPH starts, each locally improved.

    The Mehlhorn tree and the union of shortest paths from the root are always built and
    improved by key-path exchange; the cheaper of the two then gets the full
    :func:`_local_search`. Shortest-path-heuristic starts from the root and up to
    ``limits.sph_starts - 1`` other terminals (in node order) follow, each improved by
    :func:`_local_search`, while the work left in ``budget`` is at least what that first
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
    spt = {e for t in terms.tolist() if t != root for e in _path_edges(cg, pred, t, stop)}
    cands.append(np.array(sorted(spt), dtype=np.int64))
    budget.spend(60 * csr.nnz)  # networkx's Mehlhorn: pure Python
    cands = [_mst_prune(cg, c, is_term) for c in cands]
    best, best_cost = cands[0], _cost(cg, cands[0])  # Mehlhorn: spans by construction
    for c in cands:
        if best_cost <= target * (1 + 1e-9):
            return best
        c = _key_path_exchange(cg, csr, c, is_term, limits, budget)
        if _cost(cg, c) < best_cost and _spans(cg, c, terms):
            best, best_cost = c, _cost(cg, c)
    if best_cost <= target * (1 + 1e-9):
        return best
    before = budget.spent
    c = _local_search(cg, csr, best, is_term, limits, budget)
    if _cost(cg, c) < best_cost and _spans(cg, c, terms):
        best, best_cost = c, _cost(cg, c)
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
        c = _local_search(cg, csr, c, is_term, limits, budget)
        if _cost(cg, c) < best_cost and _spans(cg, c, terms):
            best, best_cost = c, _cost(cg, c)
    return best


# --------------------------------------------------------------------------------------------
# Reductions and bounds
# --------------------------------------------------------------------------------------------


def _reduce(cg: CompactGraph, is_term: np.ndarray, sd_test: bool) -> np.ndarray:
    """Edge mask after safe reductions: non-terminal leaves, and edges longer than a path.

    The second (the special-distance test in its simplest form; Duin and Volgenant 1989,
    "Reduction tests for the Steiner problem in graphs", Networks 19, 549-567) drops
    edge ``(u, v)`` when another ``u``-``v`` path is strictly shorter than ``w(u, v)``; some
    optimal tree avoids such an edge.
    """
    mask = np.ones(len(cg.w), bool)
    if sd_test and len(cg.w):
        d = csgraph.dijkstra(cg.csr(), directed=True)
        mask &= ~(d[cg.u, cg.v] < cg.w * (1 - 1e-12) - 1e-12)
    while True:
        deg = np.bincount(np.r_[cg.u[mask], cg.v[mask]], minlength=cg.n)
        leaf = (deg == 1) & ~is_term
        drop = mask & (leaf[cg.u] | leaf[cg.v])
        if not drop.any():
            return mask
        mask &= ~drop


def dual_ascent_bound(
    cg: CompactGraph,
    terms: np.ndarray,
    root: int,
    mask: np.ndarray | None = None,
    time_limit_s: float = 60.0,
    *,
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
    cg : CompactGraph
        Graph (edge weights >= 0).
    terms : numpy.ndarray
        Terminal node indices.
    root : int
        Root terminal index.
    mask : numpy.ndarray of bool, optional
        Edges to use (default all).
    time_limit_s : float
        Wall-time safety net [s]; a bound cut short by it may differ between runs.
    max_iterations : int, optional
        Deterministic limit on dual ascent steps (default
        ``WorkLimits().dual_ascent_iterations``).

    Returns
    -------
    float
        Lower bound [weight units].
    """
    if max_iterations is None:
        max_iterations = WorkLimits().dual_ascent_iterations
    lb, _ = _dual_ascent(cg, terms, root, mask, max_iterations, time.monotonic() + time_limit_s)
    return lb


def _dual_ascent(cg, terms, root, mask, max_iterations: int, deadline: float):
    """Dual ascent (see :func:`dual_ascent_bound`); returns (bound, how it ended).

    How it ended: "complete", "iterations" (``max_iterations`` reached) or "time_limit".
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


# --------------------------------------------------------------------------------------------
# Exact: multi-commodity flow MILP
# --------------------------------------------------------------------------------------------


def _flow_model(cg, mask, terms, root, relax: bool):
    """Directed multi-commodity flow model (Wong 1984) with degree strengthening.

    Arc variables ``y[i,j]`` (binary, or in [0, 1] when ``relax``), one commodity per
    non-root terminal ``k`` sending one unit from the root, ``f[k,i,j] <= y[i,j]``. Added
    valid inequalities (Koch and Martin 1998, "Solving Steiner tree problems in graphs to
    optimality", Networks 32, 207-232; Polzin and Daneshmand 2001, "A comparison of Steiner
    tree relaxations", Discrete Applied Mathematics 112, 241-261): in-degree 1 at non-root
    terminals, 0 at the root, <= 1 at Steiner nodes; an arc may leave a Steiner node only if
    an arc enters it; a Steiner node's in-degree is at most its out-degree; ``y[i,j] + y[j,i]
    <= 1``. Objective: sum of ``w * y``.
    """
    edges = np.flatnonzero(mask)
    cat = pulp.LpContinuous if relax else pulp.LpBinary
    prob = pulp.LpProblem("steiner_flow", pulp.LpMinimize)
    arcs = [
        (int(a), int(b), int(e))
        for e in edges
        for a, b in ((cg.u[e], cg.v[e]), (cg.v[e], cg.u[e]))
        if b != root
    ]
    y = {(a, b): prob.add_variable(f"y_{a}_{b}", 0, 1, cat) for a, b, _ in arcs}
    prob += pulp.lpSum(cg.w[e] * y[a, b] for a, b, e in arcs)
    nodes = sorted({x for a, b, _ in arcs for x in (a, b)})
    into: dict[int, list] = {x: [] for x in nodes}
    out: dict[int, list] = {x: [] for x in nodes}
    for a, b, _ in arcs:
        into[b].append((a, b))
        out[a].append((a, b))
    is_term = np.zeros(cg.n, bool)
    is_term[terms] = True
    for x in nodes:
        indeg = pulp.lpSum(y[a] for a in into[x])
        if x == root:
            continue
        if is_term[x]:
            prob += indeg == 1, f"indeg_{x}"
        else:
            prob += indeg <= 1, f"indeg_{x}"
            prob += indeg - pulp.lpSum(y[a] for a in out[x]) <= 0, f"outdeg_{x}"
            for a in out[x]:
                prob += y[a] - indeg <= 0, f"leave_{a[0]}_{a[1]}"
    for a, b, _ in arcs:
        if a < b and (b, a) in y:
            prob += y[a, b] + y[b, a] <= 1, f"anti_{a}_{b}"
    for k in terms.tolist():
        if k == root:
            continue
        f = {a: prob.add_variable(f"f_{k}_{a[0]}_{a[1]}", 0) for a in y}
        for x in nodes:
            rhs = 1 if x == k else (-1 if x == root else 0)
            prob += (
                pulp.lpSum(f[a] for a in into[x]) - pulp.lpSum(f[a] for a in out[x]) == rhs,
                f"flow_{k}_{x}",
            )
        for a in y:
            prob += f[a] - y[a] <= 0, f"cap_{k}_{a[0]}_{a[1]}"
    return prob, y, arcs


def _solve_flow(cg, mask, terms, root, relax, time_limit_s):
    """Solve the flow model with HiGHS; return (edges or None, objective, bound, status).

    HiGHS runs on one thread with a fixed :data:`RANDOM_SEED`, so a solve that ends by itself
    repeats exactly; ``time_limit_s`` [s] is a safety net and a solve it stops has status
    "time_limit".
    """
    prob, y, arcs = _flow_model(cg, mask, terms, root, relax)
    solver = pulp.HiGHS(
        msg=False,
        timeLimit=max(float(time_limit_s), 1.0),
        gapRel=1e-9,
        mip=not relax,
        threads=1,
        random_seed=RANDOM_SEED,
        parallel="off",
    )
    prob.solve(solver)
    h = prob.solverModel
    ms = h.getModelStatus()
    info = h.getInfo()
    obj = float(info.objective_function_value) if info.primal_solution_status == 2 else np.inf
    if relax:
        ok = ms == highspy.HighsModelStatus.kOptimal
        return None, obj, (obj if ok else 0.0), "optimal" if ok else "time_limit"
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else 0.0
    status = "optimal" if ms == highspy.HighsModelStatus.kOptimal else "time_limit"
    if not np.isfinite(obj):
        return None, np.inf, bound, status
    chosen = {e for a, b, e in arcs if (y[a, b].varValue or 0.0) > 0.5}
    return np.array(sorted(chosen), dtype=np.int64), obj, bound, status


# --------------------------------------------------------------------------------------------
# Solver driver and public entry points
# --------------------------------------------------------------------------------------------


@dataclass
class Solution:
    """What :func:`solve_compact` returns: tree edges (indices into the compact graph) and bound.

    ``lower_bound``, ``status``, ``bound_method`` and ``note`` are as in :class:`SteinerResult`.
    """

    edges: np.ndarray
    lower_bound: float
    method: str
    status: str
    bound_method: str
    note: str = ""


def solve_compact(
    cg: CompactGraph,
    terms: np.ndarray,
    root: int,
    method: str = "heuristic",
    *,
    time_limit_s: float = 60.0,
    limits: WorkLimits | None = None,
    exact_max: int | None = None,
    lp_max: int | None = None,
) -> Solution:
    """Steiner tree on a compact graph: reductions, dual ascent, heuristic, then LP or MILP.

    See :func:`steiner_tree` for the method; this is its array core, also used by
    ``network.shared_trench`` on a graph with a virtual root.

    Parameters
    ----------
    cg : CompactGraph
    terms : numpy.ndarray
        Terminal node indices (``root`` among them).
    root : int
        Root terminal index (flow source, dual ascent root).
    method : {"exact", "heuristic"}
    time_limit_s : float
        Wall-clock safety net for the whole solve [s].
    limits : WorkLimits, optional
        Deterministic work limits (default ``WorkLimits()``).
    exact_max, lp_max : int, optional
        Flow-model size limits (default :data:`EXACT_MAX_FLOW_VARS`, :data:`LP_MAX_FLOW_VARS`).

    Returns
    -------
    Solution
    """
    limits = WorkLimits() if limits is None else limits
    exact_max = EXACT_MAX_FLOW_VARS if exact_max is None else exact_max
    lp_max = LP_MAX_FLOW_VARS if lp_max is None else lp_max
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    terms = np.unique(np.asarray(terms, dtype=np.int64))
    if terms.size <= 1:
        return Solution(np.empty(0, np.int64), 0.0, method, "optimal", "trivial")
    _, lab = csgraph.connected_components(cg.csr(), directed=False)
    if np.unique(lab[terms]).size > 1:
        bad = [cg.labels[t] for t in terms if lab[t] != lab[root]]
        raise InputDataError(
            f"graph: terminal(s) {bad[:10]} are not connected to {cg.labels[root]!r}; "
            f"join them to the graph or leave them out."
        )
    is_term = np.zeros(cg.n, bool)
    is_term[terms] = True
    mask = _reduce(cg, is_term, sd_test=cg.n <= 1500) & (lab[cg.u] == lab[root])
    size = 2 * int(mask.sum()) * (terms.size - 1)
    notes: list[str] = []
    timed_out: list[str] = []  # stages the safety net cut short
    if method == "exact" and size > exact_max:
        method = "heuristic"
        notes.append(f"flow model too large ({size} > {exact_max} variables)")
    da, da_end = _dual_ascent(cg, terms, root, mask, limits.dual_ascent_iterations, deadline)
    if da_end == "iterations":
        notes.append(f"dual ascent stopped at its limit of {limits.dual_ascent_iterations} steps")
    elif da_end == "time_limit":
        timed_out.append("dual ascent")
    budget = _Budget(limits.heuristic_work, deadline)
    sub = CompactGraph(cg.labels, cg.u[mask], cg.v[mask], cg.w[mask])
    back = np.flatnonzero(mask)
    best = back[_heuristic(sub, terms, root, is_term, limits, budget, target=da)]
    if budget.timed_out:
        timed_out.append("heuristic")
    elif budget.exhausted or budget.cut_short:
        notes.append(
            f"heuristic work limit ({limits.heuristic_work:,} arc scans) reached"
            + (f": {budget.cut_short}" if budget.cut_short else "")
        )
    cost = _cost(cg, best)

    def done(edges, lb, meth, status, bm) -> Solution:
        if timed_out:
            notes.append(
                f"the time_limit_s = {time_limit_s:g} s safety net cut short: "
                f"{', '.join(timed_out)}; this result may differ between runs (raise "
                f"time_limit_s for a reproducible one)"
            )
            status = "time_limit"
        return Solution(edges, lb, meth, status, bm, "; ".join(notes))

    if method == "exact":
        left = deadline - time.monotonic()
        edges, obj, bound, status = _solve_flow(cg, mask, terms, root, False, left)
        if edges is not None:
            edges = _prune(cg, edges, is_term)
            if _cost(cg, edges) <= cost + 1e-9:
                best = edges
        if status == "time_limit":
            timed_out.append("MILP")
        if status == "optimal" and edges is not None:
            timed_out.clear()  # the MILP optimum does not depend on the earlier stages
            notes.clear()
            return done(best, (bound if bound > 0 else obj), "exact", status, "milp")
        lb, bm = (bound, "milp") if bound >= da else (da, "dual_ascent")
        return done(best, lb, "exact", "time_limit", bm)
    lb, bound_method = da, "dual_ascent"
    status = "optimal" if lb >= cost - 1e-9 * max(1.0, cost) else "feasible"
    if status == "feasible" and size <= lp_max:
        left = max(deadline - time.monotonic(), 5.0)
        _, _, lp, st = _solve_flow(cg, mask, terms, root, True, left)
        if st != "optimal":
            timed_out.append("LP relaxation")
        elif lp > lb:
            lb, bound_method = lp, "lp"
            status = "optimal" if lb >= cost - 1e-9 * max(1.0, cost) else "feasible"
    return done(best, lb, "heuristic", status, bound_method)


def to_result(
    G: nx.Graph,
    cg: CompactGraph,
    index: dict,
    sol: Solution,
    t0: float,
    drop=(),
) -> SteinerResult:
    """A :class:`SteinerResult` on ``G`` from a compact-graph :class:`Solution`.

    Parameters
    ----------
    G : networkx.Graph
        The graph ``cg`` was made from (by :func:`compact_graph`).
    cg : CompactGraph
        Possibly ``G``'s compact graph with extra (virtual) nodes appended.
    index : dict
        ``{label: index}`` of ``G``'s nodes in ``cg``.
    sol : Solution
    t0 : float
        ``time.monotonic()`` at the start of the solve [s].
    drop : collection
        Labels of virtual nodes whose edges are left out of the tree.

    Returns
    -------
    SteinerResult
    """
    edges = np.sort(np.asarray(sol.edges, dtype=np.int64))  # G's edge order
    pairs = [
        (cg.labels[a], cg.labels[b])
        for a, b in zip(cg.u[edges].tolist(), cg.v[edges].tolist(), strict=True)
    ]
    pairs = [(a, b) for a, b in pairs if a not in drop and b not in drop]
    # Built node by node in G's order (not by ``G.edge_subgraph``, whose node order follows a
    # set of labels and so changes with Python's string hash seed), so the tree iterates alike
    # in every process.
    on = {x for pair in pairs for x in pair}
    tree = nx.Graph()
    tree.graph.update(G.graph)
    tree.add_nodes_from((x, dict(d)) for x, d in G.nodes(data=True) if x in on)
    tree.add_edges_from((a, b, dict(G.edges[a, b])) for a, b in pairs)
    cost = float(cg.w[edges].sum())
    lb = float(min(max(sol.lower_bound, 0.0), cost))
    gap = (cost - lb) / cost if cost > 0 else 0.0
    if sol.method == "exact" and sol.status == "optimal":
        gap = 0.0 if gap < 1e-6 else gap
    rows = []
    for a, b in pairs:
        d = G.edges[a, b]
        rows.append(
            {
                "u": a,
                "v": b,
                "cost": float(cg.w[cg.pair[(index[a], index[b])]]),
                **{k: d[k] for k in ("length_m", "multiplier", "kind") if k in d},
            }
        )
    table = pd.DataFrame(rows, columns=None if rows else ["u", "v", "cost"])
    return SteinerResult(
        tree,
        cost,
        lb,
        sol.method,
        sol.status,
        gap,
        sol.bound_method,
        table,
        time.monotonic() - t0,
        sol.note,
    )


def steiner_tree(
    G: nx.Graph,
    terminals,
    *,
    weight: str = "weight",
    method: str = "exact",
    root=None,
    time_limit_s: float = 60.0,
    limits: WorkLimits | None = None,
) -> SteinerResult:
    """Minimum-weight tree of ``G`` spanning ``terminals``, with a proven lower bound.

    Both methods first apply safe reductions (non-terminal leaves; edges longer than another
    path between their ends, on graphs of up to 1,500 nodes) and Wong's dual ascent
    (:func:`dual_ascent_bound`), then build a heuristic tree (:func:`_heuristic`): the best of
    networkx's Mehlhorn 2-approximation (``approximation.steiner_tree``; Mehlhorn 1988), the
    union of shortest paths from the root, and shortest-path-heuristic starts (Takahashi and
    Matsuyama 1980), improved by key-path exchange, key-vertex elimination (Duin and Voss 1997)
    and Steiner-vertex insertion/elimination with MST re-optimisation and non-terminal leaf
    pruning (Minoux 1990). Dual ascent and the heuristic stop on the deterministic
    :class:`WorkLimits`, so the result depends only on the input.

    ``method="exact"`` then solves the directed multi-commodity flow MILP of
    :func:`_flow_model` (Wong 1984, strengthened after Koch and Martin 1998) with HiGHS
    through PuLP (one thread, fixed seed); the bound is the MILP dual bound, status "optimal",
    or "time_limit" if ``time_limit_s`` stopped it (keeping the better of the MILP incumbent
    and the heuristic tree). ``method="heuristic"`` reports the dual-ascent bound, raised to
    the LP relaxation of the flow model when that has at most :data:`LP_MAX_FLOW_VARS` flow
    variables and dual ascent leaves a gap; status "optimal" when the bound meets the cost,
    else "feasible".

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with non-negative edge attribute ``weight`` (missing: 1).
    terminals : iterable
        Nodes to connect.
    weight : str
        Edge attribute to minimise.
    method : {"exact", "heuristic"}
        See above. "exact" on a model above :data:`EXACT_MAX_FLOW_VARS` flow variables falls
        back to "heuristic" (said in ``note``).
    root : node, optional
        Terminal used as the flow source (default: the first terminal).
    time_limit_s : float
        Wall-clock safety net [s] for the whole solve; the MILP gets what the earlier stages
        leave. Anything it stops early makes the status "time_limit" (see
        :class:`SteinerResult`); with the default limits it binds only on very large graphs
        or a heavily loaded machine.
    limits : WorkLimits, optional
        Deterministic work limits of dual ascent and the heuristic (default ``WorkLimits()``).

    Returns
    -------
    SteinerResult
    """
    t0 = time.monotonic()
    if method not in ("exact", "heuristic"):
        raise ValueError(f"method must be 'exact' or 'heuristic', got {method!r}")
    terminals = list(dict.fromkeys(terminals))
    missing = [t for t in terminals if t not in G]
    if missing:
        raise InputDataError(f"steiner_tree: terminal(s) {missing[:10]} are not nodes of the graph")
    if G.is_directed() or G.is_multigraph():
        raise ValueError("steiner_tree needs an undirected nx.Graph (not directed, not multi)")
    if len(terminals) <= 1:
        tree = nx.Graph(G.subgraph(terminals))
        return SteinerResult(
            tree,
            0.0,
            0.0,
            method,
            "optimal",
            0.0,
            "trivial",
            pd.DataFrame(columns=["u", "v", "cost"]),
            time.monotonic() - t0,
        )
    cg, index = compact_graph(G, weight)
    root = terminals[0] if root is None else root
    if root not in terminals:
        raise ValueError(f"root {root!r} must be one of the terminals")
    terms = np.array([index[t] for t in terminals], dtype=np.int64)
    sol = solve_compact(cg, terms, index[root], method, time_limit_s=time_limit_s, limits=limits)
    return to_result(G, cg, index, sol, t0)


# --------------------------------------------------------------------------------------------
# SteinLib
# --------------------------------------------------------------------------------------------


@dataclass
class SteinLibInstance:
    """A SteinLib instance: graph (edge attribute ``weight``), terminals, optimum if recorded."""

    name: str
    graph: nx.Graph
    terminals: list[int]
    optimum: float | None


def read_steinlib(path: str | Path) -> SteinLibInstance:
    """Read a SteinLib ``.stp`` file (Koch, Martin and Voss 2000, STP format version 1.0).

    Reads the ``Graph`` section (``E u v w`` lines; for parallel edges the cheapest is kept),
    the ``Terminals`` section (``T t`` lines), the ``Name`` of the ``Comment`` section and an
    ``Optimal`` line if the file carries one. Other sections are skipped.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    SteinLibInstance
    """
    path = Path(path)
    G = nx.Graph()
    terminals: list[int] = []
    name, optimum, section = path.stem, None, None
    for raw in path.read_text().splitlines():
        tok = raw.split()
        if not tok:
            continue
        head = tok[0].lower()
        if head == "section":
            section = tok[1].lower() if len(tok) > 1 else None
        elif head == "end":
            section = None
        elif section == "comment" and head == "name":
            name = raw.split(None, 1)[1].strip().strip('"')
        elif section == "graph" and head == "nodes":
            G.add_nodes_from(range(1, int(tok[1]) + 1))
        elif section == "graph" and head == "optimal":
            optimum = float(tok[1])
        elif section == "graph" and head in ("e", "a"):
            a, b, w = int(tok[1]), int(tok[2]), float(tok[3])
            if a != b and (not G.has_edge(a, b) or G.edges[a, b]["weight"] > w):
                G.add_edge(a, b, weight=w)
        elif section == "terminals" and head == "t":
            terminals.append(int(tok[1]))
    return SteinLibInstance(name, G, terminals, optimum)
