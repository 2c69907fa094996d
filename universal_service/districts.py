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
price's choice or the last lower price's (:func:`_mix`, while the target still holds). That
choice is the district's least-cost plan for the weight it covers, to its solve's gap (any plan
covering as much costs at least the solve's bound plus the price times that weight), so it
becomes the district's plan with that bound (:func:`_final_plan`); only where the bound does
not prove it within the search's tolerance is the district's MILP solved, from that choice.
The gap of the result is to the best ``L(lam)`` seen, so a status "optimal" is proved for the
decomposed problem (districts not sharing sites), not for the region's monolithic MILP.
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
#: Columns of :attr:`DistrictPlan.prices`: the price [CNY per unit weight], the weight covered
#: and NPV cost [CNY] of the districts' choices there, the dual bound L(price) [CNY], the
#: districts solved (the others settled by :class:`_Curves`) and the round's wall time [s].
PRICE_COLUMNS = ("price", "covered_weight", "cost", "dual_bound", "solved", "seconds")
#: Bisection stops when the price interval is this narrow, relative to its upper end.
PRICE_RTOL = 1e-3
#: The price [CNY per unit weight] at which a district keeps its existing service and builds
#: nothing (existing options cost 0, so any positive price selects them).
EXISTING_PRICE = 1e-6
#: The fewest hilltop candidates a district or county searches (when the scenario asks for any).
MIN_HILLTOPS = 5
#: At most this many prices are tried.
MAX_PRICES = 30
#: The search starts this many halvings below :func:`_price_ceiling` and doubles upward: low
#: prices are cheap to solve (little is built), and districts that cover all they can at one
#: price are not solved again at higher ones (:class:`_Curves`).
START_HALVINGS = 6
#: Districts per Dask task in the price search (a task per district costs more in scheduling
#: than a small district's solve) ...
CHUNK = 8
#: ... and options rows per task: a district with more rows than this is a task of its own.
#: Tasks go out largest first, so a hard county's solve does not end a price's round alone.
CHUNK_ROWS = 4000


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
        Each district's Plan at its own target: its choice at the price with that solve's bound
        (:func:`universal_service.optimize.plan_of_choice`), or its MILP (:func:`_final_plan`).
    districts : pandas.DataFrame
        Per district (:data:`DISTRICT_COLUMNS`): villages, weight and covered weight, coverage
        share, NPV cost and subsidy [CNY], status, gap and seconds.
    prices : pandas.DataFrame
        Every price tried: ``price`` [CNY per unit weight], ``covered_weight``, ``cost`` [CNY],
        ``dual_bound`` [CNY] (``L(lam)``), ``solved`` (districts solved at that price; the
        others were settled by earlier prices, :class:`_Curves`) and ``seconds`` (the round's
        wall time [s]).
    attrs : dict
        ``status`` ("optimal" when ``gap`` <= ``gap_tolerance``), ``status_method``,
        ``objective`` (total NPV cost [CNY]), ``bound`` (best ``L``), ``gap``,
        ``gap_tolerance``, ``price``, ``coverage_share``, ``coverage_target``, ``seconds``
        (from the start [s]) and ``final_plans_seconds`` (making the final plans [s]).
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


def plan_one_district(
    region: Region,
    scenario: scenarios.Scenario,
    district: str,
    *,
    coverage_target: float | None = None,
    catalog: Catalog | None = None,
) -> xr.Dataset:
    """Plan one district on its own (its own sites and routes, its own coverage target).

    The district is costed by :func:`district_options` (its cropped region) and planned at
    least cost by :func:`universal_service.optimize.plan` under the scenario's policy with
    ``coverage_target`` (default the scenario's) applied to the district alone; a budget or
    district targets of the scenario do not apply.

    Returns
    -------
    xarray.Dataset
        The district's Plan (``attrs["seconds"]``: costing and solving [s]).
    """
    t0 = time.perf_counter()
    opts = district_options(region, scenario, district, catalog)
    policy = scenarios.policy_for(scenario.config)
    target = policy.coverage_target if coverage_target is None else float(coverage_target)
    plan = optimize.plan(
        opts.table,
        opts.sites,
        dataclasses.replace(
            policy,
            coverage_target=target,
            district_targets=None,
            budget=None,
            objective="min_cost",
        ),
    )
    plan.attrs["seconds"] = time.perf_counter() - t0
    return plan


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
        ``covered_weight``, ``cost`` (NPV [CNY]), ``bound``, a lower bound on ``cost - price
        x covered weight`` [CNY] (``-price x`` the district's weight when the solver proved
        none), and ``choice``, the option per served village (a Series indexed by village_id),
        or None when the solve found no plan.
    """
    out = optimize.solve_brief(_priced(opts.table, price), opts.sites, _price_policy(policy))
    bound = float(out["bound"])
    floor = -price * float(opts.table.drop_duplicates("village_id")["weight"].sum())
    ids = pd.Series(out["option_id"], index=out["village_id"])
    solved = out["status"] in ("optimal", "time_limit")
    return {
        "covered_weight": out["covered_weight"],
        "cost": out["total_cost"],
        "bound": max(bound, floor) if math.isfinite(bound) else floor,
        "choice": ids[ids != ""] if solved else None,
    }


def _solve_chunk(
    chunk: Sequence[DistrictOptions], policy: optimize.Policy, price: float
) -> list[dict[str, Any]]:
    return [solve_at_price(o, policy, price) for o in chunk]


class _Curves:
    """Each district's answers at the prices solved so far, and the prices they settle.

    ``L_d(lam) = min over plans (cost - lam x covered weight)`` is concave in ``lam`` (a minimum
    of lines), so at a price between two solved ones ``a < lam < b``:

    - the interpolation of the bounds at ``a`` and ``b`` bounds ``L_d(lam)`` from below;
    - if the district covered the same weight at ``a`` and ``b``, its plan at ``a`` is optimal
      at ``lam`` too (to the solves' gaps): every plan's line lies above both ends;
    - above a price at which it covered every village any option can cover (``reach``), its
      plan stays the same and ``bound_a - (lam - a) x reach`` bounds ``L_d(lam)``.

    At price 0 every district keeps its existing service at cost 0, exactly (costs are >= 0).
    Only the districts none of these rules settle are solved.
    """

    def __init__(self, options: Sequence[DistrictOptions]) -> None:
        self.points: list[dict[float, dict[str, float]]] = []
        self.reach: list[float] = []
        for o in options:
            first = o.table.drop_duplicates("village_id")
            cover = o.table[o.table["counts_as_covered"].astype(bool)]
            kept = o.table[o.table["technology"] == "existing"].drop_duplicates("village_id")
            self.reach.append(
                float(first[first["village_id"].isin(cover["village_id"])]["weight"].sum())
            )
            keep = pd.Series(kept["option_id"].to_numpy(str), index=kept["village_id"].to_numpy())
            self.points.append(
                {
                    0.0: {
                        "covered_weight": float(kept["weight"].sum()),
                        "cost": 0.0,
                        "bound": 0.0,
                        "choice": keep,
                    }
                }
            )

    def known(self, i: int, price: float) -> dict[str, float] | None:
        """District ``i``'s answer at ``price`` from the rules above, or None."""
        pts = self.points[i]
        if price in pts:
            return pts[price]
        below = max((p for p in pts if p < price), default=None)
        above = min((p for p in pts if p > price), default=None)
        if below is None:
            return None
        a = pts[below]
        if a["covered_weight"] >= self.reach[i] * (1 - 1e-12):
            return {**a, "bound": a["bound"] - (price - below) * self.reach[i]}
        if above is None:
            return None
        b = pts[above]
        if abs(a["covered_weight"] - b["covered_weight"]) > 1e-9 * max(1.0, a["covered_weight"]):
            return None
        t = (above - price) / (above - below)
        best = a if a["cost"] <= b["cost"] else b
        return {**best, "bound": t * a["bound"] + (1 - t) * b["bound"]}

    def add(self, i: int, price: float, result: dict[str, float]) -> None:
        self.points[i][price] = result


def _final_plan(
    opts: DistrictOptions, policy: optimize.Policy, share: float, chosen: dict[str, Any] | None
) -> xr.Dataset:
    """A district's least-cost plan at its own coverage share (its weight covered at the price).

    The choice made at a price ``lam`` is that plan already, to the price solve's gap: any plan
    covering at least its weight ``w`` costs at least ``bound + lam x w`` (the solve's bound on
    ``cost - lam x covered``), so it is priced with that bound and not solved again (a MILP
    with the coverage row is a knapsack, the slowest solve of the search). The MILP is solved
    (from that choice) only when that bound does not prove the choice within the policy's gap
    (:func:`_proved`; :func:`couple` passes its ``gap_tol``), and without a choice (no target,
    or a solve that found none).
    """
    target = min(1.0, share) if share > 0 else None
    final = dataclasses.replace(
        policy, coverage_target=target, district_targets=None, objective="min_cost"
    )
    if chosen is None or chosen.get("choice") is None:
        return optimize.plan(opts.table, opts.sites, final)
    quick = optimize.plan_of_choice(
        opts.table,
        opts.sites,
        final,
        chosen["choice"],
        bound=_choice_bound(chosen),
        method="choice at a coverage price (Lagrangian), bound from that solve",
    )
    if quick.attrs["status"] == "optimal":
        return quick
    # the price solve's gap, on cost - lam x covered, can be wide on the cost alone: solve the
    # district's MILP from that choice (it can only do better)
    solved = optimize.plan(opts.table, opts.sites, final, start=quick)
    good = solved.attrs["status"] in ("optimal", "time_limit")
    return (
        solved
        if good and solved.attrs["total_npv_cost"] <= quick.attrs["total_npv_cost"]
        else quick
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
    remote: Sequence[Any] | None = None,
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
        ``max(policy.mip_gap, gap_tol / 5)`` (their bounds stay valid at any gap), and each
        district's final plan is "optimal" within ``max(policy.mip_gap, gap_tol)`` (its MILP
        is solved only beyond that, :func:`_final_plan`).
    t0 : float, optional
        ``time.perf_counter()`` at the start, for ``attrs["seconds"]``.
    remote : sequence of distributed.Future, optional
        The same districts already on the client's workers (one future per option, in order),
        so they are not sent again.

    Returns
    -------
    DistrictPlan
    """
    t0 = time.perf_counter() if t0 is None else t0
    run = _mapper(client)
    check_policy(policy, "(policy)")
    sub_policy = dataclasses.replace(policy, mip_gap=max(policy.mip_gap, gap_tol / 5))
    keep = [i for i, o in enumerate(options) if len(o.table)]
    options = [options[i] for i in keep]
    # each district's tables go to the workers once, not with every price
    if client is not None and remote is not None:
        tasks = [remote[i] for i in keep]
    elif client is not None and options:
        tasks = client.scatter(list(options))
    else:
        tasks = options
    weight = {
        o.district: float(o.table.drop_duplicates("village_id")["weight"].sum()) for o in options
    }
    total = sum(weight.values())
    target = policy.coverage_target
    prices: list[dict[str, float]] = []
    curves = _Curves(options)

    def at(price: float) -> list[dict[str, Any]]:
        started = time.perf_counter()
        res = [curves.known(i, price) for i in range(len(options))]
        todo = [i for i, r in enumerate(res) if r is None]
        chunks = _chunks(todo, [len(o.table) for o in options])
        solved = run(
            _solve_chunk,
            [[tasks[i] for i in c] for c in chunks],
            [sub_policy] * len(chunks),
            [price] * len(chunks),
        )
        for c, out in zip(chunks, solved, strict=True):
            for i, r in zip(c, out, strict=True):
                curves.add(i, price, r)
                res[i] = r
        res = [{**r, "price": price} for r in res]  # each bound is on L_d at this price
        covered = sum(r["covered_weight"] for r in res)
        cost = sum(r["cost"] for r in res)
        dual = sum(r["bound"] for r in res) + price * target * total
        prices.append(
            {
                "price": price,
                "covered_weight": covered,
                "cost": cost,
                "dual_bound": dual,
                "solved": len(todo),
                "seconds": time.perf_counter() - started,
            }
        )
        return res

    share: dict[str, float] = {}
    chosen: list[dict[str, Any] | None] = [None] * len(options)
    if target is not None and total > 0:
        need = target * total * (1 - 1e-12)
        ceiling = _price_ceiling(options)
        existing = sum(curves.points[i][0.0]["covered_weight"] for i in range(len(options)))
        lo, res_lo = 0.0, [{**curves.points[i][0.0], "price": 0.0} for i in range(len(options))]
        hi, res_hi = None, None
        price = EXISTING_PRICE if existing >= need else ceiling / 2**START_HALVINGS
        while len(prices) < MAX_PRICES:  # upward, doubling, to the first covering price
            res = at(price)
            if prices[-1]["covered_weight"] >= need:
                hi, res_hi = price, res
                break
            lo, res_lo = price, res
            if price >= ceiling:
                break  # even the ceiling price does not reach the target: it is unreachable
            price = min(2.0 * price, ceiling)
        # then false position on the covered weight (Illinois), halving while lo is 0
        f_lo = sum(r["covered_weight"] for r in res_lo) - need
        f_hi = prices[-1]["covered_weight"] - need if hi is not None else 0.0
        side = 0
        while hi is not None and len(prices) < MAX_PRICES and hi - lo > PRICE_RTOL * hi:
            primal = min(p["cost"] for p in prices if p["covered_weight"] >= need)
            dual = max(p["dual_bound"] for p in prices)
            if primal - dual <= gap_tol * max(abs(primal), 1.0):
                break  # the cheapest covering choice seen is proved within the tolerance
            mid = _next_price(lo, hi, f_lo, f_hi)
            res = at(mid)
            f = prices[-1]["covered_weight"] - need
            if f >= 0:
                hi, res_hi, f_hi = mid, res, f
                f_lo, side = (f_lo / 2 if side == 1 else f_lo), 1
            else:
                lo, res_lo, f_lo = mid, res, f
                f_hi, side = (f_hi / 2 if side == -1 else f_hi), -1
        # unreachable: the districts' most coverage (at the ceiling price); else the cheapest
        # mix of the last covering price's choices and the last lower price's (price 0 is
        # every district keeping its existing service)
        chosen = res_lo if hi is None else _mix(res_lo, res_hi, need)
        share = {
            o.district: (r["covered_weight"] / weight[o.district] if weight[o.district] else 0.0)
            for o, r in zip(options, chosen, strict=True)
        }
    # judged at the search's own tolerance; the districts whose price bound does not prove their
    # choice (their MILP is solved) go out first, largest first, so none ends the phase alone
    final_policy = dataclasses.replace(policy, mip_gap=max(policy.mip_gap, gap_tol))
    started = time.perf_counter()
    order = _final_order(chosen, [len(o.table) for o in options], final_policy.mip_gap)
    picked: list[Any] = [chosen[i] for i in order]
    if client is not None:  # the choices go to the workers as data, not inside the task graph
        picked = client.scatter(picked, hash=False)
    done = run(
        _final_plan,
        [tasks[i] for i in order],
        [final_policy] * len(order),
        [share.get(options[i].district, 0.0) for i in order],
        picked,
    )
    plans: list[xr.Dataset] = [None] * len(options)  # type: ignore[list-item]
    for i, p in zip(order, done, strict=True):
        plans[i] = p
    final_s = time.perf_counter() - started
    return _assemble(options, plans, prices, weight, target, t0, gap_tol, final_s)


def _choice_bound(chosen: dict[str, Any]) -> float:
    """A lower bound on the NPV cost of any plan covering as much weight as a price solve's
    choice [CNY]: the solve's bound on ``cost - price x covered`` plus ``price x covered``
    (costs are >= 0, so 0 bounds any plan too: a solve's bound can be a little below)."""
    return max(0.0, chosen["bound"] + chosen["price"] * chosen["covered_weight"])


def _proved(chosen: dict[str, Any] | None, gap: float) -> bool:
    """Whether a price solve's :func:`_choice_bound` proves its choice within ``gap``
    (:func:`optimize.proved_within`, as :func:`_final_plan`'s plan is judged); False without a
    choice."""
    if chosen is None or chosen.get("choice") is None:
        return False
    return optimize.proved_within(float(chosen["cost"]), _choice_bound(chosen), 1, gap)


def _final_order(
    chosen: Sequence[dict[str, Any] | None], rows: Sequence[int], gap: float
) -> list[int]:
    """The order the final plans are made in: the districts whose MILP will be solved (their
    choice not :func:`_proved`) first, then the rest, each largest first (ties by position)."""
    return sorted(range(len(rows)), key=lambda i: (_proved(chosen[i], gap), -rows[i], i))


def _chunks(todo: Sequence[int], rows: Sequence[int]) -> list[list[int]]:
    """The districts ``todo`` in tasks of at most :data:`CHUNK` districts and about
    :data:`CHUNK_ROWS` options rows, largest districts first (ties by position)."""
    order = sorted(todo, key=lambda i: (-rows[i], i))
    chunks: list[list[int]] = []
    size = 0
    for i in order:
        if not chunks or len(chunks[-1]) >= CHUNK or size + rows[i] > CHUNK_ROWS:
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += rows[i]
    return chunks


def _next_price(lo: float, hi: float, f_lo: float, f_hi: float) -> float:
    """The next price to try in ``(lo, hi)``: where the line through the covered weight minus the
    target at both ends (``f_lo < 0 <= f_hi``) crosses zero, kept at least 5% of the interval
    from either end (halving when ``lo`` is 0, as covered weight grows slowly at low prices)."""
    if lo == 0.0 or not f_hi - f_lo > 0:
        return hi / 2 if lo == 0.0 else math.sqrt(lo * hi)
    x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
    return min(max(x, lo + 0.05 * (hi - lo)), hi - 0.05 * (hi - lo))


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
    final_s: float,
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
        "final_plans_seconds": final_s,
    }
    return DistrictPlan(
        {o.district: p for o, p in zip(options, plans, strict=True)},
        table,
        pd.DataFrame(prices, columns=[*PRICE_COLUMNS]),
        attrs,
    )


def _sum_bounds(plans: Sequence[xr.Dataset]) -> float:
    b = [float(p.attrs.get("bound", math.nan)) for p in plans]
    return float(np.sum(b)) if b and all(math.isfinite(x) for x in b) else math.nan
