"""Local search on Steiner trees: key-path exchange, key-vertex elimination, vertex moves."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from . import graph
from .graph import CompactGraph
from .limits import Budget, WorkLimits


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


def key_path_exchange(cg, csr, edges, is_term, limits: WorkLimits, budget: Budget):
    """Local search: replace a key path by a shorter path joining the two parts it separates.

    Key-path exchange after Duin and Voss (1997, "Efficient path and vertex exchange in Steiner
    tree algorithms", Networks 29, 89-105) and Uchoa and Werneck (2010, "Fast local search for
    Steiner trees in graphs", ALENEX). The two sides come from an Euler tour of the tree; the
    reconnecting path is a multi-source Dijkstra from the smaller side, bounded by the key
    path's cost. Passes (at most ``limits.move_passes``), each closed by :func:`.graph.mst_prune`,
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
            dist, pred = graph.dijkstra(csr, np.flatnonzero(side == src), budget, limit=pcost)
            targets = np.flatnonzero(side == dst)
            t = int(targets[np.argmin(dist[targets])])
            if not dist[t] < pcost - 1e-9 * max(1.0, pcost):
                continue
            new = graph.path_edges(cg, pred, t, side == src)
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
        new_edges = graph.mst_prune(cg, np.array(sorted(in_tree), dtype=np.int64), is_term)
        if not improved or graph.tree_cost(cg, new_edges) >= graph.tree_cost(cg, edges) - 1e-9:
            return (
                new_edges if graph.tree_cost(cg, new_edges) <= graph.tree_cost(cg, edges) else edges
            )
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


def _vertex_moves(cg, csr, edges, is_term, limits: WorkLimits, budget: Budget) -> np.ndarray:
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
        on = graph.nodes_on(cg, edges)
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
            if not graph.improves(float(md.sum()), cost):
                continue
            new = np.array(
                [cg.pair[(a, b)] for a, b in zip(ext[mr].tolist(), ext[mc].tolist(), strict=True)],
                dtype=np.int64,
            )
            edges, cost, improved = new, float(cg.weff[new].sum()), True
            on = graph.nodes_on(cg, edges)
            nodes, loc, lu, lv, lw, lterm = induced(on)
            k = nodes.size
        if not improved:
            break
    return edges


def _key_vertex_elimination(cg, csr, edges, is_term, limits: WorkLimits, budget: Budget):
    """Local search: drop a Steiner key vertex with its key paths, rejoin the parts by an MST.

    Key-vertex elimination of Duin and Voss (1997) as used by Uchoa and Werneck (2010): the
    parts left are joined by a minimum spanning tree over their pairwise shortest paths
    (Dijkstra from each part, bounded by the removed cost); the result is re-optimised by
    :func:`.graph.mst_prune` and kept if cheaper. A pass ends at its first improving move; at most
    ``limits.move_passes`` passes.
    """
    cost = graph.tree_cost(cg, edges)
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
                dist, pred = graph.dijkstra(csr, members[i], budget, limit=removed)
                for j in range(i + 1, k):
                    t = int(members[j][np.argmin(dist[members[j]])])
                    if np.isfinite(dist[t]):
                        d[i, j] = d[j, i] = dist[t]
                        link[(i, j)] = graph.path_edges(cg, pred, t, src)
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
            new = graph.mst_prune(
                cg, np.unique(np.r_[rest, np.array(add, dtype=np.int64)]), is_term
            )
            if graph.improves(graph.tree_cost(cg, new), cost):
                edges, cost, improved = new, graph.tree_cost(cg, new), True
                break
        if not improved:
            break
    return edges


def improve(cg, csr, edges, is_term, limits: WorkLimits, budget: Budget) -> np.ndarray:
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
        cost = graph.tree_cost(cg, edges)
        edges = key_path_exchange(cg, csr, edges, is_term, limits, budget)
        edges = _key_vertex_elimination(cg, csr, edges, is_term, limits, budget)
        if graph.improves(graph.tree_cost(cg, edges), cost):
            continue
        edges = _vertex_moves(cg, csr, edges, is_term, limits, budget)
        if not graph.improves(graph.tree_cost(cg, edges), cost):
            break
    return edges
