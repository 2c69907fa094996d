"""Graphs as arrays for the Steiner solvers: compaction, tree helpers and safe reductions."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import InputDataError
from .limits import Budget


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


def prune(cg: CompactGraph, edges: np.ndarray, is_term: np.ndarray) -> np.ndarray:
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


def nodes_on(cg: CompactGraph, edges: np.ndarray) -> np.ndarray:
    """Node mask of the end points of ``edges``."""
    on = np.zeros(cg.n, bool)
    on[cg.u[edges]] = True
    on[cg.v[edges]] = True
    return on


def mst_prune(cg: CompactGraph, edges: np.ndarray, is_term: np.ndarray) -> np.ndarray:
    """MST of the subgraph of ``G`` induced by the tree's nodes, then non-terminal leaf pruning."""
    edges = np.asarray(edges, dtype=np.int64)
    if len(edges) == 0:
        return edges
    on = nodes_on(cg, edges)
    mst = csgraph.minimum_spanning_tree(cg.csr(on[cg.u] & on[cg.v])).tocoo()
    new = [cg.pair[(a, b)] for a, b in zip(mst.row.tolist(), mst.col.tolist(), strict=True)]
    return prune(cg, np.array(new, dtype=np.int64), is_term)


def spans(cg: CompactGraph, edges: np.ndarray, terms: np.ndarray) -> bool:
    """True if ``edges`` form a tree joining every terminal (guard on every local-search result)."""
    if len(edges) == 0:
        return len(terms) <= 1
    mask = np.zeros(len(cg.w), bool)
    mask[edges] = True
    _, lab = csgraph.connected_components(cg.csr(mask), directed=False)
    n_nodes = np.unique(np.r_[cg.u[edges], cg.v[edges]]).size
    return np.unique(lab[terms]).size == 1 and len(edges) == n_nodes - 1


def tree_cost(cg: CompactGraph, edges: np.ndarray) -> float:
    """Sum of the weights of ``edges`` [weight units]."""
    return float(cg.w[np.asarray(edges, dtype=np.int64)].sum())


def improves(new: float, old: float) -> bool:
    """True if cost ``new`` is below ``old`` by more than a relative 1e-9."""
    return new < old - 1e-9 * max(1.0, abs(old))


def path_edges(cg: CompactGraph, pred: np.ndarray, end: int, stop: np.ndarray) -> list[int]:
    """Edge indices of the predecessor path from ``end`` back to the first node in ``stop``."""
    out, x = [], end
    while not stop[x]:
        p = int(pred[x])
        out.append(cg.pair[(p, x)])
        x = p
    return out


def dijkstra(csr: sparse.csr_matrix, sources: np.ndarray, budget: Budget, limit=np.inf):
    """Multi-source Dijkstra (distances, predecessors), charged its settled nodes' arcs."""
    n = max(csr.shape[0], 1)
    dist, pred, _ = csgraph.dijkstra(
        csr, indices=sources, min_only=True, return_predecessors=True, limit=limit
    )
    budget.spend(0.4 * np.isfinite(dist).sum() * csr.nnz / n + n / 8)
    return dist, pred


def reduce(cg: CompactGraph, is_term: np.ndarray, sd_test: bool) -> np.ndarray:
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
