"""Rollout over years: when each part of a plan is built, under annual budgets and milestones."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from . import appraisal, milp
from .schema import RolloutConfig

log = logging.getLogger(__name__)

#: Technologies of a Plan that build nothing: served before the plan, or left unserved.
NOT_BUILT = ("existing", "none")
#: Shortfall below which a milestone counts as met [share of its basis].
MET_TOL = 1e-7


@dataclass(frozen=True)
class Works:
    """A plan broken into what is built, each a unit with its capex and its prerequisites.

    Attributes
    ----------
    kind : numpy.ndarray of str
        ``"village"`` (its own equipment and, for fiber, the service drop), ``"site"`` (a shared
        site the plan builds) or ``"trench"`` (a segment of the shared trench forest between two
        branch points, villages or PoPs).
    unit_id : numpy.ndarray of str
        Village id, site id, or the trench node at the segment's lower (village) end.
    capex : numpy.ndarray
        Undiscounted capex of the unit [CNY]; they sum to the plan's ``total_capex``.
    weight : numpy.ndarray
        Per unit, what it adds to the obligation when built: population or 1 (villages basis) for
        village units, 0 otherwise.
    covered : numpy.ndarray of bool
        Village units whose service counts as coverage (the plan's ``covered``).
    requires : numpy.ndarray, shape (n, 2)
        Pairs ``(a, b)``: unit ``a`` can be in service only once unit ``b`` is built (a village
        needs its site and its trench segment; a segment needs the segment above it).
    village_unit : numpy.ndarray of int
        Per plan village, its unit (-1 when the plan builds nothing there).
    edge_unit : numpy.ndarray of int
        Per row of the fiber lines, the trench unit that contains it (empty without lines).
    """

    kind: np.ndarray
    unit_id: np.ndarray
    capex: np.ndarray
    weight: np.ndarray
    covered: np.ndarray
    requires: np.ndarray
    village_unit: np.ndarray
    edge_unit: np.ndarray

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.capex)


def _trench_units(
    lines: pd.DataFrame, terminals: set[str]
) -> tuple[list[str], list[float], list[tuple[str, str]], list[str]]:
    """Segments of the trench forest (rooted at its PoPs ``p:*``): ids, capex, parent pairs, and
    per line row its segment. A segment runs up from a key node (a terminal, a branch or a leaf)
    through nodes of one child to the next key node or root."""
    G = nx.Graph()
    for u, v, c in zip(lines["u"], lines["v"], lines["capex_cny"], strict=True):
        G.add_edge(str(u), str(v), capex=float(c))
    parent: dict[str, str | None] = {}
    order: list[str] = []
    for r in sorted(n for n in G.nodes if n.startswith("p:")):
        if r in parent:
            continue
        parent[r] = None
        order.append(r)
        for a, b in nx.bfs_edges(G, r):
            parent[b] = a
            order.append(b)
    lost = sorted(set(G.nodes) - set(parent))
    if lost:
        raise ValueError(f"fiber lines: nodes {lost[:5]} are not connected to any PoP ('p:*')")
    children: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        if parent[n] is not None:
            children[parent[n]].append(n)
    seg: dict[str, str] = {}
    for n in reversed(order):
        if parent[n] is None:
            continue
        key = n in terminals or len(children[n]) != 1
        seg[n] = n if key else seg[children[n][0]]
    ids = sorted(set(seg.values()))
    cost = dict.fromkeys(ids, 0.0)
    up: set[tuple[str, str]] = set()
    for n, s in seg.items():
        p = parent[n]
        cost[s] += G.edges[p, n]["capex"]
        if parent[p] is not None and seg[p] != s:
            up.add((s, seg[p]))
    rows = [
        seg[str(v)] if parent.get(str(v)) == str(u) else seg[str(u)]
        for u, v in zip(lines["u"], lines["v"], strict=True)
    ]
    return ids, [cost[i] for i in ids], sorted(up), rows


def works(plan: xr.Dataset, lines: pd.DataFrame | None = None, basis: str = "population") -> Works:
    """Break a Plan into units to schedule: villages' own works, shared sites, trench segments.

    Parameters
    ----------
    plan : xarray.Dataset
        A priced Plan (``technology``, ``served``, ``covered``, ``capex``, ``site_id``,
        ``population`` on ``village``; ``site_capex`` on ``site``). A shared-trench plan carries
        ``trench_capex`` per fiber village, its share of the trench already in its ``capex``.
    lines : pandas.DataFrame, optional
        The plan's shared trench network (``FiberDesign.lines``: ``u``, ``v``, ``capex_cny``).
        Without it, each fiber village's trench is its own.
    basis : {"population", "villages"}
        What a served village adds to the obligation.

    Returns
    -------
    Works
    """
    village = plan["village"].values.astype(str)
    tech = plan["technology"].values.astype(str)
    new = plan["served"].values.astype(bool) & ~np.isin(tech, NOT_BUILT)
    capex = np.nan_to_num(plan["capex"].values.astype(float))
    shared = lines is not None and len(lines) > 0 and "trench_capex" in plan
    own = capex - (np.nan_to_num(plan["trench_capex"].values.astype(float)) if shared else 0.0)
    pop = np.nan_to_num(plan["population"].values.astype(float))
    w = pop if basis == "population" else np.ones(len(village))
    idx = np.flatnonzero(new)
    kind = ["village"] * len(idx)
    ids = list(village[idx])
    cap = list(own[idx])
    village_unit = np.full(len(village), -1)
    village_unit[idx] = np.arange(len(idx))
    requires: list[tuple[int, int]] = []
    site_of = plan["site_id"].values.astype(str)[idx]
    used = sorted({s for s in site_of if s})
    if used:
        site_capex = plan["site_capex"].to_series().astype(float).reindex(used).fillna(0.0)
        first = len(ids)
        kind += ["site"] * len(used)
        ids += used
        cap += list(site_capex.to_numpy())
        unit_of_site = {s: first + k for k, s in enumerate(used)}
        requires += [(k, unit_of_site[s]) for k, s in enumerate(site_of) if s]
    edge_unit = np.zeros(0, dtype=int)
    if shared:
        fiber = {"v:" + v for v in village[idx][tech[idx] == "fiber"]}
        seg_ids, seg_cost, up, rows = _trench_units(lines, fiber)
        first = len(ids)
        unit_of_seg = {s: first + k for k, s in enumerate(seg_ids)}
        kind += ["trench"] * len(seg_ids)
        ids += seg_ids
        cap += seg_cost
        requires += [(unit_of_seg[a], unit_of_seg[b]) for a, b in up]
        requires += [
            (k, unit_of_seg["v:" + v])
            for k, v in enumerate(village[idx])
            if "v:" + v in unit_of_seg
        ]
        edge_unit = np.array([unit_of_seg[r] for r in rows], dtype=int)
    n = len(ids)
    weight = np.zeros(n)
    weight[: len(idx)] = w[idx]
    covered = np.zeros(n, dtype=bool)
    covered[: len(idx)] = plan["covered"].values.astype(bool)[idx]
    return Works(
        np.array(kind, dtype=str),
        np.array(ids, dtype=str),
        np.maximum(np.array(cap, dtype=float), 0.0),
        weight,
        covered,
        np.array(requires, dtype=int).reshape(-1, 2),
        village_unit,
        edge_unit,
    )


def annual_budgets(config: RolloutConfig) -> np.ndarray:
    """Capex allowed in each build year [CNY, undiscounted]; ``inf`` without a budget."""
    b = config.annual_budget_cny
    if b is None:
        return np.full(config.years, np.inf)
    return np.asarray(b if isinstance(b, list) else [b] * config.years, dtype=float)


def _ancestors(w: Works) -> list[list[int]]:
    """Per unit, every unit it needs, directly or through others (village -> site, segments)."""
    direct: list[list[int]] = [[] for _ in range(w.n)]
    for a, b in w.requires:
        direct[a].append(int(b))
    out: list[list[int]] = [[] for _ in range(w.n)]
    for u in range(w.n):
        seen, stack = [], list(direct[u])
        while stack:
            b = stack.pop()
            if b not in seen:
                seen.append(b)
                stack.extend(direct[b])
        out[u] = sorted(seen)
    return out


def greedy(w: Works, budgets: np.ndarray, carry_over: bool = False) -> np.ndarray:
    """The sequencing rule: each year, serve the village with the most weight per yuan of what it
    still needs (its own works plus any site or trench above it not yet built), while it fits.

    Parameters
    ----------
    w : Works
    budgets : numpy.ndarray
        Capex allowed per year [CNY]; unspent budget is kept only with ``carry_over``.
    carry_over : bool

    Returns
    -------
    numpy.ndarray of int
        Per unit, the index of its build year (-1: not built within the years).
    """
    anc = _ancestors(w)
    users: list[list[int]] = [[] for _ in range(w.n)]
    is_v = w.kind == "village"
    for v in np.flatnonzero(is_v):
        for a in anc[v]:
            users[a].append(int(v))
    year = np.full(w.n, -1)
    marginal = np.array([w.capex[u] + sum(w.capex[a] for a in anc[u]) for u in range(w.n)])
    left = 0.0
    for t, b in enumerate(budgets):
        left = (left if carry_over else 0.0) + b
        while True:
            open_ = is_v & (year < 0) & (marginal <= left * (1 + 1e-12) + 1e-6)
            if not open_.any():
                break
            ratio = np.where(open_, w.weight / np.maximum(marginal, 1e-9), -np.inf)
            v = int(np.argmax(ratio))
            for u in [v, *anc[v]]:
                if year[u] < 0:
                    year[u] = t
                    left -= w.capex[u]
                    for x in users[u]:
                        marginal[x] -= w.capex[u]
            marginal[v] = 0.0
    return year


def _targets(w: Works, plan: xr.Dataset, config: RolloutConfig, basis: str) -> np.ndarray:
    """Per build year, the milestone as weight of village units to have built (nan: none)."""
    out = np.full(config.years, np.nan)
    if not config.milestones:
        return out
    if config.milestone_basis == "obligation":
        total, base = float(w.weight.sum()), 0.0
    else:
        pop = np.nan_to_num(plan["population"].values.astype(float))
        wv = pop if basis == "population" else np.ones(len(pop))
        covered = plan["covered"].values.astype(bool)
        total = float(wv.sum())
        base = float(wv[covered & (w.village_unit < 0)].sum())
    for year, share in config.milestones.items():
        out[year - config.start_year] = share * total - base
    return out


def _problem(
    w: Works, config: RolloutConfig, target: np.ndarray, rate: float, elastic: bool = False
) -> tuple[milp.Problem, dict[str, float]]:
    """The multi-period MILP: ``b[u, t]`` = unit u built by the end of year t. With ``elastic``,
    one shortfall column per milestone (in shares of the obligation) and the objective is their
    sum alone: the least shortfall within the budgets."""
    T, n = config.years, w.n
    col = np.arange(n * T).reshape(n, T)
    counts = w.weight * (w.kind == "village")
    if config.milestone_basis == "coverage":
        counts = counts * w.covered
    W = max(float(w.weight.sum()), 1e-9)
    C = max(float(w.capex.sum()), 1e-9)
    d = appraisal.deferral_factors(rate, T)
    dd = d - np.append(d[1:], 0.0)  # b[u, t] carries c_u * (d_t - d_{t+1}) of the capex PV
    positive = w.weight[w.weight > 0]
    min_w = float(positive.min()) if len(positive) else 1.0
    eps = 0.0
    if elastic:
        c = np.zeros((n, T))
    elif config.objective == "earliest":
        eps = 0.5 * min_w / W
        c = -np.outer(w.weight / W, np.ones(T)) + eps * np.outer(w.capex / C, dd)
    else:
        c = np.outer(w.capex / C, dd)
    mile = np.flatnonzero(np.isfinite(target))
    slack = mile if elastic else np.zeros(0, dtype=int)
    n_b = n * T
    rows_i, rows_j, vals, lo, hi = [], [], [], [], []
    r = 0

    def add(cols: np.ndarray, coefs: np.ndarray, low: float, high: float) -> None:
        nonlocal r
        rows_i.extend([r] * len(cols))
        rows_j.extend(cols.tolist())
        vals.extend(coefs.tolist())
        lo.append(low)
        hi.append(high)
        r += 1

    for u in range(n):  # built stays built
        for t in range(T - 1):
            add(np.array([col[u, t], col[u, t + 1]]), np.array([1.0, -1.0]), -np.inf, 0.0)
    for a, b in w.requires:
        for t in range(T):
            add(np.array([col[a, t], col[b, t]]), np.array([1.0, -1.0]), -np.inf, 0.0)
    budgets = annual_budgets(config)
    cum = np.cumsum(budgets)
    has = w.capex > 0
    for t in range(T):
        if not np.isfinite(budgets[t]):
            continue
        if config.carry_over:
            add(col[has, t], w.capex[has], -np.inf, cum[t])
        elif t == 0:
            add(col[has, 0], w.capex[has], -np.inf, budgets[0])
        else:
            cols = np.concatenate([col[has, t], col[has, t - 1]])
            coefs = np.concatenate([w.capex[has], -w.capex[has]])
            add(cols, coefs, -np.inf, budgets[t])
    for k, t in enumerate(mile):
        live = counts > 0
        cols, coefs = col[live, t], counts[live]
        if elastic:
            cols, coefs = np.append(cols, n_b + k), np.append(coefs, W)
        add(cols, coefs, target[t], np.inf)
    n_col = n_b + len(slack)
    A = sparse.csc_matrix((vals, (rows_i, rows_j)), shape=(r, n_col))
    problem = milp.Problem(
        c=np.concatenate([c.ravel(), np.ones(len(slack))]),
        A=A,
        row_lower=np.array(lo, float),
        row_upper=np.array(hi, float),
        col_lower=np.zeros(n_col),
        col_upper=np.concatenate([np.ones(n_b), np.full(len(slack), np.inf)]),
        integrality=np.concatenate([np.ones(n_b, bool), np.zeros(len(slack), bool)]),
        name="rollout",
    )
    return problem, {"W": W, "C": C, "eps": eps}


def _built(year: np.ndarray, T: int) -> np.ndarray:
    """``b[u, t]`` (built by the end of year t) of a schedule given as a build-year index per unit."""
    return ((year[:, None] >= 0) & (year[:, None] <= np.arange(T)[None, :])).astype(float)


def _years_of(x: np.ndarray, n: int, T: int) -> np.ndarray:
    """Build-year index per unit from the columns (-1: never)."""
    b = x[: n * T].reshape(n, T) > 0.5
    return np.where(b.any(axis=1), np.argmax(b, axis=1), -1)


def _value(w: Works, year: np.ndarray, config: RolloutConfig, rate: float) -> float:
    """The rollout's objective in its own units: person- (village-) years served within the
    rollout (earliest), or the present value of its capex [CNY] (cheapest)."""
    T = config.years
    built = year >= 0
    if config.objective == "earliest":
        return float((w.weight[built] * (T - year[built])).sum())
    d = appraisal.deferral_factors(rate, T)
    return float((w.capex[built] * d[year[built]]).sum())


def schedule(
    plan: xr.Dataset,
    config: RolloutConfig,
    *,
    lines: pd.DataFrame | None = None,
    basis: str = "population",
    rate: float = 0.08,
    solver: str = "highs",
    threads: int = 1,
    seed: int = 0,
) -> xr.Dataset:
    """When each part of a plan is built: a multi-period MILP over the rollout's years.

    Each unit of :func:`works` gets a build year; a village is in service from the end of the
    year its own works, its site and the trench above it are all built. Each year's capex is at
    most its budget (or, with ``carry_over``, the cumulative capex at most the cumulative budget);
    each milestone is met, or its shortfall is the least possible (an elastic variable per
    milestone, penalised above anything it could buy). Objective ``earliest``: the most weight
    (population, or villages) times years in service within the rollout, ties to the least
    present value of capex; ``cheapest``: the least present value of capex (year k's capex worth
    ``(1 + rate)**-k``, :func:`universal_service.appraisal.deferral_factors`). The greedy rule
    (:func:`greedy`) is the MILP's start and is reported with its own gap to the MILP's bound.

    Parameters
    ----------
    plan : xarray.Dataset
        A priced Plan (:func:`universal_service.optimize.plan`, after the shared-trench design).
    config : RolloutConfig
        The scenario's ``rollout`` section.
    lines : pandas.DataFrame, optional
        The shared trench network (``FiberDesign.lines``).
    basis : {"population", "villages"}
        The policy's ``coverage_basis``: what milestones and the objective count.
    rate : float
        Real discount rate [1/yr], the scenario's ``policy.discount_rate``.
    solver, threads, seed
        As in :func:`universal_service.milp.solve`.

    Returns
    -------
    xarray.Dataset
        The Rollout, on ``year`` (``budget_cny``, ``capex_cny``, ``capex_cumulative_cny``,
        ``villages_new``, ``population_new``, ``obligation_share``, ``coverage_population``,
        ``coverage_villages``, ``milestone``, ``milestone_met``, ``shortfall``), ``village``
        (``build_year``, nan where nothing is built) and ``unit`` (``unit_kind``, ``unit_capex``,
        ``unit_build_year``); attrs ``status`` (optimal, time_limit, or infeasible when a
        milestone is missed, ``unmet_years`` naming them), ``objective``, ``bound`` and ``gap``
        (of the schedule reported), ``greedy_objective``, ``greedy_gap``, ``capex_pv_cny``,
        ``total_capex_cny``, ``message``.
    """
    w = works(plan, lines, basis)
    T = config.years
    years = config.start_year + np.arange(T)
    target = _targets(w, plan, config, basis)
    rule = greedy(w, annual_budgets(config), config.carry_over)
    counts = w.weight * (w.kind == "village")
    if config.milestone_basis == "coverage":
        counts = counts * w.covered
    mile = np.flatnonzero(np.isfinite(target))
    kw = {
        "solver": solver,
        "time_limit_s": config.time_limit_s,
        "mip_gap": config.mip_gap,
        "threads": threads,
        "seed": seed,
    }
    problem, scale = _problem(w, config, target, rate)
    b_rule = _built(rule, T)
    short_rule = np.maximum(0.0, target[mile] - (counts @ b_rule)[mile])
    rule_ok = bool(np.all(short_rule <= MET_TOL * scale["W"]))
    res = milp.solve(problem, start=b_rule.ravel() if rule_ok else None, **kw)
    proved_infeasible = res.status == "infeasible"
    closest = None
    if proved_infeasible:  # the least shortfall first, then the best schedule that reaches it
        elastic, _ = _problem(w, config, target, rate, elastic=True)
        closest = milp.solve(
            elastic, start=np.concatenate([b_rule.ravel(), short_rule / scale["W"]]), **kw
        )
        if closest.x is not None:
            b_close = closest.x[: w.n * T].reshape(w.n, T) > 0.5
            reached = target.copy()
            reached[mile] = np.minimum(target[mile], (counts @ b_close)[mile]) - 1e-9 * scale["W"]
            problem, scale = _problem(w, config, reached, rate)
            res = milp.solve(problem, start=b_close.ravel().astype(float), **kw)
            if res.x is None:
                res.x = b_close.ravel().astype(float)
    if res.x is None:  # nothing within the time limit: the greedy rule's schedule
        year, method = rule, f"greedy rule (the MILP ended {res.status} without a schedule)"
    else:
        year, method = _years_of(res.x, w.n, T), "multi-period MILP"
    objective = _value(w, year, config, rate)
    if config.objective == "earliest":
        bound = scale["W"] * (scale["eps"] - res.bound) if math.isfinite(res.bound) else math.nan
        sense = -1
    else:
        bound = scale["C"] * res.bound if math.isfinite(res.bound) else math.nan
        sense = 1
    ds = _dataset(plan, w, year, years, target, counts, config, basis)
    unmet = [int(y) for y, ok in zip(years, ds["milestone_met"].values, strict=True) if not ok]
    if proved_infeasible:
        status = "infeasible"
    elif res.x is None:
        status = res.status if res.status != "optimal" else "error"
    else:
        status = res.status
    proved = closest is not None and closest.status == "optimal"
    greedy_obj = _value(w, rule, config, rate)
    d = appraisal.deferral_factors(rate, T)
    built = year >= 0
    ds.attrs.update(
        status=status,
        status_method=method,
        objective_kind=config.objective,
        objective=objective,
        objective_units=("person-years" if basis == "population" else "village-years")
        if config.objective == "earliest"
        else "CNY (PV)",
        bound=bound if not proved_infeasible else math.nan,
        gap=milp.relative_gap(objective, bound, sense) if not proved_infeasible else math.nan,
        greedy_objective=greedy_obj,
        greedy_meets_milestones=int(rule_ok),
        greedy_gap=milp.relative_gap(greedy_obj, bound, sense) if rule_ok else math.nan,
        solver_status=res.status,
        solver=res.solver,
        solver_version=res.solver_version,
        solve_seconds=res.seconds,
        unmet_years=",".join(str(y) for y in unmet),
        message=_message(ds, unmet, config, proved=proved),
        start_year=config.start_year,
        carry_over=int(config.carry_over),
        milestone_basis=config.milestone_basis,
        coverage_basis=basis,
        discount_rate=rate,
        total_capex_cny=float(w.capex.sum()),
        capex_built_cny=float(w.capex[built].sum()),
        capex_pv_cny=float((w.capex[built] * d[year[built]]).sum()),
        scenario=str(plan.attrs.get("scenario", "")),
        region=str(plan.attrs.get("region", "")),
        price_year=str(plan.attrs.get("price_year", "")),
    )
    if lines is not None and len(w.edge_unit):
        ds["trench_build_year"] = (
            "edge",
            _label(year[w.edge_unit], years),
            {"units": "year", "rule": "per fiber line row, the year its segment is built"},
        )
    return ds


def _label(index: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Build-year index -> calendar year (nan: not built)."""
    return np.where(index >= 0, years[np.clip(index, 0, None)], np.nan).astype(float)


def _dataset(
    plan: xr.Dataset,
    w: Works,
    year: np.ndarray,
    years: np.ndarray,
    target: np.ndarray,
    counts: np.ndarray,
    config: RolloutConfig,
    basis: str,
) -> xr.Dataset:
    """The Rollout Dataset of a schedule (build-year index per unit)."""
    T = len(years)
    spent = np.array([w.capex[year == t].sum() for t in range(T)])
    is_v = w.kind == "village"
    pop = np.nan_to_num(plan["population"].values.astype(float))
    covered = plan["covered"].values.astype(bool)
    base = covered & (w.village_unit < 0)
    vu = w.village_unit
    vyear = np.where(vu >= 0, year[np.clip(vu, 0, None)], -1)
    new_v = [(vyear == t) for t in range(T)]
    by = np.array([(vyear >= 0) & (vyear <= t) & covered for t in range(T)])
    cov_pop = (pop[base].sum() + (by * pop).sum(axis=1)) / max(pop.sum(), 1e-9)
    cov_vil = (base.sum() + by.sum(axis=1)) / max(len(pop), 1)
    done = np.array([counts[is_v & (year >= 0) & (year <= t)].sum() for t in range(T)])
    obligation = w.weight.sum()
    short = np.where(np.isfinite(target), np.maximum(0.0, target - done), np.nan)
    region_total = pop.sum() if basis == "population" else float(len(pop))
    denom = obligation if config.milestone_basis == "obligation" else region_total
    milestone = np.full(T, np.nan)
    for y, s in config.milestones.items():
        milestone[y - config.start_year] = s
    budgets = annual_budgets(config)
    ds = xr.Dataset(
        {
            "budget_cny": ("year", budgets, {"units": "CNY", "rule": "capex allowed that year"}),
            "capex_cny": ("year", spent, {"units": "CNY", "rule": "capex spent that year"}),
            "capex_cumulative_cny": ("year", np.cumsum(spent), {"units": "CNY"}),
            "villages_new": ("year", np.array([m.sum() for m in new_v]), {"units": "villages"}),
            "population_new": (
                "year",
                np.array([pop[m].sum() for m in new_v]),
                {"units": "persons"},
            ),
            "obligation_share": (
                "year",
                done / obligation if obligation > 0 else np.ones(T),
                {"units": "1", "rule": "share of the obligation in service by the year's end"},
            ),
            "coverage_population": ("year", cov_pop, {"units": "1"}),
            "coverage_villages": ("year", cov_vil, {"units": "1"}),
            "milestone": ("year", milestone, {"units": "1", "basis": config.milestone_basis}),
            "milestone_met": ("year", ~(short / max(denom, 1e-9) > MET_TOL)),
            "shortfall": (
                "year",
                short / max(denom, 1e-9),
                {"units": "1", "rule": "milestone minus what is in service, on its basis"},
            ),
            "build_year": (
                "village",
                _label(vyear, years),
                {"units": "year", "rule": "end of the year the village is in service"},
            ),
            "unit_kind": ("unit", w.kind),
            "unit_id": ("unit", w.unit_id),
            "unit_capex": ("unit", w.capex, {"units": "CNY"}),
            "unit_build_year": ("unit", _label(year, years), {"units": "year"}),
        },
        coords={"year": years, "village": plan["village"].values},
    )
    return ds


def _message(ds: xr.Dataset, unmet: list[int], config: RolloutConfig, proved: bool) -> str:
    """Plain words on the milestones: met, or the first year missed and how close it gets
    (the closest possible when ``proved``, else the closest found within the time limit)."""
    if not config.milestones:
        return "no milestones"
    if not unmet:
        return "every milestone met"
    y = unmet[0]
    row = ds.sel(year=y)
    share = float(row["milestone"]) - float(row["shortfall"])
    return (
        f"milestone {y} not met: {float(row['milestone']):.1%} of the {config.milestone_basis} "
        f"by the end of {y}; the {'closest possible' if proved else 'best found'} rollout "
        f"within the budget reaches {share:.1%}; "
        f"missed years: {', '.join(str(u) for u in unmet)} (raise annual_budget_cny, allow "
        "carry_over, or move the milestone)"
    )


def year_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per build year: budget, capex, villages and population newly served, shares."""
    cols = [
        "budget_cny",
        "capex_cny",
        "villages_new",
        "population_new",
        "obligation_share",
        "coverage_population",
        "coverage_villages",
        "milestone",
        "milestone_met",
    ]
    return ds[cols].to_dataframe()[cols]


def format_table(ds: xr.Dataset) -> str:
    """The rollout as printed by ``universal-service rollout``."""
    t = year_table(ds)
    a = ds.attrs
    lines = [
        f"Rollout of '{a.get('scenario', '')}' from {a['start_year']}: objective "
        f"{a['objective_kind']}, milestones on the {a['milestone_basis']} "
        f"({a['coverage_basis']}); capex in CNY, undiscounted; coverage of the population",
        "  year        budget         capex  villages  population  obligation  coverage  milestone",
    ]
    for y, r in t.iterrows():
        budget = "no limit" if not np.isfinite(r.budget_cny) else f"{r.budget_cny:,.0f}"
        mile = "" if not np.isfinite(r.milestone) else f"{r.milestone:.0%}"
        mile += "" if not mile else " met" if r.milestone_met else " MISSED"
        lines.append(
            f"  {y}  {budget:>12}  {r.capex_cny:>12,.0f}  {int(r.villages_new):>8,}"
            f"  {r.population_new:>10,.0f}  {r.obligation_share:>10.1%}"
            f"  {r.coverage_population:>8.1%}  {mile:>9}"
        )
    unit = a["objective_units"]
    lines.append(
        f"  status: {a['status']} ({a['status_method']}), objective {a['objective']:,.0f} {unit},"
        f" bound {a['bound']:,.0f}, gap {a['gap']:.2e}; greedy rule {a['greedy_objective']:,.0f}"
        f" (gap {a['greedy_gap']:.2e})"
    )
    lines.append(
        f"  capex built CNY {a['capex_built_cny']:,.0f} of {a['total_capex_cny']:,.0f};"
        f" present value CNY {a['capex_pv_cny']:,.0f} at {a['discount_rate']:.0%}; {a['message']}"
    )
    return "\n".join(line.rstrip() for line in lines)
