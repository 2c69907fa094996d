"""Least-cost universal-service plan: the village x option MILP, built from arrays, solved by milp."""

from .formulate import (
    Formulation,
    build_formulation,
    formulation,
    tie_break_weight,
    to_highs,
    to_pulp,
)
from .given import evaluate_plan, plan_of_choice
from .heuristics import (
    evaluate,
    greedy_choice,
    improve_plan,
    share_bound,
)
from .instance import (
    BUDGET_BASES,
    COVERAGE_BASES,
    OBJECTIVES,
    SOLVERS,
    Instance,
    Policy,
    budget_money,
    forced_villages,
    prepare,
    remove_dominated,
)
from .solve import baseline, plan, proved_within, solve_brief

__all__ = [
    "BUDGET_BASES",
    "COVERAGE_BASES",
    "OBJECTIVES",
    "SOLVERS",
    "Formulation",
    "Instance",
    "Policy",
    "baseline",
    "budget_money",
    "build_formulation",
    "evaluate",
    "evaluate_plan",
    "forced_villages",
    "formulation",
    "greedy_choice",
    "improve_plan",
    "plan",
    "plan_of_choice",
    "proved_within",
    "prepare",
    "remove_dominated",
    "share_bound",
    "solve_brief",
    "tie_break_weight",
    "to_highs",
    "to_pulp",
]
