"""Cost every feasible way of serving every village: the options table the optimizer reads.

Appraisal follows one convention everywhere: one real discount rate ``r`` [1/yr], one horizon
``H`` [yr], capital spent at the start of year 1 and re-spent at the end of each asset life
inside the horizon, operating cost and revenue at the end of each year, and the straight-line
residual value of the last investment credited at the end of the horizon. With those
conventions the present value of a level annual amount ``A`` is ``A * annuity_factor(r, H)``
(Newnan, Eschenbach & Lavelle, *Engineering Economic Analysis*, compound interest tables,
factor (P/A, i, n)).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from . import network, radio, terrain
from .errors import InputDataError
from .io import Region, read_toml
from .schema import BROADBAND_LEVELS, PolicyConfig, RadioConfig

log = logging.getLogger(__name__)

DEFAULT_CATALOG = Path(__file__).resolve().parents[1] / "data" / "technologies.toml"

_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "fiber": (
        "quality",
        "lifetime_years",
        "capex_cny_per_km",
        "capex_cny",
        "opex_cny_per_year",
        "opex_cny_per_km_year",
        "max_route_km",
        "source",
    ),
    "microwave": (
        "quality",
        "lifetime_years",
        "capex_cny",
        "opex_cny_per_year",
        "frequency_mhz",
        "max_hop_km",
        "hop_class_max_km",
        "hop_capex_cny",
        "solar_capex_cny",
        "source",
    ),
    "lte": (
        "quality",
        "lifetime_years",
        "capex_cny",
        "opex_cny_per_year",
        "frequency_mhz",
        "site_new_capex_cny",
        "site_upgrade_capex_cny",
        "site_opex_cny_per_year",
        "site_solar_capex_cny",
        "site_backhaul_max_km",
        "source",
    ),
    "satellite": (
        "quality",
        "lifetime_years",
        "capex_cny",
        "opex_cny_per_year",
        "capacity_mbps",
        "capacity_cny_per_mbps_month",
        "solar_capex_cny",
        "source",
    ),
}


# --------------------------------------------------------------------------------------------
# Appraisal
# --------------------------------------------------------------------------------------------


def annuity_factor(rate: float, years: float) -> float:
    """Present value of 1 a year for ``years`` years at ``rate``: (P/A, r, n).

    Parameters
    ----------
    rate : float
        Real discount rate [1/yr].
    years : float
        Number of annual payments [yr].

    Returns
    -------
    float
        ``(1 - (1 + r)**-n) / r``, or ``n`` when ``r == 0``.
    """
    if rate == 0:
        return float(years)
    return float((1.0 - (1.0 + rate) ** -years) / rate)


def capital_recovery_factor(rate: float, years: float) -> float:
    """Level annual payment that repays 1 over ``years`` at ``rate``: (A/P, r, n) = 1/(P/A)."""
    return 1.0 / annuity_factor(rate, years)


def npv(
    capex: np.ndarray | float,
    opex_per_year: np.ndarray | float,
    *,
    rate: float,
    horizon_years: int,
    lifetime_years: float,
) -> np.ndarray:
    """Net present cost of an asset over the appraisal horizon [same currency as inputs].

    Capex is paid at t=0 and again at t = L, 2L, ... < H (L the lifetime), opex at the end of
    years 1..H, and the unused share of the last investment, ``1 - (H - kL)/L``, is credited at
    t = H.

    Parameters
    ----------
    capex : array_like
        One-off investment [CNY].
    opex_per_year : array_like
        Annual operating cost [CNY/yr].
    rate : float
        Real discount rate [1/yr].
    horizon_years : int
        Appraisal horizon H [yr].
    lifetime_years : float
        Asset life L [yr], > 0.

    Returns
    -------
    numpy.ndarray
        Present value of all costs [CNY].
    """
    if lifetime_years <= 0:
        raise ValueError(f"lifetime_years must be > 0, got {lifetime_years}")
    capex = np.asarray(capex, dtype=float)
    opex = np.asarray(opex_per_year, dtype=float)
    d = 1.0 + rate
    n_invest = int(np.ceil(horizon_years / lifetime_years))
    invest_pv = sum(d ** -(k * lifetime_years) for k in range(n_invest))
    last = (n_invest - 1) * lifetime_years
    residual_share = 1.0 - (horizon_years - last) / lifetime_years
    residual_pv = residual_share * d**-horizon_years
    return capex * (invest_pv - residual_pv) + opex * annuity_factor(rate, horizon_years)


def affordable_tariff(
    income_monthly: np.ndarray,
    household_size: np.ndarray,
    *,
    share: float,
    list_tariff: float,
) -> np.ndarray:
    """Monthly tariff a household can afford, capped at the list tariff [CNY/month].

    The cap is ``share`` of household income (A4AI "1 for 2" and Broadband Commission target 2:
    entry broadband at most 2% of monthly income).

    Parameters
    ----------
    income_monthly : array_like
        Income per person per month [CNY].
    household_size : array_like
        Persons per household.
    share : float
        Maximum share of household income.
    list_tariff : float
        The operator's list price [CNY/month].
    """
    cap = share * np.asarray(income_monthly, float) * np.asarray(household_size, float)
    return np.minimum(cap, list_tariff)


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
    opex = fib["opex_cny_per_year"] + fib["opex_cny_per_km_year"] * km
    life = fib["lifetime_years"]
    return (
        capex,
        npv(capex, 0.0, rate=rate, horizon_years=horizon, lifetime_years=life),
        npv(0.0, opex, rate=rate, horizon_years=horizon, lifetime_years=life),
    )


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Technology catalog: one dict of parameters per technology, plus metadata."""

    technologies: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, tech: str) -> dict[str, Any]:
        return self.technologies[tech]


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a technology catalog (TOML, or CSV with one row per technology).

    Parameters
    ----------
    path : path-like, optional
        Defaults to the bundled ``data/technologies.toml``.

    Raises
    ------
    InputDataError
        A technology, a key or a source is missing, or a number is negative.
    """
    path = Path(path) if path is not None else DEFAULT_CATALOG
    if not path.exists():
        raise InputDataError(f"{path}: technology catalog not found.")
    problems: list[str] = []
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(path, encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputDataError(
                f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8."
            ) from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputDataError(f"{path}: could not be read as CSV ({exc}).") from exc
        if "technology" not in df.columns:
            raise InputDataError(f"{path}: a CSV catalog needs a 'technology' column.")
        techs = {
            str(r["technology"]): {k: _parse_cell(v) for k, v in r.items() if k != "technology"}
            for _, r in df.iterrows()
        }
        meta: dict[str, Any] = {}
    else:
        cfg = read_toml(path)
        techs = cfg.get("technology", {})
        meta = cfg.get("meta", {})
    for tech, entry in list(techs.items()):
        if not isinstance(entry, dict):
            problems.append(
                f"{path}: technology '{tech}' is a value ({entry!r}); it must be a table "
                f"[technology.{tech}] of keys with units."
            )
            del techs[tech]
    for tech, keys in _REQUIRED_KEYS.items():
        if tech not in techs:
            problems.append(
                f"{path}: technology '{tech}' missing; add a [technology.{tech}] table."
            )
            continue
        missing = [k for k in keys if k not in techs[tech] or techs[tech][k] in ("", None)]
        if missing:
            problems.append(
                f"{path}, technology '{tech}': missing {missing}. Every cost needs a value with "
                "its unit in the key name (e.g. capex_cny, opex_cny_per_year) and a source."
            )
        for k, v in techs[tech].items():
            if k in _TEXT_KEYS:
                continue
            if k.startswith("needs_"):
                if not isinstance(v, bool):
                    problems.append(
                        f"{path}, technology '{tech}': {k} must be true or false; got {v!r}."
                    )
                continue
            vals = v if isinstance(v, list) else [v]
            bad = [x for x in vals if isinstance(x, bool) or not _is_number(x)]
            if bad:
                problems.append(
                    f"{path}, technology '{tech}': {k} must be a number; got {bad[0]!r}. Write "
                    "the value in the unit its key names, without text."
                )
            elif any(float(x) < 0 for x in vals):
                problems.append(f"{path}, technology '{tech}': {k} must be >= 0 (got {v}).")
        life = techs[tech].get("lifetime_years")
        if _is_number(life) and float(life) <= 0:
            problems.append(
                f"{path}, technology '{tech}': lifetime_years must be > 0 (got {life}); an "
                "asset lasts at least a year."
            )
    for k in ("currency", "list_tariff_cny_per_month"):
        if k not in meta and path.suffix.lower() != ".csv":
            problems.append(f"{path}: [meta] needs '{k}'.")
    if meta.get("currency", "CNY") != "CNY":
        problems.append(f"{path}: [meta] currency must be CNY (got {meta['currency']!r}).")
    if problems:
        raise InputDataError(problems)
    meta.setdefault("list_tariff_cny_per_month", 50.0)
    meta.setdefault("household_size_default", 3.3)
    return Catalog(techs, meta, path)


_TEXT_KEYS = frozenset({"label", "source"})


def _is_number(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int | float | np.integer | np.floating):
        return bool(np.isfinite(x))
    return False


def _parse_cell(v: Any) -> Any:
    """A CSV cell as a number, a list of numbers (``[1, 2]``) or the text it holds."""
    if isinstance(v, str):
        t = v.strip()
        try:
            if t.startswith("[") and t.endswith("]"):
                return [float(x) for x in t.strip("[]").split(",") if x.strip()]
            return float(t)
        except ValueError:
            return v
    if isinstance(v, bool | np.bool_):
        return bool(v)
    return v


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass
class Options:
    """Everything ``build_options`` produces: the optimizer's input and the evidence behind it.

    Attributes
    ----------
    table : pandas.DataFrame
        Long format, one row per village x option: ``village_id``, ``option_id``, ``technology``,
        ``site_id`` ("" when not shared), ``cost`` (NPV [CNY]), ``capex``, ``opex_npv``,
        ``net_cost`` (cost minus NPV of revenue at the affordable tariff [CNY]), ``subsidy``
        (net cost floored at 0 [CNY]), ``quality``, ``weight``, ``district_id``,
        ``counts_as_covered``, ``detail`` (route length, hop length, serving site...).
    sites : pandas.DataFrame
        Shared candidate sites: ``site_id``, ``kind`` (tower/village/hilltop), ``x``, ``y``,
        ``cost`` (NPV [CNY] incl. backhaul and power), ``capex``, ``backhaul``.
    villages : geopandas.GeoDataFrame
        Villages with terrain and demand attributes (``elevation_m``, ``slope_deg``,
        ``tariff_cny_per_month``, ``revenue_npv``, ``fiber_route_km``...).
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
            ["technology", "site_id", "cost", "net_cost", "quality"]
        ].to_xarray()
        return ds.rename({"village_id": "village", "slot": "option"})


def _coverage_weights(villages: pd.DataFrame, basis: str) -> np.ndarray:
    if basis == "villages":
        return villages["weight"].to_numpy(float)
    return villages["population"].to_numpy(float) * villages["weight"].to_numpy(float)


def build_options(
    region: Region,
    policy: PolicyConfig | None = None,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
) -> Options:
    """Cost every feasible option for every village of ``region``.

    Steps: terrain attributes at villages; the fiber route graph and each village's cheapest
    route to a point of presence; candidate 4G sites (existing towers, hilltops, villages) with
    their coverage over the DEM and their backhaul; microwave hops from PoPs and towers;
    satellite everywhere; then NPV cost, revenue at the affordable tariff and subsidy.

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
    v = region.villages.copy()
    vx, vy = v.geometry.x.to_numpy(), v.geometry.y.to_numpy()
    dem = region.dem
    slope = terrain.slope_deg(dem)
    v["elevation_m"] = terrain.sample(dem, vx, vy)
    v["slope_deg"] = terrain.sample(slope, vx, vy)

    # demand and revenue -------------------------------------------------------------------
    hh = v["households"].to_numpy(float)
    hh_size = np.where(
        hh > 0,
        v["population"].to_numpy(float) / np.maximum(hh, 1),
        catalog.meta["household_size_default"],
    )
    tariff = affordable_tariff(
        v["income_monthly"].to_numpy(float),
        hh_size,
        share=policy.affordability_share,
        list_tariff=float(catalog.meta["list_tariff_cny_per_month"]),
    )
    subscribers = hh * policy.take_up
    v["tariff_cny_per_month"] = tariff
    v["revenue_npv"] = (
        tariff * 12.0 * subscribers * policy.revenue_margin * annuity_factor(rate, horizon)
    )
    weight = _coverage_weights(v, policy.coverage_basis)
    v["coverage_weight"] = weight
    electrified = v["electrified"].to_numpy(bool)

    rows: list[pd.DataFrame] = []
    ids = v["village_id"].to_numpy()
    covered_now = v["existing_service"].isin(BROADBAND_LEVELS).to_numpy()
    if policy.existing_counts and covered_now.any():
        rows.append(
            pd.DataFrame(
                {
                    "village_id": ids[covered_now],
                    "option_id": "existing",
                    "technology": "existing",
                    "site_id": "",
                    "capex": 0.0,
                    "opex_npv": 0.0,
                    "quality": 3,
                    "detail": "broadband today: "
                    + v["existing_service"].to_numpy()[covered_now].astype(str),
                }
            )
        )
    todo = ~covered_now if policy.existing_counts else np.ones(len(v), bool)

    # fiber -------------------------------------------------------------------------------
    fib = catalog["fiber"]
    nodes = pd.concat(
        [
            pd.DataFrame({"node_id": "v:" + v["village_id"], "kind": "village", "x": vx, "y": vy}),
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
    roads = region.roads if len(region.roads) else None
    G = network.route_graph(nodes, dem, roads=roads, crs=region.crs)
    routes = network.nearest_pop_routes(G).set_index("node_id")
    key = "v:" + v["village_id"]
    route_w_km = routes["weighted_length_m"].reindex(key).to_numpy(float) / 1000.0
    route_km = routes["length_m"].reindex(key).to_numpy(float) / 1000.0
    v["fiber_route_km"] = route_km
    v["fiber_route_weighted_km"] = route_w_km
    ok = todo & np.isfinite(route_km) & (route_km <= fib["max_route_km"])
    capex, capex_npv, opex_npv = fiber_cost(route_w_km[ok], route_km[ok], fib, rate, horizon)
    rows.append(
        pd.DataFrame(
            {
                "village_id": ids[ok],
                "option_id": "fiber",
                "technology": "fiber",
                "site_id": "",
                "capex": capex,
                "capex_npv": capex_npv,
                "opex_npv": opex_npv,
                "quality": int(fib["quality"]),
                "detail": [
                    f"route {a:.1f} km ({b:.1f} km flat-equivalent)"
                    for a, b in zip(route_km[ok], route_w_km[ok], strict=True)
                ],
            }
        )
    )

    # microwave from PoPs and towers (a hop per village) -----------------------------------
    mw = catalog["microwave"]
    hubs = _hubs(region)
    mw_rows = _microwave_options(dem, v[todo], hubs, mw, rate, horizon, radio_cfg)
    if len(mw_rows):
        rows.append(mw_rows)

    # 4G from shared candidate sites ---------------------------------------------------------
    lte = catalog["lte"]
    sites = _candidate_sites(region, dem, radio_cfg)
    budget = radio.LinkBudget(
        frequency_mhz=float(lte["frequency_mhz"]),
        site_height_m=radio_cfg.site_height_m,
        village_height_m=radio_cfg.village_height_m,
        max_range_m=radio_cfg.max_range_m,
        k_factor=radio_cfg.k_factor,
    )
    vt = v[todo]
    cov = radio.coverage_matrix(
        dem,
        sites["x"].to_numpy(),
        sites["y"].to_numpy(),
        sites["height_m"].to_numpy(),
        vt.geometry.x.to_numpy(),
        vt.geometry.y.to_numpy(),
        site_ids=sites["site_id"].to_numpy(),
        village_ids=vt["village_id"].to_numpy(),
        budget=budget,
    )
    if radio_cfg.fresnel_fraction > 0 and len(cov):
        cov = cov[cov["clearance_ratio"] >= radio_cfg.fresnel_fraction]
    cov = cov[cov["covered"]].copy()
    # a site co-located with a village covers it
    sites = _site_costs(sites, G, region, dem, catalog, rate, horizon, radio_cfg)
    sites = sites[np.isfinite(sites["cost"])].reset_index(drop=True)
    cov = cov[cov["site_id"].isin(set(sites["site_id"]))]
    if len(cov):
        rows.append(
            pd.DataFrame(
                {
                    "village_id": cov["village_id"].to_numpy(),
                    "option_id": "lte@" + cov["site_id"].astype(str).to_numpy(),
                    "technology": "lte",
                    "site_id": cov["site_id"].astype(str).to_numpy(),
                    "capex": float(lte["capex_cny"]),
                    "opex_npv": float(
                        npv(
                            0.0,
                            lte["opex_cny_per_year"],
                            rate=rate,
                            horizon_years=horizon,
                            lifetime_years=lte["lifetime_years"],
                        )
                    ),
                    "capex_npv": float(
                        npv(
                            lte["capex_cny"],
                            0.0,
                            rate=rate,
                            horizon_years=horizon,
                            lifetime_years=lte["lifetime_years"],
                        )
                    ),
                    "quality": int(lte["quality"]),
                    "detail": [
                        f"{d / 1000:.1f} km from site, rx {p:.0f} dBm"
                        for d, p in zip(cov["distance_m"], cov["rx_dbm"], strict=True)
                    ],
                }
            )
        )

    # satellite everywhere -------------------------------------------------------------------
    sat = catalog["satellite"]
    sat_capex = sat["capex_cny"] + np.where(electrified, 0.0, sat["solar_capex_cny"])
    sat_opex = (
        sat["opex_cny_per_year"] + 12 * sat["capacity_mbps"] * sat["capacity_cny_per_mbps_month"]
    )
    rows.append(
        pd.DataFrame(
            {
                "village_id": ids[todo],
                "option_id": "satellite",
                "technology": "satellite",
                "site_id": "",
                "capex": sat_capex[todo],
                "capex_npv": npv(
                    sat_capex[todo],
                    0.0,
                    rate=rate,
                    horizon_years=horizon,
                    lifetime_years=sat["lifetime_years"],
                ),
                "opex_npv": float(
                    npv(
                        0.0,
                        sat_opex,
                        rate=rate,
                        horizon_years=horizon,
                        lifetime_years=sat["lifetime_years"],
                    )
                ),
                "quality": int(sat["quality"]),
                "detail": "GEO VSAT",
            }
        )
    )

    table = pd.concat(rows, ignore_index=True)
    table["capex_npv"] = table["capex_npv"].fillna(0.0)
    table["cost"] = table["capex_npv"] + table["opex_npv"]
    vi = v.set_index("village_id")
    table["district_id"] = vi["district_id"].reindex(table["village_id"]).to_numpy()
    table["weight"] = vi["coverage_weight"].reindex(table["village_id"]).to_numpy()
    revenue = vi["revenue_npv"].reindex(table["village_id"]).to_numpy()
    table["net_cost"] = table["cost"] - revenue
    table["subsidy"] = np.maximum(table["net_cost"], 0.0)
    table["counts_as_covered"] = table["quality"] >= policy.min_quality
    table = table.sort_values(["village_id", "option_id"], kind="stable").reset_index(drop=True)
    cols = [
        "village_id",
        "option_id",
        "technology",
        "site_id",
        "cost",
        "capex",
        "capex_npv",
        "opex_npv",
        "net_cost",
        "subsidy",
        "quality",
        "weight",
        "district_id",
        "counts_as_covered",
        "detail",
    ]
    return Options(
        table[cols],
        sites,
        v,
        cov.reset_index(drop=True),
        G,
        params={"discount_rate": rate, "horizon_years": horizon},
    )


def _hubs(region: Region) -> pd.DataFrame:
    """Microwave hub candidates: fiber PoPs (hub height 30 m assumed) and existing towers."""
    p = pd.DataFrame(
        {
            "hub_id": "p:" + region.pops["pop_id"],
            "x": region.pops.geometry.x.to_numpy(),
            "y": region.pops.geometry.y.to_numpy(),
            "height_m": 30.0,
        }
    )
    t = region.towers
    if len(t):
        p = pd.concat(
            [
                p,
                pd.DataFrame(
                    {
                        "hub_id": "t:" + t["tower_id"],
                        "x": t.geometry.x.to_numpy(),
                        "y": t.geometry.y.to_numpy(),
                        "height_m": t["height_m"].to_numpy(float),
                    }
                ),
            ],
            ignore_index=True,
        )
    return p


def _microwave_options(
    dem: xr.DataArray,
    v: gpd.GeoDataFrame,
    hubs: pd.DataFrame,
    mw: dict[str, Any],
    rate: float,
    horizon: int,
    radio_cfg: RadioConfig,
    n_nearest: int = 3,
) -> pd.DataFrame:
    """One microwave option per village: the cheapest feasible hop to one of its nearest hubs."""
    from scipy.spatial import cKDTree

    if len(v) == 0 or len(hubs) == 0:
        return pd.DataFrame()
    vx, vy = v.geometry.x.to_numpy(), v.geometry.y.to_numpy()
    tree = cKDTree(hubs[["x", "y"]].to_numpy())
    k = min(n_nearest, len(hubs))
    dist, idx = tree.query(np.c_[vx, vy], k=k, distance_upper_bound=mw["max_hop_km"] * 1000)
    dist, idx = np.atleast_2d(dist.reshape(len(v), k)), np.atleast_2d(idx.reshape(len(v), k))
    vi, kk = np.nonzero(np.isfinite(dist))
    if vi.size == 0:
        return pd.DataFrame()
    hi = idx[vi, kk]
    hop = radio.microwave_hop(
        dem,
        hubs["x"].to_numpy()[hi],
        hubs["y"].to_numpy()[hi],
        hubs["height_m"].to_numpy()[hi],
        vx[vi],
        vy[vi],
        np.full(vi.size, radio_cfg.site_height_m),
        frequency_mhz=float(mw["frequency_mhz"]),
    )
    feasible = np.array(hop["feasible"], dtype=bool)
    length_km = np.asarray(hop["distance_m"], float) / 1000.0
    classes = np.asarray(mw["hop_class_max_km"], float)
    prices = np.asarray(mw["hop_capex_cny"], float)
    cls = np.searchsorted(classes, length_km, side="left")
    feasible &= cls < classes.size
    electrified = v["electrified"].to_numpy(bool)[vi]
    capex = np.where(cls < classes.size, prices[np.minimum(cls, classes.size - 1)], np.inf)
    capex = capex + mw["capex_cny"] + np.where(electrified, 0.0, mw["solar_capex_cny"])
    df = pd.DataFrame(
        {"vi": vi, "hub": hubs["hub_id"].to_numpy()[hi], "capex": capex, "length_km": length_km}
    )[feasible]
    if df.empty:
        return pd.DataFrame()
    df = df.sort_values(["vi", "capex", "hub"]).drop_duplicates("vi")
    lt = mw["lifetime_years"]
    return pd.DataFrame(
        {
            "village_id": v["village_id"].to_numpy()[df["vi"].to_numpy()],
            "option_id": "microwave",
            "technology": "microwave",
            "site_id": "",
            "capex": df["capex"].to_numpy(),
            "capex_npv": npv(
                df["capex"].to_numpy(), 0.0, rate=rate, horizon_years=horizon, lifetime_years=lt
            ),
            "opex_npv": float(
                npv(
                    0.0,
                    mw["opex_cny_per_year"],
                    rate=rate,
                    horizon_years=horizon,
                    lifetime_years=lt,
                )
            ),
            "quality": int(mw["quality"]),
            "detail": [
                f"{d:.1f} km hop from {h}" for d, h in zip(df["length_km"], df["hub"], strict=True)
            ],
        }
    )


def _candidate_sites(region: Region, dem: xr.DataArray, radio_cfg: RadioConfig) -> pd.DataFrame:
    """Candidate 4G sites: existing towers (upgrade), hilltops and villages (new masts)."""
    parts = []
    t = region.towers
    if len(t):
        parts.append(
            pd.DataFrame(
                {
                    "site_id": "t:" + t["tower_id"],
                    "kind": "tower",
                    "x": t.geometry.x.to_numpy(),
                    "y": t.geometry.y.to_numpy(),
                    "height_m": t["height_m"].to_numpy(float),
                    "electrified": True,
                }
            )
        )
    if radio_cfg.hilltops > 0:
        h = terrain.hilltops(dem, max_n=radio_cfg.hilltops)
        if len(h):
            parts.append(
                pd.DataFrame(
                    {
                        "site_id": [f"h:{i:04d}" for i in range(len(h))],
                        "kind": "hilltop",
                        "x": h["x"].to_numpy(),
                        "y": h["y"].to_numpy(),
                        "height_m": radio_cfg.site_height_m,
                        "electrified": False,
                    }
                )
            )
    v = region.villages
    parts.append(
        pd.DataFrame(
            {
                "site_id": "v:" + v["village_id"],
                "kind": "village",
                "x": v.geometry.x.to_numpy(),
                "y": v.geometry.y.to_numpy(),
                "height_m": radio_cfg.site_height_m,
                "electrified": v["electrified"].to_numpy(bool),
            }
        )
    )
    s = pd.concat(parts, ignore_index=True)
    return s.sort_values("site_id").reset_index(drop=True)


def _site_costs(
    sites: pd.DataFrame,
    G: Any,
    region: Region,
    dem: xr.DataArray,
    catalog: Catalog,
    rate: float,
    horizon: int,
    radio_cfg: RadioConfig,
) -> pd.DataFrame:
    """NPV cost of each candidate site: mast (new or upgrade), power, opex and backhaul.

    Backhaul is the cheaper of a fiber route to the nearest PoP (flat-equivalent length from the
    route graph: the site's own node for towers' nearest village, straight spur otherwise) and a
    microwave hop to the nearest PoP with clearance.
    """
    lte, fib, mw = catalog["lte"], catalog["fiber"], catalog["microwave"]
    s = sites.copy()
    mast = np.where(s["kind"] == "tower", lte["site_upgrade_capex_cny"], lte["site_new_capex_cny"])
    solar = np.where(s["electrified"].to_numpy(bool), 0.0, lte["site_solar_capex_cny"])
    # fiber backhaul: nearest graph node's route plus a straight terrain-weighted spur
    routes = network.nearest_pop_routes(G).set_index("node_id")
    node_ids = np.array(list(G.nodes))
    nx_ = np.array([G.nodes[n]["x"] for n in node_ids])
    ny_ = np.array([G.nodes[n]["y"] for n in node_ids])
    is_v = np.char.startswith(node_ids.astype(str), "v:")
    is_p = np.char.startswith(node_ids.astype(str), "p:")
    from scipy.spatial import cKDTree

    anchor = is_v | is_p
    tree = cKDTree(np.c_[nx_[anchor], ny_[anchor]])
    d, i = tree.query(s[["x", "y"]].to_numpy())
    anchors = node_ids[anchor][i]
    base_w = routes["weighted_length_m"].reindex(anchors).to_numpy(float)
    base_w = np.where(np.char.startswith(anchors.astype(str), "p:"), 0.0, base_w)
    mult = network.trench_multiplier(
        terrain.sample(terrain.slope_deg(dem), s["x"].to_numpy(), s["y"].to_numpy()),
        terrain.sample(dem, s["x"].to_numpy(), s["y"].to_numpy()),
    )
    fiber_w_km = (base_w + d * np.nan_to_num(mult, nan=1.0)) / 1000.0
    fiber_capex = fib["capex_cny_per_km"] * fiber_w_km
    fiber_ok = fiber_w_km <= lte["site_backhaul_max_km"]
    fiber_total = np.where(fiber_ok, fiber_capex, np.inf)
    fiber_npv = npv(
        np.nan_to_num(fiber_total, posinf=0.0),
        fib["opex_cny_per_km_year"] * fiber_w_km,
        rate=rate,
        horizon_years=horizon,
        lifetime_years=fib["lifetime_years"],
    )
    fiber_npv = np.where(fiber_ok, fiber_npv, np.inf)
    # microwave backhaul to the nearest PoP
    px, py = region.pops.geometry.x.to_numpy(), region.pops.geometry.y.to_numpy()
    ptree = cKDTree(np.c_[px, py])
    pd_, pi = ptree.query(s[["x", "y"]].to_numpy())
    hop = radio.microwave_hop(
        dem,
        px[pi],
        py[pi],
        np.full(len(s), 30.0),
        s["x"].to_numpy(),
        s["y"].to_numpy(),
        s["height_m"].to_numpy(float),
        frequency_mhz=float(mw["frequency_mhz"]),
    )
    classes = np.asarray(mw["hop_class_max_km"], float)
    prices = np.asarray(mw["hop_capex_cny"], float)
    cls = np.searchsorted(classes, pd_ / 1000.0, side="left")
    mw_ok = np.asarray(hop["feasible"], bool) & (cls < classes.size)
    mw_capex = np.where(mw_ok, prices[np.minimum(cls, classes.size - 1)], 0.0)
    mw_npv = np.where(
        mw_ok,
        npv(
            mw_capex,
            mw["opex_cny_per_year"],
            rate=rate,
            horizon_years=horizon,
            lifetime_years=mw["lifetime_years"],
        ),
        np.inf,
    )
    backhaul_npv = np.minimum(fiber_npv, mw_npv)
    s["backhaul"] = np.where(fiber_npv <= mw_npv, "fiber", "microwave")
    s.loc[~np.isfinite(backhaul_npv), "backhaul"] = "none"
    site_npv = npv(
        mast + solar,
        lte["site_opex_cny_per_year"],
        rate=rate,
        horizon_years=horizon,
        lifetime_years=lte["lifetime_years"],
    )
    s["capex"] = mast + solar
    s["backhaul_npv"] = backhaul_npv
    s["cost"] = site_npv + backhaul_npv
    return s
