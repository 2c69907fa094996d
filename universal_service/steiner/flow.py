"""The exact Steiner tree model: a directed multi-commodity flow MILP, and its LP relaxation."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .. import milp
from .graph import CompactGraph

#: Seed of HiGHS's random number generator, fixed so that MILP and LP solves repeat exactly.
RANDOM_SEED = 0

#: Largest multi-commodity flow model (arcs x commodities) solved by default: the exact MILP
#: beyond it falls back to the heuristic, the heuristic's bound to dual ascent beyond LP_MAX.
EXACT_MAX_FLOW_VARS = 400_000
LP_MAX_FLOW_VARS = 150_000

#: Relative MIP gap at which HiGHS stops: small enough that "optimal" means optimal. [-]
MIP_GAP = 1e-9


class _Rows:
    """Constraint rows collected as coordinate triplets, bounds and names."""

    def __init__(self) -> None:
        self.n = 0
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.names: list[str] = []

    def add(self, rows, cols, vals, lower, upper, names: list[str]) -> None:
        """Append ``len(names)`` rows; ``rows`` count from 0 within this block."""
        self.r.append(self.n + np.asarray(rows, dtype=np.int64))
        self.c.append(np.asarray(cols, dtype=np.int64))
        self.v.append(np.asarray(vals, dtype=float))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), len(names)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), len(names)))
        self.names += names
        self.n += len(names)

    def matrix(self, n_cols: int) -> sparse.csc_matrix:
        data = (np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c)))
        return sparse.coo_matrix(data, shape=(self.n, n_cols)).tocsc()


def _arcs(cg: CompactGraph, mask: np.ndarray, root: int):
    """Tail, head and edge of every arc: both directions of each edge in ``mask``, none into root."""
    edges = np.flatnonzero(mask)
    tail = np.column_stack([cg.u[edges], cg.v[edges]]).ravel()
    head = np.column_stack([cg.v[edges], cg.u[edges]]).ravel()
    edge = np.repeat(edges, 2)
    keep = head != root
    return tail[keep], head[keep], edge[keep]


def _degree_rows(rows: _Rows, tail, head, nodes, root: int, is_term) -> None:
    """In-degree 1 at terminals, <= 1 and <= out-degree at Steiner nodes, no arc out unless in.

    The rows go node by node (in-degree, out-degree, then one per arc leaving the node), the
    order of the former PuLP model, so that HiGHS takes the same path on the same model.
    """
    n_arcs = tail.size
    arc = np.arange(n_arcs)
    inner = nodes[nodes != root]
    term = is_term[inner]
    steiner = inner[~term]
    into, out = np.isin(head, steiner), np.isin(tail, steiner)
    leave = arc[out]  # y[a] <= in-degree of a's tail, for every arc a leaving a Steiner node
    order_in = np.argsort(head, kind="stable")
    in_ptr = np.searchsorted(head[order_in], np.arange(len(is_term) + 1))
    count = in_ptr[tail[leave] + 1] - in_ptr[tail[leave]]
    first = np.cumsum(count) - count
    pos = np.arange(count.sum()) - np.repeat(first, count) + np.repeat(in_ptr[tail[leave]], count)
    n_in, n_st, n_lv = inner.size, steiner.size, leave.size
    r = np.r_[
        np.searchsorted(inner, head),  # the head is never the root
        n_in + np.searchsorted(steiner, head[into]),
        n_in + np.searchsorted(steiner, tail[out]),
        n_in + n_st + np.arange(n_lv),
        n_in + n_st + np.repeat(np.arange(n_lv), count),
    ]
    c = np.r_[arc, arc[into], arc[out], leave, order_in[pos]]
    v = np.r_[np.ones(n_arcs + into.sum()), -np.ones(out.sum()), np.ones(n_lv), -np.ones(pos.size)]
    lower = np.r_[np.where(term, 1.0, -np.inf), np.full(n_st + n_lv, -np.inf)]
    upper = np.r_[np.ones(n_in), np.zeros(n_st + n_lv)]
    names = (
        [f"indeg_{x}" for x in inner.tolist()]
        + [f"outdeg_{x}" for x in steiner.tolist()]
        + [
            f"leave_{a}_{b}"
            for a, b in zip(tail[leave].tolist(), head[leave].tolist(), strict=True)
        ]
    )
    order = np.lexsort((np.r_[np.zeros(n_in), np.ones(n_st), 2 + np.arange(n_lv)],
                        np.r_[inner, steiner, tail[leave]]))  # fmt: skip
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    rows.add(rank[r], c, v, lower[order], upper[order], [names[i] for i in order.tolist()])


def flow_model(
    cg: CompactGraph, mask: np.ndarray, terms: np.ndarray, root: int, relax: bool
) -> tuple[milp.Problem, np.ndarray]:
    """Directed multi-commodity flow model (Wong 1984) with degree strengthening, as arrays.

    Arc variables ``y[i,j]`` (binary, or in [0, 1] when ``relax``), one commodity per
    non-root terminal ``k`` sending one unit from the root, ``f[k,i,j] <= y[i,j]``. Added
    valid inequalities (Koch and Martin 1998, "Solving Steiner tree problems in graphs to
    optimality", Networks 32, 207-232; Polzin and Daneshmand 2001, "A comparison of Steiner
    tree relaxations", Discrete Applied Mathematics 112, 241-261): in-degree 1 at non-root
    terminals, 0 at the root (no arc enters it); <= 1 at Steiner nodes; an arc may leave a
    Steiner node only if an arc enters it; a Steiner node's in-degree is at most its
    out-degree; ``y[i,j] + y[j,i] <= 1``. Objective: sum of ``w * y``.

    Parameters
    ----------
    cg : CompactGraph
    mask : numpy.ndarray of bool
        Edges of ``cg`` in the model.
    terms : numpy.ndarray
        Terminal node indices (``root`` among them).
    root : int
        Source of every commodity.
    relax : bool
        Continuous ``y`` (the LP relaxation).

    Returns
    -------
    tuple of milp.Problem and numpy.ndarray
        The model (columns ``y_i_j`` and ``f_k_i_j`` in name order, rows named as
        ``indeg_i``, ``outdeg_i``, ``leave_i_j``, ``anti_i_j``, ``flow_k_i``, ``cap_k_i_j``) and,
        per column, the edge of ``cg`` under its arc for a ``y`` column, -1 for an ``f`` column.
    """
    tail, head, edge = _arcs(cg, mask, root)
    n_arcs = tail.size
    is_term = np.zeros(cg.n, bool)
    is_term[terms] = True
    nodes = np.unique(np.r_[tail, head])
    commodities = [k for k in terms.tolist() if k != root]
    n_cols = n_arcs * (1 + len(commodities))
    arc = np.arange(n_arcs)
    rows = _Rows()
    _degree_rows(rows, tail, head, nodes, root, is_term)
    both = np.flatnonzero(np.bincount(edge, minlength=len(cg.w))[edge] == 2)
    one, two = both[0::2], both[1::2]  # the two arcs of an edge are adjacent
    lo = np.minimum(tail[one], head[one])
    hi = np.maximum(tail[one], head[one])
    rows.add(
        np.repeat(np.arange(one.size), 2),
        np.column_stack([one, two]).ravel(),
        np.ones(2 * one.size),
        -np.inf,
        1.0,
        [f"anti_{a}_{b}" for a, b in zip(lo.tolist(), hi.tolist(), strict=True)],
    )
    at_head, at_tail = np.searchsorted(nodes, head), np.searchsorted(nodes, tail)
    pairs = [f"{a}_{b}" for a, b in zip(tail.tolist(), head.tolist(), strict=True)]
    signs = np.r_[np.ones(n_arcs), -np.ones(n_arcs)]
    for i, k in enumerate(commodities):
        f = n_arcs * (1 + i) + arc
        rhs = np.where(nodes == k, 1.0, np.where(nodes == root, -1.0, 0.0))
        names = [f"flow_{k}_{x}" for x in nodes.tolist()]
        rows.add(np.r_[at_head, at_tail], np.r_[f, f], signs, rhs, rhs, names)
        names = [f"cap_{k}_{p}" for p in pairs]
        rows.add(np.r_[arc, arc], np.r_[f, arc], signs, -np.inf, 0.0, names)
    # Columns in name order, as the former PuLP model passed them to HiGHS (see _degree_rows).
    names = np.array([f"y_{p}" for p in pairs] + [f"f_{k}_{p}" for k in commodities for p in pairs])
    col = np.argsort(names, kind="stable")
    problem = milp.Problem(
        c=np.r_[cg.w[edge], np.zeros(n_cols - n_arcs)][col],
        A=rows.matrix(n_cols)[:, col],
        row_lower=np.concatenate(rows.lower),
        row_upper=np.concatenate(rows.upper),
        col_lower=np.zeros(n_cols),
        col_upper=np.r_[np.ones(n_arcs), np.full(n_cols - n_arcs, np.inf)][col],
        integrality=np.r_[np.full(n_arcs, not relax), np.zeros(n_cols - n_arcs, bool)][col],
        col_names=tuple(names[col].tolist()),
        row_names=tuple(rows.names),
        name="steiner_flow",
    )
    return problem, np.r_[edge, np.full(n_cols - n_arcs, -1)][col]


def solve_flow(cg, mask, terms, root, relax, time_limit_s):
    """Solve the flow model with HiGHS; return (edges or None, objective, bound, status).

    HiGHS runs through :func:`universal_service.milp.solve` on one thread with a fixed
    :data:`RANDOM_SEED` and a relative gap of :data:`MIP_GAP`, so a solve that ends by itself
    repeats exactly; ``time_limit_s`` [s] (at least 1 s) is a safety net and a solve it stops
    has status "time_limit". With ``relax`` the LP relaxation is solved: edges are None and the
    bound is the LP optimum (0 if the LP did not finish).
    """
    problem, edge = flow_model(cg, mask, terms, root, relax)
    res = milp.solve(
        problem,
        relax=relax,
        time_limit_s=max(float(time_limit_s), 1.0),
        mip_gap=MIP_GAP,
        threads=1,
        seed=RANDOM_SEED,
        parallel="off",
    )
    obj = float(res.objective) if res.x is not None else np.inf
    if relax:
        ok = res.status == "optimal"
        return None, obj, (obj if ok else 0.0), "optimal" if ok else "time_limit"
    bound = float(res.bound) if np.isfinite(res.bound) else 0.0
    status = "optimal" if res.status == "optimal" else "time_limit"
    if res.x is None:
        return None, np.inf, bound, status
    chosen = np.unique(edge[(edge >= 0) & (res.x > 0.5)])
    return chosen.astype(np.int64), obj, bound, status
