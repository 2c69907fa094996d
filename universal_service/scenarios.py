"""Named scenarios: load, apply overrides, run the pipeline, summarise, compare and write.

A scenario file is YAML with the sections of :class:`universal_service.schema.ScenarioConfig`
(``policy``, ``radio``, ``allocation``, ``solve``) plus two optional tables, after Calliope's
``overrides``/``scenarios``::

    overrides:
      tight_budget: {policy: {budget_cny: 2.0e8, objective: max_coverage}}
      fiber_only:   {policy: {min_quality: 3}}
    scenarios:
      austerity: [tight_budget]

Merge order (documented, deterministic): the file's base sections, then the overrides named by
the chosen scenario in list order, then overrides given by name on the command line, then
``--set key=value`` pairs. Two overrides in one application that set the same key are an error
(:class:`~universal_service.errors.ScenarioError` naming the key and both overrides), so the
result never depends on their order. Every overridden key is logged.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pydantic
import xarray as xr
import yaml

from . import costs, fiberplan, io, optimize, outputs
from .catalog import load_catalog
from .errors import ScenarioError
from .schema import ScenarioConfig

log = logging.getLogger(__name__)

#: The bundled baseline scenario, package data (``data/scenarios/baseline.yaml`` of a source
#: checkout links to it).
DEFAULT_SCENARIO = resources.files("universal_service") / "data" / "scenarios" / "baseline.yaml"
#: The ``data`` folder of a source checkout: the bundled region and the scenario files. It is not
#: package data (the region is too large), so an installed package has no such folder.
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
#: The bundled region, in a source checkout only.
DEFAULT_REGION = DATA_DIR / "qiannan"
OUTPUT_FILES = ("plan.nc", "villages.gpkg", "sites.gpkg", "fiber.gpkg", "summary.csv")


@dataclass
class Scenario:
    """A validated scenario and where it came from."""

    config: ScenarioConfig
    base_dir: Path = Path(".")
    applied: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    def region_path(self) -> Path:
        """The region folder: the scenario's ``region`` (relative to its file) or the bundled one.

        Raises
        ------
        ScenarioError
            The scenario names no region and the bundled one is absent (an installed package
            without the source checkout).
        """
        if self.config.region:
            p = Path(self.config.region)
            return p if p.is_absolute() else (self.base_dir / p).resolve()
        if not DEFAULT_REGION.is_dir():
            raise ScenarioError(
                f"scenario '{self.name}' names no region and the bundled region "
                f"({DEFAULT_REGION}) is only in a source checkout of the project: pass a region "
                "path (universal-service plan REGION, or 'region:' in the scenario file)."
            )
        return DEFAULT_REGION

    def catalog_path(self) -> Path | None:
        if self.config.catalog:
            p = Path(self.config.catalog)
            return p if p.is_absolute() else (self.base_dir / p).resolve()
        return None


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and not key.endswith("district_targets"):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ScenarioError(f"override key '{key}': '{p}' is a value, not a section")
        cur = nxt
    cur[parts[-1]] = value


def merge_overrides(
    base: Mapping[str, Any], overrides: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """Apply named overrides to a base configuration.

    Parameters
    ----------
    base : mapping
        The base configuration (nested dict).
    overrides : sequence of (name, mapping)
        Overrides, nested or with dotted keys (``{"policy.budget_cny": 1e8}``).

    Returns
    -------
    dict
        A new configuration; ``base`` is not modified.

    Raises
    ------
    ScenarioError
        Two overrides set the same key.
    """
    out = copy.deepcopy(dict(base))
    seen: dict[str, str] = {}
    for name, ov in overrides:
        for key, value in _flatten(ov).items():
            if key in seen:
                raise ScenarioError(
                    f"overrides '{seen[key]}' and '{name}' both set '{key}'; combine them into "
                    "one override or drop one of them from the scenario."
                )
            seen[key] = name
            log.info("override %s: %s = %r", name, key, value)
            _set_dotted(out, key, value)
    return out


def parse_set(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (values read as YAML) into a dotted-key mapping."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ScenarioError(f"--set expects key=value, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def load_scenario(
    path: str | Path | None = None,
    *,
    scenario: str | None = None,
    overrides: Sequence[str] = (),
    set_values: Mapping[str, Any] | None = None,
) -> Scenario:
    """Read, merge and validate a scenario file.

    Parameters
    ----------
    path : path-like, optional
        YAML scenario file; the bundled baseline, :data:`DEFAULT_SCENARIO`, by default.
    scenario : str, optional
        A name from the file's ``scenarios`` table (a list of override names).
    overrides : sequence of str
        Further override names from the file's ``overrides`` table, applied after the scenario's.
    set_values : mapping, optional
        Dotted keys and values applied last (``{"policy.coverage_target": 0.9}``).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Malformed YAML, unknown keys or override names, invalid values, or clashing overrides.
    """
    if path is None:
        with resources.as_file(DEFAULT_SCENARIO) as bundled:
            return load_scenario(
                bundled, scenario=scenario, overrides=overrides, set_values=set_values
            )
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: scenario file not found.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8.") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(
            f"{path}: not valid YAML ({exc}). Check indentation and colons."
        ) from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping of sections, got {type(raw).__name__}.")
    table = raw.pop("overrides", {}) or {}
    named = raw.pop("scenarios", {}) or {}
    if not isinstance(table, dict) or not isinstance(named, dict):
        raise ScenarioError(f"{path}: 'overrides' and 'scenarios' must be mappings of names.")
    for oname, ov in table.items():
        if not isinstance(ov, dict):
            raise ScenarioError(
                f"{path}: override '{oname}' must be a mapping of sections and keys (e.g. "
                f"{{policy: {{coverage_target: 1.0}}}}), got {ov!r}."
            )
    for sname, lst in named.items():
        if not isinstance(lst, list) or not all(isinstance(x, str) for x in lst):
            raise ScenarioError(
                f"{path}: scenario '{sname}' must be a list of override names, e.g. "
                f"[{lst}] rather than {lst!r}."
            )
    chosen: list[str] = []
    if scenario is not None:
        if scenario not in named and scenario not in table:
            raise ScenarioError(
                f"{path}: unknown scenario '{scenario}'; defined: {sorted(named) or 'none'} "
                f"(overrides: {sorted(table) or 'none'})."
            )
        chosen = list(named.get(scenario, [scenario]))
    chosen += list(overrides)
    missing = [o for o in chosen if o not in table]
    if missing:
        raise ScenarioError(
            f"{path}: unknown override{'s' if len(missing) > 1 else ''} {missing}; defined: "
            f"{sorted(table) or 'none'}."
        )
    pairs: list[tuple[str, Mapping[str, Any]]] = [(o, table[o]) for o in chosen]
    if set_values:
        pairs.append(("--set", dict(set_values)))
    merged = merge_overrides(raw, pairs)
    if scenario is not None:
        merged["name"] = scenario
    try:
        cfg = ScenarioConfig.model_validate(merged)
    except pydantic.ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                lines.append(f"unknown key '{loc}' (remove it or check its spelling)")
            else:
                lines.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
        raise ScenarioError(f"{path}: " + "; ".join(lines)) from exc
    return Scenario(cfg, path.parent.resolve(), chosen)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """What one scenario run produces."""

    scenario: Scenario
    plan: xr.Dataset
    options: costs.Options
    region: io.Region
    timings: dict[str, float] = field(default_factory=dict)
    baseline: xr.Dataset | None = None
    fiber: fiberplan.FiberDesign | None = None

    @property
    def name(self) -> str:
        return self.scenario.name


def policy_for(config: ScenarioConfig) -> optimize.Policy:
    """Translate a scenario's policy and solve sections into an :class:`optimize.Policy`."""
    p, s = config.policy, config.solve
    return optimize.Policy(
        coverage_target=p.coverage_target,
        district_targets=p.district_targets or None,
        budget=p.budget_cny,
        objective=p.objective,
        min_quality=p.min_quality,
        solver=s.solver,
        time_limit_s=s.time_limit_s,
        mip_gap=s.mip_gap,
        threads=s.threads,
    )


def run(
    scenario: Scenario | str | Path | None = None,
    *,
    region: io.Region | None = None,
    with_baseline: bool = True,
) -> ScenarioResult:
    """Run a scenario end to end: load the region, cost the options, optimise.

    Parameters
    ----------
    scenario : Scenario or path, optional
        A loaded scenario or a YAML path; the bundled baseline by default.
    region : Region, optional
        A region already loaded (skips reading files; the dashboard caches it).
    with_baseline : bool
        Also compute the per-village cheapest-option baseline (no sharing) for comparison.

    Returns
    -------
    ScenarioResult
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    cfg = scenario.config
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    if region is None:
        region = io.load_region(scenario.region_path())
    t["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    catalog = load_catalog(scenario.catalog_path())
    opts = costs.build_options(region, cfg.policy, cfg.radio, catalog)
    t["options_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    policy = policy_for(cfg)
    sites = opts.sites[["site_id", "cost", "kind"]]
    plan = optimize.plan(opts.table, sites, policy)
    t["optimize_s"] = time.perf_counter() - t0
    fiber = None
    if cfg.network.shared_trench and plan.attrs.get("status") in {"optimal", "time_limit"}:
        t0 = time.perf_counter()
        fiber = fiberplan.design(
            plan,
            opts,
            policy,
            catalog,
            iterations=cfg.network.iterations,
            time_limit_s=cfg.network.time_limit_s,
        )
        plan = fiber.plan
        t["fiber_design_s"] = time.perf_counter() - t0
    base = optimize.baseline(opts.table, sites, policy) if with_baseline else None
    plan.attrs["scenario"] = cfg.name
    plan.attrs["region"] = region.name
    return ScenarioResult(scenario, plan, opts, region, t, base, fiber)


def summary(result: ScenarioResult) -> pd.DataFrame:
    """Villages and population by technology, with NPV cost and subsidy [CNY].

    Returns
    -------
    pandas.DataFrame
        One row per technology (``none`` = unserved) plus a ``total`` row; columns
        ``villages``, ``population``, ``cost_cny`` (option cost plus shared-site share),
        ``subsidy_cny``.
    """
    lay = village_layer(result)
    g = lay.groupby("technology", sort=True).agg(
        villages=("village_id", "size"),
        population=("population", "sum"),
        cost_cny=("total_cost_cny", "sum"),
        subsidy_cny=("subsidy_cny", "sum"),
    )
    g.loc["total"] = g.sum()
    return g


def site_share(result: ScenarioResult) -> np.ndarray:
    """Each village's share of the cost of the shared site that serves it [CNY].

    A built site's NPV cost is split among the villages it serves in proportion to their
    population (villages not served through a site get 0). Shares sum to the built sites' cost.
    """
    plan = result.plan
    vill = pd.Index(plan["village"].values)
    served = plan["served"].values.astype(bool)
    out = np.zeros(len(vill))
    if "site" not in plan.dims or not served.any():
        return out
    tab = result.options.table.set_index(["village_id", "option_id"])
    chosen = pd.MultiIndex.from_arrays([vill, plan["option_id"].values])
    site = tab["site_id"].reindex(chosen).fillna("").to_numpy().astype(str)
    built = pd.Series(plan["site_cost"].values, index=plan["site"].values)[
        plan["site_built"].values.astype(bool)
    ]
    pop = result.options.villages.set_index("village_id")["population"].reindex(vill)
    w = np.where(served & (site != ""), pop.to_numpy(float), 0.0)
    total_w = pd.Series(w).groupby(site).transform("sum").to_numpy()
    share = np.divide(w, total_w, out=np.zeros_like(w), where=total_w > 0)
    return np.where(site != "", built.reindex(site).fillna(0.0).to_numpy() * share, 0.0)


def plan_subsidy(result: ScenarioResult) -> np.ndarray:
    """Subsidy per village [CNY]: its option's cost plus its share of shared-site cost
    (:func:`site_share`), minus the NPV of revenue at the affordable tariff, floored at 0.
    Villages served by what exists today need none."""
    plan = result.plan
    served = plan["served"].values.astype(bool)
    v = result.options.villages.set_index("village_id").reindex(plan["village"].values)
    cost = plan["cost"].values.astype(float) + site_share(result)
    revenue = np.where(served, v["revenue_npv"].to_numpy(float), 0.0)
    existing = plan["option_id"].values == "existing"
    return np.where(served & ~existing, np.maximum(cost - revenue, 0.0), 0.0)


def format_summary(result: ScenarioResult) -> str:
    """Human-readable summary of a scenario run (what the CLI prints)."""
    plan, a = result.plan, result.plan.attrs
    s = summary(result)
    lines = [
        f"Scenario '{result.name}' on {result.region.name}",
        f"  villages: {len(plan.village)}, population: {int(s.loc['total', 'population']):,}",
    ]
    lines.append(
        f"  {'technology':<12}{'villages':>10}{'population':>14}{'NPV cost [CNY]':>18}"
        f"{'subsidy [CNY]':>18}"
    )
    for tech, r in s.iterrows():
        lines.append(
            f"  {tech:<12}{int(r.villages):>10,}{int(r.population):>14,}"
            f"{r.cost_cny:>18,.0f}{r.subsidy_cny:>18,.0f}"
        )
    tgt = a.get("coverage_target", float("nan"))
    lines += [
        f"  coverage: {a.get('coverage_share', float('nan')):.4f} of "
        f"{result.scenario.config.policy.coverage_basis} (target "
        f"{'none' if tgt is None or (isinstance(tgt, float) and np.isnan(tgt)) else f'{tgt:.4f}'})",
        f"  total NPV cost: CNY {a.get('total_cost', float('nan')):,.0f}; subsidy needed: "
        f"CNY {plan_subsidy(result).sum():,.0f}",
        f"  sites built: {int(plan['site_built'].sum()) if 'site' in plan.dims else 0}",
        f"  solver: {a.get('solver')} {a.get('solver_version', '')}, status {a.get('status')}, "
        f"objective {a.get('objective', float('nan')):,.0f}, bound {a.get('bound', float('nan')):,.0f}, "
        f"gap {a.get('gap', float('nan')):.2e}",
    ]
    if a.get("infeasible_reason"):
        lines.append(f"  infeasible: {a['infeasible_reason']}")
    fd = result.fiber
    if fd is not None and fd.steiner is not None:
        lines.append(
            f"  fiber: {a['fiber_villages']} villages share {fd.shared_trench_m / 1000:,.1f} km of "
            f"flat-equivalent trench (lower bound {fd.steiner.lower_bound / 1000:,.1f} km) instead "
            f"of {fd.per_village_trench_m / 1000:,.1f} km of own routes: {100 * fd.saving_share:.1f}%"
            f" less; plan cost with shared trenches CNY {a['total_cost']:,.0f} (MILP with own "
            f"routes: CNY {a['milp_total_cost']:,.0f})"
        )
    if result.baseline is not None and a.get("status") in {"optimal", "time_limit"}:
        bc = float(result.baseline.attrs.get("total_cost", np.nan))
        pc = float(a.get("total_cost", np.nan))
        if np.isfinite(bc) and bc > 0:
            lines.append(
                f"  per-village cheapest baseline (no sharing): CNY {bc:,.0f}; plan saves "
                f"{100 * (1 - pc / bc):.1f}%"
            )
    lines.append("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    return "\n".join(lines)


def village_layer(result: ScenarioResult) -> gpd.GeoDataFrame:
    """Villages with their chosen option, cost and subsidy, as a GeoDataFrame."""
    plan = result.plan
    v = result.options.villages.set_index("village_id")
    out = v.reindex(plan["village"].values).copy()
    out["technology"] = plan["technology"].values
    out["option_id"] = plan["option_id"].values
    out["cost_cny"] = plan["cost"].values
    out["site_share_cny"] = site_share(result)
    out["total_cost_cny"] = out["cost_cny"] + out["site_share_cny"]
    out["subsidy_cny"] = plan_subsidy(result)
    out["served"] = plan["served"].values
    out.index.name = "village_id"
    return gpd.GeoDataFrame(out.reset_index(), geometry="geometry", crs=result.region.crs)


def write(result: ScenarioResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the plan: ``plan.nc`` (the Plan Dataset), ``villages.gpkg`` (chosen technology per
    village), ``sites.gpkg`` (built sites) and ``summary.csv``. Each file is written to a
    temporary name and renamed, so an interrupted run leaves no half-written file.

    Returns
    -------
    dict
        Output name -> path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # temporaries left by a run killed mid-write (SIGKILL skips the cleanup in outputs.atomic_path)
    for name in OUTPUT_FILES:
        for stale in out.glob(f".{name}.*.part*"):
            stale.unlink()
    paths: dict[str, Path] = {}
    plan = result.plan
    paths["plan"] = outputs.write_atomic(out / "plan.nc", lambda p: plan.to_netcdf(p))
    layer = village_layer(result)
    paths["villages"] = outputs.write_atomic(
        out / "villages.gpkg", lambda p: layer.to_file(p, layer="villages", driver="GPKG")
    )
    if "site" in plan.dims:
        s = result.options.sites.set_index("site_id").reindex(plan["site"].values)
        built = plan["site_built"].values.astype(bool)
        sg = gpd.GeoDataFrame(
            s[built].reset_index().rename(columns={"index": "site_id"}),
            geometry=gpd.points_from_xy(s["x"][built], s["y"][built]),
            crs=result.region.crs,
        )
        paths["sites"] = outputs.write_atomic(
            out / "sites.gpkg", lambda p: sg.to_file(p, layer="sites", driver="GPKG")
        )
    if result.fiber is not None:
        lines = result.fiber.lines
        paths["fiber"] = outputs.write_atomic(
            out / "fiber.gpkg", lambda p: lines.to_file(p, layer="fiber_network", driver="GPKG")
        )
    summ = summary(result)
    paths["summary"] = outputs.write_atomic(
        out / "summary.csv", lambda p: summ.to_csv(p, float_format="%.2f")
    )
    return paths


def compare(results: Sequence[ScenarioResult], names: Sequence[str] | None = None) -> xr.Dataset:
    """Compare scenario runs: a Dataset with dims ``(scenario, district, technology)``.

    ``names`` labels the runs (default: each scenario's name; they must be unique).

    Variables: ``villages`` and ``population`` served by technology per district, ``cost``
    [CNY] per district and technology (shared site cost apportioned by population), ``subsidy``
    [CNY] per district, and per-scenario ``total_cost``, ``coverage_share``, ``status``.
    """
    names = list(names) if names is not None else [r.name for r in results]
    if len(set(names)) != len(names):
        raise ScenarioError(f"scenario names to compare must be unique, got {names}")
    frames = []
    for r, label in zip(results, names, strict=True):
        lay = village_layer(r)
        frames.append(
            pd.DataFrame(
                {
                    "scenario": label,
                    "district": lay["district_id"],
                    "technology": lay["technology"],
                    "villages": 1,
                    "population": lay["population"],
                    "subsidy": lay["subsidy_cny"],
                    "cost": lay["total_cost_cny"],
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    g = df.groupby(["scenario", "district", "technology"]).sum(numeric_only=True)
    ds = g.to_xarray().fillna(0).reindex(scenario=names)
    ds["total_cost"] = (
        "scenario",
        [float(r.plan.attrs.get("total_cost", np.nan)) for r in results],
    )
    ds["coverage_share"] = (
        "scenario",
        [float(r.plan.attrs.get("coverage_share", np.nan)) for r in results],
    )
    ds["status"] = ("scenario", [str(r.plan.attrs.get("status", "")) for r in results])
    ds["cost"].attrs["units"] = "CNY"
    ds["subsidy"].attrs["units"] = "CNY"
    return ds
