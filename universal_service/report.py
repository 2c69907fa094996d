"""What scenario runs report: summary tables, the printed summary, comparisons, output sets."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from . import allocate, outputs, rollout, scenarios
from .errors import ScenarioError
from .scenarios import ScenarioResult

#: The files of one output set (``manifest.json`` is written last, beside them).
#: What a rollout writes: the Rollout Dataset and its year table.
ROLLOUT_FILES = ("rollout.nc", "rollout.csv")

OUTPUT_FILES = (
    "plan.nc",
    "villages.gpkg",
    "sites.gpkg",
    "fiber.gpkg",
    "summary.csv",
    *allocate.ALLOCATION_FILES,
    "comparison.nc",
    "kpis.csv",
    "pareto.csv",
    "pareto.nc",
    "montecarlo.nc",
    "montecarlo.csv",
    "sensitivity.csv",
    *ROLLOUT_FILES,
)


#: Summary rows of villages the plan does not touch and of villages it leaves without service.
ALREADY_SERVED, SERVED_BY_PLAN, LEFT_UNSERVED = (
    "already served",
    "served by the plan",
    "left unserved",
)


def money_labels(result: ScenarioResult) -> dict[str, str]:
    """The summary's money columns with their unit and basis, e.g. ``"NPV cost [CNY, 2016
    prices, NPV at 8% over 15 years]"``: Plan variable -> column label."""
    p = result.scenario.config.policy
    year = result.plan.attrs.get("price_year", "")
    prices = f"CNY, {year} prices" if year else "CNY"
    npv = f"{prices}, NPV at {100 * p.discount_rate:g}% over {p.horizon_years} years"
    return {
        "capex": f"capex [{prices}, undiscounted]",
        "opex_per_year": f"opex [{prices} per year]",
        "total_cost": f"NPV cost [{npv}]",
        "revenue_npv": f"NPV revenue [{npv}]",
        "subsidy": f"NPV subsidy [{npv}]",
        "demand_subsidy_npv": f"NPV demand-side subsidy [{npv}]",
    }


def village_status(plan: xr.Dataset) -> np.ndarray:
    """Each village's row of :func:`summary`: :data:`ALREADY_SERVED` (its existing service is
    kept), ``plan: <technology>`` (served by the plan) or :data:`LEFT_UNSERVED`."""
    served = plan["served"].values.astype(bool)
    tech = plan["technology"].values.astype(str)
    already = served & (tech == "existing")
    return np.where(already, ALREADY_SERVED, np.where(served, "plan: " + tech, LEFT_UNSERVED))


def summary(result: ScenarioResult) -> pd.DataFrame:
    """Villages, population and money of the plan, from the Plan's own variables.

    Rows: ``already served`` (served today; the plan adds nothing), one ``plan: <technology>``
    row per technology the plan builds, ``served by the plan`` (their sum), ``left unserved``
    and ``total``. Columns: ``villages``, ``population`` [persons], the money columns of
    :func:`money_labels` (capex undiscounted, opex per year, NPV cost including the villages'
    site shares, NPV revenue, NPV subsidy, NPV demand-side subsidy; each labelled with its
    unit and basis) and ``cheapest option [CNY per person, NPV]``: for the unserved, the cost
    per person of serving them alone by their cheapest option (why the plan leaves them out).

    Returns
    -------
    pandas.DataFrame
        Indexed by row name; the ``total`` row's NPV cost is the Plan's ``total_npv_cost`` when
        every built site serves a village, its subsidy the Plan's ``total_subsidy``.
    """
    plan = result.plan
    df = pd.DataFrame(
        {
            "villages": 1,
            "population": plan["population"].values.astype(float),
            "capex": plan["capex"].values,
            "opex_per_year": plan["opex_per_year"].values,
            "total_cost": plan["npv_cost"].values + plan["site_share"].values,
            "revenue_npv": plan["revenue_npv"].values,
            "subsidy": plan["subsidy"].values,
            "demand_subsidy_npv": plan["demand_subsidy_npv"].values,
            "cheapest": plan["cheapest_cost"].values if "cheapest_cost" in plan else np.nan,
        }
    )
    df["row"] = village_status(plan)
    site_capex = (
        float(plan["site_capex"].where(plan["site_built"], 0.0).sum())
        if "site_capex" in plan
        else 0.0
    )
    g = df.drop(columns="cheapest").groupby("row", sort=True).sum()
    techs = sorted(r for r in g.index if r.startswith("plan: "))
    order = [ALREADY_SERVED, *techs, SERVED_BY_PLAN, LEFT_UNSERVED]
    g = g.reindex(order).fillna(0.0)
    g.loc[SERVED_BY_PLAN] = g.loc[techs].sum() if techs else 0.0
    g.loc[SERVED_BY_PLAN, "capex"] += site_capex  # masts and solar of the built sites
    g.loc["total"] = g.loc[[ALREADY_SERVED, SERVED_BY_PLAN, LEFT_UNSERVED]].sum()
    left = df["row"] == LEFT_UNSERVED
    per_person = np.nan
    if left.any():
        pop = df.loc[left, "population"].sum()
        per_person = df.loc[left, "cheapest"].sum() / pop if pop > 0 else np.nan
    g["cheapest option [CNY per person, NPV]"] = np.nan
    g.loc[LEFT_UNSERVED, "cheapest option [CNY per person, NPV]"] = per_person
    g["villages"] = g["villages"].astype(int)
    g.index.name = "row"
    return g.rename(columns=money_labels(result))


def coverage_shares(plan: xr.Dataset) -> tuple[float, float]:
    """Share of the population and of the (administrative) villages covered after the plan [-]."""
    covered = plan["covered"].values.astype(bool)
    pop = np.nan_to_num(plan["population"].values.astype(float))
    by_pop = float(pop[covered].sum() / pop.sum()) if pop.sum() > 0 else float("nan")
    by_village = float(covered.mean()) if covered.size else float("nan")
    return by_pop, by_village


def time_limit_notice(result: ScenarioResult) -> str:
    """A sentence when the plan's MILP stopped at its time limit before proving its gap, else ""."""
    a = result.plan.attrs
    if a.get("status") != "time_limit" and a.get("milp_status") != "time_limit":
        return ""
    limit = float(a.get("time_limit_s", result.scenario.config.solve.time_limit_s))
    gap = float(a.get("gap" if a.get("status") == "time_limit" else "milp_gap", float("nan")))
    return (
        f"the solver stopped at its time limit ({limit:g} s, solve.time_limit_s) before proving "
        f"the {result.scenario.config.solve.mip_gap:g} gap (gap reached {gap:.2e}): the plan is "
        "feasible, maybe not optimal. Raise solve.time_limit_s to close the gap."
    )


def format_summary(result: ScenarioResult) -> str:
    """Human-readable summary of a scenario run (what the CLI prints)."""
    plan, a = result.plan, result.plan.attrs
    policy = result.scenario.config.policy
    s = summary(result)
    labels = money_labels(result)
    npv_basis = labels["total_cost"][len("NPV cost [") : -1]
    lines = [
        f"Scenario '{result.name}' on {result.region.name}",
        f"  villages: {len(plan.village)}, population: {int(s.loc['total', 'population']):,}",
        f"  money in {npv_basis}; capex undiscounted, opex per year",
        f"  {'':<20}{'villages':>9}{'population':>12}{'capex':>14}{'opex/yr':>12}"
        f"{'NPV cost':>14}{'NPV revenue':>14}{'NPV subsidy':>14}",
    ]
    for row, r in s.iterrows():
        lines.append(
            f"  {row:<20}{int(r['villages']):>9,}{int(r['population']):>12,}"
            f"{r[labels['capex']]:>14,.0f}{r[labels['opex_per_year']]:>12,.0f}"
            f"{r[labels['total_cost']]:>14,.0f}{r[labels['revenue_npv']]:>14,.0f}"
            f"{r[labels['subsidy']]:>14,.0f}"
        )
    per_person = s.loc[LEFT_UNSERVED, "cheapest option [CNY per person, NPV]"]
    if s.loc[LEFT_UNSERVED, "villages"] > 0 and np.isfinite(per_person):
        lines.append(
            f"  left unserved: serving them alone would cost CNY {per_person:,.0f} per person "
            "(NPV, cheapest option each)"
        )
    by_pop, by_village = coverage_shares(plan)
    tgt = a.get("coverage_target", float("nan"))
    tgt_text = (
        "none"
        if tgt is None or (isinstance(tgt, float) and np.isnan(tgt))
        else f"{tgt:.4f} of {policy.coverage_basis}"
    )
    lines += [
        f"  coverage: {by_pop:.4f} of population, {by_village:.4f} of administrative villages "
        f"(target {tgt_text})",
        f"  total NPV cost: CNY {a.get('total_npv_cost', float('nan')):,.0f}; subsidy needed: "
        f"CNY {a.get('total_subsidy', float('nan')):,.0f}",
    ]
    n_above = int(a.get("n_above_cap", 0))
    lines.append(
        f"  tariff: {policy.tariff_rule}, "
        + (
            f"CNY {np.nanmax(plan['tariff_monthly'].values):,.2f} a month; "
            if policy.tariff_rule == "uniform" and np.isfinite(plan["tariff_monthly"].values).any()
            else ""
        )
        + f"affordability {100 * policy.affordability_share:g}% of income "
        f"({policy.affordability_basis.replace('_', ' ')}); {n_above} plan villages above their "
        f"cap, demand-side subsidy CNY {a.get('total_demand_subsidy', 0.0):,.0f}"
    )
    lines += [
        f"  sites built: {int(plan['site_built'].sum()) if 'site' in plan.dims else 0}",
        f"  plan status: {a.get('status')} ({a.get('status_method', 'milp')}), objective "
        f"{a.get('objective', float('nan')):,.0f}, bound {a.get('bound', float('nan')):,.0f}, "
        f"gap {a.get('gap', float('nan')):.2e}; solver {a.get('solver')} "
        f"{a.get('solver_version', '')}",
    ]
    if a.get("infeasible_reason"):
        lines.append(f"  infeasible: {a['infeasible_reason']}")
    notice = time_limit_notice(result)
    if notice:
        lines.append(f"  note: {notice}")
    fd = result.fiber
    if fd is not None and fd.steiner is not None:
        lines.append(
            f"  fiber: {a['fiber_villages']} villages share {fd.shared_trench_m / 1000:,.1f} km of "
            f"flat-equivalent trench (lower bound {fd.steiner.lower_bound / 1000:,.1f} km) instead "
            f"of {fd.per_village_trench_m / 1000:,.1f} km of own routes: {100 * fd.saving_share:.1f}%"
            f" less; plan cost with shared trenches CNY {a['total_cost']:,.0f} (MILP with own "
            f"routes: CNY {a['milp_total_cost']:,.0f})"
        )
    if result.baseline is not None and a.get("status") in {"optimal", "feasible", "time_limit"}:
        bc = float(result.baseline.attrs.get("total_cost", np.nan))
        pc = float(a.get("total_cost", np.nan))
        mc = float(a.get("milp_total_cost", np.nan))
        if np.isfinite(bc) and bc > 0:
            lines.append(
                f"  per-village cheapest baseline (no sharing): CNY {bc:,.0f}; plan saves "
                f"{100 * (1 - pc / bc):.1f}%"
                + (
                    f" (and {100 * (1 - pc / mc):.1f}% against the MILP with own routes)"
                    if np.isfinite(mc) and mc > 0 and fd is not None
                    else ""
                )
            )
    warnings = getattr(result.region, "warnings", [])
    if warnings:
        lines.append(f"  input warnings ({len(warnings)}):")
        lines += [f"    - {w}" for w in warnings[:10]]
        if len(warnings) > 10:
            lines.append(f"    ... and {len(warnings) - 10} more (see the log)")
    lines.append("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    return "\n".join(lines)


#: Plan variables in the village layer, renamed with their units.
LAYER_COLUMNS = {
    "technology": "technology",
    "option_id": "option_id",
    "site_id": "site_id",
    "served": "served",
    "covered": "covered",
    "capex": "capex_cny",
    "opex_per_year": "opex_cny_per_year",
    "npv_cost": "npv_cost_cny",
    "site_share": "site_share_cny",
    "revenue_npv": "revenue_npv_cny",
    "tariff_monthly": "tariff_cny_per_month",
    "affordable_monthly": "affordable_cny_per_month",
    "above_cap": "above_cap",
    "subsidy": "subsidy_cny",
    "demand_subsidy_npv": "demand_subsidy_npv_cny",
}


def village_layer(result: ScenarioResult) -> gpd.GeoDataFrame:
    """The region's villages with the Plan's per-village variables, as a GeoDataFrame.

    Columns of :data:`LAYER_COLUMNS` (money with its unit in the name, NPV [CNY] unless
    ``per_month``/``per_year``) plus ``total_cost_cny`` = ``npv_cost_cny + site_share_cny``.
    """
    plan = result.plan
    out = result.region.villages.set_index("village_id").reindex(plan["village"].values).copy()
    for var, col in LAYER_COLUMNS.items():
        if var in plan:
            out[col] = plan[var].values
    out["total_cost_cny"] = plan["npv_cost"].values + plan["site_share"].values
    out.index.name = "village_id"
    return gpd.GeoDataFrame(out.reset_index(), geometry="geometry", crs=result.region.crs)


def write(result: ScenarioResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the plan as one output set: ``plan.nc`` (the Plan Dataset), ``villages.gpkg`` (chosen
    technology per village), ``sites.gpkg`` (built sites), ``fiber.gpkg`` (the fibre network, when
    planned), ``summary.csv`` and ``manifest.json`` (run id, scenario and each file's sha256,
    written last; :func:`universal_service.outputs.read_manifest` checks a folder against it).

    The files are written into a staging folder beside ``out_dir`` and swapped in whole
    (:func:`universal_service.outputs.write_set`): an interrupted or killed run leaves the previous
    set untouched, and the folder never mixes files of two runs. Other files the user keeps in
    ``out_dir`` are carried over; outputs of an earlier run that this run does not write (e.g.
    ``fiber.gpkg``) are dropped.

    Returns
    -------
    dict
        Output name (``plan``, ``villages``, ``sites``, ``fiber``, ``summary``, with an
        allocation ``allocation`` and ``allocation_csv``, with a rollout ``rollout`` and
        ``rollout_csv``) -> path.

    Raises
    ------
    InputDataError
        ``out_dir`` cannot hold the outputs (see :func:`universal_service.outputs.check_out_dir`).
    """
    outputs.check_out_dir(out_dir, OUTPUT_FILES)  # before any layer is built
    prov = json.dumps(scenarios.provenance(result.scenario, result.region.path), sort_keys=True)
    plan = result.plan.copy()
    plan.attrs["provenance"] = prov
    layer = village_layer(result)
    writers: dict[str, Callable[[Path], None]] = {
        "plan.nc": lambda p: plan.to_netcdf(p),
        "villages.gpkg": lambda p: layer.to_file(p, layer="villages", driver="GPKG"),
    }
    if "site" in plan.dims:
        built = plan.isel(site=plan["site_built"].values.astype(bool))
        cols = [v for v in built.data_vars if built[v].dims == ("site",)]
        frame = built[cols].to_dataframe().reset_index()
        frame = frame.rename(columns={c: c.removeprefix("site_") for c in cols})
        frame = frame.rename(columns={"site": "site_id", "cost": "cost_cny", "capex": "capex_cny"})
        sg = gpd.GeoDataFrame(
            frame,
            geometry=gpd.points_from_xy(built["site_x"].values, built["site_y"].values),
            crs=result.region.crs,
        )
        writers["sites.gpkg"] = lambda p: sg.to_file(p, layer="sites", driver="GPKG")
    if result.fiber is not None:
        lines = result.fiber.lines
        writers["fiber.gpkg"] = lambda p: lines.to_file(p, layer="fiber_network", driver="GPKG")
    summ = summary(result)
    writers["summary.csv"] = lambda p: summ.to_csv(p, float_format="%.2f")
    if result.allocation is not None:
        alloc = result.allocation.copy()
        alloc.attrs["provenance"] = prov
        writers.update(allocation_writers(alloc))
    if result.rollout is not None:
        roll = result.rollout.copy()
        roll.attrs["provenance"] = prov
        table = rollout.year_table(roll)
        writers["rollout.nc"] = lambda p: roll.to_netcdf(p)
        writers["rollout.csv"] = lambda p: table.to_csv(p, float_format="%.12g")
    written = outputs.write_set(
        out_dir,
        writers,
        owned=OUTPUT_FILES,
        meta={
            "scenario": result.name,
            "region": str(result.region.name),
            "provenance": json.loads(prov),
        },
    )
    return {_key(name): path for name, path in written.items()}


#: Published anchors of :func:`plausibility` (value, source). The bundled region's baseline
#: year is 2015 (end of year, before the 2016-2019 pilots); later figures are labelled with their
#: own year.
ANCHORS = {
    "tower_sites_per_1000_people": (
        1.9e6 / 1.39008e6,
        "China, end-2017: about 1.9 M tower sites (China Tower, C114 2018-01-25) over 1,390.08 M "
        "people (NBS communique 2017); national, cities included",
    ),
    "tower_sites_per_km2": (
        1.9e6 / 9.6e6,
        "the same 1.9 M sites over China's 9.6 M km2 (national average, not rural karst)",
    ),
    "villages_without_service_share": (
        0.02,
        "Guizhou 2015: every natural village to have a telephone (96% at end-2012; gov.cn "
        "2013-12-14), mobile coverage 95.8% (Guizhou Daily 2018-02-07); 0.02 taken, range 0-0.042",
    ),
    "villages_fiber_share": (
        1.0 - 8_900 / 13_438,
        "Guizhou 2015: about 8,900 administrative villages fibered by the 2016-2017 pilots, "
        "'basically all' by end-2017 (Guizhou Daily 2017-08-28), of 13,438 rural units (NBS 2016)",
    ),
    "villages_broadband_share": (
        0.70,
        "China, end-2015: under 70% of administrative villages had broadband, about 50,000 none "
        "(MIIT via China Workers' Net, 2021-12-31); an upper bound for Guizhou",
    ),
    "villages_4g_share": (
        np.nan,
        "no village figure for 2015: 4G was to reach 'townships and above' (State Council "
        "broadband guidance, May 2015); 95% of villages by Sept 2018 (MIIT via C114, 2018-10-18)",
    ),
    "capex_per_new_village_cny": (
        15.9e9 / 52_800,
        "2004-05 village programme: CNY 15.9 bn for 52,800 villages (Xinhua, 2005-12-27)",
    ),
    "pilot_subsidy_per_village_cny": (
        618e6 / 8_900,
        "Guizhou's central pilot subsidy, about CNY 618 M for about 8,900 villages (2015-2019)",
    ),
}


def plausibility(result: ScenarioResult) -> pd.DataFrame:
    """The plan's baseline and results beside published anchors (:data:`ANCHORS`).

    Rows (``metric``, ``model``, ``anchor``, ``source``): towers per km2 and per 1,000 people;
    the share of rural villages (``ur_code`` 2xx) by existing service; capex per newly served
    village (:func:`summary`'s "served by the plan" capex, sites included, over its villages);
    the subsidy per newly served village under the 2015-2019 pilots' rule
    (:func:`universal_service.appraisal.pilot_subsidy`) and under the model's own rule; the
    technology mix of the newly served; shared trench km per fiber village; and the median
    ratio of each village's routed fiber length to the straight line to its nearest PoP.
    Money in CNY (capex undiscounted, subsidies NPV).
    """
    from scipy.spatial import cKDTree

    from . import appraisal

    region, plan, opts = result.region, result.plan, result.options
    rows: list[tuple[str, float, float, str]] = []

    def add(metric: str, value: float, anchor: str | None = None, source: str = "") -> None:
        a, src = ANCHORS[anchor] if anchor else (np.nan, source)
        rows.append((metric, float(value), float(a), src))

    area_km2 = float(region.districts.geometry.area.sum()) / 1e6
    people = float(region.villages["population"].sum())
    n_towers = len(region.towers)
    add("towers per 1,000 people", 1000 * n_towers / people, "tower_sites_per_1000_people")
    add("towers per km2", n_towers / area_km2, "tower_sites_per_km2")
    v = region.villages
    rural = (
        v["ur_code"].astype(str).str.startswith("2") if "ur_code" in v else np.ones(len(v), bool)
    )
    shares = v.loc[rural, "existing_service"].value_counts(normalize=True)
    anchor_of = {
        "none": "villages_without_service_share",
        "fiber": "villages_fiber_share",
        "4g": "villages_4g_share",
    }
    for level in ("none", "2g", "3g", "4g", "fiber"):
        add(
            f"rural villages with existing service '{level}'",
            shares.get(level, 0.0),
            anchor_of.get(level),
            "" if level in anchor_of else "no published figure used",
        )
    add(
        "rural villages with broadband (4g or fiber)",
        shares.get("4g", 0.0) + shares.get("fiber", 0.0),
        "villages_broadband_share",
    )
    labels = money_labels(result)
    summ = summary(result).rename(columns={v: k for k, v in labels.items()})
    new = summ.loc[SERVED_BY_PLAN]
    n_new = max(float(new["villages"]), 1.0)
    add("capex per newly served village [CNY]", new["capex"] / n_new, "capex_per_new_village_cny")
    pilot = appraisal.pilot_subsidy(
        new["capex"], new["opex_per_year"], result.scenario.config.policy.discount_rate
    )
    add(
        "pilots' rule subsidy per newly served village [CNY, NPV]",
        pilot / n_new,
        "pilot_subsidy_per_village_cny",
    )
    add(
        "model subsidy per newly served village [CNY, NPV]",
        new["subsidy"] / n_new,
        "pilot_subsidy_per_village_cny",
    )
    for row in summ.index:
        if row.startswith("plan: "):
            add(
                f"newly served by {row[6:]} (share)",
                summ.loc[row, "villages"] / n_new,
                None,
                "model only",
            )
    tech = plan["technology"].values.astype(str)
    n_fiber = int((tech == "fiber").sum())
    if result.fiber is not None and n_fiber:
        km = float(result.fiber.lines["length_m"].sum()) / 1000
        add("shared trench km per fiber village", km / n_fiber, None, "model only")
    if len(region.pops):
        xy = np.c_[opts.villages.geometry.x, opts.villages.geometry.y]
        straight_km = (
            cKDTree(np.c_[region.pops.geometry.x, region.pops.geometry.y]).query(xy)[0] / 1000
        )
        routed = opts.villages["fiber_route_km"].to_numpy(float)
        ok = np.isfinite(routed) & (straight_km > 0.1)
        add(
            "routed / straight-line fiber length (median)",
            np.median(routed[ok] / straight_km[ok]),
            None,
            "rural roads typically 1.2-1.5x the straight line (assumption)",
        )
    return pd.DataFrame(rows, columns=["metric", "model", "anchor", "source"])


def _key(name: str) -> str:
    """The output name of a file: its stem (``allocation.csv``: ``allocation_csv``, and so
    ``rollout.csv``: ``rollout_csv``)."""
    return (
        f"{Path(name).stem}_csv" if name in ("allocation.csv", "rollout.csv") else Path(name).stem
    )


def allocation_writers(ds: xr.Dataset) -> dict[str, Callable[[Path], None]]:
    """Writers of ``allocation.nc`` (the Allocation Dataset) and ``allocation.csv`` (one row per
    regime and operator, :func:`universal_service.allocate.operator_table`)."""
    table = allocate.operator_table(ds)
    return {
        "allocation.nc": lambda p: ds.to_netcdf(p),
        "allocation.csv": lambda p: table.to_csv(p, index=False, float_format="%.12g"),
    }


def write_allocation(ds: xr.Dataset, out_dir: str | Path) -> dict[str, Path]:
    """Write an Allocation alone as one output set (``allocation.nc``, ``allocation.csv``,
    ``manifest.json``); files of an earlier ``plan`` run in ``out_dir`` are dropped, so the folder
    never mixes two runs.

    Returns
    -------
    dict
        Output name (``allocation.nc`` -> ``allocation``, ``allocation.csv`` -> ``allocation_csv``)
        -> path.
    """
    outputs.check_out_dir(out_dir, OUTPUT_FILES)
    written = outputs.write_set(
        out_dir,
        allocation_writers(ds),
        owned=OUTPUT_FILES,
        meta={
            "scenario": ds.attrs.get("scenario", ""),
            "region": ds.attrs.get("region", ""),
            "provenance": json.loads(ds.attrs.get("provenance", "{}")),
        },
    )
    return {_key(n): p for n, p in written.items()}


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
