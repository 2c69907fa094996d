"""Solve the optimizer's model and report the plan: LP-first MILP, infeasibility reasons, the Plan Dataset."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from universal_service import milp

from . import formulate, heuristics, instance
from .formulate import Formulation
from .instance import RANDOM_SEED, TOL, Instance, Policy


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


def solve(model: Formulation, inst: Instance, policy: Policy) -> _Outcome:
    """Solve the model with :func:`universal_service.milp.solve`, LP relaxation first.

    The LP relaxation is solved once (its bound is reported and its duals are the shadow prices of
    the coverage and budget rows); an integral LP optimum is the MILP optimum, otherwise the MILP
    runs from the LP solution and, with ``policy.warm_start``, the best greedy plan
    (:func:`~universal_service.optimize.heuristics.incumbent`), which is kept if the solver ends
    with nothing better. Large models run the MILP in a child process stopped at the deadline
    (:data:`universal_service.milp.GUARD_COLS`); when even the LP relaxation runs out of time, the
    greedy plan is returned with the site-share bound
    (:func:`~universal_service.optimize.heuristics.share_bound`).
    """

    def start(lp_x: np.ndarray | None) -> np.ndarray | None:
        return heuristics.incumbent(model, inst, policy, lp_x)

    result = milp.solve(
        formulate.to_problem(model),
        solver=policy.solver,
        time_limit_s=policy.time_limit_s,
        mip_gap=policy.mip_gap,
        threads=policy.threads,
        seed=RANDOM_SEED,
        start=start if policy.warm_start else None,
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
    w, what = inst.village_weight, "weight" if policy.coverage_basis == "weight" else "villages"
    total = t.sums(w)
    reach = t.sums(np.where(instance.reachable(inst), w, 0.0))
    short = reach < t.share * total - TOL * np.maximum(1.0, total)
    return "; ".join(
        f"{name}: at most {reach[i] / total[i]:.4g} of {what} is reachable (target {t.share[i]:.4g})"
        for i, name in enumerate(t.names)
        if short[i]
    )


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


def _solve_instance(inst: Instance, policy: Policy) -> tuple[_Outcome, Formulation, float]:
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
        out = solve(model, inst, policy)
        if out.status == "infeasible":
            reason = _explain_infeasible(inst, policy)
    out.reason = reason if out.status == "infeasible" else ""
    return out, model, build_seconds


# -------------------------------------------------------------------------------------------- results


def _dataset(
    inst: Instance, choice: np.ndarray, ev: dict[str, object], attrs: dict[str, object]
) -> xr.Dataset:
    """The Plan Dataset of a per-village choice (-1: unserved): village and site variables, attrs."""
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
        "cost": pick(inst.cost, 0.0).astype(float),
        "net_cost": pick(inst.net_cost, 0.0).astype(float),
        "served": served,
        "covered": np.asarray(ev["covered"], dtype=bool),
        "weight": inst.village_weight.astype(float),
        "district_id": inst.village_district.astype(str),
    }
    units = {"cost": "CNY", "net_cost": "CNY", "site_cost": "CNY"}
    data = {
        k: ("village", v, {"units": units[k]} if k in units else {}) for k, v in village.items()
    }
    data["site_built"] = ("site", np.asarray(ev["site_built"], dtype=bool))
    data["site_cost"] = ("site", np.asarray(ev["site_paid"], dtype=float), {"units": "CNY"})
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
    }


def plan(options: pd.DataFrame, sites: pd.DataFrame, policy: Policy | None = None) -> xr.Dataset:
    """Choose one option (or none) per village and the shared sites to build, optimally.

    Parameters
    ----------
    options : pandas.DataFrame
        Long table, one row per village x option. Required: ``village_id`` (str), ``option_id`` (str,
        unique within village), ``technology`` (str), ``site_id`` (str; "" or NaN when the option needs
        no shared site), ``cost`` (NPV [CNY], >= 0). Optional: ``net_cost`` (NPV cost minus NPV revenue
        at the affordable tariff [CNY], may be negative; default ``cost``), ``capex``, ``opex``
        (carried, unused), ``quality`` (int tier), ``weight`` (per-village coverage weight, e.g.
        population [persons], repeated on the village's rows; default 1), ``district_id`` (default
        ""), ``counts_as_covered`` (bool, default True).
    sites : pandas.DataFrame
        ``site_id`` (str, unique), ``cost`` (NPV [CNY]); optional ``technology``. May be empty.
    policy : Policy
        Targets, budget, objective and solver settings (default: min_cost, no target).

    Returns
    -------
    xarray.Dataset
        The Plan: on dim ``village`` (sorted ids) ``option_id`` ("" if unserved), ``technology``
        ("none" if unserved), ``site_id``, ``cost`` and ``net_cost`` [CNY] (0 if unserved), ``served``,
        ``covered``, ``weight``, ``district_id``; on dim ``site`` (sorted ids) ``site_built`` and
        ``site_cost`` (paid in this plan, 0 if not built) [CNY]. ``attrs``: ``status`` (optimal,
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
    out, model, build_seconds = _solve_instance(inst, policy)
    z = (
        formulate.columns(model, inst, out.choice)
        if out.status in ("optimal", "time_limit")
        else None
    )
    ev = heuristics.evaluate(inst, out.choice, policy)
    binding, dual_cov, dual_budget = _binding(model, out, z)
    attrs = {
        "status": out.status,
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
        "infeasible_reason": out.reason,
        "warm_start_objective": out.warm_objective,
    }
    return _dataset(inst, out.choice, ev, attrs)


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
    return _dataset(inst, choice, ev, attrs)
