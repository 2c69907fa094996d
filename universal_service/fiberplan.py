"""Shared-trench fiber design integrated with the plan: iterate the plan MILP and a Steiner forest.

The plan MILP first prices fiber to each village as if it dug its own trench to the nearest
point of presence. Villages that get fiber then share trenches: their least-cost network is a
Steiner forest over the route graph (:func:`universal_service.network.shared_trench`, with a
lower bound). Each tree edge's cost is split equally among the fiber villages downstream of it,
so the shares sum to the tree's cost. The MILP is solved again with fiber priced at those shares
(for villages on the tree) and at the cheapest spur to the tree (for the others); the Steiner
forest is recomputed for the new fiber set; and the cheapest evaluated plan is kept. This is a
heuristic for the joint (prize-collecting Steiner) problem: each sub-problem reports its own
gap (the MILP to its bound, the forest to its lower bound), the joint problem has no bound here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import xarray as xr

from . import costs, network, optimize, steiner
from .catalog import Catalog

log = logging.getLogger(__name__)


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
    """Options table with fiber rows re-priced for the given trench lengths per village node."""
    t = table.copy()
    is_f = (t["technology"] == "fiber").to_numpy()
    node = "v:" + t.loc[is_f, "village_id"].astype(str)
    w_km = lengths["weighted_m"].reindex(node).to_numpy(float) / 1000.0
    km = lengths["length_m"].reindex(node).to_numpy(float) / 1000.0
    keep = np.isfinite(w_km)
    capex, capex_npv, opex_npv = costs.fiber_cost(
        np.where(keep, w_km, 0.0), np.where(keep, km, 0.0), fib, rate, horizon
    )
    idx = np.flatnonzero(is_f)[keep]
    revenue = (t["cost"] - t["net_cost"]).to_numpy()
    t.loc[t.index[idx], "capex"] = capex[keep]
    t.loc[t.index[idx], "capex_npv"] = capex_npv[keep]
    t.loc[t.index[idx], "opex_npv"] = opex_npv[keep]
    t.loc[t.index[idx], "cost"] = capex_npv[keep] + opex_npv[keep]
    t.loc[t.index[idx], "net_cost"] = t.loc[t.index[idx], "cost"] - revenue[idx]
    t.loc[t.index[idx], "subsidy"] = np.maximum(t.loc[t.index[idx], "net_cost"], 0.0)
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
) -> tuple[xr.Dataset, steiner.SteinerResult | None, pd.DataFrame]:
    """Price a plan's fiber villages with a shared-trench forest; return the re-priced plan."""
    fnodes = _fiber_nodes(plan)
    out = plan.copy(deep=True)
    if not fnodes:
        return out, None, pd.DataFrame(columns=["weighted_m", "length_m"])
    st = network.shared_trench(G, fnodes, pops, time_limit_s=time_limit_s)
    shares = attribute_tree(st.tree, pops, fnodes, G)
    priced = _recost(table, shares, fib, rate, horizon)
    key = pd.MultiIndex.from_arrays([priced["village_id"], priced["option_id"]])
    cost = pd.Series(priced["cost"].to_numpy(), index=key)
    net = pd.Series(priced["net_cost"].to_numpy(), index=key)
    chosen = pd.MultiIndex.from_arrays([plan["village"].values, plan["option_id"].values])
    served = plan["served"].values.astype(bool)
    out["cost"].values[:] = np.where(served, cost.reindex(chosen).fillna(0.0).to_numpy(), 0.0)
    out["net_cost"].values[:] = np.where(served, net.reindex(chosen).fillna(0.0).to_numpy(), 0.0)
    site_total = float(plan["site_cost"].where(plan["site_built"], 0.0).sum())
    out.attrs["total_cost"] = float(out["cost"].sum()) + site_total
    out.attrs["total_net_cost"] = float(out["net_cost"].sum()) + site_total
    return out, st, shares


def design(
    plan: xr.Dataset,
    options: costs.Options,
    policy: optimize.Policy,
    catalog: Catalog,
    *,
    iterations: int = 2,
    time_limit_s: float = 300.0,
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

    Returns
    -------
    FiberDesign
        The cheapest evaluated plan (its ``cost`` uses shared trenches) and its fiber forest.
    """
    G = options.graph
    fib = catalog["fiber"]
    rate = options.params["discount_rate"]
    horizon = options.params["horizon_years"]
    pops = sorted(n for n in G.nodes if str(n).startswith("p:"))
    table = options.table
    sites = options.sites[["site_id", "cost"]]
    history = []
    best_plan, best_st, _ = _evaluate(plan, table, G, pops, fib, rate, horizon, time_limit_s)
    history.append(_row(0, plan, best_plan, best_st))
    current, current_st = plan, best_st
    seen = {tuple(_fiber_nodes(plan))}
    for it in range(1, iterations + 1):
        if current_st is None or plan.attrs.get("status") not in {"optimal", "time_limit"}:
            break
        fnodes = _fiber_nodes(current)
        shares = attribute_tree(current_st.tree, pops, fnodes, G)
        villages = ["v:" + str(v) for v in table.loc[table.technology == "fiber", "village_id"]]
        others = [v for v in villages if v not in shares.index]
        spur = _spur_to_tree(G, [*current_st.tree.nodes, *pops], others)
        lengths = pd.concat([shares, spur])
        recosted = _recost(table, lengths, fib, rate, horizon)
        nxt = optimize.plan(recosted, sites, policy)
        if nxt.attrs.get("status") not in {"optimal", "time_limit"}:
            break
        key = tuple(_fiber_nodes(nxt))
        evaluated, st, _ = _evaluate(nxt, table, G, pops, fib, rate, horizon, time_limit_s)
        history.append(_row(it, nxt, evaluated, st))
        if evaluated.attrs["total_cost"] < best_plan.attrs["total_cost"] - 1e-6:
            best_plan, best_st = evaluated, st
        if key in seen:
            break
        seen.add(key)
        current, current_st = nxt, st
    fnodes = _fiber_nodes(best_plan)
    per_village = 0.0
    if fnodes:
        routes = network.nearest_pop_routes(G).set_index("node_id")
        per_village = float(routes["weighted_length_m"].reindex(fnodes).sum())
    lines = network.tree_to_lines(best_st.tree, G) if best_st is not None else _empty_lines(G)
    lines["capex_cny"] = lines["weighted_length_m"] / 1000.0 * fib["capex_cny_per_km"]
    hist = pd.DataFrame(history)
    a = best_plan.attrs
    a["milp_total_cost"] = float(plan.attrs.get("total_cost", np.nan))
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
