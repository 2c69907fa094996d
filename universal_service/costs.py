"""Cost every feasible way of serving every village: the options table the optimizer reads."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from . import appraisal, forked, network, radio, sites, terrain
from .catalog import Catalog, load_catalog
from .io import Region
from .schema import BROADBAND_LEVELS, PolicyConfig, RadioConfig

log = logging.getLogger(__name__)

#: Column order of :attr:`Options.table`.
TABLE_COLUMNS = (
    "village_id",
    "option_id",
    "technology",
    "site_id",
    "cost",
    "capex",
    "opex_per_year",
    "capex_npv",
    "opex_npv",
    "last_mile_capex",
    "last_mile_npv",
    "demand_mbps",
    "revenue_npv",
    "tariff_monthly",
    "affordable_monthly",
    "demand_subsidy_npv",
    "net_cost",
    "subsidy",
    "quality",
    "weight",
    "district_id",
    "population",
    "households",
    "existing_service",
    "counts_as_covered",
    "detail",
)


@dataclass
class Options:
    """Everything ``build_options`` produces: the optimizer's input and the evidence behind it.

    Attributes
    ----------
    table : pandas.DataFrame
        Long format, one row per village x option: ``village_id``, ``option_id``, ``technology``,
        ``site_id`` ("" when not shared), ``cost`` (NPV cost [CNY], what the optimizer reads),
        ``capex`` (undiscounted, first installation [CNY]), ``opex_per_year`` [CNY/yr],
        ``capex_npv`` and ``opex_npv`` [CNY] (capex includes the last mile: customer equipment and
        drops, also on their own in ``last_mile_capex`` and ``last_mile_npv`` [CNY]),
        ``revenue_npv`` (NPV of the incremental revenue at
        the village's tariff, :func:`universal_service.appraisal.revenue_npv`; 0 for the
        existing option [CNY]), ``tariff_monthly`` (the village's regulated tariff [CNY/month];
        NaN for the existing option), ``affordable_monthly`` (the village's affordability cap
        [CNY/month]), ``demand_subsidy_npv`` (NPV of the demand-side subsidy that brings the
        tariff down to the cap [CNY]; 0 for the existing option), ``net_cost`` (``cost - revenue_npv`` [CNY], the linear
        per-option price of the ``min_subsidy`` objective), ``subsidy`` (the option's subsidy
        without any site share, :func:`universal_service.appraisal.subsidy` with a zero share
        [CNY]; the Plan's ``subsidy`` adds the site share), ``quality``, ``weight``,
        ``district_id``, ``population``, ``households``, ``existing_service`` (village
        attributes repeated on each row, carried into the Plan), ``counts_as_covered``,
        ``detail`` (route length, hop length, serving site...).
    sites : pandas.DataFrame
        Shared candidate sites: ``site_id``, ``kind`` (tower/village/hilltop), ``x``, ``y``,
        ``cost`` (NPV [CNY] incl. backhaul and power), ``capex``, ``backhaul``.
    villages : geopandas.GeoDataFrame
        Villages with terrain and demand attributes (``elevation_m``, ``slope_deg``,
        ``affordable_monthly`` (the affordability cap), ``tariff_monthly``, ``above_cap``,
        ``revenue_npv``, ``demand_subsidy_npv``, ``fiber_route_km``...).
    coverage : pandas.DataFrame
        The site x village coverage pairs from :func:`universal_service.radio.coverage_matrix`.
    graph : networkx.Graph
        The fiber route graph.
    """

    table: pd.DataFrame
    sites: pd.DataFrame
    villages: gpd.GeoDataFrame
    coverage: pd.DataFrame
    graph: Any = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dataset(self) -> xr.Dataset:
        """The options as an ``xr.Dataset`` with dims ``(village, option)`` (option = technology
        slot), for saving and inspection; the long table is the optimizer's input."""
        t = self.table.copy()
        t["slot"] = t.groupby("village_id").cumcount()
        ds = t.set_index(["village_id", "slot"])[
            ["technology", "site_id", "cost", "revenue_npv", "net_cost", "quality"]
        ].to_xarray()
        return ds.rename({"village_id": "village", "slot": "option"})


#: The policy fields :func:`build_options` reads: two scenarios equal in these (and in radio and
#: catalog) have the same options (:func:`universal_service.studies.run_many` shares them).
POLICY_FIELDS = (
    "affordability_basis",
    "affordability_share",
    "coverage_basis",
    "discount_rate",
    "existing_counts",
    "existing_spend_monthly",
    "horizon_years",
    "min_quality",
    "revenue_margin",
    "take_up",
    "take_up_ramp",
    "take_up_ramp_years",
    "tariff_rule",
    "uniform_affordable_share",
    "uniform_tariff_monthly",
)


def fiber_cost(
    trench_weighted_km: np.ndarray,
    trench_km: np.ndarray,
    fib: dict[str, Any],
    rate: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost of fiber to a village with a given trench [CNY].

    Parameters
    ----------
    trench_weighted_km : array_like
        Flat-equivalent trench length [km] (length x terrain multiplier): drives capex.
    trench_km : array_like
        Physical route length [km]: drives per-km upkeep.
    fib : dict
        The catalog's ``fiber`` entry.
    rate, horizon : float, int
        Discount rate [1/yr] and horizon [yr].

    Returns
    -------
    (capex, capex_npv, opex_npv) : tuple of numpy.ndarray
        One-off capex [CNY], its NPV with replacements [CNY], NPV of opex [CNY].
    """
    w = np.asarray(trench_weighted_km, float)
    km = np.asarray(trench_km, float)
    capex = fib["capex_cny"] + fib["capex_cny_per_km"] * w
    life = fib["lifetime_years"]
    return (
        capex,
        appraisal.npv(capex, 0.0, rate=rate, horizon_years=horizon, lifetime_years=life),
        appraisal.npv(
            0.0, fiber_opex(km, fib), rate=rate, horizon_years=horizon, lifetime_years=life
        ),
    )


def fiber_opex(trench_km: np.ndarray, fib: dict[str, Any]) -> np.ndarray:
    """Annual upkeep of fiber to a village with a route of ``trench_km`` [km] [CNY/yr]."""
    return fib["opex_cny_per_year"] + fib["opex_cny_per_km_year"] * np.asarray(trench_km, float)


def build_options(
    region: Region,
    policy: PolicyConfig | None = None,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
) -> Options:
    """Cost every feasible option for every village of ``region``.

    Steps: terrain and demand attributes at villages; the fiber route graph and each village's
    cheapest route to a point of presence; one option table per technology (existing service,
    fiber, microwave hops from PoPs and towers, 4G from shared candidate sites with their
    coverage over the DEM and their backhaul, satellite everywhere); then NPV cost, revenue at
    the affordable tariff and subsidy.

    Parameters
    ----------
    region : Region
    policy : PolicyConfig, optional
        Discount rate, horizon, affordability share, take-up and coverage basis.
    radio_cfg : RadioConfig, optional
        Candidate-site and coverage settings.
    catalog : Catalog, optional
        Defaults to the bundled catalog.

    Returns
    -------
    Options
    """
    policy = policy or PolicyConfig()
    radio_cfg = radio_cfg or RadioConfig()
    catalog = catalog or load_catalog()
    rate, horizon = policy.discount_rate, policy.horizon_years
    dem = region.dem
    covered_now = region.villages["existing_service"].isin(BROADBAND_LEVELS).to_numpy()
    todo = ~covered_now if policy.existing_counts else np.ones(len(covered_now), bool)
    # the radio part needs no slope or route: on two CPUs a forked child runs it meanwhile
    radio_args = (region, region.villages[todo], catalog, rate, horizon, radio_cfg)
    radio = forked.Forked(_radio_options, *radio_args) if forked.can_fork() else None
    with radio or contextlib.nullcontext():
        slope = terrain.slope_deg(dem)
        v = _village_attributes(region, slope, policy, catalog)
        G = route_graph(region, v, slope, catalog)
        routes = network.nearest_pop_routes(G).set_index("node_id")
        key = "v:" + v["village_id"]
        v["fiber_route_km"] = routes["length_m"].reindex(key).to_numpy(float) / 1000.0
        v["fiber_route_weighted_km"] = (
            routes["weighted_length_m"].reindex(key).to_numpy(float) / 1000.0
        )

        rows: list[pd.DataFrame] = []
        if policy.existing_counts and covered_now.any():
            rows.append(_existing_options(v[covered_now]))
        rows.append(_fiber_options(v[todo], catalog["fiber"], rate, horizon))
        mw_rows, candidates, cov = radio.result() if radio else _radio_options(*radio_args)
        if len(mw_rows):
            rows.append(mw_rows)
    site_table = sites.site_costs(candidates, G, routes, slope, region, dem, catalog, rate, horizon)
    site_table = site_table[np.isfinite(site_table["cost"])].reset_index(drop=True)
    cov = cov[cov["site_id"].isin(set(site_table["site_id"]))]
    if len(cov):
        rows.append(_lte_options(cov, catalog["lte"], rate, horizon))
    busy = float(catalog.meta.get("busy_hour_mbps_per_subscriber", 0.0))
    subs = appraisal.subscribers(v["households"].to_numpy(float), policy.take_up)
    rows.append(_satellite_options(v[todo], catalog["satellite"], rate, horizon, subs[todo] * busy))
    table = _options_table(rows, v, policy, catalog, rate, horizon)
    # a hop from a hub whose site cannot be built (no backhaul) is not an option
    built = (table["site_id"] == "") | table["site_id"].isin(set(site_table["site_id"]))
    if not built.all():
        table = table[built.to_numpy()].reset_index(drop=True)
    # a 4G option whose village alone needs more than its site can carry is not an option
    cap = site_table.set_index("site_id")["capacity_mbps"].reindex(table["site_id"]).to_numpy()
    over = (table["site_id"] != "").to_numpy() & (table["demand_mbps"].to_numpy() > cap)
    if over.any():
        table = table[~over].reset_index(drop=True)
    return Options(
        table,
        site_table,
        v,
        cov.reset_index(drop=True),
        G,
        params={"discount_rate": rate, "horizon_years": horizon},
    )


def _radio_options(
    region: Region,
    v: gpd.GeoDataFrame,
    catalog: Catalog,
    rate: float,
    horizon: int,
    radio_cfg: RadioConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The options that need no fiber route: microwave hops, candidate 4G sites, their coverage.

    Returns ``(microwave option rows, candidate sites, coverage pairs)`` for the villages ``v``
    (:func:`universal_service.sites.microwave_options`, :func:`~universal_service.sites.candidate_sites`,
    :func:`lte_coverage`).
    """
    dem = region.dem
    mw_rows = sites.microwave_options(
        dem, v, sites.hubs(region), catalog["microwave"], rate, horizon, radio_cfg
    )
    candidates = sites.candidate_sites(region, dem, radio_cfg)
    cov = lte_coverage(dem, candidates, v, catalog["lte"], radio_cfg)
    return mw_rows, candidates, cov


def reach_buffer_m(catalog: Catalog | None = None, radio_cfg: RadioConfig | None = None) -> float:
    """The farthest any infrastructure can be from a village it serves [m].

    The longest chain of links :func:`build_options` prices: a microwave hop (``max_hop_km``) to
    a hub whose own backhaul is a fiber route or a hop (``site_backhaul_max_km``,
    ``max_hop_km``); a 4G site within ``radio_cfg.max_range_m`` with the same backhaul; a fiber
    route of at most ``max_route_km``. :meth:`universal_service.io.Region.subset` crops the DEM
    and the infrastructure to the districts' bounds grown by this distance.

    Parameters
    ----------
    catalog : Catalog, optional
        Defaults to the bundled catalog.
    radio_cfg : RadioConfig, optional

    Returns
    -------
    float
        Distance [m].
    """
    catalog = catalog or load_catalog()
    radio_cfg = radio_cfg or RadioConfig()
    fib, mw, lte = catalog["fiber"], catalog["microwave"], catalog["lte"]
    backhaul_km = max(float(lte["site_backhaul_max_km"]), float(mw["max_hop_km"]))
    first_km = max(float(mw["max_hop_km"]), radio_cfg.max_range_m / 1000.0)
    return 1000.0 * max(float(fib["max_route_km"]), first_km + backhaul_km)


def _village_attributes(
    region: Region, slope: xr.DataArray, policy: PolicyConfig, catalog: Catalog
) -> gpd.GeoDataFrame:
    """Villages with elevation, slope, tariff, revenue and demand-side subsidy NPV, and weight.

    The money comes from :mod:`universal_service.appraisal`: the affordability cap on the
    policy's basis, the regulated tariff under its tariff rule, the take-up path, the
    incremental revenue over today's spend, and the demand-side subsidy where the tariff is
    above the cap.
    """
    rate, horizon = policy.discount_rate, policy.horizon_years
    v = region.villages.copy()
    vx, vy = v.geometry.x.to_numpy(), v.geometry.y.to_numpy()
    v["elevation_m"] = terrain.sample(region.dem, vx, vy)
    v["slope_deg"] = terrain.sample(slope, vx, vy)
    hh = v["households"].to_numpy(float)
    hh_size = appraisal.household_size(
        v["population"].to_numpy(float), hh, catalog.meta["household_size_default"]
    )
    cap = appraisal.affordable_tariff(
        v["income_monthly"].to_numpy(float),
        hh_size,
        share=policy.affordability_share,
        basis=policy.affordability_basis,
        list_tariff=float(catalog.meta["list_tariff_cny_per_month"]),
    )
    tariff = appraisal.village_tariffs(
        cap,
        rule=policy.tariff_rule,
        uniform_monthly=policy.uniform_tariff_monthly,
        affordable_share=policy.uniform_affordable_share,
    )
    path = appraisal.take_up_path(
        policy.take_up, policy.take_up_ramp_years, horizon, policy.take_up_ramp
    )
    spend = v["existing_service"].astype(str).map(policy.existing_spend_monthly).fillna(0.0)
    v["affordable_monthly"] = cap
    v["tariff_monthly"] = tariff
    v["above_cap"] = tariff > cap + 1e-9
    v["existing_spend_monthly"] = spend.to_numpy(float)
    v["revenue_npv"] = appraisal.revenue_npv(
        tariff, spend.to_numpy(float), hh, path, margin=policy.revenue_margin, rate=rate
    )
    v["demand_subsidy_npv"] = appraisal.demand_subsidy_npv(tariff, cap, hh, path, rate=rate)
    v["coverage_weight"] = _coverage_weights(v, policy.coverage_basis)
    return v


def _coverage_weights(villages: pd.DataFrame, basis: str) -> np.ndarray:
    if basis == "villages":
        return villages["weight"].to_numpy(float)
    return villages["population"].to_numpy(float) * villages["weight"].to_numpy(float)


def route_graph(
    region: Region, v: gpd.GeoDataFrame, slope: xr.DataArray, catalog: Catalog | None = None
) -> Any:
    """The fiber route graph over the villages (``v:`` nodes) and PoPs (``p:`` nodes).

    Parameters
    ----------
    region : Region
        Its PoPs, DEM, roads and CRS are used.
    v : geopandas.GeoDataFrame
        Villages (``village_id``, metric points).
    slope : xarray.DataArray
        Horn slope of the region's DEM [degrees] (:func:`universal_service.terrain.slope_deg`
        of ``region.dem``), computed once per build.
    catalog : Catalog, optional
        Its fiber terrain classes price the routes (:func:`universal_service.network.terrain_costs`)
        and set the rate along roads (the cheaper method's flat-ground rate); default the bundled
        catalog.

    Returns
    -------
    networkx.Graph
        :func:`universal_service.network.route_graph` over those nodes. Built once per
        region and set of nodes (kept in ``region.memo``, so the baseline's reach test and the
        options share it); do not modify it.
    """
    fiber = (catalog or load_catalog())["fiber"]
    nodes = pd.concat(
        [
            pd.DataFrame(
                {
                    "node_id": "v:" + v["village_id"],
                    "kind": "village",
                    "x": v.geometry.x.to_numpy(),
                    "y": v.geometry.y.to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "node_id": "p:" + region.pops["pop_id"],
                    "kind": "pop",
                    "x": region.pops.geometry.x.to_numpy(),
                    "y": region.pops.geometry.y.to_numpy(),
                }
            ),
        ],
        ignore_index=True,
    )
    digest = hashlib.sha1(pd.util.hash_pandas_object(nodes, index=False).to_numpy().tobytes())
    key = ("route_graph", id(region.dem), len(region.roads), digest.hexdigest(), repr(fiber))
    if key in region.memo:  # the baseline's reach test and the options share one graph
        return region.memo[key]
    classes = network.terrain_costs(fiber)
    roads = region.roads if len(region.roads) else None
    road_factor = network.ROAD_COST_FACTOR if classes is None else classes.flat
    G = network.route_graph(
        nodes,
        region.dem,
        roads=roads,
        crs=region.crs,
        slope=slope,
        terrain_classes=classes,
        road_cost_factor=road_factor,
    )
    region.memo[key] = G
    return G


def _existing_options(v: gpd.GeoDataFrame) -> pd.DataFrame:
    """The free option of villages with broadband today."""
    return pd.DataFrame(
        {
            "village_id": v["village_id"].to_numpy(),
            "option_id": "existing",
            "technology": "existing",
            "site_id": "",
            "capex": 0.0,
            "opex_per_year": 0.0,
            "opex_npv": 0.0,
            "quality": 3,
            "detail": "broadband today: " + v["existing_service"].to_numpy().astype(str),
        }
    )


def _fiber_options(
    v: gpd.GeoDataFrame, fib: dict[str, Any], rate: float, horizon: int
) -> pd.DataFrame:
    """Fiber to each village whose cheapest route to a PoP is within the catalog's reach."""
    route_km = v["fiber_route_km"].to_numpy(float)
    route_w_km = v["fiber_route_weighted_km"].to_numpy(float)
    ok = np.isfinite(route_km) & (route_km <= fib["max_route_km"])
    capex, capex_npv, opex_npv = fiber_cost(route_w_km[ok], route_km[ok], fib, rate, horizon)
    return pd.DataFrame(
        {
            "village_id": v["village_id"].to_numpy()[ok],
            "option_id": "fiber",
            "technology": "fiber",
            "site_id": "",
            "capex": capex,
            "opex_per_year": fiber_opex(route_km[ok], fib),
            "capex_npv": capex_npv,
            "opex_npv": opex_npv,
            "quality": int(fib["quality"]),
            "detail": [
                f"route {a:.1f} km ({b:.1f} km flat-equivalent)"
                for a, b in zip(route_km[ok], route_w_km[ok], strict=True)
            ],
        }
    )


def lte_coverage(
    dem: xr.DataArray,
    candidates: pd.DataFrame,
    v: gpd.GeoDataFrame,
    lte: dict[str, Any],
    radio_cfg: RadioConfig,
) -> pd.DataFrame:
    """The site x village pairs whose 4G link budget closes and that clear the Fresnel fraction.

    This is the plan's one coverage test: candidate sites and the existing network
    (:mod:`universal_service.baseline`) are both judged by it.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation [m].
    candidates : pandas.DataFrame
        Sites: ``site_id``, ``x``, ``y`` [m, DEM CRS], ``height_m`` [m above ground].
    v : geopandas.GeoDataFrame
        Villages (``village_id``, metric points).
    lte : dict
        The catalog's ``lte`` table (``frequency_mhz`` [MHz]).
    radio_cfg : RadioConfig
        Link budget and the Fresnel fraction asked for.

    Returns
    -------
    pandas.DataFrame
        The covered rows of :func:`universal_service.radio.coverage_matrix`.
    """
    budget = radio.LinkBudget.from_config(radio_cfg, frequency_mhz=float(lte["frequency_mhz"]))
    cov = radio.coverage_matrix(
        dem,
        candidates["x"].to_numpy(),
        candidates["y"].to_numpy(),
        candidates["height_m"].to_numpy(),
        v.geometry.x.to_numpy(),
        v.geometry.y.to_numpy(),
        site_ids=candidates["site_id"].to_numpy(),
        village_ids=v["village_id"].to_numpy(),
        budget=budget,
    )
    if radio_cfg.fresnel_fraction > 0 and len(cov):
        cov = cov[cov["clearance_ratio"] >= radio_cfg.fresnel_fraction]
    return cov[cov["covered"]].copy()


def _lte_options(cov: pd.DataFrame, lte: dict[str, Any], rate: float, horizon: int) -> pd.DataFrame:
    """One 4G option per covered site x village pair; the site's own cost is in the sites table."""
    lt = lte["lifetime_years"]
    return pd.DataFrame(
        {
            "village_id": cov["village_id"].to_numpy(),
            "option_id": "lte@" + cov["site_id"].astype(str).to_numpy(),
            "technology": "lte",
            "site_id": cov["site_id"].astype(str).to_numpy(),
            "capex": float(lte["capex_cny"]),
            "opex_per_year": float(lte["opex_cny_per_year"]),
            "opex_npv": float(
                appraisal.npv(
                    0.0,
                    lte["opex_cny_per_year"],
                    rate=rate,
                    horizon_years=horizon,
                    lifetime_years=lt,
                )
            ),
            "capex_npv": float(
                appraisal.npv(
                    lte["capex_cny"], 0.0, rate=rate, horizon_years=horizon, lifetime_years=lt
                )
            ),
            "quality": int(lte["quality"]),
            "detail": [
                f"{d / 1000:.1f} km from site, rx {p:.0f} dBm"
                for d, p in zip(cov["distance_m"], cov["rx_dbm"], strict=True)
            ],
        }
    )


def _satellite_options(
    v: gpd.GeoDataFrame, sat: dict[str, Any], rate: float, horizon: int, busy_mbps: np.ndarray
) -> pd.DataFrame:
    """Satellite (GEO VSAT) for every village, with solar power where it is off the grid, and
    capacity bought for the village's busy hour (``busy_mbps`` [Mbps], at least the catalog's
    ``min_capacity_mbps``)."""
    capex = sat["capex_cny"] + np.where(
        v["electrified"].to_numpy(bool), 0.0, sat["solar_capex_cny"]
    )
    mbps = np.maximum(np.asarray(busy_mbps, float), float(sat.get("min_capacity_mbps", 0.0)))
    opex = sat["opex_cny_per_year"] + 12 * mbps * sat["capacity_cny_per_mbps_month"]
    lt = sat["lifetime_years"]
    return pd.DataFrame(
        {
            "village_id": v["village_id"].to_numpy(),
            "option_id": "satellite",
            "technology": "satellite",
            "site_id": "",
            "capex": capex,
            "opex_per_year": opex,
            "capex_npv": appraisal.npv(
                capex, 0.0, rate=rate, horizon_years=horizon, lifetime_years=lt
            ),
            "opex_npv": appraisal.npv(
                0.0, opex, rate=rate, horizon_years=horizon, lifetime_years=lt
            ),
            "quality": int(sat["quality"]),
            "detail": [f"GEO VSAT, {m:.1f} Mbps" for m in mbps],
        }
    )


def last_mile(
    technology: np.ndarray,
    subscribers: np.ndarray,
    catalog: Catalog,
    rate: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Customer equipment and drops of each option: ``cpe_cny`` per subscriber of its technology.

    Bought when the village is connected for the subscribers it has once take-up has ramped up
    (an upper bound on the ramp's NPV) and re-bought every ``cpe_lifetime_years``. The existing
    option and technologies without ``cpe_cny`` cost nothing.

    Parameters
    ----------
    technology : numpy.ndarray
        Each option's technology.
    subscribers : numpy.ndarray
        The option's village's subscribers (:func:`universal_service.appraisal.subscribers`).
    catalog : Catalog
    rate, horizon : float, int
        Discount rate [1/yr] and horizon [yr].

    Returns
    -------
    (capex, capex_npv) : tuple of numpy.ndarray
        One-off capex [CNY] and its NPV with replacements [CNY].
    """
    tech = np.asarray(technology).astype(str)
    capex = np.zeros(len(tech))
    npv = np.zeros(len(tech))
    for name in np.unique(tech):
        entry = catalog.technologies.get(name, {})
        if not entry.get("cpe_cny"):
            continue
        sel = tech == name
        capex[sel] = float(entry["cpe_cny"]) * np.asarray(subscribers, float)[sel]
        npv[sel] = appraisal.npv(
            capex[sel],
            0.0,
            rate=rate,
            horizon_years=horizon,
            lifetime_years=entry.get("cpe_lifetime_years", entry["lifetime_years"]),
        )
    return capex, npv


def lte_capacity(
    technology: np.ndarray,
    subscribers: np.ndarray,
    catalog: Catalog,
    rate: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Busy-hour demand of each 4G option on its site and the price of carrying it.

    Demand is subscribers x the catalog's ``busy_hour_mbps_per_subscriber``; each Mbps is priced
    at ``carrier_capex_cny`` over one carrier's capacity (:func:`universal_service.sites.
    carrier_capacity_mbps`), bought on the equipment's life. The site's total load is bounded by
    its ``capacity_mbps`` in the plan's MILP (``capacity[s]`` rows). Other technologies and
    catalogs without capacity keys: zero.

    Parameters
    ----------
    technology : numpy.ndarray
        Each option's technology.
    subscribers : numpy.ndarray
        The option's village's subscribers.
    catalog : Catalog
    rate, horizon : float, int
        Discount rate [1/yr] and horizon [yr].

    Returns
    -------
    (demand_mbps, capex, capex_npv) : tuple of numpy.ndarray
        Demand [Mbps], capacity capex [CNY] and its NPV with replacements [CNY].
    """
    tech = np.asarray(technology).astype(str)
    n = len(tech)
    lte = catalog["lte"]
    carrier = sites.carrier_capacity_mbps(lte)
    busy = float(catalog.meta.get("busy_hour_mbps_per_subscriber", 0.0))
    if carrier is None or busy <= 0 or "carrier_capex_cny" not in lte:
        return np.zeros(n), np.zeros(n), np.zeros(n)
    is_lte = tech == "lte"
    demand = np.where(is_lte, np.asarray(subscribers, float) * busy, 0.0)
    capex = demand * float(lte["carrier_capex_cny"]) / carrier
    npv = appraisal.npv(
        capex, 0.0, rate=rate, horizon_years=horizon, lifetime_years=lte["lifetime_years"]
    )
    return demand, capex, np.where(is_lte, npv, 0.0)


def _options_table(
    rows: list[pd.DataFrame],
    v: gpd.GeoDataFrame,
    policy: PolicyConfig,
    catalog: Catalog,
    rate: float,
    horizon: int,
) -> pd.DataFrame:
    """All technologies' rows in one table: cost, revenue, tariff, net cost, village attributes.

    The existing option earns no new revenue (the village keeps what it has) and has no tariff.
    Every other option carries its last mile (:func:`last_mile`) in ``capex`` and ``capex_npv``,
    and on its own in ``last_mile_capex`` and ``last_mile_npv``.
    """
    table = pd.concat(rows, ignore_index=True)
    table["capex_npv"] = table["capex_npv"].fillna(0.0)
    hh = v.set_index("village_id")["households"].reindex(table["village_id"]).to_numpy(float)
    lm_capex, lm_npv = last_mile(
        table["technology"].to_numpy(),
        appraisal.subscribers(hh, policy.take_up),
        catalog,
        rate,
        horizon,
    )
    table["last_mile_capex"] = lm_capex
    table["last_mile_npv"] = lm_npv
    table["capex"] = table["capex"] + lm_capex
    table["capex_npv"] = table["capex_npv"] + lm_npv
    demand, cap_capex, cap_npv = lte_capacity(
        table["technology"].to_numpy(),
        appraisal.subscribers(hh, policy.take_up),
        catalog,
        rate,
        horizon,
    )
    table["demand_mbps"] = demand
    table["capex"] = table["capex"] + cap_capex
    table["capex_npv"] = table["capex_npv"] + cap_npv
    table["cost"] = table["capex_npv"] + table["opex_npv"]
    vi = v.set_index("village_id").reindex(table["village_id"])
    existing = (table["technology"] == "existing").to_numpy()
    table["district_id"] = vi["district_id"].to_numpy()
    table["weight"] = vi["coverage_weight"].to_numpy()
    for col in ("population", "households", "existing_service"):
        table[col] = vi[col].to_numpy()
    table["revenue_npv"] = np.where(existing, 0.0, vi["revenue_npv"].to_numpy(float))
    table["tariff_monthly"] = np.where(existing, np.nan, vi["tariff_monthly"].to_numpy(float))
    table["affordable_monthly"] = vi["affordable_monthly"].to_numpy(float)
    table["demand_subsidy_npv"] = np.where(existing, 0.0, vi["demand_subsidy_npv"].to_numpy(float))
    table["net_cost"] = table["cost"] - table["revenue_npv"]
    table["subsidy"] = appraisal.subsidy(table["cost"], 0.0, table["revenue_npv"])
    table["counts_as_covered"] = table["quality"] >= policy.min_quality
    table = table.sort_values(["village_id", "option_id"], kind="stable").reset_index(drop=True)
    return table[list(TABLE_COLUMNS)]
