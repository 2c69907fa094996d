"""Least-cost universal-service plan: the village x option MILP, built from arrays, solved by HiGHS or CBC.

The model (DESIGN.md, "The optimization model"): binary ``x[v,o]`` (village ``v`` takes option ``o``) and
binary ``y[s]`` (shared site ``s`` built)::

    one[v]        sum_o x[v,o] <= 1                                  every village with an option
    link[v,o]     x[v,o] - y[s(o)] <= 0                              every option that needs a site
    coverage      sum w_v x[v,o] >= target * W        (covered o)    when ``coverage_target`` is set
    coverage[d]   sum_{v in d} w_v x[v,o] >= t_d * W_d (covered o)   per ``district_targets`` entry
    budget        sum cost_o x[v,o] + sum cost_s y[s] <= budget      when ``budget`` is set

    min_cost      min sum cost_o x + sum cost_s y
    min_subsidy   min sum net_cost_o x + sum cost_s y
    max_coverage  max sum w_v x (covered o) - eps (sum cost_o x + sum cost_s y)

The strong linking ``x[v,o] <= y[s]`` (one row per option rather than one aggregated row per site) is the
textbook strong formulation of uncapacitated facility location, whose LP relaxation is far tighter
(Cornuejols, Nemhauser & Wolsey (1990), "The uncapacitated facility location problem", in *Discrete
Location Theory*, Wiley, ch. 3). The model is built once, column-wise from the long options table, into
sparse arrays (:class:`Formulation`) by one small function per constraint group, in the manner of PyPSA's
``pypsa/optimization/constraints.py``; the same arrays feed HiGHS through ``highspy`` (Huangfu & Hall
(2018), Math. Prog. Comp. 10:119-142) or a PuLP ``LpProblem`` for CBC and ``.lp`` export.

Before building, options dominated by a site-free option of their village are dropped
(:func:`remove_dominated`) and villages that every plan meeting the targets must cover get ``one[v] = 1``
(:func:`forced_villages`). :func:`solve` then solves the LP relaxation once (its bound is reported and
its duals are the shadow prices of the coverage and budget rows); an integral LP optimum is the MILP
optimum, otherwise the MILP runs from the LP solution and the best greedy plan (:func:`greedy_choice`,
:func:`improve_plan`). Large models run the MILP in a child process stopped at the deadline
(:data:`GUARD_COLS`); when even the LP relaxation runs out of time, the greedy plan is returned with
the site-share bound (:func:`share_bound`).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pulp
import xarray as xr
from scipy import sparse

from universal_service.errors import InputDataError, ScenarioError, SolverError, format_rows

try:
    import highspy
except ImportError:  # pragma: no cover - CBC through PuLP is the fallback
    highspy = None

OBJECTIVES = ("min_cost", "min_subsidy", "max_coverage")
SOLVERS = ("highs", "cbc")
COVERAGE_BASES = ("weight", "villages")
STATUSES = ("optimal", "time_limit", "infeasible", "unbounded", "error")
#: Relative tolerance for "target met", "budget respected" and "constraint tight" checks.
TOL = 1e-6
#: Fixed seed passed to the solvers so that the same inputs give the same plan.
RANDOM_SEED = 0


# --------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Policy:
    """What the plan must achieve and how to solve for it.

    Parameters
    ----------
    coverage_target : float or None
        Share (0-1) of the total coverage weight that must be covered, or None for no overall target.
    coverage_basis : {"weight", "villages"}
        "weight": a village counts with its ``weight`` column (e.g. population [persons]);
        "villages": every village counts 1.
    district_targets : mapping of str to float or None
        Share (0-1) of each named district's weight that must be covered.
    budget : float or None
        Upper bound on the plan's total NPV cost (options plus sites built). [CNY]
    objective : {"min_cost", "min_subsidy", "max_coverage"}
        Minimise total NPV cost, minimise total net cost (subsidy needed at the affordable tariff), or
        maximise covered weight within ``budget`` (required) with a cost tie-break that cannot change
        the coverage optimum (see :func:`set_objective`).
    min_quality : int or None
        Options whose ``quality`` tier is below this are dropped before building.
    solver : {"highs", "cbc"}
        HiGHS through highspy (default), or CBC through PuLP (also the fallback without highspy).
    time_limit_s : float
        Wall-clock limit for the LP relaxation and the MILP together. [s]
    mip_gap : float
        Relative optimality gap at which the solver stops. [-]
    threads : int
        Solver threads; 1 keeps runs reproducible.
    warm_start : bool
        Give the solver the best greedy plan (:func:`greedy_choice` then :func:`improve_plan`) as an
        incumbent, and keep it if the solver ends with nothing better.
    """

    coverage_target: float | None = None
    coverage_basis: str = "weight"
    district_targets: Mapping[str, float] | None = None
    budget: float | None = None
    objective: str = "min_cost"
    min_quality: int | None = None
    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    warm_start: bool = True

    def __post_init__(self) -> None:
        problems = []

        def is_share(value: object) -> bool:
            return _is_real(value) and 0.0 <= float(value) <= 1.0

        if self.coverage_target is not None and not is_share(self.coverage_target):
            problems.append(
                f"coverage_target must be a share in [0, 1] or None (got {self.coverage_target!r})"
            )
        if self.coverage_basis not in COVERAGE_BASES:
            problems.append(
                f"coverage_basis must be one of {COVERAGE_BASES} (got {self.coverage_basis!r})"
            )
        if self.district_targets is not None:
            if not isinstance(self.district_targets, Mapping):
                problems.append("district_targets must map district_id -> share in [0, 1]")
            else:
                bad = {k: v for k, v in self.district_targets.items() if not is_share(v)}
                if bad:
                    problems.append(f"district_targets must be shares in [0, 1] (got {bad})")
        if self.budget is not None and not (_is_real(self.budget) and 0 <= self.budget < math.inf):
            problems.append(
                f"budget must be a finite amount >= 0 [CNY] or None (got {self.budget!r})"
            )
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {OBJECTIVES} (got {self.objective!r})")
        elif self.objective == "max_coverage" and self.budget is None:
            problems.append("objective 'max_coverage' needs a budget [CNY]; set budget=...")
        if self.min_quality is not None and not (
            _is_real(self.min_quality) and float(self.min_quality).is_integer()
        ):
            problems.append(
                f"min_quality must be an integer tier or None (got {self.min_quality!r})"
            )
        if self.solver not in SOLVERS:
            problems.append(f"solver must be one of {SOLVERS} (got {self.solver!r})")
        if not (_is_real(self.time_limit_s) and self.time_limit_s > 0):
            problems.append(f"time_limit_s must be > 0 [s] (got {self.time_limit_s!r})")
        if not (_is_real(self.mip_gap) and 0 <= self.mip_gap < 1):
            problems.append(f"mip_gap must be in [0, 1) (got {self.mip_gap!r})")
        if not (
            isinstance(self.threads, int)
            and not isinstance(self.threads, bool)
            and self.threads >= 1
        ):
            problems.append(f"threads must be an integer >= 1 (got {self.threads!r})")
        if not isinstance(self.warm_start, bool):
            problems.append(f"warm_start must be True or False (got {self.warm_start!r})")
        if problems:
            raise ScenarioError("Policy: " + "; ".join(problems))


def _is_real(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


# ------------------------------------------------------------------------------------------ instance


@dataclass(frozen=True)
class Instance:
    """Validated options and sites as sorted arrays (options by village then option_id; sites by id).

    ``option_village`` and ``site`` are integer codes into ``village_ids`` and ``site_ids`` (site -1:
    the option needs no shared site). ``village_weight`` is the coverage weight after
    ``coverage_basis``. Costs are NPV [CNY].
    """

    village_ids: np.ndarray
    village_weight: np.ndarray
    village_district: np.ndarray
    option_village: np.ndarray
    option_id: np.ndarray
    technology: np.ndarray
    site: np.ndarray
    cost: np.ndarray
    net_cost: np.ndarray
    covered: np.ndarray
    quality: np.ndarray
    site_ids: np.ndarray
    site_cost: np.ndarray
    n_removed_quality: int = 0
    n_removed_dominated: int = 0

    @property
    def n_options(self) -> int:
        return len(self.option_id)

    def subset(self, keep: np.ndarray, **changes: int) -> Instance:
        """The same instance with only the options where ``keep`` is True."""
        opt = (
            "option_village",
            "option_id",
            "technology",
            "site",
            "cost",
            "net_cost",
            "covered",
            "quality",
        )
        kept = {name: getattr(self, name)[keep] for name in opt}
        return dataclasses.replace(self, **kept, **changes)


def _text(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Values as an object array of str, and the mask of missing (NaN or empty) entries."""
    missing = col.isna().to_numpy()
    values = col.astype(str).to_numpy(dtype=object)
    values[missing] = ""
    return values, missing | (values == "")


def _flag(problems: list[str], index: pd.Index, mask: np.ndarray, message: str) -> None:
    if mask.any():
        problems.append(f"options, {format_rows(index[mask])}: {message}")


def _validate_sites(sites: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sorted site ids and their costs [CNY]; raise InputDataError naming every problem."""
    if not isinstance(sites, pd.DataFrame):
        raise InputDataError(
            f"sites: expected a pandas DataFrame (site_id, cost [CNY]); got {type(sites).__name__}"
        )
    if len(sites) == 0:
        return np.array([], dtype=object), np.array([], dtype=float)
    missing = [c for c in ("site_id", "cost") if c not in sites.columns]
    if missing:
        raise InputDataError(
            f"sites: missing column(s) {missing}; add site_id (str, unique) and cost (NPV [CNY])"
        )
    problems = []
    ids, no_id = _text(sites["site_id"])
    cost = pd.to_numeric(sites["cost"], errors="coerce").to_numpy(dtype=float)
    if no_id.any():
        problems.append(
            f"sites, {format_rows(sites.index[no_id])}: site_id is empty; give every site an id"
        )
    dup = pd.Series(ids).duplicated(keep=False).to_numpy() & ~no_id
    if dup.any():
        problems.append(
            f"sites, {format_rows(sites.index[dup])}: site_id repeated ({sorted(set(ids[dup]))[:5]}); ids must be unique"
        )
    bad = ~np.isfinite(cost) | (cost < 0)
    if bad.any():
        problems.append(
            f"sites, {format_rows(sites.index[bad])}: cost must be a finite NPV >= 0 [CNY] (got {cost[bad][:5].tolist()})"
        )
    if problems:
        raise InputDataError(problems)
    order = np.argsort(ids, kind="stable")
    return ids[order], cost[order]


def prepare(options: pd.DataFrame, sites: pd.DataFrame, policy: Policy) -> Instance:
    """Validate the long options table and the sites, sort them, and apply ``min_quality``.

    Parameters
    ----------
    options : pandas.DataFrame
        One row per village x option: ``village_id``, ``option_id``, ``technology``, ``site_id``,
        ``cost`` [CNY]; optional ``net_cost`` [CNY], ``quality``, ``weight``, ``district_id``,
        ``counts_as_covered`` (see :func:`plan`).
    sites : pandas.DataFrame
        ``site_id``, ``cost`` [CNY]; may be empty.
    policy : Policy

    Returns
    -------
    Instance

    Raises
    ------
    InputDataError
        Listing every problem found: missing columns, duplicate (village_id, option_id), missing,
        negative or non-finite costs, unknown site ids, weights or districts that differ within a
        village, unknown districts in ``policy.district_targets``.
    """
    site_ids, site_cost = _validate_sites(sites)
    if not isinstance(options, pd.DataFrame):
        raise InputDataError(f"options: expected a pandas DataFrame; got {type(options).__name__}")
    required = ("village_id", "option_id", "technology", "site_id", "cost")
    missing = [c for c in required if c not in options.columns]
    if missing:
        raise InputDataError(
            f"options: missing column(s) {missing}; the long table needs {list(required)} "
            "(site_id '' when no shared site is needed, cost as NPV [CNY])"
        )
    if policy.min_quality is not None and "quality" not in options.columns:
        raise InputDataError(
            "options: policy.min_quality is set but there is no 'quality' column; add it or unset min_quality"
        )
    idx, problems = options.index, []
    village, no_village = _text(options["village_id"])
    option, no_option = _text(options["option_id"])
    technology, _ = _text(options["technology"])
    site_text, no_site = _text(options["site_id"])
    _flag(problems, idx, no_village, "village_id is empty; every option row needs its village")
    _flag(problems, idx, no_option, "option_id is empty; name every option")

    def number(name: str, default: float, allow_negative: bool) -> np.ndarray:
        if name not in options.columns:
            return np.full(len(options), default)
        values = pd.to_numeric(options[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | ((values < 0) & (not allow_negative))
        need = "a finite number" if allow_negative else "a finite number >= 0"
        _flag(problems, idx, bad, f"{name} must be {need} (got {values[bad][:5].tolist()})")
        return values

    cost = number("cost", 0.0, allow_negative=False)
    net_cost = (
        number("net_cost", np.nan, allow_negative=True)
        if "net_cost" in options.columns
        else cost.copy()
    )
    weight = number("weight", 1.0, allow_negative=False)
    quality = number("quality", 0.0, allow_negative=True)
    if "counts_as_covered" in options.columns:
        col = options["counts_as_covered"]
        if pd.api.types.is_bool_dtype(col):
            covered = col.to_numpy(dtype=bool)
        else:
            truth = {
                "true": True,
                "1": True,
                "1.0": True,
                "yes": True,
                "false": False,
                "0": False,
                "0.0": False,
                "no": False,
            }
            mapped = col.astype(str).str.strip().str.lower().map(truth)
            _flag(
                problems, idx, mapped.isna().to_numpy(), "counts_as_covered must be True or False"
            )
            covered = mapped.fillna(False).to_numpy(dtype=bool)
    else:
        covered = np.ones(len(options), dtype=bool)
    district = (
        _text(options["district_id"])[0]
        if "district_id" in options.columns
        else np.full(len(options), "", dtype=object)
    )
    site = pd.Index(site_ids).get_indexer(site_text) if len(site_ids) else np.full(len(options), -1)
    site = np.where(no_site, -1, site).astype(np.int64)
    unknown = (site < 0) & ~no_site
    if unknown.any():
        _flag(
            problems,
            idx,
            unknown,
            f"site_id {sorted(set(site_text[unknown]))[:5]} not in sites; add the sites or clear site_id",
        )

    # Sort by (village_id, option_id) through integer codes: one lexsort, no string comparisons.
    v_code, village_ids = pd.factorize(village, sort=True)
    o_code, _ = pd.factorize(option, sort=True)
    order = np.lexsort((o_code, v_code))
    v_sorted, o_sorted = v_code[order], o_code[order]
    same = (v_sorted[1:] == v_sorted[:-1]) & (o_sorted[1:] == o_sorted[:-1])
    if same.any():
        dup = np.zeros(len(order), dtype=bool)
        dup[order[1:][same]] = dup[order[:-1][same]] = True
        _flag(
            problems,
            idx,
            dup & ~no_village & ~no_option,
            "(village_id, option_id) repeated; option ids must be unique within a village",
        )
    first = (
        np.r_[0, np.flatnonzero(np.diff(v_sorted)) + 1] if len(order) else np.array([], dtype=int)
    )
    for name, values in (("weight", weight), ("district_id", district)):
        per_village = values[order][first]
        differs = values[order] != per_village[v_sorted]
        if name == "weight":
            differs &= np.isfinite(values[order])
        if differs.any():
            bad_villages = sorted(set(village_ids[v_sorted[differs]]))
            problems.append(
                f"options: {name} differs between the rows of village(s) {bad_villages[:5]}; repeat one value per village"
            )
    if policy.district_targets:
        unknown_d = sorted(set(policy.district_targets) - set(district))
        if unknown_d:
            problems.append(
                f"policy.district_targets names district(s) {unknown_d[:5]} with no village in options; check district_id"
            )
    if problems:
        raise InputDataError(problems)

    village_weight = (
        weight[order][first] if policy.coverage_basis == "weight" else np.ones(len(first))
    )
    inst = Instance(
        village_ids=np.asarray(village_ids, dtype=object),
        village_weight=village_weight.astype(float),
        village_district=district[order][first],
        option_village=v_sorted.astype(np.int64),
        option_id=option[order],
        technology=technology[order],
        site=site[order],
        cost=cost[order],
        net_cost=net_cost[order],
        covered=covered[order],
        quality=quality[order],
        site_ids=site_ids,
        site_cost=site_cost,
    )
    if policy.min_quality is None:
        return inst
    keep = inst.quality >= policy.min_quality
    return inst.subset(keep, n_removed_quality=int((~keep).sum()))


def remove_dominated(inst: Instance, policy: Policy) -> Instance:
    """Drop options dominated by a site-free option of the same village.

    Option ``o`` is dominated by ``p`` when ``p`` needs no shared site, costs no more (``cost``, and
    ``net_cost`` under min_subsidy), has at least the quality and coverage status of ``o``, and is
    strictly better in one of these, or ``o`` needs a site, or they tie and ``p`` has the lower
    option_id. Any plan using ``o`` stays feasible and no worse with ``p`` instead (``p`` adds no site
    cost), so the optimum is unchanged; the tie-break makes the relation a strict order, so exactly one
    of two identical options survives. Pairs are formed only with site-free options, in one vectorised
    pass.

    Returns
    -------
    Instance
        With ``n_removed_dominated`` set.
    """
    free = np.flatnonzero(inst.site < 0)
    n_villages = len(inst.village_ids)
    if len(free) == 0 or inst.n_options == 0:
        return dataclasses.replace(inst, n_removed_dominated=0)
    n_free = np.bincount(inst.option_village[free], minlength=n_villages)
    start = np.r_[0, np.cumsum(n_free)[:-1]]
    counts = n_free[inst.option_village]
    o = np.repeat(np.arange(inst.n_options), counts)
    offset = np.arange(len(o)) - np.repeat(np.cumsum(counts) - counts, counts)
    p = free[start[inst.option_village[o]] + offset]
    pair = p != o
    o, p = o[pair], p[pair]
    weak = (
        (inst.cost[p] <= inst.cost[o])
        & (inst.quality[p] >= inst.quality[o])
        & (inst.covered[p] >= inst.covered[o])
    )
    strict = (
        (inst.cost[p] < inst.cost[o])
        | (inst.quality[p] > inst.quality[o])
        | (inst.covered[p] > inst.covered[o])
    )
    if policy.objective == "min_subsidy":
        weak &= inst.net_cost[p] <= inst.net_cost[o]
        strict |= inst.net_cost[p] < inst.net_cost[o]
    dominated = np.zeros(inst.n_options, dtype=bool)
    dominated[o[weak & (strict | (inst.site[o] >= 0) | (p < o))]] = True
    return inst.subset(~dominated, n_removed_dominated=int(dominated.sum()))


# --------------------------------------------------------------------------------------- formulation


@dataclass
class Formulation:
    """The MILP as arrays: optimise ``col_cost @ z`` s.t. ``row_lower <= matrix @ z <= row_upper``.

    All columns are binary: ``x`` (one per option, in :class:`Instance` order) then ``y`` (one per
    site used by some option). ``sense`` is 1 to minimise, -1 to maximise. ``policy_rows`` maps the
    coverage and budget row names to their row index.
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


@dataclass(frozen=True)
class Targets:
    """Coverage target groups: ``coverage`` (overall, group 0 when set) then ``coverage[d]`` per district.

    ``village_group`` is each village's district group (-1: its district has no target); every village
    is in the overall group when ``has_overall``. Group sums are one ``bincount``, so thousands of
    district targets cost no more than one.
    """

    names: list[str]
    share: np.ndarray
    village_group: np.ndarray
    has_overall: bool

    def sums(self, per_village: np.ndarray) -> np.ndarray:
        """Sum of a per-village quantity over each group."""
        inside = self.village_group >= 0
        out = np.bincount(
            self.village_group[inside], weights=per_village[inside], minlength=len(self.names)
        )
        if self.has_overall:
            out[0] = per_village.sum()
        return out.astype(float)


def targets(inst: Instance, policy: Policy) -> Targets:
    """The coverage target groups of a policy over an instance's villages."""
    names, share = [], []
    if policy.coverage_target is not None:
        names, share = ["coverage"], [float(policy.coverage_target)]
    districts = sorted(policy.district_targets or {})
    group = (
        pd.Index(districts).get_indexer(inst.village_district)
        if districts
        else np.full(len(inst.village_ids), -1)
    )
    group = np.where(group >= 0, group + len(names), -1)
    names += [f"coverage[{d}]" for d in districts]
    share += [float(policy.district_targets[d]) for d in districts]
    return Targets(
        names,
        np.array(share, dtype=float),
        group.astype(np.int64),
        policy.coverage_target is not None,
    )


def _reachable(inst: Instance) -> np.ndarray:
    reach = np.zeros(len(inst.village_ids), dtype=bool)
    reach[inst.option_village[inst.covered]] = True
    return reach


def forced_villages(inst: Instance, policy: Policy) -> np.ndarray:
    """Villages that every plan meeting the targets must cover (a presolve step; vectorised).

    Village ``v`` is forced when a target group containing it has less spare reachable weight than
    ``w_v`` (reachable weight - target x group weight < w_v), and all its options count as covered.
    Its ``one[v]`` row becomes ``= 1`` and its weight moves from the coverage rows to their right-hand
    sides, which keeps the coverage rows short (a target of 1.0 empties them).
    """
    t = targets(inst, policy)
    n_v = len(inst.village_ids)
    if not t.names:
        return np.zeros(n_v, dtype=bool)
    w, reach = inst.village_weight, _reachable(inst)
    total = t.sums(w)
    threshold = t.sums(np.where(reach, w, 0.0)) - t.share * total + TOL * np.maximum(1.0, total)
    limit = np.where(t.village_group >= 0, threshold[np.maximum(t.village_group, 0)], np.inf)
    if t.has_overall:
        limit = np.minimum(limit, threshold[0])
    all_cov = np.bincount(inst.option_village, weights=~inst.covered, minlength=n_v) == 0
    return reach & all_cov & (w > limit)


def add_one_option_constraints(model: Formulation, inst: Instance, policy: Policy) -> None:
    """``one[v]``: each village takes at most one option (it may stay unserved), exactly one if forced."""
    villages, row = np.unique(inst.option_village, return_inverse=True)
    names = [f"one[{v}]" for v in inst.village_ids[villages]]
    lower = np.where(forced_villages(inst, policy)[villages], 1.0, -np.inf)
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


def add_coverage_constraints(model: Formulation, inst: Instance, policy: Policy) -> None:
    """``coverage`` and ``coverage[d]``: covered weight of the chosen options >= target x group weight.

    Forced villages (:func:`forced_villages`) enter through the right-hand side instead of the row.
    """
    t = targets(inst, policy)
    if not t.names:
        return
    forced, w = forced_villages(inst, policy), inst.village_weight
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
    """``budget``: total NPV cost of the chosen options and the sites built <= budget [CNY]."""
    if policy.budget is None:
        return
    x = np.flatnonzero(inst.cost != 0)
    y = np.flatnonzero(inst.site_cost[model.y_site] != 0)
    cols = np.r_[x, model.n_x + y]
    vals = np.r_[inst.cost[x], inst.site_cost[model.y_site][y]]
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
    dearest = np.zeros(len(inst.village_ids))
    np.maximum.at(dearest, inst.option_village, inst.cost)
    total = dearest.sum() + inst.site_cost.sum()
    return 0.0 if total <= 0 else delta / (2.0 * total)


def set_objective(model: Formulation, inst: Instance, policy: Policy) -> None:
    """Column costs and sense of the objective chosen by ``policy.objective`` (see module docstring)."""
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
    """Build the MILP from the instance: one pass per constraint group, assembled once into CSC."""
    model = Formulation()
    add_choice_variables(model, inst)
    add_one_option_constraints(model, inst, policy)
    add_link_constraints(model, inst)
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
    """The array form of the model :func:`plan` solves (after validation and dominance removal)."""
    inst = remove_dominated(prepare(options, sites, policy), policy)
    return build_formulation(inst, policy)


# ----------------------------------------------------------------------------------------- back-ends


def to_pulp(
    options: pd.DataFrame | Formulation,
    sites: pd.DataFrame | None = None,
    policy: Policy | None = None,
    name: str = "universal_service",
) -> pulp.LpProblem:
    """The model as a PuLP ``LpProblem`` (for CBC, or ``prob.writeLP(path)`` for researchers).

    Built in bulk from the same arrays as the HiGHS model: one ``LpAffineExpression`` per row from
    prebuilt (variable, coefficient) pairs. PuLP replaces ``[]`` and spaces in names by ``_``.

    Parameters
    ----------
    options : pandas.DataFrame or Formulation
        The options table (then ``sites`` and ``policy`` are required), or a built formulation.
    """
    model = (
        options
        if isinstance(options, Formulation)
        else formulation(options, sites, policy or Policy())
    )
    return _pulp_problem(model, name)[0]


def _pulp_problem(
    model: Formulation, name: str
) -> tuple[pulp.LpProblem, list[pulp.LpVariable], list[pulp.LpConstraint]]:
    prob = pulp.LpProblem(name, pulp.LpMinimize if model.sense == 1 else pulp.LpMaximize)
    variables = [pulp.LpVariable(n, cat=pulp.LpBinary) for n in model.col_names]
    nz = np.flatnonzero(model.col_cost)
    prob.setObjective(
        pulp.LpAffineExpression(
            list(zip([variables[i] for i in nz], model.col_cost[nz].tolist(), strict=True))
        )
    )
    csr = model.matrix.tocsr()
    indptr, indices, data = csr.indptr.tolist(), csr.indices.tolist(), csr.data.tolist()
    constraints = []
    for r, row_name in enumerate(model.row_names):
        terms = [
            (variables[j], c)
            for j, c in zip(
                indices[indptr[r] : indptr[r + 1]], data[indptr[r] : indptr[r + 1]], strict=True
            )
        ]
        lower, upper = float(model.row_lower[r]), float(model.row_upper[r])
        if lower == upper:
            sense, rhs = pulp.LpConstraintEQ, lower
        elif math.isfinite(lower):
            sense, rhs = pulp.LpConstraintGE, lower
        else:
            sense, rhs = pulp.LpConstraintLE, upper
        con = pulp.LpConstraint(pulp.LpAffineExpression(terms), sense, row_name, rhs)
        prob.addConstraint(con)
        constraints.append(con)
    prob.addVariables(variables)
    return prob, variables, constraints


def to_highs(
    options: pd.DataFrame | Formulation,
    sites: pd.DataFrame | None = None,
    policy: Policy | None = None,
) -> highspy.Highs:
    """The model passed to a ``highspy.Highs`` object (``h.writeModel("m.mps")`` to export, ``h.run()``)."""
    if highspy is None:
        raise SolverError("highspy is not installed; pip install highspy, or use to_pulp(...)")
    policy = policy or Policy()
    model = options if isinstance(options, Formulation) else formulation(options, sites, policy)
    return _highs(_lp_arrays(model), _highs_options(policy), model.col_names, model.row_names)


def _lp_arrays(model: Formulation) -> dict[str, np.ndarray]:
    """The model as plain arrays (picklable, for a child process)."""
    return {
        "col_cost": model.col_cost,
        "row_lower": model.row_lower,
        "row_upper": model.row_upper,
        "start": model.matrix.indptr,
        "index": model.matrix.indices,
        "value": model.matrix.data,
        "sense": np.array(model.sense),
    }


def _highs(
    arrays: dict[str, np.ndarray],
    options: dict[str, object],
    col_names: list[str] | None = None,
    row_names: list[str] | None = None,
) -> highspy.Highs:
    """A ``Highs`` object with the options set and the model passed in one ``passModel``."""
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(arrays["col_cost"]), len(arrays["row_lower"])
    lp.col_cost_ = arrays["col_cost"]
    lp.col_lower_, lp.col_upper_ = np.zeros(lp.num_col_), np.ones(lp.num_col_)
    lp.row_lower_ = np.where(np.isfinite(arrays["row_lower"]), arrays["row_lower"], -inf)
    lp.row_upper_ = np.where(np.isfinite(arrays["row_upper"]), arrays["row_upper"], inf)
    lp.sense_ = (
        highspy.ObjSense.kMinimize if int(arrays["sense"]) == 1 else highspy.ObjSense.kMaximize
    )
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = (
        arrays["start"],
        arrays["index"],
        arrays["value"],
    )
    lp.integrality_ = [highspy.HighsVarType.kInteger] * lp.num_col_
    if col_names is not None:
        lp.col_names_, lp.row_names_ = col_names, row_names
    threads = int(options.get("threads", 1))
    if _SCHEDULER_THREADS and _SCHEDULER_THREADS[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)  # HiGHS fixes its thread pool at first use
    _SCHEDULER_THREADS[:] = [threads]
    h = highspy.Highs()
    for key, value in options.items():
        h.setOptionValue(key, value)
    if h.passModel(lp) != highspy.HighsStatus.kOk:
        raise SolverError("HiGHS rejected the model (passModel did not return kOk)")
    return h


#: Threads of HiGHS's process-wide scheduler once created (it must be reset to change them).
_SCHEDULER_THREADS: list[int] = []


def _highs_options(policy: Policy) -> dict[str, object]:
    return {
        "output_flag": False,
        "mip_rel_gap": float(policy.mip_gap),
        "threads": int(policy.threads),
        "random_seed": RANDOM_SEED,
        "time_limit": float(policy.time_limit_s),
    }


@dataclass
class _Run:
    """One solver run: status, termination text, raw column values, objective, bound, LP row duals."""

    status: str
    termination: str
    x: np.ndarray | None = None
    objective: float = math.nan
    bound: float = math.nan
    row_dual: np.ndarray | None = None


def _highs_status(h: highspy.Highs) -> tuple[str, str]:
    status = h.getModelStatus()
    text = h.modelStatusToString(status)
    s = highspy.HighsModelStatus
    if status == s.kOptimal:
        return "optimal", text
    if status in (s.kInfeasible, s.kUnboundedOrInfeasible):
        return "infeasible", text
    if status == s.kUnbounded:
        return "unbounded", text
    limits = (
        s.kTimeLimit,
        s.kIterationLimit,
        s.kSolutionLimit,
        s.kInterrupt,
        s.kObjectiveBound,
        s.kObjectiveTarget,
    )
    return ("time_limit", text) if status in limits else ("error", text)


def _highs_mip(
    h: highspy.Highs, time_limit: float, start: np.ndarray | None, lp_x: np.ndarray | None = None
) -> _Run:
    """Run the MILP on a loaded ``Highs``, seeded with the LP relaxation and the greedy plan.

    HiGHS keeps the last solution it holds as a MIP start and completes a fractional one with a small
    sub-MIP (option ``mip_max_start_nodes``), which finds good plans early; ``lp_x`` (for a fresh
    ``Highs``) is passed with ``setSolution`` for that. The greedy plan ``start`` is offered through
    the user-solution callback once branch and bound has processed a node, not with ``setSolution``:
    an incumbent present during the root makes HiGHS 1.16's central rounding run conflict analysis
    against the dense objective cutoff for many minutes on large models (measured on a generated
    100k-option model: no stop within 6 min with it, optimal in 8 s without it). :func:`solve` keeps
    the greedy plan when HiGHS ends with nothing better.
    """
    h.setOptionValue("solve_relaxation", False)
    h.setOptionValue("time_limit", max(time_limit, 1e-3))
    offered = []

    def offer(event: object) -> None:
        if not offered and event.data_out.mip_node_count >= 1:
            event.data_in.setSolution(start)  # sets user_solution and user_has_solution
            offered.append(True)

    if lp_x is not None:
        relaxed = highspy.HighsSolution()
        relaxed.col_value = lp_x
        relaxed.value_valid = True
        h.setSolution(relaxed)
    if start is not None:
        h.cbMipUserSolution.subscribe(offer)
    h.run()
    if start is not None:
        h.cbMipUserSolution.unsubscribe(offer)
    status, text = _highs_status(h)
    info = h.getInfo()
    x = np.asarray(h.getSolution().col_value) if info.primal_solution_status == 2 else None
    if status == "optimal" and x is None:  # pragma: no cover - defensive
        status = "error"
    return _Run(
        status,
        text,
        x,
        info.objective_function_value if x is not None else math.nan,
        info.mip_dual_bound,
    )


def _highs_mip_child(
    conn: object,
    arrays: dict[str, np.ndarray],
    options: dict[str, object],
    time_limit: float,
    start: np.ndarray | None,
    lp_x: np.ndarray | None,
) -> None:
    """Child-process MILP: report every improving solution, then the final result, through ``conn``."""
    h = _highs(arrays, options)

    def improving(event: object) -> None:
        out = event.data_out
        conn.send(
            ("incumbent", np.asarray(out.mip_solution, dtype=float), float(out.mip_dual_bound))
        )

    h.cbMipImprovingSolution.subscribe(improving)
    conn.send(("done", _highs_mip(h, time_limit, start, lp_x)))
    conn.close()


#: Models with at least this many columns solve their MILP in a child process that is stopped at the
#: deadline plus :data:`GUARD_GRACE_S`: HiGHS checks its time limit only between phases, and on large
#: models with a warm-start cutoff its root heuristics (central rounding, conflict analysis) can run
#: for many minutes past it (ERGO-Code/HiGHS#885, #1278; seen here on a generated 100k-option model).
GUARD_COLS = 50_000
GUARD_GRACE_S = 5.0


class _HighsBackend:
    """Thin holder of a ``highspy.Highs`` loaded with the model: LP relaxation, then the MILP."""

    name = "highs"

    def __init__(self, model: Formulation, policy: Policy):
        self.model, self.policy = model, policy
        self.h = _highs(_lp_arrays(model), _highs_options(policy))  # no names: to_highs has them
        self.version = f"{self.h.versionMajor()}.{self.h.versionMinor()}.{self.h.versionPatch()}"

    def relax(self, time_limit: float) -> _Run:
        self.h.setOptionValue("solve_relaxation", True)
        self.h.setOptionValue("time_limit", time_limit)
        self.h.run()
        status, text = _highs_status(self.h)
        if status != "optimal":
            return _Run(status, text)
        sol = self.h.getSolution()
        # HiGHS row duals are d(objective)/d(row activity bound) in the solver's sense.
        dual = np.asarray(sol.row_dual) if sol.dual_valid else None
        x = np.asarray(sol.col_value)
        return _Run(status, text, x, self.h.getInfo().objective_function_value, row_dual=dual)

    def mip(self, time_limit: float, start: np.ndarray | None, lp_x: np.ndarray | None) -> _Run:
        if self.model.n_cols < GUARD_COLS:
            return _highs_mip(self.h, time_limit, start)  # self.h still holds the LP solution
        return self._guarded_mip(time_limit, start, lp_x)

    def _guarded_mip(
        self, time_limit: float, start: np.ndarray | None, lp_x: np.ndarray | None
    ) -> _Run:
        """The MILP in a spawned child, stopped ``GUARD_GRACE_S`` after the deadline if still running."""
        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        args = (send, _lp_arrays(self.model), _highs_options(self.policy), time_limit, start, lp_x)
        child = ctx.Process(target=_highs_mip_child, args=args, daemon=True)
        hard_deadline = time.perf_counter() + time_limit + GUARD_GRACE_S
        child.start()
        send.close()
        best, bound, result = None, math.nan, None
        while result is None and (left := hard_deadline - time.perf_counter()) > 0:
            if receive.poll(min(left, 0.25)):
                try:
                    message = receive.recv()
                except EOFError:
                    break
                if message[0] == "incumbent":
                    best, bound = message[1], message[2]
                else:
                    result = message[1]
            elif not child.is_alive():
                break
        if child.is_alive():
            child.terminate()
        child.join()
        receive.close()
        if result is not None:
            return result
        if best is None:
            return _Run(
                "time_limit", "stopped at the time limit (HiGHS overran it) with no solution"
            )
        obj = float(self.model.col_cost @ best)
        return _Run(
            "time_limit",
            "stopped at the time limit (HiGHS overran it): best reported solution",
            best,
            obj,
            bound,
        )


class _CbcBackend:
    """Thin holder of the PuLP problem solved by CBC: LP relaxation (``-initialSolve``), then the MILP.

    PuLP does not return CBC's best bound, so a proven-optimal run reports ``bound`` = max(LP bound,
    objective - mip_gap x |objective|) (CBC's stopping rule) and a time-limited run the LP bound.
    """

    name = "cbc"

    def __init__(self, model: Formulation, policy: Policy):
        self.model, self.policy = model, policy
        self.prob, self.vars, self.cons = _pulp_problem(model, "universal_service")
        self.path = shutil.which("cbc") or pulp.apis.coin_api.pulp_cbc_path
        self.version = f"CBC via PuLP {pulp.__version__}"

    def _solver(self, mip: bool, time_limit: float, warm: bool) -> pulp.COIN_CMD:
        return pulp.COIN_CMD(
            path=self.path,
            mip=mip,
            msg=False,
            timeLimit=max(1, math.ceil(time_limit)),
            gapRel=self.policy.mip_gap,
            threads=self.policy.threads,
            warmStart=warm,
            options=[f"randomCbcSeed {RANDOM_SEED + 1}", f"randomSeed {RANDOM_SEED + 1}"],
        )

    def relax(self, time_limit: float) -> _Run:
        try:
            self.prob.solve(self._solver(False, time_limit, False))
        except pulp.PulpSolverError as exc:  # pragma: no cover - CBC crash
            return _Run("error", str(exc))
        text = pulp.LpStatus[self.prob.status]
        if self.prob.status != pulp.LpStatusOptimal:
            return _Run(
                "infeasible" if self.prob.status == pulp.LpStatusInfeasible else "error", text
            )
        x = np.array([v.varValue or 0.0 for v in self.vars])
        dual = np.array([c.pi or 0.0 for c in self.cons])
        return _Run("optimal", text, x, float(self.model.col_cost @ x), row_dual=dual)

    def mip(self, time_limit: float, start: np.ndarray | None, lp_x: np.ndarray | None) -> _Run:
        if start is not None:
            for v, value in zip(self.vars, start.tolist(), strict=True):
                v.setInitialValue(round(value), check=False)
        try:
            self.prob.solve(self._solver(True, time_limit, start is not None))
        except pulp.PulpSolverError as exc:  # pragma: no cover - CBC crash
            return _Run("error", str(exc))
        text = f"{pulp.LpStatus[self.prob.status]} / {pulp.LpSolution[self.prob.sol_status]}"
        if self.prob.status == pulp.LpStatusInfeasible:
            return _Run("infeasible", text)
        if self.prob.status == pulp.LpStatusUnbounded:
            return _Run("unbounded", text)
        if self.prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return _Run(
                "time_limit" if self.prob.status == pulp.LpStatusNotSolved else "error", text
            )
        x = np.array([v.varValue or 0.0 for v in self.vars])
        status = "optimal" if self.prob.sol_status == pulp.LpSolutionOptimal else "time_limit"
        obj = float(self.model.col_cost @ _clean(self.model, x))
        bound = (
            obj - self.model.sense * self.policy.mip_gap * abs(obj)
            if status == "optimal"
            else math.nan
        )
        return _Run(status, text, x, obj, bound)


# ----------------------------------------------------------------------------------------- heuristic


def _village_argmin(inst: Instance, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per village, the option with the smallest masked value (lowest index on ties; -1: none).

    Options are sorted by village, so this is one ``minimum.reduceat`` over the village runs: O(n),
    no sort.
    """
    best = np.full(len(inst.village_ids), -1, dtype=np.int64)
    if not inst.n_options:
        return best
    vals = np.where(mask, values, np.inf)
    village = inst.option_village
    starts = np.flatnonzero(np.r_[True, village[1:] != village[:-1]])
    least = np.minimum.reduceat(vals, starts)
    hit = np.flatnonzero(mask & (vals == np.repeat(least, np.diff(np.r_[starts, len(vals)]))))
    first = hit[np.r_[True, village[hit][1:] != village[hit][:-1]]] if len(hit) else hit
    best[village[first]] = first
    return best


def greedy_choice(
    inst: Instance, policy: Policy, open_sites: np.ndarray | None = None, prepaid: float = 0.0
) -> np.ndarray:
    """Chosen option per village (-1: unserved) by the greedy per-village rule; vectorised.

    Each village is priced at its cheapest available option. With ``open_sites`` None every option is
    available and pays its site alone (option cost + site cost: the no-sharing baseline); otherwise only
    site-free options and options of open sites are available and site costs are treated as paid
    (``prepaid`` [CNY] counts against the budget). Then: villages whose cheapest option has a negative
    objective price are taken (min_subsidy), each coverage target (districts, then overall) is met by
    taking uncovered villages in ascending order of extra price per weight, and under max_coverage
    villages are added in ascending cost per weight while the budget lasts.
    """
    n_v = len(inst.village_ids)
    site_part = np.where(
        inst.site >= 0,
        inst.site_cost[np.maximum(inst.site, 0)] if len(inst.site_cost) else 0.0,
        0.0,
    )
    obj = inst.net_cost if policy.objective == "min_subsidy" else inst.cost
    if open_sites is None:
        available = np.ones(inst.n_options, dtype=bool)
        price, spend = obj + site_part, inst.cost + site_part
    else:
        available = (inst.site < 0) | open_sites[np.maximum(inst.site, 0)]
        price, spend = obj, inst.cost
    if policy.objective == "max_coverage":
        price = spend

    best_any = _village_argmin(inst, price, available)
    best_cov = _village_argmin(inst, price, available & inst.covered)
    choice = np.full(n_v, -1, dtype=np.int64)
    if policy.objective != "max_coverage":
        take = (best_any >= 0) & (price[np.maximum(best_any, 0)] < 0)
        choice[take] = best_any[take]
    w = inst.village_weight

    def candidates(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uncovered villages that can be covered, sorted by group then extra price per weight."""
        is_cov = (choice >= 0) & inst.covered[np.maximum(choice, 0)]
        cand = np.flatnonzero((group >= 0) & (best_cov >= 0) & ~is_cov & (w > 0))
        current = np.where(choice[cand] >= 0, price[np.maximum(choice[cand], 0)], 0.0)
        extra = price[best_cov[cand]] - current
        order = np.lexsort((cand, extra / w[cand], group[cand]))
        return cand[order], group[cand][order], extra[order]

    def meet(group: np.ndarray, need: np.ndarray) -> None:
        """Per group, take candidates until the group's needed weight is reached."""
        cand, g, _ = candidates(group)
        before = np.cumsum(w[cand]) - w[cand]
        starts = (
            np.r_[0, np.flatnonzero(np.diff(g)) + 1] if len(g) else np.array([], dtype=np.int64)
        )
        before -= np.repeat(before[starts], np.diff(np.r_[starts, len(g)]))
        sel = before < need[g] - TOL * np.maximum(1.0, need[g])
        choice[cand[sel]] = best_cov[cand[sel]]

    t = targets(inst, policy)
    if t.names:
        total = t.sums(w)

        def need() -> np.ndarray:
            covered_w = t.sums(
                np.where((choice >= 0) & inst.covered[np.maximum(choice, 0)], w, 0.0)
            )
            return t.share * total - covered_w

        meet(t.village_group, need())  # district targets first
        if t.has_overall:
            meet(np.zeros(n_v, dtype=np.int64), need()[:1])
    if policy.objective == "max_coverage":
        money = policy.budget - prepaid - spend[choice[choice >= 0]].sum()
        cand, _, extra = candidates(np.zeros(n_v, dtype=np.int64))
        k = int(np.searchsorted(np.cumsum(extra), money * (1 + 1e-12), side="right"))
        choice[cand[:k]] = best_cov[cand[:k]]
    return choice


def evaluate(
    inst: Instance, choice: np.ndarray, policy: Policy, sites_shared: bool = True
) -> dict[str, object]:
    """Cost, coverage and feasibility of a per-village choice (-1: unserved).

    With ``sites_shared`` a site used by several villages is paid once (the plan's accounting);
    otherwise every option pays its site alone (the baseline's).
    """
    served = choice >= 0
    opt = choice[served]
    used = inst.site[opt][inst.site[opt] >= 0]
    n_use = np.bincount(used, minlength=len(inst.site_ids))
    paid = (n_use > 0) if sites_shared else n_use
    site_paid = paid * inst.site_cost
    covered = np.zeros(len(choice), dtype=bool)
    covered[served] = inst.covered[opt]
    w = inst.village_weight
    total_cost = float(inst.cost[opt].sum() + site_paid.sum())
    total_net = float(inst.net_cost[opt].sum() + site_paid.sum())
    t = targets(inst, policy)
    total = t.sums(w)
    short = t.sums(np.where(covered, w, 0.0)) < t.share * total - TOL * np.maximum(1.0, total)
    problems = [name for name, bad in zip(t.names, short, strict=True) if bad]
    if policy.budget is not None and total_cost > policy.budget + TOL * max(1.0, policy.budget):
        problems.append("budget")
    return {
        "total_cost": total_cost,
        "total_net_cost": total_net,
        "covered": covered,
        "covered_weight": float(w[covered].sum()),
        "site_built": n_use > 0,
        "site_paid": site_paid.astype(float),
        "violated": problems,
    }


def share_bound(inst: Instance, policy: Policy) -> float:
    """A valid bound on the optimum without any LP, for when the LP relaxation runs out of time.

    A site used by ``k`` villages is paid once, and at most ``n_s`` villages have an option at site
    ``s``, so every plan costs at least ``sum over served villages of (option cost + f_s / n_s)`` (the
    classic per-client share bound for facility location). With ``p_v`` the cheapest such price of
    a covered option and ``q_v`` of any option, a min_cost / min_subsidy plan costs at least
    ``sum_v min(0, q_v)`` plus, for the target group that needs most, the cheapest fractional cover
    at prices ``p_v - min(0, q_v)``; a max_coverage plan covers at most the fractional knapsack of
    weight bought within the budget at prices ``p_v`` (cost only). Vectorised: one sort per group.

    Returns
    -------
    float
        Lower bound [CNY] for min objectives, upper bound [weight] for max_coverage.
    """
    n_v, w = len(inst.village_ids), inst.village_weight
    pairs = np.unique(np.stack([inst.site, inst.option_village])[:, inst.site >= 0], axis=1)
    users = np.bincount(pairs[0], minlength=len(inst.site_ids)).astype(float)
    share = (
        np.where(
            inst.site >= 0,
            inst.site_cost[np.maximum(inst.site, 0)]
            / np.maximum(users[np.maximum(inst.site, 0)], 1.0),
            0.0,
        )
        if len(inst.site_ids)
        else 0.0
    )
    per_option = (inst.net_cost if policy.objective == "min_subsidy" else inst.cost) + share
    p, q = np.full(n_v, np.inf), np.full(n_v, np.inf)
    np.minimum.at(q, inst.option_village, per_option)
    np.minimum.at(p, inst.option_village[inst.covered], per_option[inst.covered])

    if policy.objective == "max_coverage":  # buy weight with the budget, most weight per CNY first
        reach = np.isfinite(p) & (w > 0)
        paid = reach & (p > 0)
        bought = _fractional_cover(
            np.where(paid, -w, np.nan),
            np.where(paid, p, 0.0),
            np.zeros(n_v, dtype=np.int64),
            np.array([float(policy.budget)]),
            cap=True,
        )
        return float(w[reach & ~paid].sum() - bought[0])
    base = np.minimum(0.0, np.where(np.isfinite(q), q, 0.0))
    t = targets(inst, policy)
    if not t.names:
        return float(base.sum())
    need = t.share * t.sums(w)
    cost = _fractional_cover(p - base, w, t.village_group, need)
    if t.has_overall:
        cost[0] = _fractional_cover(p - base, w, np.zeros(n_v, dtype=np.int64), need[:1])[0]
    return float(base.sum() + max(cost.max(), 0.0))


def _fractional_cover(
    price: np.ndarray, weight: np.ndarray, group: np.ndarray, need: np.ndarray, cap: bool = False
) -> np.ndarray:
    """Per group, the least ``price`` paid to cover ``need`` of ``weight`` with fractional items taken
    in ascending price per weight; inf where a group cannot reach its need (with ``cap``: the price
    of all it can reach). One lexsort and cumulative sums, no loop over groups."""
    idx = np.flatnonzero(np.isfinite(price) & (weight > 0) & (group >= 0))
    idx = idx[np.lexsort((idx, price[idx] / weight[idx], group[idx]))]
    g, wt, pr = group[idx], weight[idx], price[idx]
    before = np.cumsum(wt) - wt
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1] if len(g) else np.array([], dtype=np.int64)
    before -= np.repeat(before[starts], np.diff(np.r_[starts, len(g)]))
    frac = np.clip((need[g] - before) / wt, 0.0, 1.0)
    out = np.bincount(g, weights=frac * pr, minlength=len(need)).astype(float)
    if not cap:
        reach = np.bincount(g, weights=wt, minlength=len(need))
        out[reach < need - TOL * np.maximum(1.0, need)] = np.inf
    return out


def _objective_value(inst: Instance, ev: dict[str, object], policy: Policy) -> float:
    if policy.objective == "max_coverage":
        return ev["covered_weight"] - tie_break_weight(inst) * ev["total_cost"]
    return ev["total_net_cost"] if policy.objective == "min_subsidy" else ev["total_cost"]


def _columns(model: Formulation, inst: Instance, choice: np.ndarray) -> np.ndarray:
    z = np.zeros(model.n_cols)
    opt = choice[choice >= 0]
    z[opt] = 1.0
    sites = inst.site[opt][inst.site[opt] >= 0]
    z[model.y_col[sites]] = 1.0
    return z


def _clean(model: Formulation, z: np.ndarray) -> np.ndarray:
    """Binaries rounded to 0 or 1."""
    return np.round(np.clip(z, 0.0, 1.0))


def _choice_from_columns(model: Formulation, inst: Instance, z: np.ndarray) -> np.ndarray:
    choice = np.full(len(inst.village_ids), -1, dtype=np.int64)
    taken = np.flatnonzero(z[: model.n_x] > 0.5)
    choice[inst.option_village[taken]] = taken
    return choice


def improve_plan(inst: Instance, policy: Policy, choice: np.ndarray, rounds: int = 8) -> np.ndarray:
    """Local search on a feasible plan: re-assign with its sites paid, then drop sites (vectorised).

    Each round re-runs :func:`greedy_choice` with the plan's sites open and paid (villages move to
    options at sites already built), then closes the open sites whose cost exceeds what their
    villages lose by moving to their next cheapest available option (the DROP heuristic of Feldman,
    Lehrer & Ray (1966), "Warehouse location under continuous economies of scale", Management Science
    12(9):670-684): all such sites at once, else the top quarter, twentieth or single best by saving.
    A move is kept only when the plan stays feasible and gets cheaper. min_cost and min_subsidy only.
    """
    if policy.objective == "max_coverage" or not len(inst.site_ids):
        return choice
    price = inst.net_cost if policy.objective == "min_subsidy" else inst.cost

    def value(c: np.ndarray) -> tuple[float, dict[str, object]]:
        ev = evaluate(inst, c, policy)
        return (math.inf if ev["violated"] else _objective_value(inst, ev, policy)), ev

    best_value, ev = value(choice)
    for _ in range(rounds):
        open_sites = np.asarray(ev["site_built"])
        trials = [greedy_choice(inst, policy, open_sites)]
        current = trials[0]
        served = np.flatnonzero(current >= 0)
        own = np.full(len(inst.village_ids), -1)
        own[served] = inst.site[current[served]]
        available = ((inst.site < 0) | open_sites[np.maximum(inst.site, 0)]) & (
            inst.site != own[inst.option_village]
        )
        available &= inst.covered | ~inst.covered[np.maximum(current, 0)][inst.option_village]
        alt = _village_argmin(inst, price, available)
        alternative = np.where(alt >= 0, price[np.maximum(alt, 0)], np.inf)
        movers = served[own[served] >= 0]
        loss = alternative[movers] - price[current[movers]]
        saving = inst.site_cost - np.bincount(
            own[movers], weights=loss, minlength=len(inst.site_ids)
        )
        saving[~open_sites] = -np.inf
        ranked = np.argsort(-saving, kind="stable")
        n_pos = int((saving > 0).sum())
        for k in sorted(
            {n_pos, math.ceil(n_pos / 4), math.ceil(n_pos / 20), min(n_pos, 1)}, reverse=True
        ):
            if k > 0:
                trials.append(
                    greedy_choice(
                        inst, policy, open_sites & ~np.isin(np.arange(len(open_sites)), ranked[:k])
                    )
                )
        scored = [(value(t), i, t) for i, t in enumerate(trials)]
        (trial_value, trial_ev), _, trial = min(scored, key=lambda item: (item[0][0], item[1]))
        if not trial_value < best_value - TOL * max(1.0, abs(best_value)):
            break
        choice, best_value, ev = trial, trial_value, trial_ev
    return choice


def _incumbent(
    model: Formulation, inst: Instance, policy: Policy, lp_x: np.ndarray | None
) -> np.ndarray | None:
    """Best feasible greedy plan as a column vector: the no-sharing baseline and LP roundings, each
    improved by :func:`improve_plan`."""
    candidates = [greedy_choice(inst, policy)]
    if lp_x is not None and len(model.y_site):
        for threshold in (0.5, 1e-6):
            open_sites = np.zeros(len(inst.site_ids), dtype=bool)
            open_sites[model.y_site] = lp_x[model.n_x : model.n_x + model.n_y] >= threshold
            prepaid = (
                float(inst.site_cost[open_sites].sum())
                if policy.objective == "max_coverage"
                else 0.0
            )
            candidates.append(greedy_choice(inst, policy, open_sites, prepaid))
    best, best_value = None, math.inf
    for choice in candidates:
        ev = evaluate(inst, choice, policy)
        if ev["violated"]:
            continue
        choice = improve_plan(inst, policy, choice)
        ev = evaluate(inst, choice, policy)
        value = model.sense * _objective_value(inst, ev, policy)
        if value < best_value:
            best, best_value = choice, value
    return None if best is None else _columns(model, inst, best)


# ------------------------------------------------------------------------------------------- solving


@dataclass
class _Outcome:
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


def _integral(model: Formulation, z: np.ndarray) -> np.ndarray | None:
    """The rounded LP solution if it is integral and satisfies every row, else None."""
    rounded = _clean(model, z)
    if np.abs(z - rounded).max(initial=0.0) > 1e-6:
        return None
    activity = model.matrix @ rounded
    slack = TOL * np.maximum(
        1.0, np.abs(np.where(np.isfinite(model.row_upper), model.row_upper, model.row_lower))
    )
    ok = (activity >= model.row_lower - slack) & (activity <= model.row_upper + slack)
    return rounded if ok.all() else None


def _backend(model: Formulation, policy: Policy) -> _HighsBackend | _CbcBackend:
    if policy.solver == "highs" and highspy is not None:
        return _HighsBackend(model, policy)
    return _CbcBackend(model, policy)


def solve(model: Formulation, inst: Instance, policy: Policy) -> _Outcome:
    """Solve the LP relaxation (bound, duals), stop if it is integral, else the MILP from a warm start."""
    t0 = time.perf_counter()
    deadline = t0 + policy.time_limit_s
    backend = _backend(model, policy)
    out = _Outcome(
        "error",
        "",
        np.full(len(inst.village_ids), -1),
        solver=backend.name,
        solver_version=backend.version,
    )
    if model.n_cols == 0:  # nothing to choose: the empty plan is optimal (solvers call it an error)
        out.status, out.termination = "optimal", "empty model: no options"
        out.objective = out.bound = out.lp_bound = 0.0
        return out
    lp = backend.relax(
        0.9 * policy.time_limit_s
    )  # leave time for the greedy plan if the LP runs out
    if lp.status == "optimal":
        out.lp_bound, out.row_dual = lp.objective, lp.row_dual
    elif lp.status in ("infeasible", "unbounded"):
        out.status, out.termination = lp.status, f"LP relaxation: {lp.termination}"
        out.solve_seconds = time.perf_counter() - t0
        return out
    z = _integral(model, lp.x) if lp.x is not None else None
    if z is not None:
        out.status, out.termination = "optimal", f"LP relaxation integral: {lp.termination}"
        out.objective = out.bound = float(model.col_cost @ z)
        out.choice = _choice_from_columns(model, inst, z)
        out.solve_seconds = time.perf_counter() - t0
        return out
    start = _incumbent(model, inst, policy, lp.x) if policy.warm_start else None
    if start is not None:
        out.warm_objective = float(model.col_cost @ start)
    remaining = deadline - time.perf_counter()
    if lp.status == "optimal" and remaining > 0:
        run = backend.mip(remaining, start, lp.x)
    else:  # the MILP's root would need the same LP: no point starting it
        run = _Run("time_limit", f"LP relaxation stopped: {lp.termination}")
    out.status, out.termination = run.status, run.termination
    z = _clean(model, run.x) if run.x is not None else None
    if run.status in ("optimal", "time_limit") and start is not None:
        if z is None or model.sense * (model.col_cost @ start - model.col_cost @ z) < 0:
            z = start  # the solver's best is worse than the greedy start (or it has none)
    if z is not None:
        out.choice = _choice_from_columns(model, inst, z)
        out.objective = float(model.col_cost @ z)
        bounds = [b for b in (run.bound, out.lp_bound) if math.isfinite(b)]  # both are valid bounds
        if not math.isfinite(out.lp_bound):  # the LP ran out of time: fall back on the share bound
            bounds.append(share_bound(inst, policy))
            out.termination += "; bound from site shares (LP relaxation unfinished)"
        out.bound = (max(bounds) if model.sense == 1 else min(bounds)) if bounds else math.nan
    out.solve_seconds = time.perf_counter() - t0
    return out


def _unreachable(inst: Instance, policy: Policy) -> str:
    """Name every coverage target above the weight that any option can reach ("" when all reachable)."""
    t = targets(inst, policy)
    w, what = inst.village_weight, "weight" if policy.coverage_basis == "weight" else "villages"
    total = t.sums(w)
    reach = t.sums(np.where(_reachable(inst), w, 0.0))
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
        ev = evaluate(inst, reach[0].choice, reach_policy)
        share = ev["covered_weight"] / max(inst.village_weight.sum(), 1e-300)
        target = (
            f" (target {policy.coverage_target:.4g})" if policy.coverage_target is not None else ""
        )
        parts.append(f"budget: budget reaches at most {share:.4g} coverage{target}")
    return "; ".join(parts)


def _solve_instance(inst: Instance, policy: Policy) -> tuple[_Outcome, Formulation, float]:
    """Build and solve; an unreachable target or an infeasible solve comes back with its reason."""
    t0 = time.perf_counter()
    model = build_formulation(inst, policy)
    build_seconds = time.perf_counter() - t0
    reason = _unreachable(inst, policy)
    if reason:
        out = _Outcome(
            "infeasible",
            "not solved: a coverage target exceeds the reachable weight",
            np.full(len(inst.village_ids), -1),
        )
        out.solver = "highs" if policy.solver == "highs" and highspy is not None else "cbc"
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


def _gap(objective: float, bound: float, sense: int) -> float:
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.nan
    diff = max(0.0, sense * (objective - bound))
    return 0.0 if diff == 0 else diff / abs(objective) if objective != 0 else math.inf


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
    inst = remove_dominated(prepare(options, sites, policy), policy)
    prepare_seconds = time.perf_counter() - t0
    out, model, build_seconds = _solve_instance(inst, policy)
    z = _columns(model, inst, out.choice) if out.status in ("optimal", "time_limit") else None
    ev = evaluate(inst, out.choice, policy)
    binding, dual_cov, dual_budget = _binding(model, out, z)
    total_w = inst.village_weight.sum()
    attrs = {
        "status": out.status,
        "termination": out.termination,
        "objective_name": policy.objective,
        "objective": out.objective,
        "bound": out.bound,
        "gap": _gap(out.objective, out.bound, model.sense),
        "lp_bound": out.lp_bound,
        "total_cost": ev["total_cost"],
        "total_net_cost": ev["total_net_cost"],
        "coverage_share": ev["covered_weight"] / total_w if total_w > 0 else math.nan,
        "coverage_basis": policy.coverage_basis,
        "coverage_target": math.nan
        if policy.coverage_target is None
        else float(policy.coverage_target),
        "budget": math.nan if policy.budget is None else float(policy.budget),
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
    inst = prepare(options, sites, policy)
    choice = greedy_choice(inst, policy)
    ev = evaluate(inst, choice, policy, sites_shared=False)
    reason = _unreachable(inst, policy)
    if not reason and ev["violated"]:
        reason = "; ".join(
            f"{name}: not met by the no-sharing greedy plan" for name in ev["violated"]
        )
    total_w = inst.village_weight.sum()
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
        "total_cost": ev["total_cost"],
        "total_net_cost": ev["total_net_cost"],
        "coverage_share": ev["covered_weight"] / total_w if total_w > 0 else math.nan,
        "coverage_basis": policy.coverage_basis,
        "coverage_target": math.nan
        if policy.coverage_target is None
        else float(policy.coverage_target),
        "budget": math.nan if policy.budget is None else float(policy.budget),
        "solver": "greedy",
        "solve_seconds": time.perf_counter() - t0,
        "infeasible_reason": reason,
    }
    return _dataset(inst, choice, ev, attrs)
