"""Studies over many runs: scenarios compared side by side, and the cost of coverage swept."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import costs, io, milp, report, scenarios
from .errors import ScenarioError

log = logging.getLogger(__name__)

#: Most points of one sweep.
MAX_POINTS = 1001
#: Statuses whose plan is a usable result.
USABLE = frozenset({"optimal", "feasible", "time_limit"})

Progress = Callable[[str], None]


def parse_ref(ref: str) -> tuple[Path, str | None]:
    """A scenario reference: ``FILE`` or ``FILE:NAME`` (a named scenario inside the file)."""
    path, _, name = ref.rpartition(":")
    if path and (path.endswith((".yaml", ".yml")) or Path(path).is_file()) and name:
        return Path(path), name
    return Path(ref), None


def parse_range(text: str, what: str = "--coverage") -> list[float]:
    """``A:B:STEP`` as the inclusive list ``A, A+STEP, ..., B`` (rounded to 10 decimals).

    Raises
    ------
    ScenarioError
        Not three numbers, ``STEP <= 0``, ``A > B`` or more than :data:`MAX_POINTS` points.
    """
    parts = text.split(":")
    try:
        a, b, step = (float(p) for p in parts)
    except ValueError:
        raise ScenarioError(
            f"{what} {text!r}: expected START:STOP:STEP, e.g. 0.80:1.00:0.01"
        ) from None
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(step)) or step <= 0 or a > b:
        raise ScenarioError(f"{what} {text!r}: need START <= STOP and STEP > 0.")
    n = int(math.floor((b - a) / step + 1e-9)) + 1
    if n > MAX_POINTS:
        raise ScenarioError(f"{what} {text!r}: {n} points; at most {MAX_POINTS}.")
    return [round(a + i * step, 10) for i in range(n)]


def _costing_key(sc: scenarios.Scenario) -> str:
    """Everything :func:`universal_service.costs.build_options` reads of a scenario."""
    cfg = sc.config
    return json.dumps(
        [
            cfg.policy.model_dump(mode="json", include=set(costs.POLICY_FIELDS)),
            cfg.radio.model_dump(mode="json"),
            str(sc.catalog_path()),
            str(sc.region_path()),
        ],
        sort_keys=True,
    )


class RunCache:
    """Regions and costed options shared between runs whose inputs are equal."""

    def __init__(self) -> None:
        self.regions: dict[Path, io.Region] = {}
        self.options: dict[str, costs.Options] = {}

    def run(self, sc: scenarios.Scenario, **kw: Any) -> scenarios.ScenarioResult:
        """:func:`universal_service.scenarios.run` with the cached region and options."""
        path = sc.region_path()
        if path not in self.regions:
            self.regions[path] = io.load_region(path)
        key = _costing_key(sc)
        result = scenarios.run(sc, region=self.regions[path], options=self.options.get(key), **kw)
        self.options.setdefault(key, result.options)
        return result


def run_many(
    refs: Sequence[str],
    *,
    region: str | Path | None = None,
    progress: Progress | None = None,
) -> list[scenarios.ScenarioResult]:
    """Run several scenarios, sharing loaded regions and costed options.

    Parameters
    ----------
    refs : sequence of str
        ``FILE`` or ``FILE:NAME`` each.
    region : path-like, optional
        A region folder for every run (else each scenario's own, or the bundled one).
    progress : callable, optional
        Called with each run's label when it is done.

    Raises
    ------
    ScenarioError
        A bad reference or two runs with the same name.
    """
    loaded = []
    for ref in refs:
        path, name = parse_ref(ref)
        sc = scenarios.load_scenario(path, scenario=name)
        if region is not None:
            sc.config = sc.config.model_copy(update={"region": str(Path(region).resolve())})
        loaded.append(sc)
    names = [sc.name for sc in loaded]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioError(f"scenario names to compare must be unique; repeated: {dup}")
    cache = RunCache()
    results = []
    for sc in loaded:
        results.append(cache.run(sc))
        if progress:
            progress(sc.name)
    return results


#: The KPI table's columns, with their units.
KPI_COLUMNS = {
    "status": "",
    "coverage_population": "share",
    "coverage_villages": "share",
    "capex": "CNY, undiscounted",
    "npv_cost": "CNY, NPV",
    "npv_subsidy": "CNY, NPV",
    "new_villages": "villages",
    "cost_per_new_village": "CNY, NPV",
    "cost_per_new_person": "CNY, NPV",
    "villages_unserved": "villages",
}


def kpis(results: Sequence[scenarios.ScenarioResult]) -> pd.DataFrame:
    """One row per run: the figures a regulator compares (:data:`KPI_COLUMNS`), plus each
    operator's net burden under each allocation regime (``burden_<regime>_<operator>`` [CNY])
    for runs with an allocation. Every figure comes from the run's Plan and
    :func:`universal_service.report.summary`."""
    rows = []
    for r in results:
        labels = {v: k for k, v in report.money_labels(r).items()}
        s = report.summary(r).rename(columns=labels)
        new = s.loc[report.SERVED_BY_PLAN]
        by_pop, by_village = report.coverage_shares(r.plan)
        a = r.plan.attrs
        npv = float(a.get("total_npv_cost", np.nan))
        row: dict[str, Any] = {
            "scenario": r.name,
            "status": str(a.get("status", "")),
            "coverage_population": by_pop,
            "coverage_villages": by_village,
            "capex": float(new["capex"]),
            "npv_cost": npv,
            "npv_subsidy": float(a.get("total_subsidy", np.nan)),
            "new_villages": int(new["villages"]),
            "cost_per_new_village": npv / new["villages"] if new["villages"] else np.nan,
            "cost_per_new_person": npv / new["population"] if new["population"] else np.nan,
            "villages_unserved": int(s.loc[report.LEFT_UNSERVED, "villages"]),
        }
        if r.allocation is not None:
            burden = r.allocation["net_burden"]
            for reg in burden["regime"].values:
                for op in burden["operator"].values:
                    row[f"burden_{reg}_{op}"] = float(burden.sel(regime=reg, operator=op))
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario")


def comparison(results: Sequence[scenarios.ScenarioResult]) -> xr.Dataset:
    """The runs in one Dataset: :func:`universal_service.report.compare` (dims scenario,
    district, technology), the KPIs on dim ``scenario``, each run's allocation burdens on
    (scenario, regime, operator) where present, and each run's provenance
    (:func:`universal_service.scenarios.provenance`) as JSON in ``attrs["provenance"]``."""
    ds = report.compare(results)
    table = kpis(results)
    for col, unit in KPI_COLUMNS.items():
        values = table[col].to_numpy()
        ds[f"kpi_{col}"] = (
            "scenario",
            values.astype(str) if col == "status" else values.astype(float),
        )
        if unit:
            ds[f"kpi_{col}"].attrs["units"] = unit
    allocs = {r.name: r.allocation for r in results if r.allocation is not None}
    if allocs:
        burden = xr.concat(
            [a["net_burden"].expand_dims(scenario=[n]) for n, a in allocs.items()],
            dim="scenario",
            join="outer",
        )
        ds["net_burden"] = burden.reindex(scenario=ds["scenario"].values)
        ds["net_burden"].attrs["units"] = "CNY"
    ds.attrs["provenance"] = json.dumps(
        {r.name: scenarios.provenance(r.scenario, r.region.path) for r in results}, sort_keys=True
    )
    return ds


def format_kpis(table: pd.DataFrame) -> str:
    """The KPI table as ``universal-service compare`` prints it: one column per scenario."""
    names = [str(n) for n in table.index]
    width = max(14, *(len(n) + 2 for n in names))
    lines = [f"{'KPI':<40}" + "".join(f"{n:>{width}}" for n in names)]
    for col in table.columns:
        unit = KPI_COLUMNS.get(col, "CNY" if col.startswith("burden_") else "")
        label = f"{col} [{unit}]" if unit else col
        cells = []
        for v in table[col]:
            if isinstance(v, str):
                cells.append(f"{v:>{width}}")
            elif unit == "share":
                cells.append(f"{v:>{width}.4f}")
            else:
                cells.append(f"{v:>{width},.0f}" if np.isfinite(v) else f"{'-':>{width}}")
        lines.append(f"{label:<40}" + "".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Sweeps: the least-cost plan at each coverage target, the most coverage at each budget
# --------------------------------------------------------------------------------------------


def _point(r: scenarios.ScenarioResult) -> dict[str, Any]:
    a = r.plan.attrs
    by_pop, by_village = report.coverage_shares(r.plan)
    return {
        "npv_cost": float(a.get("total_npv_cost", np.nan)),
        "subsidy": float(a.get("total_subsidy", np.nan)),
        "coverage_population": by_pop,
        "coverage_villages": by_village,
        "objective": float(a.get("objective", np.nan)),
        "shadow_price": float(a.get("dual_coverage", a.get("dual_budget", np.nan))),
        "status": str(a.get("status", "")),
        "bound": float(a.get("bound", np.nan)),
        "gap": float(a.get("gap", np.nan)),
        "repaired": False,
    }


def sweep(
    scenario: scenarios.Scenario,
    *,
    coverage: Iterable[float] | None = None,
    budget: Iterable[float] | None = None,
    shared_trench: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """The Pareto curve of cost and coverage: one plan per coverage target or per budget.

    With ``coverage``: the least-cost plan (``objective: min_cost``, no budget) at each target on
    the scenario's ``coverage_basis``. With ``budget``: the most coverage (``max_coverage``) within
    each budget on its ``budget_basis`` [CNY]. Every point shares the loaded region and costed
    options. Monotone by construction: targets are solved from the highest down (budgets from the
    lowest up), each point warm-started from its neighbour's plan (which meets its target, or fits
    its budget; not with ``shared_trench``, whose plans are priced on another trench), and a point
    whose own plan is still dearer (covers less) than its neighbour's takes the neighbour's plan
    (``repaired`` True); its
    ``bound`` stays its own solve's, which is valid for it, and ``gap`` is recomputed against the
    plan kept.

    Parameters
    ----------
    scenario : Scenario
    coverage, budget : iterable of float
        Exactly one of them.
    shared_trench : bool
        Design shared trenches at every point (slower); by default each fiber village routes its
        own trench (the plan MILP, solved to its gap).
    progress : callable, optional
        Called with each point's label.

    Returns
    -------
    pandas.DataFrame
        One row per point, sorted by ``coverage_target`` (or ``budget_cny``): ``npv_cost``,
        ``subsidy`` [CNY, NPV], ``coverage_population``, ``coverage_villages``, ``shadow_price``
        (the coverage row's dual [CNY per unit of coverage weight], or the budget row's),
        ``status``, ``objective`` (NPV cost, or covered weight for budgets), ``bound``, ``gap``,
        ``repaired``.
    """
    if (coverage is None) == (budget is None):
        raise ScenarioError("sweep: give exactly one of --coverage or --budget.")
    by_coverage = coverage is not None
    points = sorted(coverage if by_coverage else budget, reverse=by_coverage)  # type: ignore[arg-type]
    key = "coverage_target" if by_coverage else "budget_cny"
    cache = RunCache()
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    previous = None
    for value in points:
        policy = {"coverage_target": value, "objective": "min_cost", "budget_cny": None}
        if not by_coverage:
            policy = {"coverage_target": None, "objective": "max_coverage", "budget_cny": value}
        data = scenario.config.model_dump()
        data["policy"].update(policy)
        data["network"]["shared_trench"] = shared_trench
        sc = dataclasses.replace(scenario, config=scenarios.ScenarioConfig.model_validate(data))
        result = cache.run(sc, with_baseline=False, with_allocation=False, start=previous)
        row = _point(result)
        row[key] = value
        if row["status"] in USABLE and best is not None:
            worse = (
                row["npv_cost"] > best["npv_cost"]
                if by_coverage
                else row[f"coverage_{scenario.config.policy.coverage_basis}"]
                < best[f"coverage_{scenario.config.policy.coverage_basis}"]
            )
            if worse:
                kept = ("npv_cost", "subsidy", "coverage_population", "coverage_villages")
                row.update({k: best[k] for k in (*kept, "objective", "status")}, repaired=True)
                row["gap"] = milp.relative_gap(
                    row["objective"], row["bound"], 1 if by_coverage else -1
                )
        if row["status"] in USABLE:
            best = row
            if not row["repaired"] and not shared_trench:
                previous = result.plan
        rows.append(row)
        if progress:
            progress(f"{key} {value:g}")
    out = pd.DataFrame(rows)
    cols = [key, "npv_cost", "subsidy", "coverage_population", "coverage_villages"]
    cols += ["shadow_price", "status", "objective", "bound", "gap", "repaired"]
    return out[cols].sort_values(key).reset_index(drop=True)


def pareto_dataset(table: pd.DataFrame, scenario: scenarios.Scenario) -> xr.Dataset:
    """The sweep as a Dataset on dim ``point``, with the scenario's provenance in its attrs."""
    ds = xr.Dataset.from_dataframe(table.rename_axis("point"))
    for v in ("npv_cost", "subsidy", "bound"):
        ds[v].attrs["units"] = "CNY"
    ds["status"] = ds["status"].astype(str)
    ds["repaired"] = ds["repaired"].astype(bool)
    ds.attrs["provenance"] = json.dumps(scenarios.provenance(scenario), sort_keys=True)
    return ds
