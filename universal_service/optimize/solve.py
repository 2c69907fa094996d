"""Solve the optimizer's model and report the plan: LP-first MILP, infeasibility reasons, the Plan Dataset."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from universal_service import appraisal, milp

from . import formulate, heuristics, instance
from .formulate import Formulation
from .instance import TOL, Instance, Policy

#: Absolute objective-bound difference [objective units] below which a plan counts as optimal
#: whatever its relative gap (HiGHS's default ``mip_abs_gap``).
ABS_GAP = 1e-6


@dataclass
class _Outcome:
    """What :func:`solve` found: status, per-village choice, objective, bounds, LP duals, solver."""

    status: str
    termination: str
    choice: np.ndarray
    objective: float = math.nan
    bound: float = math.nan
    lp_bound: float = math.nan
    row_dual: np.ndarray | None = None
    solver: str = ""
    solver_version: str = ""
    solve_seconds: float = 0.0
    warm_objective: float = math.nan
    reason: str = ""


def solve(
    model: Formulation, inst: Instance, policy: Policy, start: np.ndarray | None = None
) -> _Outcome:
    """Solve the model with :func:`universal_service.milp.solve`, LP relaxation first.

    The LP relaxation is solved once (its bound is reported and its duals are the shadow prices of
    the coverage and budget rows); an integral LP optimum is the MILP optimum, otherwise the MILP
    runs from the LP solution and, with ``policy.warm_start``, the best greedy plan
    (:func:`~universal_service.optimize.heuristics.incumbent`), which is kept if the solver ends
    with nothing better. Large models run the MILP in a child process stopped at the deadline
    (:data:`universal_service.milp.GUARD_COLS`); when even the LP relaxation runs out of time, the
    greedy plan is returned with the site-share bound
    (:func:`~universal_service.optimize.heuristics.share_bound`). ``start`` (a choice per
    village, e.g. a neighbouring plan of a sweep) joins the greedy candidates.
    """

    def initial(lp_x: np.ndarray | None) -> np.ndarray | None:
        return heuristics.incumbent(model, inst, policy, lp_x, start)

    result = milp.solve(
        formulate.to_problem(model),
        solver=policy.solver,
        time_limit_s=policy.time_limit_s,
        mip_gap=policy.mip_gap,
        threads=policy.threads,
        seed=int(policy.seed),
        start=initial if policy.warm_start else None,
        lp_first=True,
    )
    out = _Outcome(
        result.status,
        "empty model: no options" if model.n_cols == 0 else result.message,
        np.full(len(inst.village_ids), -1),
        lp_bound=result.lp_objective,
        row_dual=result.row_duals,
        solver=result.solver,
        solver_version=result.solver_version,
        solve_seconds=result.seconds,
        warm_objective=result.start_objective,
    )
    if result.x is not None:
        out.choice = formulate.choice_from_columns(model, inst, result.x)
        out.objective = result.objective
        bounds = [result.bound] if math.isfinite(result.bound) else []  # MILP and LP bound
        if not math.isfinite(out.lp_bound):  # the LP ran out of time: fall back on the share bound
            bounds.append(heuristics.share_bound(inst, policy))
            out.termination += "; bound from site shares (LP relaxation unfinished)"
        out.bound = (max(bounds) if model.sense == 1 else min(bounds)) if bounds else math.nan
    return out


def _unreachable(inst: Instance, policy: Policy) -> str:
    """Name every coverage target above the weight that any option can reach ("" when all reachable)."""
    t = instance.targets(inst, policy)
    w, what = inst.village_weight, policy.coverage_basis
    total = t.sums(w)
    reach = t.sums(np.where(instance.reachable(inst), w, 0.0))
    short = reach < t.share * total - TOL * np.maximum(1.0, total)
    reason = "; ".join(
        f"{name}: at most {reach[i] / total[i]:.4g} of {what} is reachable (target {t.share[i]:.4g})"
        for i, name in enumerate(t.names)
        if short[i]
    )
    if reason and inst.n_removed_quality:
        every = "every option" if inst.n_options == 0 else f"{inst.n_removed_quality} options"
        reason += (
            f" (policy.min_quality={policy.min_quality} removed {every} below that quality tier;"
            " lower min_quality or offer a technology of that tier in the catalog)"
        )
    return reason


def _explain_infeasible(inst: Instance, policy: Policy) -> str:
    """Why no plan meets the policy: unreachable targets, or a budget below the cheapest plan."""
    reason = _unreachable(inst, policy)
    if reason or policy.budget is None:
        return (
            reason
            or "the solver reports no feasible plan (no target is unreachable and there is no budget)"
        )
    parts = []
    cheapest = _solve_instance(inst, dataclasses.replace(policy, budget=None, objective="min_cost"))
    if cheapest[0].status in ("optimal", "time_limit") and math.isfinite(cheapest[0].objective):
        parts.append(
            f"budget: the cheapest plan meeting the target costs {cheapest[0].objective:,.0f} CNY > budget {policy.budget:,.0f} CNY"
            if policy.budget_basis == "npv_cost"
            else f"budget: no plan meeting the target spends at most {policy.budget:,.0f} CNY of {policy.budget_basis}"
        )
    reach_policy = dataclasses.replace(
        policy, objective="max_coverage", coverage_target=None, district_targets=None
    )
    reach = _solve_instance(inst, reach_policy)
    if reach[0].status in ("optimal", "time_limit"):
        ev = heuristics.evaluate(inst, reach[0].choice, reach_policy)
        share = ev["covered_weight"] / max(inst.village_weight.sum(), 1e-300)
        target = (
            f" (target {policy.coverage_target:.4g})" if policy.coverage_target is not None else ""
        )
        parts.append(f"budget: budget reaches at most {share:.4g} coverage{target}")
    return "; ".join(parts)


def _solve_instance(
    inst: Instance, policy: Policy, start: np.ndarray | None = None
) -> tuple[_Outcome, Formulation, float]:
    """Build and solve; an unreachable target or an infeasible solve comes back with its reason."""
    t0 = time.perf_counter()
    model = formulate.build_formulation(inst, policy)
    build_seconds = time.perf_counter() - t0
    reason = _unreachable(inst, policy)
    if reason:
        out = _Outcome(
            "infeasible",
            "not solved: a coverage target exceeds the reachable weight",
            np.full(len(inst.village_ids), -1),
        )
        out.solver = milp.solver_used(policy.solver)
    else:
        out = solve(model, inst, policy, start)
        if out.status == "infeasible":
            reason = _explain_infeasible(inst, policy)
    out.reason = reason if out.status == "infeasible" else ""
    return out, model, build_seconds


# -------------------------------------------------------------------------------------------- results


def _dataset(
    inst: Instance, choice: np.ndarray, ev: dict[str, object], attrs: dict[str, object]
) -> xr.Dataset:
    """The Plan Dataset of a per-village choice (-1: unserved): village and site variables, attrs.

    The money and village attributes are then joined from the options table by
    :func:`price_plan` (the one place the Plan is priced).
    """
    served = choice >= 0
    opt = np.maximum(choice, 0)

    def pick(values: np.ndarray, empty: object) -> np.ndarray:
        return np.where(served, values[opt], empty) if len(values) else np.full(len(choice), empty)

    site_of = pick(inst.site, -1)
    site_name = (
        np.where(site_of >= 0, inst.site_ids[np.maximum(site_of, 0)], "")
        if len(inst.site_ids)
        else np.full(len(choice), "")
    )
    village = {
        "option_id": pick(inst.option_id, "").astype(str),
        "technology": pick(inst.technology, "none").astype(str),
        "site_id": site_name.astype(str),
        "npv_cost": pick(inst.cost, 0.0).astype(float),
        "served": served,
        "covered": np.asarray(ev["covered"], dtype=bool),
        "weight": inst.village_weight.astype(float),
        "district_id": inst.village_district.astype(str),
    }
    units = {"npv_cost": "CNY (NPV)"}
    data = {
        k: ("village", v, {"units": units[k]} if k in units else {}) for k, v in village.items()
    }
    data["site_built"] = ("site", np.asarray(ev["site_built"], dtype=bool))
    data["site_cost"] = ("site", np.asarray(ev["site_paid"], dtype=float), {"units": "CNY (NPV)"})
    site_capex = np.asarray(inst.site_capex if inst.site_capex is not None else [], dtype=float)
    if len(site_capex) and len(site_capex) == len(inst.site_ids) and np.isfinite(site_capex).all():
        data["site_capex"] = ("site", site_capex, {"units": "CNY (undiscounted)"})
    coords = {"village": inst.village_ids.astype(str), "site": inst.site_ids.astype(str)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _binding(
    model: Formulation, out: _Outcome, z: np.ndarray | None
) -> tuple[list[str], float, float]:
    """Policy rows with a non-zero LP shadow price or no slack at the plan; the coverage and budget duals.

    Duals are d(objective)/d(right-hand side) in the objective's own sense: [CNY per unit of weight]
    for coverage under min_cost / min_subsidy, [weight per CNY] for the budget under max_coverage.
    """
    names, dual = [], out.row_dual
    activity = model.matrix @ z if z is not None else None
    for name, row in model.policy_rows.items():
        rhs = model.row_upper[row] if name == "budget" else model.row_lower[row]
        tight = activity is not None and abs(activity[row] - rhs) <= TOL * max(1.0, abs(rhs))
        priced = dual is not None and abs(dual[row]) > 1e-9 * max(
            1.0, np.abs(model.col_cost).max(initial=0.0)
        )
        if tight or priced:
            names.append(name)

    def get(name: str) -> float:
        row = model.policy_rows.get(name)
        return math.nan if row is None or dual is None else float(dual[row]) + 0.0

    return names, get("coverage"), get("budget")


def _coverage_attrs(inst: Instance, ev: dict[str, object], policy: Policy) -> dict[str, object]:
    """Plan attrs on cost [CNY] and coverage of an :func:`heuristics.evaluate`-d plan and its policy."""
    total_w = inst.village_weight.sum()
    return {
        "total_cost": ev["total_cost"],
        "total_net_cost": ev["total_net_cost"],
        "coverage_share": ev["covered_weight"] / total_w if total_w > 0 else math.nan,
        "coverage_basis": policy.coverage_basis,
        "coverage_target": math.nan
        if policy.coverage_target is None
        else float(policy.coverage_target),
        "budget": math.nan if policy.budget is None else float(policy.budget),
        "budget_basis": policy.budget_basis,
        "budget_spent": float(ev["budget_spent"]),
    }


def budget_price(dual_budget: float, policy: Policy) -> float:
    """The budget's shadow price as money per unit of coverage [CNY per person or village].

    Under max_coverage the LP dual of the budget row is the coverage bought by one more CNY of the
    budget's money [persons or villages per CNY]; its inverse is what the budget pays, at the
    margin, per extra person (population basis) or village (villages basis) covered. NaN for the
    other objectives (their coverage price is ``dual_coverage``) and when the budget is slack.
    """
    if policy.objective != "max_coverage" or not (math.isfinite(dual_budget) and dual_budget > 0):
        return math.nan
    return 1.0 / dual_budget


def _coverage_bound(inst: Instance, bound: float, policy: Policy) -> float:
    """Under max_coverage, an upper bound on the covered weight [persons or villages]: the MILP
    bound on (covered weight - eps x cost) plus the most the tie-break can take off
    (:func:`~universal_service.optimize.formulate.tie_break_scale`); NaN for other objectives."""
    if policy.objective != "max_coverage" or not math.isfinite(bound):
        return math.nan
    return bound + formulate.tie_break_weight(inst) * formulate.tie_break_scale(inst)


def proved_within(objective: float, bound: float, sense: int, mip_gap: float) -> bool:
    """Whether ``bound`` proves ``objective`` optimal to ``mip_gap``: the relative gap is within it,
    or the two differ by at most the solvers' absolute tolerance, :data:`ABS_GAP` (objectives
    near 0). The rule behind every "optimal" a Plan reports.

    Parameters
    ----------
    objective, bound : float
        The plan's objective and a bound on it, in the objective's units.
    sense : {1, -1}
        1 when minimising, -1 when maximising.
    mip_gap : float
        Relative gap tolerance [-].

    Returns
    -------
    bool
    """
    gap = milp.relative_gap(objective, bound, sense)
    close = math.isfinite(objective) and math.isfinite(bound)
    close = close and sense * (objective - bound) <= ABS_GAP
    return close or (math.isfinite(gap) and gap <= mip_gap * (1 + 1e-9))


def _status(status: str, objective: float, bound: float, sense: int, policy: Policy) -> str:
    """ "optimal" only when :func:`proved_within` ``policy.mip_gap``; a solved plan with a wider or
    unknown gap is "time_limit"; the solver's other statuses pass through."""
    if status not in ("optimal", "time_limit"):
        return status
    within = proved_within(objective, bound, sense, policy.mip_gap)
    return "optimal" if within else "time_limit"


def plan(
    options: pd.DataFrame,
    sites: pd.DataFrame,
    policy: Policy | None = None,
    start: xr.Dataset | None = None,
) -> xr.Dataset:
    """Choose one option (or none) per village and the shared sites to build, optimally.

    Parameters
    ----------
    options : pandas.DataFrame
        Long table, one row per village x option. Required: ``village_id`` (str), ``option_id`` (str,
        unique within village), ``technology`` (str), ``site_id`` (str; "" or NaN when the option needs
        no shared site), ``cost`` (NPV [CNY], >= 0). Optional: ``net_cost`` (NPV cost minus NPV revenue
        at the affordable tariff [CNY], may be negative; default ``cost``), ``quality`` (int tier),
        ``weight`` (per-village coverage weight, e.g. population [persons], repeated on the
        village's rows; default 1), ``district_id`` (default ""), ``counts_as_covered`` (bool,
        default True); carried into the Plan when present (:data:`MONEY_COLUMNS`,
        :data:`VILLAGE_COLUMNS`): ``capex``, ``opex_per_year``, ``revenue_npv``,
        ``tariff_monthly``, ``affordable_monthly``, ``demand_subsidy_npv``, ``population``,
        ``households``, ``existing_service``.
    sites : pandas.DataFrame
        ``site_id`` (str, unique), ``cost`` (NPV [CNY]); optional ``technology``. May be empty.
    policy : Policy
        Targets, budget, objective and solver settings (default: min_cost, no target).
    start : xarray.Dataset, optional
        A Plan over the same options (its ``option_id`` per village), offered to the solver as a
        starting plan with the greedy ones (``policy.warm_start``) when it meets this policy: a
        sweep starts each point from its neighbour's plan.

    Returns
    -------
    xarray.Dataset
        The Plan: on dim ``village`` (sorted ids) ``option_id`` ("" if unserved), ``technology``
        ("none" if unserved), ``site_id``, ``served`` (by this plan), ``covered`` (after the plan,
        existing service included), ``weight``, ``district_id`` and the priced variables of
        :func:`price_plan` (``population``,
        ``households``, ``existing_service``, ``capex``, ``opex_per_year``, ``npv_cost``,
        ``site_share``, ``revenue_npv``, ``tariff_monthly``, ``subsidy``...; 0 if unserved); on dim
        ``site`` (sorted ids) ``site_built``, ``site_cost`` (paid in this plan, 0 if not built)
        [CNY] and ``site_capex`` [CNY] when the sites table has it. ``attrs``: ``total_npv_cost``,
        ``total_subsidy`` (price_plan's rules) and ``status`` (optimal,
        time_limit, infeasible, unbounded, error), ``termination``, ``objective``, ``bound``, ``gap``,
        ``lp_bound``, ``total_cost``, ``total_net_cost`` [CNY], ``coverage_share``, ``coverage_target``,
        ``budget``, ``solver``, ``solver_version``, ``n_rows``, ``n_cols``, ``n_x``, ``n_y``,
        ``n_nonzeros``, ``n_options_removed_dominated``, ``n_options_removed_quality``,
        ``build_seconds``, ``solve_seconds`` [s], ``binding_constraints`` ("; "-joined),
        ``dual_coverage``, ``dual_budget`` (LP shadow prices, NaN when absent), ``infeasible_reason``
        ("" when feasible), ``warm_start_objective``, ``objective_name``, ``coverage_basis``,
        ``mip_gap_tolerance``, ``time_limit_s``. Only str, int and float, so ``to_netcdf`` works.

        ``objective`` is in the objective's units: [CNY] for min_cost and min_subsidy, covered weight
        minus the tie-break ``eps x cost`` for max_coverage (:func:`tie_break_weight`). ``bound`` is
        the solver's best bound (or the LP bound, or :func:`share_bound` when the LP did not finish);
        ``gap`` = |objective - bound| / |objective|. Duals are d(objective)/d(right-hand side) of the
        LP relaxation after presolve (forced villages are fixed there): ``dual_coverage`` [CNY per
        unit of weight], ``dual_budget`` [objective units per CNY]. ``binding_constraints`` names the
        coverage and budget rows with a non-zero shadow price or no slack at the plan.

        ``status`` is "optimal" only when ``gap`` is within ``policy.mip_gap`` (:func:`_status`),
        and ``status_method`` is "milp" (:func:`universal_service.fiberplan.design` reports
        "heuristic" for its shared-trench plans). ``budget_basis`` names the money the budget
        limits and ``budget_spent`` is the plan's amount of it [CNY]
        (:func:`~universal_service.optimize.instance.budget_money`);
        ``budget_cny_per_unit_covered`` is the budget's shadow price under max_coverage [CNY per
        person or village covered] (:func:`budget_price`) and ``coverage_bound`` an upper bound
        on the covered weight under max_coverage (NaN otherwise).

    Raises
    ------
    InputDataError
        When the tables break their contract (the message lists every problem).

    Notes
    -----
    An infeasible policy is a result (status ``infeasible`` with ``infeasible_reason``), not an error.
    """
    policy = policy or Policy()
    t0 = time.perf_counter()
    inst = instance.remove_dominated(instance.prepare(options, sites, policy), policy)
    prepare_seconds = time.perf_counter() - t0
    choice = _choice_of(inst, start) if start is not None else None
    out, model, build_seconds = _solve_instance(inst, policy, choice)
    z = (
        formulate.columns(model, inst, out.choice)
        if out.status in ("optimal", "time_limit")
        else None
    )
    ev = heuristics.evaluate(inst, out.choice, policy)
    binding, dual_cov, dual_budget = _binding(model, out, z)
    attrs = {
        "status": _status(out.status, out.objective, out.bound, model.sense, policy),
        "status_method": "milp",
        "termination": out.termination,
        "objective_name": policy.objective,
        "objective": out.objective,
        "bound": out.bound,
        "gap": milp.relative_gap(out.objective, out.bound, model.sense),
        "lp_bound": out.lp_bound,
        **_coverage_attrs(inst, ev, policy),
        "solver": out.solver,
        "solver_version": out.solver_version,
        "mip_gap_tolerance": float(policy.mip_gap),
        "time_limit_s": float(policy.time_limit_s),
        "n_rows": model.n_rows,
        "n_cols": model.n_cols,
        "n_x": model.n_x,
        "n_y": model.n_y,
        "n_nonzeros": model.n_nonzeros,
        "n_options_removed_dominated": inst.n_removed_dominated,
        "n_options_removed_quality": inst.n_removed_quality,
        "build_seconds": prepare_seconds + build_seconds,
        "solve_seconds": out.solve_seconds,
        "binding_constraints": "; ".join(binding),
        "dual_coverage": dual_cov,
        "dual_budget": dual_budget,
        "budget_cny_per_unit_covered": budget_price(dual_budget, policy),
        "coverage_bound": _coverage_bound(inst, out.bound, policy),
        "infeasible_reason": out.reason,
        "warm_start_objective": out.warm_objective,
    }
    return price_plan(_dataset(inst, out.choice, ev, attrs), options, sites)


def solve_brief(
    options: pd.DataFrame, sites: pd.DataFrame, policy: Policy | None = None
) -> dict[str, object]:
    """Solve like :func:`plan` but return only the figures a price search needs, no Plan.

    The same instance, model and solver as :func:`plan` (so the same choice); the Plan Dataset
    and its pricing (:func:`price_plan`), most of :func:`plan`'s time on a small model, are
    skipped. For the many small solves of a Lagrangian price search
    (:func:`universal_service.districts.solve_at_price`).

    Parameters
    ----------
    options, sites, policy
        As :func:`plan`.

    Returns
    -------
    dict
        ``status`` (as the Plan's ``attrs["status"]``), ``objective`` and ``bound`` (objective
        units), ``total_cost`` (the plan's NPV cost with shared sites paid once [CNY], equal to
        :func:`plan`'s ``total_npv_cost``), ``covered_weight`` (after the plan, existing
        service included), ``village_id`` (the instance's villages, sorted: those with an
        option) and ``option_id`` (per village in that order, "" unserved).
    """
    policy = policy or Policy()
    inst = instance.remove_dominated(instance.prepare(options, sites, policy), policy)
    out, model, _ = _solve_instance(inst, policy)
    ev = heuristics.evaluate(inst, out.choice, policy)
    served = out.choice >= 0
    ids = (
        np.where(served, inst.option_id[np.maximum(out.choice, 0)], "")
        if len(inst.option_id)
        else np.full(len(out.choice), "")
    )
    return {
        "status": _status(out.status, out.objective, out.bound, model.sense, policy),
        "objective": out.objective,
        "bound": out.bound,
        "total_cost": float(ev["total_cost"]),
        "covered_weight": float(ev["covered_weight"]),
        "village_id": np.asarray(inst.village_ids, dtype=str),
        "option_id": np.asarray(ids, dtype=str),
    }


def _choice_of(inst: Instance, plan: xr.Dataset) -> np.ndarray:
    """A Plan's chosen options as option indices of ``inst`` per village (-1: none, or an option
    the instance no longer has)."""
    chosen = pd.Series(
        plan["option_id"].values.astype(str), index=plan["village"].values.astype(str)
    )
    want = chosen.reindex(inst.village_ids.astype(str)).fillna("").to_numpy()
    key = pd.Index(list(zip(inst.option_village, inst.option_id.astype(str), strict=True)))
    pos = key.get_indexer(list(zip(range(len(want)), want, strict=True)))
    return np.where(want != "", pos, -1)


def baseline(
    options: pd.DataFrame, sites: pd.DataFrame, policy: Policy | None = None
) -> xr.Dataset:
    """The no-sharing greedy plan: each village its cheapest option, each option paying its site alone.

    Villages are served when their cheapest option has a negative net cost (min_subsidy), then taken in
    ascending cost per weight until every coverage target is met (districts first), and under
    max_coverage while the budget lasts. This is the reference against which :func:`plan` shows the
    saving of sharing sites.

    Returns
    -------
    xarray.Dataset
        Same layout as :func:`plan`; ``site_cost`` is what all villages using the site pay for it
        together (site cost x villages using it) [CNY]; ``status`` is ``feasible`` or ``infeasible``
        (with ``infeasible_reason``); ``solver`` is ``greedy``.
    """
    policy = policy or Policy()
    t0 = time.perf_counter()
    inst = instance.prepare(options, sites, policy)
    choice = heuristics.greedy_choice(inst, policy)
    ev = heuristics.evaluate(inst, choice, policy, sites_shared=False)
    reason = _unreachable(inst, policy)
    if not reason and ev["violated"]:
        reason = "; ".join(
            f"{name}: not met by the no-sharing greedy plan" for name in ev["violated"]
        )
    objective = (
        ev["covered_weight"]
        if policy.objective == "max_coverage"
        else ev["total_net_cost"]
        if policy.objective == "min_subsidy"
        else ev["total_cost"]
    )
    attrs = {
        "status": "infeasible" if reason else "feasible",
        "termination": "greedy per-village baseline (no site sharing)",
        "objective_name": policy.objective,
        "objective": float(objective),
        **_coverage_attrs(inst, ev, policy),
        "solver": "greedy",
        "solve_seconds": time.perf_counter() - t0,
        "infeasible_reason": reason,
    }
    return price_plan(_dataset(inst, choice, ev, attrs), options, sites)


# ------------------------------------------------------------------------------------ plan money

#: Per-option money columns carried into the Plan: options-table column -> (Plan variable, units,
#: value where the column is absent or the village unserved).
MONEY_COLUMNS: dict[str, tuple[str, str, float]] = {
    "capex": ("capex", "CNY (undiscounted)", 0.0),
    "opex_per_year": ("opex_per_year", "CNY/yr", 0.0),
    "cost": ("npv_cost", "CNY (NPV)", 0.0),
    "revenue_npv": ("revenue_npv", "CNY (NPV)", 0.0),
    "tariff_monthly": ("tariff_monthly", "CNY/month", np.nan),
    "affordable_monthly": ("affordable_monthly", "CNY/month", np.nan),
    "demand_subsidy_npv": ("demand_subsidy_npv", "CNY (NPV)", 0.0),
}
#: Village attributes (repeated on each of a village's rows) carried into the Plan, with the value
#: used when the options table has no such column.
VILLAGE_COLUMNS: dict[str, object] = {
    "population": np.nan,
    "households": np.nan,
    "existing_service": "",
}


def price_plan(
    plan: xr.Dataset, options: pd.DataFrame, sites: pd.DataFrame | None = None
) -> xr.Dataset:
    """Fill a Plan's per-village money from its options table: the one place the Plan is priced.

    Each village's chosen row of ``options`` (matched on ``village_id`` and ``option_id``) gives
    ``capex`` (undiscounted [CNY]), ``opex_per_year`` [CNY/yr], ``npv_cost`` (the row's ``cost``
    [CNY, NPV]), ``revenue_npv`` [CNY, NPV], ``tariff_monthly`` and ``affordable_monthly``
    [CNY/month] and ``demand_subsidy_npv`` [CNY, NPV]; unserved villages get 0 (NaN for the
    tariffs). Columns the table lacks (the optimizer takes any long table) are 0 or NaN. The
    village attributes ``population``, ``households`` and ``existing_service`` come from any of
    its rows (``population`` falls back on the coverage ``weight``).

    Then the two money rules of :mod:`universal_service.appraisal`: ``site_share``
    (:func:`~universal_service.appraisal.site_shares`: each site's ``site_cost``, what the plan
    pays for it, split among the villages the plan serves from it by population) and
    ``subsidy`` (:func:`~universal_service.appraisal.subsidy`). ``above_cap`` flags the served
    villages whose tariff is above their affordability cap. With ``sites``, ``cheapest_cost`` is
    each village's cheapest way to be served alone: the least ``cost`` + full site ``cost`` over
    its options that count as covered [CNY, NPV] (the "why" of an unserved village); without,
    an earlier ``cheapest_cost`` is kept.

    attrs: ``total_npv_cost`` = sum of ``npv_cost`` + sum of ``site_cost`` (the documented rule:
    option costs exclude the shared sites, which are added once each, so it equals the sum of
    ``npv_cost + site_share`` whenever every built site serves a village), ``total_subsidy`` =
    sum of ``subsidy``, ``total_revenue_npv``, ``total_capex`` (options plus the sites' ``capex``
    when the plan carries it), ``total_opex_per_year``, ``total_demand_subsidy`` (served
    villages), ``n_above_cap`` [villages served by the plan].

    Parameters
    ----------
    plan : xarray.Dataset
        A Plan with ``option_id``, ``site_id``, ``served`` on ``village`` and ``site_cost``,
        ``site_built`` on ``site``.
    options : pandas.DataFrame
        The long options table the plan was chosen from.
    sites : pandas.DataFrame, optional
        ``site_id``, ``cost`` [CNY, NPV] of the shared sites.

    Returns
    -------
    xarray.Dataset
        A new Plan with the variables above (replacing any earlier ones) and the attrs.
    """
    village = pd.Index(plan["village"].values.astype(str))
    served = plan["served"].values.astype(bool)
    t = options.assign(
        village_id=options["village_id"].astype(str), option_id=options["option_id"].astype(str)
    )
    rows = t.drop_duplicates(["village_id", "option_id"]).set_index(["village_id", "option_id"])
    chosen = pd.MultiIndex.from_arrays([village, plan["option_id"].values.astype(str)])
    # every variable is made first and assigned in one go (one merge, not one per variable)
    new: dict[str, tuple] = {}
    for col, (name, units, empty) in MONEY_COLUMNS.items():
        values = (
            pd.to_numeric(rows[col], errors="coerce").reindex(chosen).to_numpy(float)
            if col in rows.columns
            else np.full(len(village), empty)
        )
        values = np.where(served & np.isfinite(values), values, empty)
        new[name] = ("village", values, {"units": units})
    first = t.drop_duplicates("village_id").set_index("village_id").reindex(village)
    for col, empty in VILLAGE_COLUMNS.items():
        if col in first.columns:
            values = first[col].to_numpy()
        elif col == "population" and "weight" in plan:
            values = plan["weight"].values.astype(float)
        else:
            values = np.full(len(village), empty)
        values = values.astype(str) if col == "existing_service" else values.astype(float)
        new[col] = ("village", values)
    if sites is not None:
        new["cheapest_cost"] = ("village", _cheapest(t, sites, village), {"units": "CNY (NPV)"})
    site_cost = _site_cost_paid(plan)
    site_of = np.where(served, plan["site_id"].values.astype(str), "")
    pop = np.nan_to_num(new["population"][1].astype(float))
    share = appraisal.site_shares(site_of, pop, site_cost)
    new["site_share"] = (
        "village",
        share,
        {"units": "CNY (NPV)", "rule": "site cost split by population among its villages"},
    )
    npv, revenue = new["npv_cost"][1], new["revenue_npv"][1]
    new["subsidy"] = (
        "village",
        appraisal.subsidy(npv, share, revenue),
        {"units": "CNY (NPV)", "rule": "max(0, npv_cost + site_share - revenue_npv)"},
    )
    tariff, cap = new["tariff_monthly"][1], new["affordable_monthly"][1]
    new["above_cap"] = ("village", served & np.isfinite(tariff) & (tariff > cap + 1e-9))
    site_capex = (
        float(plan["site_capex"].where(plan["site_built"], 0.0).sum())
        if "site_capex" in plan
        else 0.0
    )
    out = plan.assign(new)
    out.attrs.update(
        total_npv_cost=float(out["npv_cost"].sum()) + float(sum(site_cost.values())),
        total_subsidy=float(out["subsidy"].sum()),
        total_revenue_npv=float(out["revenue_npv"].sum()),
        total_capex=float(out["capex"].sum()) + site_capex,
        total_opex_per_year=float(out["opex_per_year"].sum()),
        total_demand_subsidy=float(out["demand_subsidy_npv"].sum()),
        n_above_cap=int(out["above_cap"].sum()),
    )
    return out


def _site_cost_paid(plan: xr.Dataset) -> dict[str, float]:
    """Site id -> what the plan pays for it [CNY, NPV], built sites only."""
    if "site" not in plan.dims or plan.sizes["site"] == 0:
        return {}
    built = plan["site_built"].values.astype(bool)
    ids = plan["site"].values.astype(str)[built]
    return dict(zip(ids, plan["site_cost"].values.astype(float)[built], strict=True))


def _cheapest(t: pd.DataFrame, sites: pd.DataFrame, village: pd.Index) -> np.ndarray:
    """Each village's least cost of being served alone: option + full site cost [CNY, NPV]."""
    site_cost = pd.Series(
        pd.to_numeric(sites["cost"], errors="coerce").to_numpy(float),
        index=sites["site_id"].astype(str).to_numpy(),
    )
    site = t["site_id"].fillna("").astype(str)
    alone = pd.to_numeric(t["cost"], errors="coerce").to_numpy(float) + np.where(
        site != "", site_cost.reindex(site).fillna(np.inf).to_numpy(), 0.0
    )
    ok = t["counts_as_covered"].astype(bool).to_numpy() if "counts_as_covered" in t else True
    best = pd.Series(np.where(ok, alone, np.inf)).groupby(t["village_id"].to_numpy()).min()
    return best.reindex(village).fillna(np.inf).to_numpy(float)
