"""Shared-trench fiber design integrated with the plan: iterate the plan MILP and a Steiner forest.

The plan MILP first prices fiber to each village as if it dug its own trench to the nearest
point of presence. Villages that get fiber then share trenches: their least-cost network is a
Steiner forest over the route graph (:func:`universal_service.network.shared_trench`, with a
lower bound). A plan is evaluated by splitting each tree edge's cost equally among the fiber
villages downstream of it, so the shares sum to the tree's cost (:func:`attribute_tree`). The
MILP is then solved again with each village's fiber at its marginal trench given the rest of
the forest: the private path it alone keeps (:func:`marginal_shares`) for villages on the tree,
the cheapest spur to the tree for the others; the Steiner forest is recomputed for the new fiber
set; and the best evaluated plan is kept. (Pricing the re-solve at the equal split instead made
the fiber set oscillate between about 93 and 104 villages on the bundled region without getting
below CNY 169.5 M; at the marginal trench each re-solve was cheaper than the last, to 168.3 M
after two.) This is a
heuristic for the joint (prize-collecting Steiner) problem; its bound comes from the same plan
MILP with each fiber trench priced at a lower bound of its share of any Steiner forest (the
ball bound, :func:`trench_lower_bounds`), so the reported gap is the joint problem's own.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import xarray as xr

from . import appraisal, costs, network, optimize, steiner
from .catalog import Catalog
from .milp import relative_gap
from .optimize.solve import price_plan

log = logging.getLogger(__name__)

#: Work limits of the Steiner forests inside :func:`design`: the Mehlhorn and shortest-path-tree
#: starts, each locally improved, without the further shortest-path-heuristic starts of
#: ``steiner.WorkLimits()``. On the bundled region's three to four forests per plan (67-105 fiber
#: villages, a 10,125-node route graph) the further starts found no cheaper forest and took 4.5 s
#: of each forest's 5.3 s; each forest's gap to its dual-ascent bound is reported
#: (``fiber_trench_gap``: 0.1-0.3% there).
DESIGN_LIMITS = steiner.WorkLimits(sph_starts=0)


@dataclass
class FiberDesign:
    """The fiber part of a plan, designed with shared trenches.

    Attributes
    ----------
    plan : xarray.Dataset
        The chosen plan; fiber villages' ``cost`` is their fixed cost plus their share of the
        shared trench [CNY], so ``attrs["total_cost"]`` is the plan's cost with shared trenches.
    steiner : steiner.SteinerResult or None
        The shared-trench forest of the plan's fiber villages (None when no village has fiber).
    lines : geopandas.GeoDataFrame
        One line per trench edge: ``length_m``, ``weighted_length_m``, ``capex_cny`` (edge capex
        at the catalog's per-km price), ``kind``.
    per_village_trench_m : float
        Sum of the fiber villages' own least-cost routes [m flat-equivalent].
    history : pandas.DataFrame
        One row per iteration: fiber villages, MILP objective, evaluated cost, forest cost and bound.
    """

    plan: xr.Dataset
    steiner: steiner.SteinerResult | None
    lines: gpd.GeoDataFrame
    per_village_trench_m: float
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def shared_trench_m(self) -> float:
        """Cost of the shared forest [m flat-equivalent]."""
        return float(self.steiner.cost) if self.steiner is not None else 0.0

    @property
    def saving_share(self) -> float:
        """Share of trench saved by sharing against per-village routes [-]."""
        if self.per_village_trench_m <= 0:
            return 0.0
        return 1.0 - self.shared_trench_m / self.per_village_trench_m


def attribute_tree(
    tree: nx.Graph, roots: list[str], terminals: list[str], G: nx.Graph
) -> pd.DataFrame:
    """Split each tree edge's cost equally among the terminals downstream of it.

    Parameters
    ----------
    tree : networkx.Graph
        A forest whose components each contain a root (PoP).
    roots : list of str
        Root nodes (PoPs) that may appear in ``tree``.
    terminals : list of str
        Nodes that pay (fiber villages).
    G : networkx.Graph
        Route graph holding edge ``weight`` [m flat-equivalent] and ``length_m`` [m].

    Returns
    -------
    pandas.DataFrame
        Index: terminal node ids; columns ``weighted_m`` and ``length_m``: each terminal's
        share. The shares of all terminals sum to the tree's totals.
    """
    term = set(terminals)
    parent: dict[str, str | None] = {}
    order: list[str] = []
    for r in roots:
        if r not in tree or r in parent:
            continue
        parent[r] = None
        for a, b in nx.bfs_edges(tree, r):
            parent[b] = a
        order.extend([r, *(b for _, b in nx.bfs_edges(tree, r))])
    count = {n: int(n in term) for n in order}
    for n in reversed(order):
        p = parent[n]
        if p is not None:
            count[p] += count[n]
    acc_w: dict[str, float] = {}
    acc_l: dict[str, float] = {}
    for n in order:
        p = parent[n]
        if p is None:
            acc_w[n] = acc_l[n] = 0.0
            continue
        e = G.edges[p, n]
        k = max(count[n], 1)
        acc_w[n] = acc_w[p] + float(e["weight"]) / k
        acc_l[n] = acc_l[p] + float(e.get("length_m", e["weight"])) / k
    ids = [t for t in terminals if t in acc_w]
    return pd.DataFrame(
        {"weighted_m": [acc_w[t] for t in ids], "length_m": [acc_l[t] for t in ids]}, index=ids
    )


def marginal_shares(
    tree: nx.Graph, roots: list[str], terminals: list[str], G: nx.Graph
) -> pd.DataFrame:
    """The trench each terminal alone keeps in the forest: what removing it would save.

    A terminal that is a leaf of ``tree`` keeps its private path: the edges from it up to the
    first node that is a root, another terminal or a branching node (degree 3 or more), all of
    which stay when it goes (pruning the forest after removing a terminal drops exactly that
    path). A terminal that other terminals' paths pass through (degree 2 or more in the tree)
    keeps nothing.

    Parameters
    ----------
    tree : networkx.Graph
        A forest whose components each contain a root (PoP).
    roots : list of str
        Root nodes (PoPs).
    terminals : list of str
        The forest's terminals (fiber villages).
    G : networkx.Graph
        Route graph holding edge ``weight`` [m flat-equivalent] and ``length_m`` [m].

    Returns
    -------
    pandas.DataFrame
        Index: the terminals in ``tree``; ``weighted_m`` and ``length_m`` of each one's private
        path. Unlike :func:`attribute_tree` the shares do not add up to the forest: the trench
        that several terminals share is nobody's marginal cost.
    """
    stop = set(roots) | set(terminals)
    ids, weighted, length = [], [], []
    for t in terminals:
        if t not in tree:
            continue
        w = m = 0.0
        if t not in roots and tree.degree(t) == 1:
            prev, x = t, next(iter(tree[t]))
            while True:
                e = G.edges[prev, x]
                w += float(e["weight"])
                m += float(e.get("length_m", e["weight"]))
                if x in stop or tree.degree(x) != 2:
                    break
                prev, x = x, next(y for y in tree[x] if y != prev)
        ids.append(t)
        weighted.append(w)
        length.append(m)
    return pd.DataFrame({"weighted_m": weighted, "length_m": length}, index=ids)


def _spur_to_tree(G: nx.Graph, tree_nodes: list[str], villages: list[str]) -> pd.DataFrame:
    """Cheapest route from the tree (or any PoP) to each village [m flat-equivalent and m]."""
    dist, paths = nx.multi_source_dijkstra(G, set(tree_nodes), weight="weight")
    rows = []
    for v in villages:
        if v not in dist:
            rows.append((v, np.inf, np.inf))
            continue
        p = paths[v]
        length = sum(float(G.edges[a, b].get("length_m", 0.0)) for a, b in pairwise(p))
        rows.append((v, float(dist[v]), length))
    return pd.DataFrame(rows, columns=["node", "weighted_m", "length_m"]).set_index("node")


def _fiber_nodes(plan: xr.Dataset) -> list[str]:
    tech = plan["technology"].values.astype(str)
    return ["v:" + str(v) for v in plan["village"].values[tech == "fiber"]]


def _recost(
    table: pd.DataFrame, lengths: pd.DataFrame, fib: dict[str, Any], rate: float, horizon: int
) -> pd.DataFrame:
    """Options table with fiber rows re-priced for the given trench lengths per village node.

    Capex, opex per year and NPV cost change with the trench; revenue does not (its column,
    ``revenue_npv``, is the village's), so ``net_cost`` and ``subsidy`` are recomputed from it
    with :func:`universal_service.appraisal.subsidy`, as :func:`costs.build_options` does.
    """
    t = table.copy()
    is_f = (t["technology"] == "fiber").to_numpy()
    node = "v:" + t.loc[is_f, "village_id"].astype(str)
    w_km = lengths["weighted_m"].reindex(node).to_numpy(float) / 1000.0
    km = lengths["length_m"].reindex(node).to_numpy(float) / 1000.0
    keep = np.isfinite(w_km)
    capex, capex_npv, opex_npv = costs.fiber_cost(
        np.where(keep, w_km, 0.0), np.where(keep, km, 0.0), fib, rate, horizon
    )
    idx = t.index[np.flatnonzero(is_f)[keep]]
    revenue = t.loc[idx, "revenue_npv"].to_numpy(float)
    # the village's own last mile does not depend on the trench: it stays in capex
    capex = capex[keep] + t.loc[idx, "last_mile_capex"].to_numpy(float)
    capex_npv = capex_npv[keep] + t.loc[idx, "last_mile_npv"].to_numpy(float)
    opex_npv = opex_npv[keep]
    cost = capex_npv + opex_npv
    t.loc[idx, "capex"] = capex
    t.loc[idx, "opex_per_year"] = costs.fiber_opex(km[keep], fib)
    t.loc[idx, "capex_npv"] = capex_npv
    t.loc[idx, "opex_npv"] = opex_npv
    t.loc[idx, "cost"] = cost
    t.loc[idx, "net_cost"] = cost - revenue
    t.loc[idx, "subsidy"] = appraisal.subsidy(cost, 0.0, revenue)
    return t


def _evaluate(
    plan: xr.Dataset,
    table: pd.DataFrame,
    G: nx.Graph,
    pops: list[str],
    fib: dict[str, Any],
    rate: float,
    horizon: int,
    time_limit_s: float,
    limits: steiner.WorkLimits | None = None,
) -> tuple[xr.Dataset, steiner.SteinerResult | None, pd.DataFrame]:
    """Price a plan's fiber villages with a shared-trench forest; return the re-priced plan."""
    fnodes = _fiber_nodes(plan)
    out = plan.copy(deep=True)
    if not fnodes:
        return out, None, pd.DataFrame(columns=["weighted_m", "length_m"])
    st = network.shared_trench(G, fnodes, pops, time_limit_s=time_limit_s, limits=limits)
    shares = attribute_tree(st.tree, pops, fnodes, G)
    priced = _recost(table, shares, fib, rate, horizon)
    out = price_plan(out, priced)
    node = ["v:" + str(v) for v in out["village"].values]
    share_km = shares["weighted_m"].reindex(node).fillna(0.0).to_numpy(float) / 1000.0
    out["trench_capex"] = (
        "village",
        np.where(out["technology"].values.astype(str) == "fiber", share_km, 0.0)
        * fib["capex_cny_per_km"],
        {"units": "CNY", "rule": "the village's share of the shared trench capex (in capex)"},
    )
    out.attrs["total_cost"] = out.attrs["total_npv_cost"]
    out.attrs["total_net_cost"] = out.attrs["total_npv_cost"] - out.attrs["total_revenue_npv"]
    return out, st, shares


def ball_radii(G: nx.Graph, candidates: list[str], *, length: str = "weight") -> pd.Series:
    """Half the graph distance from each candidate node to its nearest other candidate.

    One multi-source Dijkstra labels every node with its nearest candidate (its owner) and the
    distance to it; the nearest other candidate of ``t`` is the cheapest ``d(u) + l(u, w) + d(w)``
    over edges ``(u, w)`` with ``u`` owned by ``t`` and ``w`` by another candidate (the first edge
    leaving ``t``'s cell on a shortest path to that candidate is such an edge, and every such sum
    is the length of a walk from ``t`` to another candidate). O(E log V).

    Parameters
    ----------
    G : networkx.Graph
        Route graph; edge attribute ``length`` (default ``weight``) [m or m flat-equivalent]; an
        edge without ``length_m`` uses its ``weight`` (as :func:`attribute_tree` does).
    candidates : list of str
        Nodes of ``G``: every node that could be a terminal or a root.
    length : str
        Edge attribute measured.

    Returns
    -------
    pandas.Series
        Radius per candidate [units of ``length``]; inf for a candidate alone in its component.
    """
    cand = [c for c in dict.fromkeys(candidates) if c in G]
    dist: dict[Any, float] = {c: 0.0 for c in cand}
    owner: dict[Any, Any] = {c: c for c in cand}
    heap = [(0.0, i, c) for i, c in enumerate(cand)]
    heapq.heapify(heap)
    done: set[Any] = set()
    counter = len(heap)

    def edge_len(e: dict[str, Any]) -> float:
        return float(e.get(length, e["weight"]) if length == "length_m" else e[length])

    while heap:
        d, _, n = heapq.heappop(heap)
        if n in done:
            continue
        done.add(n)
        for m, e in G[n].items():
            nd = d + edge_len(e)
            if nd < dist.get(m, np.inf):
                dist[m], owner[m] = nd, owner[n]
                counter += 1
                heapq.heappush(heap, (nd, counter, m))
    nearest = dict.fromkeys(cand, np.inf)
    for u, w, e in G.edges(data=True):
        ou, ow = owner.get(u), owner.get(w)
        if ou is None or ow is None or ou == ow:
            continue
        via = dist[u] + edge_len(e) + dist[w]
        nearest[ou] = min(nearest[ou], via)
        nearest[ow] = min(nearest[ow], via)
    return pd.Series({c: nearest[c] / 2.0 for c in cand}, dtype=float)


def trench_lower_bounds(G: nx.Graph, villages: list[str], pops: list[str]) -> pd.DataFrame:
    """A lower bound on each fiber village's share of any shared-trench forest [m, m flat-eq.].

    The ball bound: let ``r_t`` be half the distance from village ``t`` to its nearest other
    node that could be a terminal or a root (:func:`ball_radii` over ``villages`` and ``pops``).
    For two such nodes ``t, s`` we have ``r_t + r_s <= d(t, s)``, so the open balls of radius
    ``r_t`` around the villages are disjoint (the route graph taken as a metric space, edges as
    segments). A forest joining a terminal set ``S`` of these villages to the PoPs connects each
    ``t`` in ``S`` to a node at distance ``>= 2 r_t``, so it holds a path from ``t`` to the
    ball's boundary, of length ``>= r_t`` inside the ball; the balls being disjoint, those
    pieces are disjoint parts of the forest, whose length is therefore ``>= sum_{t in S} r_t``.
    This holds for the flat-equivalent weight and for the physical length separately (the same
    forest), so pricing each fiber village's trench at ``(r_t^weight, r_t^length)`` gives fiber
    costs whose sum over any fiber set is at most that set's cost with any shared forest
    (fiber cost is affine and increasing in both lengths, :func:`costs.fiber_cost`).

    Returns
    -------
    pandas.DataFrame
        Index: the village nodes; ``weighted_m`` and ``length_m`` lower bounds.
    """
    cand = [*villages, *pops]
    return pd.DataFrame(
        {
            "weighted_m": ball_radii(G, cand).reindex(villages),
            "length_m": ball_radii(G, cand, length="length_m").reindex(villages),
        },
        index=villages,
    )


def _judge(
    evaluated: xr.Dataset,
    table: pd.DataFrame,
    shares: pd.DataFrame,
    sites: pd.DataFrame,
    policy: optimize.Policy,
    prices: tuple[dict[str, Any], float, int],
) -> dict[str, Any]:
    """The objective, money and feasibility of an evaluated plan, priced with its trench shares."""
    priced = _recost(table, shares, *prices) if len(shares) else table
    chosen = pd.Series(evaluated["option_id"].values, index=evaluated["village"].values)
    return optimize.evaluate_plan(priced, sites, policy, chosen)


def _honest_status(
    a: dict[str, Any],
    judged: dict[str, Any],
    lower: xr.Dataset | None,
    policy: optimize.Policy,
) -> None:
    """Set the reported plan's ``objective``, ``bound``, ``gap``, ``status`` and ``status_method``.

    ``objective`` is the plan's own value under the scenario's objective with its shared trenches
    ([CNY]; covered weight for max_coverage); ``bound`` is the dual bound of ``lower`` (the plan
    MILP with fiber trenches at their ball lower bounds, :func:`trench_lower_bounds`), valid for
    the shared-trench problem; ``status`` is "optimal" only when the gap is within ``mip_gap``.
    """
    maximise = policy.objective == "max_coverage"
    objective = float(judged["covered_weight"] if maximise else judged["objective"])
    bound = np.nan
    if lower is not None and lower.attrs.get("status") in {"optimal", "time_limit"}:
        bound = float(lower.attrs["coverage_bound" if maximise else "bound"])
    gap = relative_gap(objective, bound, -1 if maximise else 1)
    a["objective"], a["bound"], a["gap"] = objective, bound, gap
    a["budget_spent"] = float(judged["budget_spent"])
    a["status_method"] = "heuristic"
    a["bound_method"] = "plan MILP with each fiber trench at its ball lower bound"
    if judged["violated"]:
        a["status"] = "infeasible"
        a["infeasible_reason"] = "the shared-trench plan breaks " + ", ".join(judged["violated"])
    elif np.isfinite(gap) and gap <= policy.mip_gap * (1 + 1e-9):
        a["status"] = "optimal"
    else:
        a["status"] = "feasible"


def design(
    plan: xr.Dataset,
    options: costs.Options,
    policy: optimize.Policy,
    catalog: Catalog,
    *,
    iterations: int = 2,
    time_limit_s: float = 300.0,
    mip_gap: float | None = None,
    limits: steiner.WorkLimits | None = None,
) -> FiberDesign:
    """Improve a plan by sharing fiber trenches, iterating the plan MILP and the Steiner forest.

    Parameters
    ----------
    plan : xarray.Dataset
        A plan from :func:`universal_service.optimize.plan` on ``options.table``.
    options : costs.Options
        The options, route graph and appraisal parameters the plan was made from.
    policy : optimize.Policy
        The policy to re-solve with.
    catalog : Catalog
        Fiber prices.
    iterations : int
        Re-solves of the MILP after the first forest (0 only prices the given plan's trenches).
    time_limit_s : float
        Wall-clock safety net of each shared-trench solve [s]; the search stops on its
        deterministic work limits first unless the machine is far slower than expected.
    mip_gap : float, optional
        Relative gap tolerance [-] of the plan MILPs solved inside the iteration (the re-solves
        and the lower-bound MILP); default ``policy.mip_gap``. The reported plan is judged by
        ``policy.mip_gap`` against the lower-bound MILP's dual bound either way.
    limits : steiner.WorkLimits, optional
        Work limits of each shared-trench forest (default :data:`DESIGN_LIMITS`).

    Returns
    -------
    FiberDesign
        The best evaluated plan under the policy's objective (its fiber villages priced with
        shared trenches) that keeps the policy's targets and budget, and its fiber forest. When
        the options offer fiber, the plan's attrs describe the shared-trench problem honestly
        (:func:`_honest_status`): ``objective`` its own value, ``bound`` the lower-bound MILP's,
        ``gap``, ``status`` ("optimal" within ``mip_gap``, else "feasible") and ``status_method``
        "heuristic"; the input MILP's figures (fiber at own routes) stay as ``milp_objective``,
        ``milp_bound``, ``milp_gap``, ``milp_status`` and ``milp_total_cost``.

    Notes
    -----
    The lower-bound MILP depends only on the options, so it is solved in a second thread while
    the iteration runs (HiGHS releases the GIL during its solve); its result does not depend on
    that timing.
    """
    G = options.graph
    fib = catalog["fiber"]
    rate = options.params["discount_rate"]
    horizon = options.params["horizon_years"]
    prices = (fib, rate, horizon)
    pops = sorted(n for n in G.nodes if str(n).startswith("p:"))
    table = options.table
    keep = [c for c in ("site_id", "cost", "capex", "capacity_mbps") if c in options.sites.columns]
    sites = options.sites[keep]
    inner = policy if mip_gap is None else dataclasses.replace(policy, mip_gap=float(mip_gap))
    limits = DESIGN_LIMITS if limits is None else limits
    fiber_villages = sorted(
        {"v:" + str(v) for v in table.loc[table.technology == "fiber", "village_id"]}
    )
    solvable = plan.attrs.get("status") in {"optimal", "time_limit"}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fiber-bound") as pool:
        lower = (
            pool.submit(_lower_bound_plan, G, fiber_villages, pops, table, sites, inner, prices)
            if fiber_villages and solvable
            else None
        )
        best_plan, best_st, best_judged, history = _iterate(
            plan, table, G, pops, sites, policy, inner, prices, iterations, time_limit_s, limits
        )
        lower_plan = lower.result() if lower is not None else None
    return _finish(plan, best_plan, best_st, best_judged, history, lower_plan, policy, G, pops, fib)


def _lower_bound_plan(
    G: nx.Graph,
    fiber_villages: list[str],
    pops: list[str],
    table: pd.DataFrame,
    sites: pd.DataFrame,
    policy: optimize.Policy,
    prices: tuple[dict[str, Any], float, int],
) -> xr.Dataset:
    """The plan MILP with each fiber trench at its ball lower bound: its bound is valid for the
    shared-trench problem (:func:`trench_lower_bounds`)."""
    bounds = trench_lower_bounds(G, fiber_villages, pops)
    return optimize.plan(_recost(table, bounds, *prices), sites, policy)


def _iterate(
    plan: xr.Dataset,
    table: pd.DataFrame,
    G: nx.Graph,
    pops: list[str],
    sites: pd.DataFrame,
    policy: optimize.Policy,
    inner: optimize.Policy,
    prices: tuple[dict[str, Any], float, int],
    iterations: int,
    time_limit_s: float,
    limits: steiner.WorkLimits,
) -> tuple[xr.Dataset, steiner.SteinerResult | None, dict[str, Any], list[dict[str, Any]]]:
    """The MILP <-> Steiner iteration: the best evaluated plan, its forest, its judgement, history."""
    fib, rate, horizon = prices
    sense = -1.0 if policy.objective == "max_coverage" else 1.0
    history = []

    def score(judged: dict[str, Any]) -> float:
        return np.inf if judged["violated"] else sense * judged["objective"]

    best_plan, best_st, shares0 = _evaluate(
        plan, table, G, pops, fib, rate, horizon, time_limit_s, limits
    )
    best_judged = _judge(best_plan, table, shares0, sites, policy, prices)
    history.append(_row(0, plan, best_plan, best_st))
    current, current_st = plan, best_st
    seen = {tuple(_fiber_nodes(plan))}
    for it in range(1, iterations + 1):
        if current_st is None or plan.attrs.get("status") not in {"optimal", "time_limit"}:
            break
        fnodes = _fiber_nodes(current)
        shares = marginal_shares(current_st.tree, pops, fnodes, G)
        villages = ["v:" + str(v) for v in table.loc[table.technology == "fiber", "village_id"]]
        others = [v for v in villages if v not in shares.index]
        spur = _spur_to_tree(G, [*current_st.tree.nodes, *pops], others)
        lengths = pd.concat([shares, spur])
        recosted = _recost(table, lengths, fib, rate, horizon)
        nxt = optimize.plan(recosted, sites, inner, start=current)
        if nxt.attrs.get("status") not in {"optimal", "time_limit"}:
            break
        key = tuple(_fiber_nodes(nxt))
        evaluated, st, nxt_shares = _evaluate(
            nxt, table, G, pops, fib, rate, horizon, time_limit_s, limits
        )
        history.append(_row(it, nxt, evaluated, st))
        judged = _judge(evaluated, table, nxt_shares, sites, policy, prices)
        incumbent = score(best_judged)
        margin = 1e-6 * max(1.0, abs(incumbent)) if np.isfinite(incumbent) else 0.0
        if score(judged) < incumbent - margin:
            best_plan, best_st, best_judged = evaluated, st, judged
        if key in seen:
            break
        seen.add(key)
        current, current_st = nxt, st
    return best_plan, best_st, best_judged, history


def _finish(
    plan: xr.Dataset,
    best_plan: xr.Dataset,
    best_st: steiner.SteinerResult | None,
    best_judged: dict[str, Any],
    history: list[dict[str, Any]],
    lower: xr.Dataset | None,
    policy: optimize.Policy,
    G: nx.Graph,
    pops: list[str],
    fib: dict[str, Any],
) -> FiberDesign:
    """The design's lines and the reported plan's attrs (honest status against ``lower``)."""
    fnodes = _fiber_nodes(best_plan)
    per_village = 0.0
    if fnodes:
        routes = network.nearest_pop_routes(G).set_index("node_id")
        per_village = float(routes["weighted_length_m"].reindex(fnodes).sum())
    lines = network.tree_to_lines(best_st.tree, G) if best_st is not None else _empty_lines(G)
    lines["capex_cny"] = lines["weighted_length_m"] / 1000.0 * fib["capex_cny_per_km"]
    hist = pd.DataFrame(history)
    a = best_plan.attrs
    for name in ("objective", "bound", "gap", "status"):
        a[f"milp_{name}"] = plan.attrs.get(name, np.nan)
    a["milp_total_cost"] = float(plan.attrs.get("total_cost", np.nan))
    if lower is not None:
        _honest_status(a, best_judged, lower, policy)
    a["fiber_villages"] = len(fnodes)
    a["fiber_trench_per_village_m"] = per_village
    a["fiber_trench_shared_m"] = float(best_st.cost) if best_st is not None else 0.0
    a["fiber_trench_lower_bound_m"] = float(best_st.lower_bound) if best_st is not None else 0.0
    a["fiber_trench_gap"] = float(best_st.gap) if best_st is not None else 0.0
    a["fiber_iterations"] = len(history) - 1
    return FiberDesign(best_plan, best_st, lines, per_village, hist)


def _row(it: int, milp: xr.Dataset, evaluated: xr.Dataset, st: Any) -> dict[str, Any]:
    return {
        "iteration": it,
        "fiber_villages": len(_fiber_nodes(milp)),
        "milp_objective": float(milp.attrs.get("objective", np.nan)),
        "evaluated_total_cost": float(evaluated.attrs["total_cost"]),
        "trench_m": float(st.cost) if st is not None else 0.0,
        "trench_lower_bound_m": float(st.lower_bound) if st is not None else 0.0,
    }


def _empty_lines(G: nx.Graph) -> gpd.GeoDataFrame:
    crs = G.graph.get("crs")
    cols = {c: pd.Series([], dtype=float) for c in ["length_m", "weighted_length_m"]}
    return gpd.GeoDataFrame(
        {
            "u": pd.Series([], dtype=object),
            "v": pd.Series([], dtype=object),
            **cols,
            "kind": pd.Series([], dtype=object),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
