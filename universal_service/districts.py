"""A region planned district by district, coupled by one price on coverage (Lagrangian).

Each district's options are costed on its own cropped region
(:meth:`universal_service.io.Region.subset` with :func:`universal_service.costs.reach_buffer_m`),
so a district never shares a 4G site or a trench with its neighbour: two districts using one
tower each pay for their own equipment on it. A region-wide coverage target couples the
districts; it is priced out. For a price ``lam`` [CNY per unit of coverage weight] every
district solves ``min cost - lam x (its covered weight)`` on its own (small MILPs, in parallel
on Dask when a client is given), and

    L(lam) = sum_d bound_d(lam) + lam x T

is a lower bound on the decomposed problem's optimum (``T`` the target weight, ``bound_d`` each
district's MILP bound). Bisection on ``lam`` finds the
least price at which the districts together reach the target; each district then takes that
price's choice or the last lower price's (:func:`_mix`, while the target still holds), gets the
coverage of its choice as its target, and its plan is solved at least cost. The gap of the
result is to the best ``L(lam)`` seen, so a status "optimal" is proved for the decomposed
problem (districts not sharing sites), not for the region's monolithic MILP.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import costs, optimize, scenarios
from .catalog import Catalog, load_catalog
from .errors import ScenarioError
from .io import Region

#: Columns of :attr:`DistrictPlan.districts`.
DISTRICT_COLUMNS = (
    "villages",
    "weight",
    "covered_weight",
    "coverage_share",
    "npv_cost",
    "subsidy",
    "status",
    "gap",
    "seconds",
)
#: Bisection stops when the price interval is this narrow, relative to its upper end.
PRICE_RTOL = 1e-3
#: The price [CNY per unit weight] at which a district keeps its existing service and builds
#: nothing (existing options cost 0, so any positive price selects them).
EXISTING_PRICE = 1e-6
#: The fewest hilltop candidates a district or county searches (when the scenario asks for any).
MIN_HILLTOPS = 5
#: At most this many prices are tried.
MAX_PRICES = 30


@dataclass
class DistrictOptions:
    """One district's options table and candidate sites (the optimizer's two inputs)."""

    district: str
    table: pd.DataFrame
    sites: pd.DataFrame
    seconds: float


@dataclass
class DistrictPlan:
    """What :func:`plan_by_district` produces.

    Attributes
    ----------
    plans : dict of str to xarray.Dataset
        Each district's Plan (:func:`universal_service.optimize.plan`), solved at its own target.
    districts : pandas.DataFrame
        Per district (:data:`DISTRICT_COLUMNS`): villages, weight and covered weight, coverage
        share, NPV cost and subsidy [CNY], status, gap and seconds.
    prices : pandas.DataFrame
        Every price tried: ``price`` [CNY per unit weight], ``covered_weight``, ``cost`` [CNY]
        and ``dual_bound`` [CNY] (``L(lam)``).
    attrs : dict
        ``status`` ("optimal" when ``gap`` <= ``gap_tolerance``), ``status_method``,
        ``objective`` (total NPV cost [CNY]), ``bound`` (best ``L``), ``gap``,
        ``gap_tolerance``, ``price``, ``coverage_share``, ``coverage_target``, ``seconds``.
    """

    plans: dict[str, xr.Dataset]
    districts: pd.DataFrame
    prices: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)

    def villages(self) -> pd.DataFrame:
        """Every village's choice: ``district_id``, ``option_id``, ``technology``, ``covered``,
        ``npv_cost`` and ``subsidy`` [CNY], indexed by ``village_id``."""
        cols = ["district_id", "option_id", "technology", "covered", "npv_cost", "subsidy"]
        frames = [
            ds[cols].to_dataframe().rename_axis("village_id")
            for _, ds in sorted(self.plans.items())
        ]
        return pd.concat(frames).sort_index() if frames else pd.DataFrame(columns=cols)


def district_options(
    region: Region,
    scenario: scenarios.Scenario,
    district: str,
    catalog: Catalog | None = None,
) -> DistrictOptions:
    """Cost one district's options on its own cropped region.

    Parameters
    ----------
    region : Region
    scenario : Scenario
        Its policy prices the options and its radio section sets candidate sites and coverage.
    district : str
        A ``district_id`` of the region.
    catalog : Catalog, optional

    Returns
    -------
    DistrictOptions

    Notes
    -----
    ``radio.hilltops`` counts a whole region's hilltop candidates; a district searches its
    share by area (:func:`scaled_hilltops`), so the candidates keep the region's density.
    """
    t0 = time.perf_counter()
    cfg = scenario.config
    catalog = catalog or load_catalog(scenario.catalog_path())
    sub = region.subset([district], costs.reach_buffer_m(catalog, cfg.radio))
    share = float(sub.districts.geometry.area.sum()) / max(
        float(region.districts.geometry.area.sum()), 1e-9
    )
    radio = cfg.radio.model_copy(update={"hilltops": scaled_hilltops(cfg.radio.hilltops, share)})
    opts = costs.build_options(sub, cfg.policy, radio, catalog)
    sites = opts.sites[["site_id", "cost", "kind", "capex", "capacity_mbps"]]
    return DistrictOptions(district, opts.table, sites, time.perf_counter() - t0)


def scaled_hilltops(hilltops: int, area_share: float) -> int:
    """Hilltop candidates for a part of a region: ``hilltops`` x its share of the area, rounded,
    at least :data:`MIN_HILLTOPS` (none when the scenario asks for none)."""
    if hilltops <= 0:
        return 0
    return max(MIN_HILLTOPS, round(hilltops * max(area_share, 0.0)))


def _priced(table: pd.DataFrame, price: float) -> pd.DataFrame:
    """The options that count as covered, each with ``net_cost`` = its cost - ``price`` x its
    village's weight: the ``min_subsidy`` objective of the MILP is then ``cost - price x
    covered weight`` (options that do not count as covered can only add cost, so they go)."""
    covering = table[table["counts_as_covered"].astype(bool)].copy()
    covering["net_cost"] = covering["cost"].to_numpy(float) - price * covering["weight"].to_numpy(
        float
    )
    return covering


def _price_policy(policy: optimize.Policy) -> optimize.Policy:
    return dataclasses.replace(
        policy,
        coverage_target=None,
        district_targets=None,
        budget=None,
        objective="min_subsidy",
    )


def solve_at_price(opts: DistrictOptions, policy: optimize.Policy, price: float) -> dict[str, Any]:
    """One district's choice at a coverage price.

    Returns
    -------
    dict
        ``covered_weight``, ``cost`` (NPV [CNY]) and ``bound``, a lower bound on ``cost - price
        x covered weight`` [CNY] (``-price x`` the district's weight when the solver proved none).
    """
    plan = optimize.plan(_priced(opts.table, price), opts.sites, _price_policy(policy))
    covered = plan["covered"].values.astype(bool)
    weight = plan["weight"].values.astype(float)
    bound = float(plan.attrs.get("bound", math.nan))
    floor = -price * float(opts.table.drop_duplicates("village_id")["weight"].sum())
    return {
        "covered_weight": float(weight[covered].sum()),
        "cost": float(plan.attrs["total_npv_cost"]),
        "bound": max(bound, floor) if math.isfinite(bound) else floor,
    }


def _final_plan(opts: DistrictOptions, policy: optimize.Policy, share: float) -> xr.Dataset:
    """A district's least-cost plan at its own coverage share (its weight covered at the price)."""
    target = min(1.0, share) if share > 0 else None
    return optimize.plan(
        opts.table,
        opts.sites,
        dataclasses.replace(
            policy, coverage_target=target, district_targets=None, objective="min_cost"
        ),
    )


def _mapper(client: Any | None) -> Callable[[Callable, Sequence], list]:
    """``map`` on a Dask client (results in input order), or the built-in one."""
    if client is None:
        return lambda f, *xs: [f(*a) for a in zip(*xs, strict=True)]

    def run(f: Callable, *xs: Sequence) -> list:
        futures = client.map(f, *xs, pure=False)
        return client.gather(futures)

    return run


def plan_by_district(
    region: Region,
    scenario: scenarios.Scenario,
    *,
    client: Any | None = None,
    catalog: Catalog | None = None,
    options: Sequence[DistrictOptions] | None = None,
    gap_tol: float = 0.005,
) -> DistrictPlan:
    """Plan a region district by district under its region-wide coverage target.

    Parameters
    ----------
    region : Region
    scenario : Scenario
        Its ``policy.coverage_target`` (population or villages basis) couples the districts; a
        scenario without a target plans each district at least cost on its own.
    client : distributed.Client, optional
        Costs and solves the districts on its workers; serial without.
    catalog : Catalog, optional
    options : sequence of DistrictOptions, optional
        Reuse districts already costed (e.g. after a change of target only).
    gap_tol : float, default 0.005
        The price search stops once the cheapest covering choice it has seen is within this
        relative gap of the best bound (the final plans can only be cheaper).

    Returns
    -------
    DistrictPlan

    Raises
    ------
    ScenarioError
        The scenario has a budget, district targets or an objective other than ``min_cost``
        (their coupling is not built).
    """
    t0 = time.perf_counter()
    run = _mapper(client)
    policy = scenarios.policy_for(scenario.config)
    check_policy(policy, scenario.name)
    catalog = catalog or load_catalog(scenario.catalog_path())
    names = sorted(region.districts["district_id"].astype(str))
    if options is None:
        shared = client.scatter(region, broadcast=True) if client is not None else region
        options = run(
            district_options,
            [shared] * len(names),
            [scenario] * len(names),
            names,
            [catalog] * len(names),
        )
    return couple(options, policy, client=client, gap_tol=gap_tol, t0=t0)


def check_policy(policy: optimize.Policy, name: str) -> None:
    """Refuse a policy whose coupling is not built (budget, district targets, other objectives).

    Raises
    ------
    ScenarioError
        Naming the scenario and what to do.
    """
    if policy.objective != "min_cost" or policy.budget is not None or policy.district_targets:
        raise ScenarioError(
            f"scenario {name!r}: planning by district couples a region-wide coverage "
            "target under least cost only (objective min_cost, no budget_cny, no "
            f"district_targets; got objective {policy.objective}, budget {policy.budget}); "
            "plan the region whole for this scenario"
        )


def couple(
    options: Sequence[DistrictOptions],
    policy: optimize.Policy,
    *,
    client: Any | None = None,
    gap_tol: float = 0.005,
    t0: float | None = None,
) -> DistrictPlan:
    """Couple costed districts under the policy's coverage target (see the module docstring).

    Parameters
    ----------
    options : sequence of DistrictOptions
        One per district (or county); empty tables are dropped.
    policy : optimize.Policy
        Checked by :func:`check_policy`; ``coverage_target`` couples the districts.
    client : distributed.Client, optional
    gap_tol : float, default 0.005
        Relative gap at which the price search stops; the price subproblems are solved to
        ``max(policy.mip_gap, gap_tol / 5)`` (their bounds stay valid at any gap).
    t0 : float, optional
        ``time.perf_counter()`` at the start, for ``attrs["seconds"]``.

    Returns
    -------
    DistrictPlan
    """
    t0 = time.perf_counter() if t0 is None else t0
    run = _mapper(client)
    check_policy(policy, "(policy)")
    sub_policy = dataclasses.replace(policy, mip_gap=max(policy.mip_gap, gap_tol / 5))
    options = [o for o in options if len(o.table)]
    # each district's tables go to the workers once, not with every price
    tasks = client.scatter(list(options)) if client is not None and options else options
    weight = {
        o.district: float(o.table.drop_duplicates("village_id")["weight"].sum()) for o in options
    }
    total = sum(weight.values())
    target = policy.coverage_target
    prices: list[dict[str, float]] = []

    def at(price: float) -> list[dict[str, Any]]:
        res = run(solve_at_price, tasks, [sub_policy] * len(options), [price] * len(options))
        covered = sum(r["covered_weight"] for r in res)
        cost = sum(r["cost"] for r in res)
        dual = sum(r["bound"] for r in res) + price * target * total
        prices.append({"price": price, "covered_weight": covered, "cost": cost, "dual_bound": dual})
        return res

    share: dict[str, float] = {}
    if target is not None and total > 0:
        need = target * total * (1 - 1e-12)
        lo, hi = 0.0, _price_ceiling(options)
        existing = sum(
            float(o.table.loc[o.table["technology"] == "existing", "weight"].sum()) for o in options
        )
        if existing >= need:  # today's service meets the target: a token price keeps it
            hi = EXISTING_PRICE
        res_hi, res_lo = at(hi), None
        # bisection (halving from the ceiling, then geometric) for the least price that covers
        while len(prices) < MAX_PRICES and hi - lo > PRICE_RTOL * hi:
            if prices[0]["covered_weight"] < need:
                break  # even the ceiling price does not reach the target: it is unreachable
            primal = min(p["cost"] for p in prices if p["covered_weight"] >= need)
            dual = max(p["dual_bound"] for p in prices)
            if primal - dual <= gap_tol * max(abs(primal), 1.0):
                break  # the cheapest covering choice seen is proved within the tolerance
            mid = hi / 2 if lo == 0.0 else math.sqrt(lo * hi)
            res = at(mid)
            if prices[-1]["covered_weight"] >= need:
                hi, res_hi = mid, res
            else:
                lo, res_lo = mid, res
        chosen = _mix(res_lo, res_hi, need) if res_lo is not None else res_hi
        share = {
            o.district: (r["covered_weight"] / weight[o.district] if weight[o.district] else 0.0)
            for o, r in zip(options, chosen, strict=True)
        }
    plans = run(
        _final_plan,
        tasks,
        [policy] * len(options),
        [share.get(o.district, 0.0) for o in options],
    )
    return _assemble(options, plans, prices, weight, target, t0, gap_tol)


def _mix(
    lower: list[dict[str, Any]], upper: list[dict[str, Any]], need: float
) -> list[dict[str, Any]]:
    """Each district's choice at the upper price (which covers the target together) or at the
    lower one (which does not), the cheapest such mix that still covers ``need``.

    Both are plans a district can make, so any mix is a plan of the decomposed problem; districts
    move down to the lower price's choice in order of cost saved per unit of weight given up
    while the target still holds (a greedy knapsack over the districts).
    """
    chosen = list(upper)
    spare = sum(r["covered_weight"] for r in upper) - need
    moves = []
    for i, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        saving = hi["cost"] - lo["cost"]
        loss = max(hi["covered_weight"] - lo["covered_weight"], 0.0)
        if saving > 0:
            moves.append((-(saving / loss) if loss > 0 else -math.inf, i, loss))
    for _, i, loss in sorted(moves):
        if loss <= spare:
            chosen[i], spare = lower[i], spare - loss
    return chosen


def _price_ceiling(options: Sequence[DistrictOptions]) -> float:
    """A price above which every district covers every village it can: the dearest village's
    cheapest covering option, its site paid in full, per unit of its weight [CNY]."""
    worst = 1.0
    for o in options:
        t = o.table[o.table["counts_as_covered"].astype(bool)]
        site_cost = o.sites.set_index("site_id")["cost"].reindex(t["site_id"]).fillna(0.0)
        full = t["cost"].to_numpy(float) + site_cost.to_numpy(float)
        per = pd.Series(full, index=t["village_id"].to_numpy()).groupby(level=0).min()
        w = t.drop_duplicates("village_id").set_index("village_id")["weight"].reindex(per.index)
        ratio = per.to_numpy() / np.maximum(w.to_numpy(float), 1e-12)
        if len(ratio):
            worst = max(worst, float(np.max(ratio)))
    return 2.0 * worst


def _assemble(
    options: Sequence[DistrictOptions],
    plans: Sequence[xr.Dataset],
    prices: list[dict[str, float]],
    weight: dict[str, float],
    target: float | None,
    t0: float,
    gap_tol: float,
) -> DistrictPlan:
    rows = {}
    for o, p in zip(options, plans, strict=True):
        covered = p["covered"].values.astype(bool)
        w = p["weight"].values.astype(float)
        rows[o.district] = {
            "villages": p.sizes["village"],
            "weight": weight[o.district],
            "covered_weight": float(w[covered].sum()),
            "coverage_share": float(w[covered].sum() / weight[o.district])
            if weight[o.district]
            else math.nan,
            "npv_cost": float(p.attrs["total_npv_cost"]),
            "subsidy": float(p.attrs["total_subsidy"]),
            "status": str(p.attrs["status"]),
            "gap": float(p.attrs.get("gap", math.nan)),
            "seconds": o.seconds + float(p.attrs.get("solve_seconds", 0.0)),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(DISTRICT_COLUMNS))
    table.index.name = "district"
    total_w = float(table["weight"].sum())
    objective = float(table["npv_cost"].sum())
    duals = [p["dual_bound"] for p in prices]
    # without a target each district's own MILP bound is the bound
    bound = max(duals) if duals else _sum_bounds(plans)
    gap = (objective - bound) / abs(objective) if objective else 0.0
    solved = all(s in ("optimal", "time_limit") for s in table["status"])
    within = solved and gap <= gap_tol
    attrs = {
        # "optimal" to gap_tol, for the decomposed problem (districts do not share sites)
        "status": "optimal" if within else ("feasible" if solved else "infeasible"),
        "gap_tolerance": gap_tol,
        "status_method": "district decomposition (Lagrangian price on coverage)",
        "objective": objective,
        "bound": bound,
        "gap": gap,
        "price": min(
            (
                p["price"]
                for p in prices
                if p["covered_weight"] >= (target or 0) * total_w * 0.999999
            ),
            default=math.nan,
        ),
        "coverage_share": float(table["covered_weight"].sum() / total_w) if total_w else math.nan,
        "coverage_target": math.nan if target is None else float(target),
        "seconds": time.perf_counter() - t0,
    }
    return DistrictPlan(
        {o.district: p for o, p in zip(options, plans, strict=True)},
        table,
        pd.DataFrame(prices, columns=["price", "covered_weight", "cost", "dual_bound"]),
        attrs,
    )


def _sum_bounds(plans: Sequence[xr.Dataset]) -> float:
    b = [float(p.attrs.get("bound", math.nan)) for p in plans]
    return float(np.sum(b)) if b and all(math.isfinite(x) for x in b) else math.nan
