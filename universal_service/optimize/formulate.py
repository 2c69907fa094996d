"""The village x option MILP built from an Instance as sparse arrays, one function per constraint group."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pulp
from scipy import sparse

from universal_service import milp

from . import instance
from .instance import Instance, Policy


@dataclass
class Formulation:
    """The MILP as arrays: optimise ``col_cost @ z`` s.t. ``row_lower <= matrix @ z <= row_upper``.

    All columns are binary: ``x`` (one per option, in :class:`Instance` order) then ``y`` (one per
    site used by some option). ``sense`` is 1 to minimise, -1 to maximise. ``policy_rows`` maps the
    coverage and budget row names to their row index. See :func:`build_formulation` for the model.
    """

    n_x: int = 0
    y_site: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    y_col: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    col_names: list[str] = field(default_factory=list)
    col_cost: np.ndarray = field(default_factory=lambda: np.array([]))
    sense: int = 1
    row_names: list[str] = field(default_factory=list)
    row_lower: list[np.ndarray] | np.ndarray = field(default_factory=list)
    row_upper: list[np.ndarray] | np.ndarray = field(default_factory=list)
    policy_rows: dict[str, int] = field(default_factory=dict)
    matrix: sparse.csc_matrix | None = None
    _triplets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def n_cols(self) -> int:
        return len(self.col_names)

    @property
    def n_rows(self) -> int:
        return len(self.row_names)

    @property
    def n_nonzeros(self) -> int:
        return 0 if self.matrix is None else int(self.matrix.nnz)

    @property
    def n_y(self) -> int:
        return len(self.y_site)

    def add_rows(
        self,
        names: list[str],
        lower: np.ndarray,
        upper: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
    ) -> int:
        """Append a block of rows given as COO triplets with block-local row numbers; return its first row."""
        first = len(self.row_names)
        self.row_names.extend(names)
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), len(names)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), len(names)))
        self._triplets.append(
            (
                np.asarray(rows, dtype=np.int64) + first,
                np.asarray(cols, dtype=np.int64),
                np.asarray(vals, dtype=float),
            )
        )
        return first


def add_choice_variables(model: Formulation, inst: Instance) -> None:
    """Columns ``x[v,o]`` for every option and ``y[s]`` for every site some option needs."""
    model.n_x = inst.n_options
    model.y_site = np.unique(inst.site[inst.site >= 0])
    model.y_col = np.full(len(inst.site_ids), -1, dtype=np.int64)
    model.y_col[model.y_site] = model.n_x + np.arange(len(model.y_site))
    villages = inst.village_ids[inst.option_village]
    model.col_names = [f"x[{v},{o}]" for v, o in zip(villages, inst.option_id, strict=True)]
    model.col_names += [f"y[{s}]" for s in inst.site_ids[model.y_site]]


def add_one_option_constraints(model: Formulation, inst: Instance, policy: Policy) -> None:
    """``one[v]``: each village takes at most one option (it may stay unserved), exactly one if forced."""
    villages, row = np.unique(inst.option_village, return_inverse=True)
    names = [f"one[{v}]" for v in inst.village_ids[villages]]
    lower = np.where(instance.forced_villages(inst, policy)[villages], 1.0, -np.inf)
    model.add_rows(names, lower, 1.0, row, np.arange(inst.n_options), np.ones(inst.n_options))


def add_link_constraints(model: Formulation, inst: Instance) -> None:
    """``link[v,o]``: ``x[v,o] <= y[s(o)]``, one row per option that needs a shared site (strong form)."""
    opts = np.flatnonzero(inst.site >= 0)
    rows = np.arange(len(opts))
    names = [model.col_names[i].replace("x[", "link[", 1) for i in opts]
    model.add_rows(
        names,
        -np.inf,
        0.0,
        np.r_[rows, rows],
        np.r_[opts, model.y_col[inst.site[opts]]],
        np.r_[np.ones(len(opts)), -np.ones(len(opts))],
    )


def add_capacity_constraints(model: Formulation, inst: Instance) -> None:
    """``capacity[s]``: the busy-hour demand of the options served from site ``s`` is at most its
    capacity when built: ``sum_o d[o] x[v,o] - cap[s] y[s] <= 0`` [Mbps], for the sites whose
    options could overload them."""
    if inst.demand is None or inst.site_capacity is None:
        return
    opts = np.flatnonzero((inst.site >= 0) & (inst.demand > 0))
    if len(opts) == 0:
        return
    load = np.bincount(inst.site[opts], weights=inst.demand[opts], minlength=len(inst.site_ids))
    tight = np.flatnonzero(load > inst.site_capacity + 1e-9)
    if len(tight) == 0:
        return
    row_of = np.full(len(inst.site_ids), -1, dtype=np.int64)
    row_of[tight] = np.arange(len(tight))
    mine = opts[row_of[inst.site[opts]] >= 0]
    rows = np.r_[row_of[inst.site[mine]], np.arange(len(tight))]
    cols = np.r_[mine, model.y_col[tight]]
    vals = np.r_[inst.demand[mine], -inst.site_capacity[tight]]
    names = [f"capacity[{s}]" for s in inst.site_ids[tight]]
    model.add_rows(names, -np.inf, 0.0, rows, cols, vals)


def add_coverage_constraints(model: Formulation, inst: Instance, policy: Policy) -> None:
    """``coverage`` and ``coverage[d]``: covered weight of the chosen options >= target x group weight.

    Forced villages (:func:`~universal_service.optimize.instance.forced_villages`) enter through the
    right-hand side instead of the row.
    """
    t = instance.targets(inst, policy)
    if not t.names:
        return
    forced, w = instance.forced_villages(inst, policy), inst.village_weight
    w_opt = w[inst.option_village]
    counts = np.flatnonzero(inst.covered & (w_opt > 0) & ~forced[inst.option_village])
    rhs = t.share * t.sums(w) - t.sums(np.where(forced, w, 0.0))
    overall = counts if t.has_overall else counts[:0]
    group = t.village_group[inst.option_village[counts]]
    district = counts[group >= 0]
    rows = np.r_[np.zeros(len(overall), dtype=np.int64), group[group >= 0]]
    cols = np.r_[overall, district]
    first = model.add_rows(t.names, rhs, np.inf, rows, cols, w_opt[cols])
    model.policy_rows.update({name: first + i for i, name in enumerate(t.names)})


def add_budget_constraint(model: Formulation, inst: Instance, policy: Policy) -> None:
    """``budget``: the money of ``policy.budget_basis`` spent on the chosen options and the sites
    built <= budget [CNY] (:func:`~universal_service.optimize.instance.budget_money`)."""
    if policy.budget is None:
        return
    per_option, per_site = instance.budget_money(inst, policy)
    x = np.flatnonzero(per_option != 0)
    y = np.flatnonzero(per_site[model.y_site] != 0)
    cols = np.r_[x, model.n_x + y]
    vals = np.r_[per_option[x], per_site[model.y_site][y]]
    model.policy_rows["budget"] = model.add_rows(
        ["budget"], -np.inf, policy.budget, np.zeros(len(cols)), cols, vals
    )


def tie_break_weight(inst: Instance) -> float:
    """Weight ``eps`` of the cost tie-break in the max_coverage objective [weight unit per CNY].

    Covered weight takes values on a grid of step ``delta`` (1 for integer weights, else the finest
    power of ten down to 1e-6 that makes every weight an integer), and any plan costs at most ``C`` =
    sum over villages of their dearest option + sum of all site costs. With ``eps = delta / (2 C)`` the
    tie-break term is below ``delta / 2`` for every plan, so it can only choose among plans of equal
    coverage, never trade coverage for cost (exact for weights with at most 6 decimals).
    """
    delta = 1e-6
    for k in range(7):
        scaled = inst.village_weight * 10.0**k
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-9):
            delta = 10.0**-k
            break
    total = tie_break_scale(inst)
    return 0.0 if total <= 0 else delta / (2.0 * total)


def tie_break_scale(inst: Instance) -> float:
    """``C`` of :func:`tie_break_weight`: the most any plan can cost [CNY] (each village's dearest
    option plus every site), so ``tie_break_weight(inst) * C`` bounds the tie-break term of any
    plan, and the max_coverage objective's bound plus it bounds the covered weight."""
    dearest = np.zeros(len(inst.village_ids))
    np.maximum.at(dearest, inst.option_village, inst.cost)
    return float(dearest.sum() + inst.site_cost.sum())


def set_objective(model: Formulation, inst: Instance, policy: Policy) -> None:
    """Column costs and sense of the objective chosen by ``policy.objective`` (see :func:`build_formulation`)."""
    site_cost = inst.site_cost[model.y_site]
    if policy.objective == "max_coverage":
        eps = tie_break_weight(inst)
        coverage = np.where(inst.covered, inst.village_weight[inst.option_village], 0.0)
        model.col_cost = np.r_[coverage - eps * inst.cost, -eps * site_cost]
        model.sense = -1
    else:
        per_option = inst.net_cost if policy.objective == "min_subsidy" else inst.cost
        model.col_cost = np.r_[per_option, site_cost].astype(float)
        model.sense = 1


def build_formulation(inst: Instance, policy: Policy) -> Formulation:
    """Build the MILP from the instance: one pass per constraint group, assembled once into CSC.

    The model (DESIGN.md, "The optimization model"): binary ``x[v,o]`` (village ``v`` takes option
    ``o``) and binary ``y[s]`` (shared site ``s`` built)::

        one[v]        sum_o x[v,o] <= 1                                  every village with an option
        link[v,o]     x[v,o] - y[s(o)] <= 0                              every option that needs a site
        capacity[s]   sum d_o x[v,o] - cap_s y[s] <= 0   (o at s)        sites the options could overload
        coverage      sum w_v x[v,o] >= target * W        (covered o)    when ``coverage_target`` is set
        coverage[d]   sum_{v in d} w_v x[v,o] >= t_d * W_d (covered o)   per ``district_targets`` entry
        budget        sum m_o x[v,o] + sum m_s y[s] <= budget            when ``budget`` is set

    where ``m`` is the money of ``policy.budget_basis`` (NPV cost, capex, or the site-free
    subsidy on options and the site cost on sites: the linear form of the subsidy,
    :func:`~universal_service.optimize.instance.budget_money`)::

        min_cost      min sum cost_o x + sum cost_s y
        min_subsidy   min sum net_cost_o x + sum cost_s y
        max_coverage  max sum w_v x (covered o) - eps (sum cost_o x + sum cost_s y)

    The strong linking ``x[v,o] <= y[s]`` (one row per option rather than one aggregated row per
    site) is the textbook strong formulation of uncapacitated facility location, whose LP relaxation
    is far tighter (Cornuejols, Nemhauser & Wolsey (1990), "The uncapacitated facility location
    problem", in *Discrete Location Theory*, Wiley, ch. 3). The model is built column-wise from the
    long options table into sparse arrays by one small function per constraint group, in the manner
    of PyPSA's ``pypsa/optimization/constraints.py``; :func:`to_problem` hands the same arrays to
    :mod:`universal_service.milp` (HiGHS through highspy, Huangfu & Hall (2018), Math. Prog. Comp.
    10:119-142, or a PuLP ``LpProblem`` for CBC and ``.lp`` export).
    """
    model = Formulation()
    add_choice_variables(model, inst)
    add_one_option_constraints(model, inst, policy)
    add_link_constraints(model, inst)
    add_capacity_constraints(model, inst)
    add_coverage_constraints(model, inst, policy)
    add_budget_constraint(model, inst, policy)
    set_objective(model, inst, policy)
    rows, cols, vals = (np.concatenate(part) for part in zip(*model._triplets, strict=True))
    model.matrix = sparse.csc_matrix((vals, (rows, cols)), shape=(model.n_rows, model.n_cols))
    model.row_lower = np.concatenate(model.row_lower)
    model.row_upper = np.concatenate(model.row_upper)
    model._triplets = []
    return model


def formulation(options: pd.DataFrame, sites: pd.DataFrame, policy: Policy) -> Formulation:
    """The array form of the model :func:`~universal_service.optimize.plan` solves (after validation
    and dominance removal)."""
    inst = instance.remove_dominated(instance.prepare(options, sites, policy), policy)
    return build_formulation(inst, policy)


def to_problem(model: Formulation, name: str = "universal_service") -> milp.Problem:
    """The formulation as a :class:`universal_service.milp.Problem`: every column binary, with names."""
    n = model.n_cols
    return milp.Problem(
        c=model.col_cost,
        A=model.matrix,
        row_lower=model.row_lower,
        row_upper=model.row_upper,
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integrality=np.ones(n, dtype=bool),
        sense=model.sense,
        col_names=tuple(model.col_names),
        row_names=tuple(model.row_names),
        name=name,
    )


def _formulation_of(
    options: pd.DataFrame | Formulation, sites: pd.DataFrame | None, policy: Policy
) -> Formulation:
    return options if isinstance(options, Formulation) else formulation(options, sites, policy)


def to_pulp(
    options: pd.DataFrame | Formulation,
    sites: pd.DataFrame | None = None,
    policy: Policy | None = None,
    name: str = "universal_service",
) -> pulp.LpProblem:
    """The model as a PuLP ``LpProblem`` (for CBC, or ``prob.writeLP(path)`` for researchers).

    Built in bulk from the same arrays as the HiGHS model (:func:`universal_service.milp.to_pulp`).
    PuLP replaces ``[]`` and spaces in names by ``_``.

    Parameters
    ----------
    options : pandas.DataFrame or Formulation
        The options table (then ``sites`` and ``policy`` are required), or a built formulation.
    sites : pandas.DataFrame or None
        ``site_id``, ``cost`` [CNY], with an options table.
    policy : Policy or None
        Default ``Policy()``.
    name : str
        Problem name (the ``.lp`` file's header).
    """
    model = _formulation_of(options, sites, policy or Policy())
    return milp.to_pulp(to_problem(model, name))


def to_highs(
    options: pd.DataFrame | Formulation,
    sites: pd.DataFrame | None = None,
    policy: Policy | None = None,
) -> object:
    """The model, with names, in a ``highspy.Highs`` (``h.writeModel("m.mps")`` to export, ``h.run()``).

    The solver options are the policy's (time limit [s], gap, threads) as :func:`~universal_service.
    optimize.plan` sets them; arguments as :func:`to_pulp`.
    """
    policy = policy or Policy()
    return milp.to_highs(
        to_problem(_formulation_of(options, sites, policy)),
        time_limit_s=float(policy.time_limit_s),
        mip_gap=float(policy.mip_gap),
        threads=int(policy.threads),
        seed=int(policy.seed),
    )


def columns(model: Formulation, inst: Instance, choice: np.ndarray) -> np.ndarray:
    """Column values (0 or 1) of a per-village choice (-1: unserved), its sites' ``y`` set."""
    z = np.zeros(model.n_cols)
    opt = choice[choice >= 0]
    z[opt] = 1.0
    sites = inst.site[opt][inst.site[opt] >= 0]
    z[model.y_col[sites]] = 1.0
    return z


def choice_from_columns(model: Formulation, inst: Instance, z: np.ndarray) -> np.ndarray:
    """Per village the option whose ``x`` is 1 in the column values ``z`` (-1: none)."""
    choice = np.full(len(inst.village_ids), -1, dtype=np.int64)
    taken = np.flatnonzero(z[: model.n_x] > 0.5)
    choice[inst.option_village[taken]] = taken
    return choice
