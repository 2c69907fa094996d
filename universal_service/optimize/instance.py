"""The optimizer's inputs: the Policy, and the options and sites validated into a sorted Instance."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from universal_service import milp
from universal_service.errors import InputDataError, ScenarioError, format_rows

OBJECTIVES = ("min_cost", "min_subsidy", "max_coverage")
SOLVERS = milp.SOLVERS
COVERAGE_BASES = ("population", "villages")
#: The money a budget limits (see :func:`budget_money`).
BUDGET_BASES = ("npv_cost", "subsidy", "capex")
#: Relative tolerance for "target met", "budget respected" and "constraint tight" checks.
TOL = 1e-6
#: Default seed passed to the solvers (``Policy.seed``), so that the same inputs give the same plan.
RANDOM_SEED = 0


# --------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Policy:
    """What the plan must achieve and how to solve for it.

    Parameters
    ----------
    coverage_target : float or None
        Share (0-1) of the total coverage weight that must be covered, or None for no overall target.
    coverage_basis : {"population", "villages"}
        The scenario's vocabulary (``policy.coverage_basis``). "population": a village counts with
        its ``weight`` column (its population [persons], as :func:`universal_service.costs.
        build_options` writes it); "villages": every (administrative) village counts 1.
    district_targets : mapping of str to float or None
        Share (0-1) of each named district's weight that must be covered.
    budget : float or None
        Upper bound on the money named by ``budget_basis`` that the plan spends [CNY].
    budget_basis : {"npv_cost", "subsidy", "capex"}
        What the budget limits (:func:`budget_money`): the plan's total NPV cost (options plus
        sites built), its subsidy (the public fund) or its undiscounted capex.
    objective : {"min_cost", "min_subsidy", "max_coverage"}
        Minimise total NPV cost, minimise total net cost (subsidy needed at the affordable tariff), or
        maximise covered weight within ``budget`` (required) with a cost tie-break that cannot change
        the coverage optimum (see :func:`~universal_service.optimize.formulate.set_objective`).
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
    seed : int
        The solvers' random seed (a 32-bit integer >= 0); a fixed seed keeps runs reproducible.
    warm_start : bool
        Give the solver the best greedy plan (``greedy_choice`` then ``improve_plan``) as an
        incumbent, and keep it if the solver ends with nothing better.
    """

    coverage_target: float | None = None
    coverage_basis: str = "population"
    district_targets: Mapping[str, float] | None = None
    budget: float | None = None
    budget_basis: str = "npv_cost"
    objective: str = "min_cost"
    min_quality: int | None = None
    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    seed: int = RANDOM_SEED
    warm_start: bool = True

    def __post_init__(self) -> None:
        problems = _target_problems(self) + _solve_problems(self)
        if problems:
            raise ScenarioError("Policy: " + "; ".join(problems))


def _is_real(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _is_share(value: object) -> bool:
    return _is_real(value) and 0.0 <= float(value) <= 1.0


def _target_problems(policy: Policy) -> list[str]:
    """What is wrong with the targets, budget, objective and quality floor of a policy."""
    problems = []
    if policy.coverage_target is not None and not _is_share(policy.coverage_target):
        problems.append(
            f"coverage_target must be a share in [0, 1] or None (got {policy.coverage_target!r})"
        )
    if policy.coverage_basis not in COVERAGE_BASES:
        problems.append(
            f"coverage_basis must be one of {COVERAGE_BASES} (got {policy.coverage_basis!r})"
        )
    if policy.district_targets is not None:
        if not isinstance(policy.district_targets, Mapping):
            problems.append("district_targets must map district_id -> share in [0, 1]")
        else:
            bad = {k: v for k, v in policy.district_targets.items() if not _is_share(v)}
            if bad:
                problems.append(f"district_targets must be shares in [0, 1] (got {bad})")
    if policy.budget is not None and not (
        _is_real(policy.budget) and 0 <= policy.budget < math.inf
    ):
        problems.append(
            f"budget must be a finite amount >= 0 [CNY] or None (got {policy.budget!r})"
        )
    if policy.budget_basis not in BUDGET_BASES:
        problems.append(f"budget_basis must be one of {BUDGET_BASES} (got {policy.budget_basis!r})")
    if policy.objective not in OBJECTIVES:
        problems.append(f"objective must be one of {OBJECTIVES} (got {policy.objective!r})")
    elif policy.objective == "max_coverage" and policy.budget is None:
        problems.append("objective 'max_coverage' needs a budget [CNY]; set budget=...")
    if policy.min_quality is not None and not (
        _is_real(policy.min_quality) and float(policy.min_quality).is_integer()
    ):
        problems.append(f"min_quality must be an integer tier or None (got {policy.min_quality!r})")
    return problems


def _solve_problems(policy: Policy) -> list[str]:
    """What is wrong with the solver settings of a policy."""
    problems = []
    if policy.solver not in SOLVERS:
        problems.append(f"solver must be one of {SOLVERS} (got {policy.solver!r})")
    if not (_is_real(policy.time_limit_s) and policy.time_limit_s > 0):
        problems.append(f"time_limit_s must be > 0 [s] (got {policy.time_limit_s!r})")
    if not (_is_real(policy.mip_gap) and 0 <= policy.mip_gap < 1):
        problems.append(f"mip_gap must be in [0, 1) (got {policy.mip_gap!r})")
    if not (
        isinstance(policy.threads, int)
        and not isinstance(policy.threads, bool)
        and policy.threads >= 1
    ):
        problems.append(f"threads must be an integer >= 1 (got {policy.threads!r})")
    if not (
        isinstance(policy.seed, int | np.integer)
        and not isinstance(policy.seed, bool)
        and 0 <= policy.seed < 2**31
    ):
        problems.append(f"seed must be an integer in [0, 2**31) (got {policy.seed!r})")
    if not isinstance(policy.warm_start, bool):
        problems.append(f"warm_start must be True or False (got {policy.warm_start!r})")
    return problems


# ------------------------------------------------------------------------------------------ instance


@dataclass(frozen=True)
class Instance:
    """Validated options and sites as sorted arrays (options by village then option_id; sites by id).

    ``option_village`` and ``site`` are integer codes into ``village_ids`` and ``site_ids`` (site -1:
    the option needs no shared site). ``village_weight`` is the coverage weight after
    ``coverage_basis``. Costs are NPV [CNY]; ``capex`` is undiscounted [CNY] (NaN when the table
    has none); ``subsidy`` is each option's subsidy without any site share [CNY]. ``demand`` is the
    busy-hour load an option puts on its site [Mbps] and ``site_capacity`` what a site can carry
    [Mbps] (inf: no limit); both None when the tables have no ``demand_mbps`` / ``capacity_mbps``.
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
    capex: np.ndarray | None = None
    subsidy: np.ndarray | None = None
    site_capex: np.ndarray | None = None
    demand: np.ndarray | None = None
    site_capacity: np.ndarray | None = None
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
            "capex",
            "subsidy",
            "demand",
        )
        kept = {name: getattr(self, name)[keep] for name in opt if getattr(self, name) is not None}
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


def _validate_sites(
    sites: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sorted site ids, their NPV costs and capex [CNY] (capex NaN when the table has no ``capex``
    column) and capacities [Mbps] (None without ``capacity_mbps``); raise InputDataError naming
    every problem."""
    if not isinstance(sites, pd.DataFrame):
        raise InputDataError(
            f"sites: expected a pandas DataFrame (site_id, cost [CNY]); got {type(sites).__name__}"
        )
    if len(sites) == 0:
        empty = np.array([], dtype=float)
        return np.array([], dtype=object), empty, empty, None
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
    capex = np.full(len(sites), np.nan)
    if "capex" in sites.columns:
        capex = pd.to_numeric(sites["capex"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(capex) | (capex < 0)
        if bad.any():
            problems.append(
                f"sites, {format_rows(sites.index[bad])}: capex must be a finite amount >= 0 [CNY] (got {capex[bad][:5].tolist()})"
            )
    capacity = None
    if "capacity_mbps" in sites.columns:
        capacity = pd.to_numeric(sites["capacity_mbps"], errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(capacity) | (capacity < 0)
        if bad.any():
            problems.append(
                f"sites, {format_rows(sites.index[bad])}: capacity_mbps must be >= 0 [Mbps] "
                f"(inf: no limit; got {capacity[bad][:5].tolist()})"
            )
    if problems:
        raise InputDataError(problems)
    order = np.argsort(ids, kind="stable")
    return ids[order], cost[order], capex[order], None if capacity is None else capacity[order]


def _check_options_table(options: pd.DataFrame, policy: Policy) -> None:
    """Raise InputDataError when options is not a table with the required columns."""
    if not isinstance(options, pd.DataFrame):
        raise InputDataError(f"options: expected a pandas DataFrame; got {type(options).__name__}")
    required = ("village_id", "option_id", "technology", "site_id", "cost")
    missing = [c for c in required if c not in options.columns]
    if missing:
        raise InputDataError(
            f"options: missing column(s) {missing}; the long table needs {list(required)} "
            "(site_id '' when no shared site is needed, cost as NPV [CNY])"
        )
    if (
        policy.budget is not None
        and policy.budget_basis == "capex"
        and "capex" not in options.columns
    ):
        raise InputDataError(
            "options: policy.budget_basis is 'capex' but there is no 'capex' column; add the "
            "undiscounted capex [CNY] of every option or choose budget_basis 'npv_cost'"
        )
    if policy.min_quality is not None and "quality" not in options.columns:
        raise InputDataError(
            "options: policy.min_quality is set but there is no 'quality' column; add it or unset min_quality"
        )


def _number(
    options: pd.DataFrame, name: str, default: float, allow_negative: bool, problems: list[str]
) -> np.ndarray:
    """A numeric column as floats (``default`` when absent), flagging missing or bad values."""
    if name not in options.columns:
        return np.full(len(options), default)
    values = pd.to_numeric(options[name], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | ((values < 0) & (not allow_negative))
    need = "a finite number" if allow_negative else "a finite number >= 0"
    _flag(problems, options.index, bad, f"{name} must be {need} (got {values[bad][:5].tolist()})")
    return values


def _counts_as_covered(options: pd.DataFrame, problems: list[str]) -> np.ndarray:
    """The ``counts_as_covered`` column as bools (True when absent; "yes"/"0"/... understood)."""
    if "counts_as_covered" not in options.columns:
        return np.ones(len(options), dtype=bool)
    col = options["counts_as_covered"]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=bool)
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
        problems,
        options.index,
        mapped.isna().to_numpy(),
        "counts_as_covered must be True or False",
    )
    return mapped.fillna(False).to_numpy(dtype=bool)


def _read_columns(options: pd.DataFrame, problems: list[str]) -> dict[str, np.ndarray]:
    """Every column of the long table as an array, in input row order, flagging bad values."""
    idx = options.index
    village, no_village = _text(options["village_id"])
    option, no_option = _text(options["option_id"])
    technology, _ = _text(options["technology"])
    site_text, no_site = _text(options["site_id"])
    _flag(problems, idx, no_village, "village_id is empty; every option row needs its village")
    _flag(problems, idx, no_option, "option_id is empty; name every option")
    cost = _number(options, "cost", 0.0, False, problems)
    net_cost = (
        _number(options, "net_cost", np.nan, True, problems)
        if "net_cost" in options.columns
        else cost.copy()
    )
    cols = {
        "village": village,
        "no_village": no_village,
        "option": option,
        "no_option": no_option,
        "technology": technology,
        "site_text": site_text,
        "no_site": no_site,
        "cost": cost,
        "net_cost": net_cost,
        "capex": _number(options, "capex", np.nan, False, problems)
        if "capex" in options.columns
        else np.full(len(options), np.nan),
        "subsidy": _number(options, "subsidy", np.nan, False, problems)
        if "subsidy" in options.columns
        else np.maximum(net_cost, 0.0),
        "weight": _number(options, "weight", 1.0, False, problems),
        "demand": _number(options, "demand_mbps", 0.0, False, problems)
        if "demand_mbps" in options.columns
        else None,
        "quality": _number(options, "quality", 0.0, True, problems),
    }
    cols["covered"] = _counts_as_covered(options, problems)
    cols["district"] = (
        _text(options["district_id"])[0]
        if "district_id" in options.columns
        else np.full(len(options), "", dtype=object)
    )
    return cols


def _site_codes(
    cols: dict[str, np.ndarray], site_ids: np.ndarray, idx: pd.Index, problems: list[str]
) -> np.ndarray:
    """Each option's code into ``site_ids`` (-1: no shared site), flagging unknown site ids."""
    site_text, no_site = cols["site_text"], cols["no_site"]
    site = pd.Index(site_ids).get_indexer(site_text) if len(site_ids) else np.full(len(idx), -1)
    site = np.where(no_site, -1, site).astype(np.int64)
    unknown = (site < 0) & ~no_site
    if unknown.any():
        _flag(
            problems,
            idx,
            unknown,
            f"site_id {sorted(set(site_text[unknown]))[:5]} not in sites; add the sites or clear site_id",
        )
    return site


def _sort_options(
    cols: dict[str, np.ndarray], idx: pd.Index, problems: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Order by (village_id, option_id) through integer codes (one lexsort, no string comparisons).

    Flags repeated (village_id, option_id) pairs and weights or districts that differ within a
    village. Returns the order, the sorted village codes, the first sorted row of each village and
    the sorted village ids.
    """
    v_code, village_ids = pd.factorize(cols["village"], sort=True)
    o_code, _ = pd.factorize(cols["option"], sort=True)
    order = np.lexsort((o_code, v_code))
    v_sorted, o_sorted = v_code[order], o_code[order]
    same = (v_sorted[1:] == v_sorted[:-1]) & (o_sorted[1:] == o_sorted[:-1])
    if same.any():
        dup = np.zeros(len(order), dtype=bool)
        dup[order[1:][same]] = dup[order[:-1][same]] = True
        _flag(
            problems,
            idx,
            dup & ~cols["no_village"] & ~cols["no_option"],
            "(village_id, option_id) repeated; option ids must be unique within a village",
        )
    first = (
        np.r_[0, np.flatnonzero(np.diff(v_sorted)) + 1] if len(order) else np.array([], dtype=int)
    )
    for name, values in (("weight", cols["weight"]), ("district_id", cols["district"])):
        per_village = values[order][first]
        differs = values[order] != per_village[v_sorted]
        if name == "weight":
            differs &= np.isfinite(values[order])
        if differs.any():
            bad_villages = sorted(set(village_ids[v_sorted[differs]]))
            problems.append(
                f"options: {name} differs between the rows of village(s) {bad_villages[:5]}; repeat one value per village"
            )
    return order, v_sorted, first, village_ids


def prepare(options: pd.DataFrame, sites: pd.DataFrame, policy: Policy) -> Instance:
    """Validate the long options table and the sites, sort them, and apply ``min_quality``.

    Parameters
    ----------
    options : pandas.DataFrame
        One row per village x option: ``village_id``, ``option_id``, ``technology``, ``site_id``,
        ``cost`` [CNY]; optional ``net_cost`` [CNY], ``quality``, ``weight``, ``district_id``,
        ``counts_as_covered`` (see :func:`~universal_service.optimize.plan`).
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
    site_ids, site_cost, site_capex, site_capacity = _validate_sites(sites)
    _check_options_table(options, policy)
    idx, problems = options.index, []
    cols = _read_columns(options, problems)
    site = _site_codes(cols, site_ids, idx, problems)
    order, v_sorted, first, village_ids = _sort_options(cols, idx, problems)
    if policy.district_targets:
        unknown_d = sorted(set(policy.district_targets) - set(cols["district"]))
        if unknown_d:
            problems.append(
                f"policy.district_targets names district(s) {unknown_d[:5]} with no village in options; check district_id"
            )
    if policy.budget is not None and policy.budget_basis == "capex" and len(site_ids):
        if np.isnan(site_capex).any():
            problems.append(
                "sites: policy.budget_basis is 'capex' but the sites have no 'capex' column; "
                "pass the sites' undiscounted capex [CNY] or choose budget_basis 'npv_cost'"
            )
    if problems:
        raise InputDataError(problems)

    village_weight = (
        cols["weight"][order][first]
        if policy.coverage_basis == "population"
        else np.ones(len(first))
    )
    inst = Instance(
        village_ids=np.asarray(village_ids, dtype=object),
        village_weight=village_weight.astype(float),
        village_district=cols["district"][order][first],
        option_village=v_sorted.astype(np.int64),
        option_id=cols["option"][order],
        technology=cols["technology"][order],
        site=site[order],
        cost=cols["cost"][order],
        net_cost=cols["net_cost"][order],
        covered=cols["covered"][order],
        quality=cols["quality"][order],
        site_ids=site_ids,
        site_cost=site_cost,
        capex=cols["capex"][order],
        subsidy=cols["subsidy"][order],
        site_capex=site_capex,
        demand=None if cols["demand"] is None else cols["demand"][order],
        site_capacity=site_capacity,
    )
    if policy.min_quality is None:
        return inst
    keep = inst.quality >= policy.min_quality
    return inst.subset(keep, n_removed_quality=int((~keep).sum()))


def remove_dominated(inst: Instance, policy: Policy) -> Instance:
    """Drop options dominated by a site-free option of the same village.

    Option ``o`` is dominated by ``p`` when ``p`` needs no shared site, costs no more (``cost``, and
    ``net_cost`` under min_subsidy, and the budget's money under a budget on subsidy or capex),
    has at least the quality and coverage status of ``o``, and is strictly better in one of these, or ``o`` needs a site, or they tie and ``p`` has the lower
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
    if policy.budget is not None and policy.budget_basis != "npv_cost":
        money = budget_money(inst, policy)[0]
        weak &= money[p] <= money[o]
        strict |= money[p] < money[o]
    dominated = np.zeros(inst.n_options, dtype=bool)
    dominated[o[weak & (strict | (inst.site[o] >= 0) | (p < o))]] = True
    return inst.subset(~dominated, n_removed_dominated=int(dominated.sum()))


def budget_money(inst: Instance, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """The money ``policy.budget`` limits, per option and per site [CNY].

    ``npv_cost``: the option's NPV cost and the site's NPV cost. ``capex``: the option's and the
    site's undiscounted capex. ``subsidy``: the option's subsidy without any site share (its
    ``subsidy`` column) and the site's full NPV cost on the site. This is the MILP's linear form of
    the plan's subsidy: a village's subsidy is max(0, cost + site share - revenue), which is not
    linear in the choices; summing the site-free subsidies and the sites' cost counts each built
    site's cost once and never less than its villages' subsidies would carry of it, so the
    budget row is never looser than the plan's subsidy (a plan within it spends at most the
    budget of public money).

    Returns
    -------
    (per_option, per_site) : tuple of numpy.ndarray
        Aligned with the instance's options and ``site_ids`` [CNY].
    """
    if policy.budget_basis == "capex":
        return inst.capex, inst.site_capex
    if policy.budget_basis == "subsidy":
        return inst.subsidy, inst.site_cost
    return inst.cost, inst.site_cost


# ------------------------------------------------------------------------------------------- targets


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


def reachable(inst: Instance) -> np.ndarray:
    """Villages with at least one option that counts as covered."""
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
    w, reach = inst.village_weight, reachable(inst)
    total = t.sums(w)
    threshold = t.sums(np.where(reach, w, 0.0)) - t.share * total + TOL * np.maximum(1.0, total)
    limit = np.where(t.village_group >= 0, threshold[np.maximum(t.village_group, 0)], np.inf)
    if t.has_overall:
        limit = np.minimum(limit, threshold[0])
    all_cov = np.bincount(inst.option_village, weights=~inst.covered, minlength=n_v) == 0
    return reach & all_cov & (w > limit)
