"""Shared sites: candidate 4G sites, microwave hubs, hop pricing, site cost with backhaul."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from . import appraisal, network, radio, terrain
from .catalog import Catalog
from .io import Region
from .schema import RadioConfig

#: Antenna height of a microwave hub at a fiber PoP, and of the PoP end of a site's microwave
#: backhaul [m]. Assumption: a PoP has a mast of this height (the region data carry no height).
POP_MAST_HEIGHT_M = 30.0


def hop_capex(length_km: np.ndarray, mw: dict[str, Any]) -> np.ndarray:
    """Radio-pair capex of microwave hops by hop-length class [CNY].

    A hop costs the price of the first class whose upper bound is >= its length.

    Parameters
    ----------
    length_km : array_like
        Hop lengths [km].
    mw : dict
        The catalog's ``microwave`` entry: ``hop_class_max_km`` (ascending upper bounds [km]) and
        ``hop_capex_cny`` (one price per class [CNY]).

    Returns
    -------
    numpy.ndarray
        Capex per hop [CNY]; ``inf`` for hops longer than the longest class.
    """
    classes = np.asarray(mw["hop_class_max_km"], float)
    prices = np.asarray(mw["hop_capex_cny"], float)
    cls = np.searchsorted(classes, np.asarray(length_km, float), side="left")
    return np.where(cls < classes.size, prices[np.minimum(cls, classes.size - 1)], np.inf)


def carrier_capacity_mbps(lte: dict[str, Any]) -> float | None:
    """Busy-hour capacity of one 4G carrier on all of a site's sectors [Mbps], or None when the
    catalog states no capacity (``spectral_efficiency_bps_per_hz`` x ``carrier_bandwidth_mhz`` x
    ``sectors``).

    Parameters
    ----------
    lte : dict
        The catalog's ``lte`` table.

    Returns
    -------
    float or None
    """
    keys = ("spectral_efficiency_bps_per_hz", "carrier_bandwidth_mhz", "sectors")
    if not all(k in lte for k in keys):
        return None
    return float(lte[keys[0]]) * float(lte[keys[1]]) * float(lte[keys[2]])


#: Tower technologies whose transmission can feed a broadband microwave hop as it stands: a 4G
#: site already has broadband backhaul. A 2G/3G mast's few Mbps (E1s, narrowband microwave)
#: cannot; a hop from one needs the mast upgraded first (:func:`hubs`).
BROADBAND_HUB_TECHNOLOGIES = frozenset({"4g"})


def hubs(region: Region) -> pd.DataFrame:
    """Microwave hub candidates: fiber PoPs (at :data:`POP_MAST_HEIGHT_M`) and existing towers.

    Backhaul is paid for every hop: a PoP and a tower with broadband backhaul
    (:data:`BROADBAND_HUB_TECHNOLOGIES`) feed a hop as they stand; any other tower feeds one only
    once it is upgraded, so its ``site_id`` names its candidate 4G site (``"t:" + tower_id`` in
    :func:`candidate_sites`), whose cost includes the broadband backhaul the hop rides on and is
    paid once however many hops use it. A towers layer without ``technology`` is taken as
    broadband.

    Parameters
    ----------
    region : Region

    Returns
    -------
    pandas.DataFrame
        ``hub_id`` ("p:" PoP or "t:" tower id), ``x``, ``y`` [m, region CRS], ``height_m`` [m],
        ``site_id`` (the site the hub needs built, "" when none).
    """
    p = pd.DataFrame(
        {
            "hub_id": "p:" + region.pops["pop_id"],
            "x": region.pops.geometry.x.to_numpy(),
            "y": region.pops.geometry.y.to_numpy(),
            "height_m": POP_MAST_HEIGHT_M,
            "site_id": "",
        }
    )
    t = region.towers
    if len(t):
        if "technology" in t:
            tech = t["technology"].astype(str).str.lower()
            broadband = tech.isin(BROADBAND_HUB_TECHNOLOGIES).to_numpy()
        else:
            broadband = np.ones(len(t), bool)
        p = pd.concat(
            [
                p,
                pd.DataFrame(
                    {
                        "hub_id": "t:" + t["tower_id"],
                        "x": t.geometry.x.to_numpy(),
                        "y": t.geometry.y.to_numpy(),
                        "height_m": t["height_m"].to_numpy(float),
                        "site_id": np.where(broadband, "", "t:" + t["tower_id"].to_numpy(str)),
                    }
                ),
            ],
            ignore_index=True,
        )
    return p


def candidate_sites(region: Region, dem: xr.DataArray, radio_cfg: RadioConfig) -> pd.DataFrame:
    """Candidate 4G sites: existing towers (upgrade), hilltops and villages (new masts).

    Parameters
    ----------
    region : Region
    dem : xarray.DataArray
        Elevation [m] on the region's grid.
    radio_cfg : RadioConfig
        ``hilltops`` (how many hilltop candidates) and ``site_height_m`` (new mast height [m]).

    Returns
    -------
    pandas.DataFrame
        ``site_id`` ("t:", "h:" or "v:" prefix), ``kind`` (tower/hilltop/village), ``x``, ``y``
        [m], ``height_m`` [m], ``electrified``; sorted by ``site_id``.
    """
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


def site_costs(
    candidates: pd.DataFrame,
    G: Any,
    routes: pd.DataFrame,
    slope: xr.DataArray,
    region: Region,
    dem: xr.DataArray,
    catalog: Catalog,
    rate: float,
    horizon: int,
) -> pd.DataFrame:
    """NPV cost of each candidate site: mast (new or upgrade), power, opex and backhaul.

    Backhaul is the cheaper of a fiber route to the nearest PoP (the route of the nearest village
    or PoP node of the route graph plus a straight terrain-weighted spur) and a microwave hop to
    the nearest PoP with clearance.

    Parameters
    ----------
    candidates : pandas.DataFrame
        From :func:`candidate_sites`.
    G : networkx.Graph
        The fiber route graph (nodes with ``x``, ``y`` [m]).
    routes : pandas.DataFrame
        :func:`universal_service.network.nearest_pop_routes` of ``G`` indexed by ``node_id``
        (``weighted_length_m`` [m]).
    slope : xarray.DataArray
        Terrain slope [degrees] on the DEM grid.
    region : Region
    dem : xarray.DataArray
        Elevation [m].
    catalog : Catalog
    rate : float
        Discount rate [1/yr].
    horizon : int
        Appraisal horizon [yr].

    Returns
    -------
    pandas.DataFrame
        ``candidates`` plus ``backhaul`` (fiber/microwave/none), ``capex`` (mast and power [CNY]),
        ``capacity_mbps`` (busy-hour capacity with every carrier [Mbps]; inf when the catalog
        states none), ``backhaul_npv`` and ``cost`` (NPV [CNY]; ``inf`` without backhaul).
    """
    lte, mw = catalog["lte"], catalog["microwave"]
    s = candidates.copy()
    mast = np.where(s["kind"] == "tower", lte["site_upgrade_capex_cny"], lte["site_new_capex_cny"])
    on_grid = s["electrified"].to_numpy(bool)
    solar = np.where(on_grid, 0.0, lte["site_solar_capex_cny"])
    # a new mast where the village has grid power is connected to it; a tower already is
    grid = np.where(
        on_grid & (s["kind"] != "tower").to_numpy(), float(lte.get("site_grid_capex_cny", 0.0)), 0.0
    )
    fiber_npv = _fiber_backhaul_npv(s, G, routes, slope, dem, catalog, rate, horizon)
    # microwave backhaul to the nearest PoP
    px, py = region.pops.geometry.x.to_numpy(), region.pops.geometry.y.to_numpy()
    pop_dist_m, pi = cKDTree(np.c_[px, py]).query(s[["x", "y"]].to_numpy())
    hop = radio.microwave_hop(
        dem,
        px[pi],
        py[pi],
        np.full(len(s), POP_MAST_HEIGHT_M),
        s["x"].to_numpy(),
        s["y"].to_numpy(),
        s["height_m"].to_numpy(float),
        frequency_mhz=float(mw["frequency_mhz"]),
    )
    radio_capex = hop_capex(pop_dist_m / 1000.0, mw)
    mw_ok = np.asarray(hop["feasible"], bool) & np.isfinite(radio_capex)
    mw_capex = np.where(mw_ok, radio_capex, 0.0)
    mw_npv = np.where(
        mw_ok,
        appraisal.npv(
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
    site_npv = site_npv_by_component(s["kind"].to_numpy(), mast, solar, lte, rate, horizon, grid)
    s["capex"] = mast + solar + grid
    carrier = carrier_capacity_mbps(lte)
    s["capacity_mbps"] = np.inf if carrier is None else carrier * float(lte["max_carriers"])
    s["backhaul_npv"] = backhaul_npv
    s["cost"] = site_npv + backhaul_npv
    return s


def site_npv_by_component(
    kind: np.ndarray,
    mast_capex: np.ndarray,
    solar_capex: np.ndarray,
    lte: dict[str, Any],
    rate: float,
    horizon: int,
    grid_capex: np.ndarray | None = None,
) -> np.ndarray:
    """NPV of a 4G site's own cost, each component re-bought at the end of its own life [CNY].

    A new mast's capex splits into the structure (tower, shelter, civil works: the catalog's
    ``site_structure_share``, life ``site_structure_lifetime_years``) and the radio equipment
    (the rest, life ``lifetime_years``); a site on an existing tower buys equipment only; the
    off-grid power system has life ``site_power_lifetime_years``; a grid connection lasts as
    long as the structure; the site's opex runs every year. A catalog without these keys keeps
    one life for the whole site.

    Parameters
    ----------
    kind : numpy.ndarray of str
        ``"tower"`` (an existing tower, upgraded) or another candidate kind (a new mast).
    mast_capex, solar_capex : numpy.ndarray
        Capex of the mast (or upgrade) and of its solar power [CNY].
    grid_capex : numpy.ndarray, optional
        Capex of the connection to grid power [CNY] (none by default).
    lte : dict
        The catalog's ``lte`` entry.
    rate, horizon : float, int
        Discount rate [1/yr] and appraisal horizon [yr].
    """
    life = lte["lifetime_years"]
    share = np.where(np.asarray(kind) == "tower", 0.0, lte.get("site_structure_share", 0.0))
    structure = np.asarray(mast_capex, float) * share
    equipment = np.asarray(mast_capex, float) - structure
    kw = {"rate": rate, "horizon_years": horizon}
    return (
        appraisal.npv(
            structure, 0.0, lifetime_years=lte.get("site_structure_lifetime_years", life), **kw
        )
        + appraisal.npv(equipment, lte["site_opex_cny_per_year"], lifetime_years=life, **kw)
        + appraisal.npv(
            solar_capex, 0.0, lifetime_years=lte.get("site_power_lifetime_years", life), **kw
        )
        + appraisal.npv(
            0.0 if grid_capex is None else np.asarray(grid_capex, float),
            0.0,
            lifetime_years=lte.get("site_structure_lifetime_years", life),
            **kw,
        )
    )


def _fiber_backhaul_npv(
    s: pd.DataFrame,
    G: Any,
    routes: pd.DataFrame,
    slope: xr.DataArray,
    dem: xr.DataArray,
    catalog: Catalog,
    rate: float,
    horizon: int,
) -> np.ndarray:
    """NPV of each site's fiber backhaul [CNY]: ``inf`` beyond the LTE backhaul reach."""
    lte, fib = catalog["lte"], catalog["fiber"]
    node_ids = np.array(list(G.nodes))
    nx_ = np.array([G.nodes[n]["x"] for n in node_ids])
    ny_ = np.array([G.nodes[n]["y"] for n in node_ids])
    is_v = np.char.startswith(node_ids.astype(str), "v:")
    is_p = np.char.startswith(node_ids.astype(str), "p:")
    anchor = is_v | is_p
    d, i = cKDTree(np.c_[nx_[anchor], ny_[anchor]]).query(s[["x", "y"]].to_numpy())
    anchors = node_ids[anchor][i]
    base_w = routes["weighted_length_m"].reindex(anchors).to_numpy(float)
    base_w = np.where(np.char.startswith(anchors.astype(str), "p:"), 0.0, base_w)
    sx, sy = s["x"].to_numpy(), s["y"].to_numpy()
    mult = network.fiber_multiplier(
        terrain.sample(slope, sx, sy), terrain.sample(dem, sx, sy), network.terrain_costs(fib)
    )
    fiber_w_km = (base_w + d * np.nan_to_num(mult, nan=1.0)) / 1000.0
    fiber_capex = fib["capex_cny_per_km"] * fiber_w_km
    fiber_ok = fiber_w_km <= lte["site_backhaul_max_km"]
    fiber_total = np.where(fiber_ok, fiber_capex, np.inf)
    fiber_npv = appraisal.npv(
        np.nan_to_num(fiber_total, posinf=0.0),
        fib["opex_cny_per_km_year"] * fiber_w_km,
        rate=rate,
        horizon_years=horizon,
        lifetime_years=fib["lifetime_years"],
    )
    return np.where(fiber_ok, fiber_npv, np.inf)


def microwave_options(
    dem: xr.DataArray,
    v: gpd.GeoDataFrame,
    hubs: pd.DataFrame,
    mw: dict[str, Any],
    rate: float,
    horizon: int,
    radio_cfg: RadioConfig,
    n_nearest: int = 3,
) -> pd.DataFrame:
    """Microwave options: hops from each village to its nearest hubs (:func:`hubs`).

    Per village, one option ``microwave`` (the cheapest feasible hop from a hub whose backhaul
    is already broadband) and one ``microwave@<site_id>`` per nearby hub that needs its site
    built first (the option carries that ``site_id``, so the site and its backhaul are paid once
    in the plan however many hops use it).

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m] for the hops' path profiles.
    v : geopandas.GeoDataFrame
        Villages to serve: metric points, ``village_id``, ``electrified``.
    hubs : pandas.DataFrame
        :func:`hubs` of the region.
    mw : dict
        The catalog's ``microwave`` entry (prices [CNY], hop range [km]).
    rate : float
        Discount rate [-/year].
    horizon : int
        Appraisal horizon [years].
    radio_cfg : RadioConfig
        Antenna heights and the path-clearance test.
    n_nearest : int
        Hubs tried per village.

    Returns
    -------
    pandas.DataFrame
        Option rows (money in CNY, NPV at ``rate``); empty when there is no village or hub.
    """
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
    length_km = np.asarray(hop["distance_m"], float) / 1000.0
    radio_capex = hop_capex(length_km, mw)
    feasible = np.array(hop["feasible"], dtype=bool) & np.isfinite(radio_capex)
    electrified = v["electrified"].to_numpy(bool)[vi]
    capex = radio_capex + mw["capex_cny"] + np.where(electrified, 0.0, mw["solar_capex_cny"])
    hub_site = hubs["site_id"].to_numpy(str) if "site_id" in hubs else np.full(len(hubs), "")
    df = pd.DataFrame(
        {
            "vi": vi,
            "hub": hubs["hub_id"].to_numpy()[hi],
            "site": hub_site[hi],
            "capex": capex,
            "length_km": length_km,
        }
    )[feasible]
    if df.empty:
        return pd.DataFrame()
    df = df.sort_values(["vi", "site", "capex", "hub"]).drop_duplicates(["vi", "site"])
    lt = mw["lifetime_years"]
    site = df["site"].to_numpy(str)
    return pd.DataFrame(
        {
            "village_id": v["village_id"].to_numpy()[df["vi"].to_numpy()],
            "option_id": np.where(site == "", "microwave", np.char.add("microwave@", site)),
            "technology": "microwave",
            "site_id": site,
            "capex": df["capex"].to_numpy(),
            "opex_per_year": float(mw["opex_cny_per_year"]),
            "capex_npv": appraisal.npv(
                df["capex"].to_numpy(), 0.0, rate=rate, horizon_years=horizon, lifetime_years=lt
            ),
            "opex_npv": float(
                appraisal.npv(
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
