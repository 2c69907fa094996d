"""Plans whose choice is given, not solved.

A given choice is judged under a policy (:func:`evaluate_plan`) or made into a Plan with a
bound proved elsewhere (:func:`plan_of_choice`), priced as :func:`.solve.plan`'s are.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from universal_service import milp
from universal_service.errors import InputDataError

from . import heuristics, instance
from .instance import Instance, Policy
from .solve import _coverage_attrs, _dataset, _status, price_plan


def evaluate_plan(
    options: pd.DataFrame, sites: pd.DataFrame, policy: Policy, option_ids: pd.Series
) -> dict[str, object]:
    """The objective, money and feasibility of a given plan under a policy, without solving.

    Parameters
    ----------
    options, sites : pandas.DataFrame
        As for :func:`plan`; the plan's options are priced by this table.
    policy : Policy
    option_ids : pandas.Series
        The chosen option per village (index ``village_id``; "" or missing: unserved).

    Returns
    -------
    dict
        ``objective`` (the policy's objective as :func:`plan` computes it: [CNY], or for
        max_coverage the covered weight minus the cost tie-break), ``covered_weight``,
        ``total_cost``, ``total_net_cost``, ``budget_spent`` [CNY] and ``violated`` (names of the
        coverage or budget rows the plan breaks).

    Raises
    ------
    InputDataError
        When the tables break their contract, or a chosen option is not in them.
    """
    inst = instance.prepare(options, sites, policy)
    choice = _choice_of_ids(inst, option_ids)
    ev = heuristics.evaluate(inst, choice, policy)
    return {
        "objective": float(heuristics.objective_value(inst, ev, policy)),
        "covered_weight": ev["covered_weight"],
        "total_cost": ev["total_cost"],
        "total_net_cost": ev["total_net_cost"],
        "budget_spent": ev["budget_spent"],
        "violated": list(ev["violated"]),
    }


def _choice_of_ids(inst: Instance, option_ids: pd.Series) -> np.ndarray:
    """Option indices of ``inst`` per village (-1: unserved) of a chosen option per village
    (index ``village_id``; "" or missing: unserved); an option not in ``inst`` is an error."""
    wanted = pd.Series(option_ids, dtype=object).reindex(inst.village_ids).fillna("").astype(str)
    key = pd.MultiIndex.from_arrays([inst.village_ids[inst.option_village], inst.option_id])
    pos = key.get_indexer(pd.MultiIndex.from_arrays([inst.village_ids, wanted.to_numpy()]))
    missing = (pos < 0) & (wanted.to_numpy() != "")
    if missing.any():
        raise InputDataError(
            f"plan: option(s) {list(zip(inst.village_ids[missing], wanted[missing], strict=True))[:5]} are "
            "not in the options table; choose options it lists"
        )
    return np.where(pos >= 0, pos, -1).astype(np.int64)


def plan_of_choice(
    options: pd.DataFrame,
    sites: pd.DataFrame,
    policy: Policy,
    option_ids: pd.Series,
    *,
    bound: float,
    method: str,
) -> xr.Dataset:
    """The Plan of a choice made elsewhere, with a lower bound proved elsewhere: no solve.

    Priced like :func:`plan`'s (:func:`price_plan`), so its money is the same. A district's
    choice at a coverage price (:mod:`universal_service.districts`) is the least-cost plan for
    the weight it covers, to the price solve's gap: ``bound`` is then that solve's bound plus
    the price times the covered weight.

    Parameters
    ----------
    options, sites : pandas.DataFrame
        As for :func:`plan`.
    policy : Policy
        The policy the plan is judged by (its target and ``mip_gap``); only ``min_cost`` here.
    option_ids : pandas.Series
        The chosen option per village (index ``village_id``; "" or missing: unserved).
    bound : float
        A lower bound on the NPV cost [CNY] of any plan meeting ``policy``.
    method : str
        How the choice and bound were found (``attrs["status_method"]``).

    Returns
    -------
    xarray.Dataset
        As :func:`plan`'s, with ``objective`` its NPV cost, ``bound`` and ``gap``; ``status``
        "optimal" within ``policy.mip_gap``, "time_limit" wider, "infeasible" when the choice
        breaks the policy's target or budget (``infeasible_reason`` names the rows).

    Raises
    ------
    InputDataError
        When the tables break their contract, or a chosen option is not in them.
    """
    if policy.objective != "min_cost":
        raise ValueError(f"plan_of_choice: objective min_cost only (got {policy.objective!r})")
    inst = instance.prepare(options, sites, policy)
    choice = _choice_of_ids(inst, option_ids)
    ev = heuristics.evaluate(inst, choice, policy)
    cost = float(ev["total_cost"])
    status = "infeasible" if ev["violated"] else _status("optimal", cost, bound, 1, policy)
    nan = math.nan
    attrs = {
        "status": status,
        "status_method": method,
        "termination": "given choice",
        "objective_name": policy.objective,
        "objective": cost,
        "bound": float(bound),
        "gap": milp.relative_gap(cost, bound, 1),
        "lp_bound": nan,
        **_coverage_attrs(inst, ev, policy),
        "solver": "",
        "solver_version": "",
        "mip_gap_tolerance": float(policy.mip_gap),
        "time_limit_s": float(policy.time_limit_s),
        **{k: 0 for k in ("n_rows", "n_cols", "n_x", "n_y", "n_nonzeros")},
        "n_options_removed_dominated": 0,
        "n_options_removed_quality": inst.n_removed_quality,
        "build_seconds": 0.0,
        "solve_seconds": 0.0,
        "binding_constraints": "",
        "dual_coverage": nan,
        "dual_budget": nan,
        "budget_cny_per_unit_covered": nan,
        "coverage_bound": nan,
        "infeasible_reason": "; ".join(map(str, ev["violated"])),
        "warm_start_objective": nan,
    }
    return price_plan(_dataset(inst, choice, ev, attrs), options, sites)
