"""Steiner tree and forest drivers: reductions, dual ascent, heuristic, then LP or MILP."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import csgraph

from ..errors import InputDataError
from . import bounds, flow, graph, heuristic
from .graph import CompactGraph
from .limits import Budget, WorkLimits

#: Label of the virtual root that :func:`steiner_forest` joins to every root at zero cost (a
#: tuple, so that it cannot clash with a node label of a route graph or a SteinLib graph).
_VIRTUAL_ROOT = ("__virtual_root__",)


@dataclass
class SteinerResult:
    """A Steiner tree (or forest, for :func:`steiner_forest`) with its cost and a lower bound.

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


@dataclass
class _Solution:
    """What :func:`_solve_compact` returns: tree edges (indices into the compact graph) and bound.

    ``lower_bound``, ``status``, ``bound_method`` and ``note`` are as in :class:`SteinerResult`.
    """

    edges: np.ndarray
    lower_bound: float
    method: str
    status: str
    bound_method: str
    note: str = ""


@dataclass
class _Log:
    """Notes for the result, and the stages the wall-clock safety net cut short."""

    time_limit_s: float
    notes: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)

    def solution(self, edges, lower_bound, method, status, bound_method) -> _Solution:
        """The :class:`_Solution`, its status "time_limit" if a stage was cut short."""
        if self.timed_out:
            self.notes.append(
                f"the time_limit_s = {self.time_limit_s:g} s safety net cut short: "
                f"{', '.join(self.timed_out)}; this result may differ between runs (raise "
                f"time_limit_s for a reproducible one)"
            )
            status = "time_limit"
        return _Solution(edges, lower_bound, method, status, bound_method, "; ".join(self.notes))


def _components(cg: CompactGraph, terms: np.ndarray, root: int) -> np.ndarray:
    """Connected-component label of every node; raises if a terminal is not with the root."""
    _, lab = csgraph.connected_components(cg.csr(), directed=False)
    if np.unique(lab[terms]).size > 1:
        bad = [cg.labels[t] for t in terms if lab[t] != lab[root]]
        raise InputDataError(
            f"graph: terminal(s) {bad[:10]} are not connected to {cg.labels[root]!r}; "
            f"join them to the graph or leave them out."
        )
    return lab


def _dual_ascent_stage(cg, terms, root, mask, limits: WorkLimits, deadline, log: _Log) -> float:
    """Dual-ascent bound on the reduced graph, its stopping reason noted in ``log``."""
    da, end = bounds.dual_ascent(cg, terms, root, mask, limits.dual_ascent_iterations, deadline)
    if end == "iterations":
        log.notes.append(
            f"dual ascent stopped at its limit of {limits.dual_ascent_iterations} steps"
        )
    elif end == "time_limit":
        log.timed_out.append("dual ascent")
    return da


def _heuristic_stage(cg, terms, root, is_term, mask, limits, deadline, target, log: _Log):
    """Heuristic tree on the reduced graph (edge indices of ``cg``), its work noted in ``log``."""
    budget = Budget(limits.heuristic_work, deadline)
    sub = CompactGraph(cg.labels, cg.u[mask], cg.v[mask], cg.w[mask])
    back = np.flatnonzero(mask)
    best = back[heuristic.heuristic_tree(sub, terms, root, is_term, limits, budget, target=target)]
    if budget.timed_out:
        log.timed_out.append("heuristic")
    elif budget.exhausted or budget.cut_short:
        log.notes.append(
            f"heuristic work limit ({limits.heuristic_work:,} arc scans) reached"
            + (f": {budget.cut_short}" if budget.cut_short else "")
        )
    return best


def _exact_stage(cg, mask, terms, root, is_term, best, da, deadline, log: _Log) -> _Solution:
    """Solve the flow MILP; keep the better of its tree and the heuristic's ``best``."""
    cost = graph.tree_cost(cg, best)
    left = deadline - time.monotonic()
    edges, obj, bound, status = flow.solve_flow(cg, mask, terms, root, False, left)
    if edges is not None:
        edges = graph.prune(cg, edges, is_term)
        if graph.tree_cost(cg, edges) <= cost + 1e-9:
            best = edges
    if status == "time_limit":
        log.timed_out.append("MILP")
    if status == "optimal" and edges is not None:
        log.timed_out.clear()  # the MILP optimum does not depend on the earlier stages
        log.notes.clear()
        return log.solution(best, (bound if bound > 0 else obj), "exact", status, "milp")
    lb, bm = (bound, "milp") if bound >= da else (da, "dual_ascent")
    return log.solution(best, lb, "exact", "time_limit", bm)


def _bound_stage(cg, mask, terms, root, best, da, size, deadline, log: _Log) -> _Solution:
    """Heuristic result: dual-ascent bound, raised to the LP bound if a gap is left."""
    cost = graph.tree_cost(cg, best)
    lb, bound_method = da, "dual_ascent"
    status = "optimal" if lb >= cost - 1e-9 * max(1.0, cost) else "feasible"
    if status == "feasible" and size <= flow.LP_MAX_FLOW_VARS:
        left = max(deadline - time.monotonic(), 5.0)
        _, _, lp, st = flow.solve_flow(cg, mask, terms, root, True, left)
        if st != "optimal":
            log.timed_out.append("LP relaxation")
        elif lp > lb:
            lb, bound_method = lp, "lp"
            status = "optimal" if lb >= cost - 1e-9 * max(1.0, cost) else "feasible"
    return log.solution(best, lb, "heuristic", status, bound_method)


def _solve_compact(
    cg: CompactGraph,
    terms: np.ndarray,
    root: int,
    method: str = "heuristic",
    *,
    time_limit_s: float = 60.0,
    limits: WorkLimits | None = None,
) -> _Solution:
    """Steiner tree on a compact graph: reductions, dual ascent, heuristic, then LP or MILP.

    See :func:`steiner_tree` for the method; this is its array core, also used by
    :func:`steiner_forest` on a graph with a virtual root.

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

    Returns
    -------
    _Solution
    """
    limits = WorkLimits() if limits is None else limits
    deadline = time.monotonic() + time_limit_s
    terms = np.unique(np.asarray(terms, dtype=np.int64))
    if terms.size <= 1:
        return _Solution(np.empty(0, np.int64), 0.0, method, "optimal", "trivial")
    lab = _components(cg, terms, root)
    is_term = np.zeros(cg.n, bool)
    is_term[terms] = True
    mask = graph.reduce(cg, is_term, sd_test=cg.n <= 1500) & (lab[cg.u] == lab[root])
    size = 2 * int(mask.sum()) * (terms.size - 1)
    log = _Log(time_limit_s)
    if method == "exact" and size > flow.EXACT_MAX_FLOW_VARS:
        method = "heuristic"
        log.notes.append(f"flow model too large ({size} > {flow.EXACT_MAX_FLOW_VARS} variables)")
    da = _dual_ascent_stage(cg, terms, root, mask, limits, deadline, log)
    best = _heuristic_stage(cg, terms, root, is_term, mask, limits, deadline, da, log)
    if method == "exact":
        return _exact_stage(cg, mask, terms, root, is_term, best, da, deadline, log)
    return _bound_stage(cg, mask, terms, root, best, da, size, deadline, log)


def _to_result(
    G: nx.Graph,
    cg: CompactGraph,
    index: dict,
    sol: _Solution,
    t0: float,
    drop=(),
) -> SteinerResult:
    """A :class:`SteinerResult` on ``G`` from a compact-graph :class:`_Solution`.

    Parameters
    ----------
    G : networkx.Graph
        The graph ``cg`` was made from (by :func:`.graph.compact_graph`).
    cg : CompactGraph
        Possibly ``G``'s compact graph with extra (virtual) nodes appended.
    index : dict
        ``{label: index}`` of ``G``'s nodes in ``cg``.
    sol : _Solution
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


def _trivial(tree: nx.Graph, method: str, t0: float) -> SteinerResult:
    """Result of cost 0 for fewer than two terminals (or none left to join)."""
    edges = pd.DataFrame(columns=["u", "v", "cost"])
    return SteinerResult(
        tree, 0.0, 0.0, method, "optimal", 0.0, "trivial", edges, time.monotonic() - t0
    )


def _check_graph(G: nx.Graph, caller: str) -> None:
    if G.is_directed() or G.is_multigraph():
        raise ValueError(f"{caller} needs an undirected nx.Graph (not directed, not multi)")


def _check_method(method: str) -> None:
    if method not in ("exact", "heuristic"):
        raise ValueError(f"method must be 'exact' or 'heuristic', got {method!r}")


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
    (:func:`.bounds.dual_ascent_bound`), then build a heuristic tree
    (:func:`.heuristic.heuristic_tree`): the best of networkx's Mehlhorn 2-approximation
    (``approximation.steiner_tree``; Mehlhorn 1988), the union of shortest paths from the root,
    and shortest-path-heuristic starts (Takahashi and Matsuyama 1980), improved by key-path
    exchange, key-vertex elimination (Duin and Voss 1997) and Steiner-vertex
    insertion/elimination with MST re-optimisation and non-terminal leaf pruning (Minoux 1990).
    Dual ascent and the heuristic stop on the deterministic :class:`WorkLimits`, so the result
    depends only on the input.

    ``method="exact"`` then solves the directed multi-commodity flow MILP of
    :func:`.flow.flow_model` (Wong 1984, strengthened after Koch and Martin 1998) with HiGHS
    (one thread, fixed seed); the bound is the MILP dual bound, status "optimal",
    or "time_limit" if ``time_limit_s`` stopped it (keeping the better of the MILP incumbent
    and the heuristic tree). ``method="heuristic"`` reports the dual-ascent bound, raised to
    the LP relaxation of the flow model when that has at most
    :data:`.flow.LP_MAX_FLOW_VARS` flow variables and dual ascent leaves a gap; status
    "optimal" when the bound meets the cost, else "feasible".

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with non-negative edge attribute ``weight`` (missing: 1).
    terminals : iterable
        Nodes to connect.
    weight : str
        Edge attribute to minimise.
    method : {"exact", "heuristic"}
        See above. "exact" on a model above :data:`.flow.EXACT_MAX_FLOW_VARS` flow variables
        falls back to "heuristic" (said in ``note``).
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
    _check_method(method)
    terminals = list(dict.fromkeys(terminals))
    missing = [t for t in terminals if t not in G]
    if missing:
        raise InputDataError(f"steiner_tree: terminal(s) {missing[:10]} are not nodes of the graph")
    _check_graph(G, "steiner_tree")
    if len(terminals) <= 1:
        return _trivial(nx.Graph(G.subgraph(terminals)), method, t0)
    cg, index = graph.compact_graph(G, weight)
    root = terminals[0] if root is None else root
    if root not in terminals:
        raise ValueError(f"root {root!r} must be one of the terminals")
    terms = np.array([index[t] for t in terminals], dtype=np.int64)
    sol = _solve_compact(cg, terms, index[root], method, time_limit_s=time_limit_s, limits=limits)
    return _to_result(G, cg, index, sol, t0)


def steiner_forest(
    G: nx.Graph,
    terminals,
    roots,
    *,
    weight: str = "weight",
    method: str = "exact",
    time_limit_s: float = 60.0,
    limits: WorkLimits | None = None,
) -> SteinerResult:
    """Minimum-weight forest of ``G`` joining every terminal to one of the ``roots``.

    Each tree of the forest holds exactly one root (roots are never joined to each other), and
    roots that no terminal needs are left out. A virtual root joined to every root at zero cost
    turns the problem into one Steiner tree (terminals: ``terminals`` and the virtual root),
    solved as in :func:`steiner_tree` (same reductions, bounds, heuristic, MILP and work
    limits, so the result is as reproducible); removing the virtual root leaves the forest.

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with non-negative edge attribute ``weight`` (missing: 1).
    terminals : iterable
        Nodes to connect; those that are also roots need nothing.
    roots : iterable
        Nodes any terminal may connect to (at least one).
    weight : str
        Edge attribute to minimise.
    method : {"exact", "heuristic"}
        As for :func:`steiner_tree`.
    time_limit_s : float
        Wall-clock safety net [s] for the whole solve, as for :func:`steiner_tree`.
    limits : WorkLimits, optional
        Deterministic work limits (default ``WorkLimits()``).

    Returns
    -------
    SteinerResult
        ``tree`` is a forest (one component per root used); ``cost`` and ``lower_bound`` are
        in the units of ``weight``.
    """
    t0 = time.monotonic()
    terminals = list(dict.fromkeys(terminals))
    roots = list(dict.fromkeys(roots))
    missing = [x for x in terminals + roots if x not in G]
    if missing:
        raise InputDataError(f"steiner_forest: node(s) {missing[:10]} are not in the graph")
    if not roots:
        raise InputDataError("steiner_forest: no root given; at least one is needed")
    _check_method(method)
    terminals = [t for t in terminals if t not in set(roots)]
    if not terminals:
        return _trivial(nx.Graph(), "exact", t0)
    _check_graph(G, "steiner_forest")
    cg, index = graph.compact_graph(G, weight)
    vroot = cg.n
    r = np.array([index[x] for x in roots], dtype=np.int64)
    vr = CompactGraph(
        cg.labels + [_VIRTUAL_ROOT],
        np.r_[cg.u, np.full(len(r), vroot)],
        np.r_[cg.v, r],
        np.r_[cg.w, np.zeros(len(r))],
    )
    terms = np.array([index[t] for t in terminals] + [vroot], dtype=np.int64)
    sol = _solve_compact(vr, terms, vroot, method, time_limit_s=time_limit_s, limits=limits)
    return _to_result(G, vr, index, sol, t0, drop={_VIRTUAL_ROOT})
