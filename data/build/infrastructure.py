"""What is built: towers, points of presence, existing service, expressways, operators."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from universal_service import baseline
from universal_service.buildrules import (
    NO_SERVICE_SHARE,
    POP_TOWNSHIP_PROBABILITY,
    SEAT_TECHNOLOGY,
    TOWER_HEIGHT_SEAT_M,
    VILLAGE_TOWER_3G_PROBABILITY,
    VILLAGE_TOWER_HEIGHT_M,
)
from universal_service.io import Region
from universal_service.schema import RadioConfig

from . import region

#: Tower rule (assumptions): height of expressway masts [m] and their spacing [m]; the shared
#: rules (baseline year, seat technology and height, no-service share, 3G share, village mast
#: height, PoP probabilities) are stated once, in :mod:`universal_service.buildrules`.
TOWER_HEIGHT_EXPRESSWAY_M = 40.0
EXPRESSWAY_TOWER_SPACING_M = 8_000.0
#: Share of rural administrative villages with fiber in 2015 [-]: Guizhou's central pilots fibered
#: about 8,900 administrative villages in 2016-2017 and reached "basically all" by end-2017
#: (Guizhou Communications Administration via Guizhou Daily, 2017-08-28), out of the 13,438 rural
#: village-level units of the NBS 2016 codes (../shared/data/china-admin): 1 - 8,900 / 13,438.
#: Range 0.25-0.45 (villages fibered outside the pilots, and merged villages, move it).
FIBER_SHARE_RURAL = 1.0 - 8_900 / 13_438
#: Village towers stand on the highest DEM cell within this radius of the village [m]
#: (assumption: the nearest high ground, within a short access road).
VILLAGE_TOWER_SEARCH_M = 1_000.0
#: Township seats within this distance of their county seat are served by the county seat's
#: towers and PoPs and get none of their own [m] (assumption: the same town).
SEAT_MERGE_RADIUS_M = 2_000.0
#: Operators, 2016 annual reports. Revenue and net profit [CNY]: China Mobile 708.4 bn and
#: 108.7 bn; China Telecom 352.3 bn and 18.0 bn; China Unicom 274.2 bn and 0.63 bn (shared data
#: README; China Mobile / China Telecom / China Unicom investor-relations FAQs for 2016).
#: Mobile subscribers, end-2016 [million]: China Mobile 849 (chinamobileltd.com IR FAQ), China
#: Telecom 215 (chinatelecom-h.com IR FAQ, "16.2% market share"), China Unicom 263.82
#: (chinaunicom.com.hk IR FAQ). National shares: no Guizhou split is public.
OPERATORS = (
    {
        "operator_id": "cmcc",
        "name": "China Mobile",
        "revenue_cny": 708.4e9,
        "profit_cny": 108.7e9,
        "subscribers_m": 849.0,
        "technologies": "fiber;microwave;4g",
    },
    {
        "operator_id": "ct",
        "name": "China Telecom",
        "revenue_cny": 352.3e9,
        "profit_cny": 18.0e9,
        "subscribers_m": 215.0,
        # China Telecom launched the Tiantong satellite phone service in 2016.
        "technologies": "fiber;microwave;4g;satellite",
    },
    {
        "operator_id": "cu",
        "name": "China Unicom",
        "revenue_cny": 274.2e9,
        "profit_cny": 0.63e9,
        "subscribers_m": 263.82,
        "technologies": "fiber;microwave;4g",
    },
)


def _draw_operators(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` operator ids with probability equal to the mobile subscriber share."""
    ids = np.array([o["operator_id"] for o in OPERATORS])
    share = np.array([o["subscribers_m"] for o in OPERATORS])
    return rng.choice(ids, size=n, p=share / share.sum())


def _sample_lines(lines: gpd.GeoSeries, step_m: float) -> np.ndarray:
    """Points every ``step_m`` along each line (metric CRS), as an (n, 2) array. [m]"""
    pts = []
    for line in lines:
        for part in shapely.get_parts(line):
            dist = np.arange(0.0, part.length, step_m)
            pts.append(shapely.get_coordinates(shapely.line_interpolate_point(part, dist)))
    return np.vstack(pts) if pts else np.zeros((0, 2))


def derive_towers(
    county_seats: gpd.GeoDataFrame,
    seats: gpd.GeoDataFrame,
    roads_utm: gpd.GeoDataFrame,
    seed: int = region.SEED,
) -> gpd.GeoDataFrame:
    """Existing mobile towers by rule (no public tower layer exists for the area).

    * Each county seat: one tower per operator (``4g``, 35 m).
    * Each township seat more than 2 km from its county seat: one tower (``4g``, 35 m), operator
      drawn by mobile subscriber share.
    * Expressway corridors: points every 500 m along the OSM motorways, thinned greedily in road
      order to at least ``EXPRESSWAY_TOWER_SPACING_M`` from each other and from the seat towers,
      one tower each (``4g``, 40 m), operator drawn by share.

    Parameters
    ----------
    county_seats : geopandas.GeoDataFrame
        ``district_id``, ``name``, metric points.
    seats : geopandas.GeoDataFrame
        Township seats (:func:`places.township_seats`), metric points.
    roads_utm : geopandas.GeoDataFrame
        Expressway lines in the metric CRS.
    seed : int
        Base seed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``tower_id``, ``operator_id``, ``height_m``, ``technology``, ``source``, metric points.
    """
    rng = np.random.default_rng([seed, region.STREAM_TOWERS])
    rows = [
        (
            f"t-{cs.district_id}-{op['operator_id']}",
            op["operator_id"],
            TOWER_HEIGHT_SEAT_M,
            cs.geometry,
        )
        for cs in county_seats.itertuples()
        for op in OPERATORS
    ]
    cs_geom = dict(zip(county_seats["district_id"], county_seats.geometry, strict=True))
    far = [
        s
        for s in seats.sort_values("town_id").itertuples()
        if s.geometry.distance(cs_geom[s.district_id]) > SEAT_MERGE_RADIUS_M
    ]
    for s, op in zip(far, _draw_operators(len(far), rng), strict=True):
        rows.append((f"t-{s.town_id}", str(op), TOWER_HEIGHT_SEAT_M, s.geometry))
    kept = shapely.get_coordinates([r[3] for r in rows])
    corridor = []
    for x, y in _sample_lines(roads_utm.geometry, 500.0):
        if np.min(np.hypot(kept[:, 0] - x, kept[:, 1] - y)) >= EXPRESSWAY_TOWER_SPACING_M:
            kept = np.vstack([kept, [x, y]])
            corridor.append(shapely.Point(x, y))
    for i, (point, op) in enumerate(
        zip(corridor, _draw_operators(len(corridor), rng), strict=True)
    ):
        rows.append((f"t-exp-{i + 1:03d}", str(op), TOWER_HEIGHT_EXPRESSWAY_M, point))
    df = pd.DataFrame(rows, columns=["tower_id", "operator_id", "height_m", "geometry"])
    df["technology"] = SEAT_TECHNOLOGY
    df["source"] = "derived"
    return gpd.GeoDataFrame(df, geometry="geometry", crs=region.METRIC_CRS)


def village_tower_candidates(the_region: Region, rural: np.ndarray) -> pd.DataFrame:
    """One candidate mast per village asked for: the highest DEM cell within the search radius.

    Parameters
    ----------
    the_region : universal_service.io.Region
        The region as loaded (villages and DEM in the metric CRS).
    rural : numpy.ndarray of bool
        Which villages get a candidate (all of them, in the build).

    Returns
    -------
    pandas.DataFrame
        ``site_id`` (``vt-`` + village id), ``village_id``, ``x``, ``y`` [m], ``height_m`` [m].
    """
    dem = the_region.dem
    z = dem.to_numpy()
    xs, ys = dem["x"].to_numpy(), dem["y"].to_numpy()
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    r = int(np.ceil(VILLAGE_TOWER_SEARCH_M / abs(dx)))
    v = the_region.villages[rural]
    rows = []
    for vid, pt in zip(v["village_id"], v.geometry, strict=True):
        i = int(round((pt.y - ys[0]) / dy))
        j = int(round((pt.x - xs[0]) / dx))
        i0, j0 = max(i - r, 0), max(j - r, 0)
        win = z[i0 : i + r + 1, j0 : j + r + 1]
        ii, jj = np.meshgrid(
            np.arange(win.shape[0]) + i0, np.arange(win.shape[1]) + j0, indexing="ij"
        )
        dist = np.hypot((ii - i) * dy, (jj - j) * dx)
        masked = np.where((dist <= VILLAGE_TOWER_SEARCH_M) & np.isfinite(win), win, -np.inf)
        k = np.unravel_index(int(np.argmax(masked)), masked.shape)
        rows.append((f"vt-{vid}", vid, xs[j0 + k[1]], ys[i0 + k[0]]))
    df = pd.DataFrame(rows, columns=["site_id", "village_id", "x", "y"])
    df["height_m"] = VILLAGE_TOWER_HEIGHT_M
    return df


def village_towers(
    the_region: Region, radio_cfg: RadioConfig | None = None, seed: int = region.SEED
) -> gpd.GeoDataFrame:
    """Village towers (2G/3G) by the rule of the village-telephone programme, until the target.

    Greedy set cover: starting from the coverage of the region's towers under the plan's radio
    test (:func:`universal_service.baseline.tower_coverage`), add the candidate mast
    (:func:`village_tower_candidates`) that covers the most urban units not yet covered, then the
    most villages not yet covered (ties: more population, then the lower id) until at most ``NO_SERVICE_SHARE`` of the rural villages
    and none of the urban units are uncovered. Each tower's operator is drawn by subscriber share and its technology is
    ``3g`` with probability ``VILLAGE_TOWER_3G_PROBABILITY``, else ``2g``.

    Parameters
    ----------
    the_region : universal_service.io.Region
        The region with its seat and corridor towers.
    radio_cfg : RadioConfig, optional
        The plan's default link budget.
    seed : int
        Base seed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``tower_id``, ``operator_id``, ``height_m``, ``technology``, ``source``, metric points.
    """
    v = the_region.villages
    rural = v["ur_code"].isin((210, 220)).to_numpy()
    index = {vid: i for i, vid in enumerate(v["village_id"])}
    pop = v["population"].to_numpy(float)
    covered = np.zeros(len(v), bool)
    existing = baseline.tower_coverage(the_region, radio_cfg=radio_cfg)
    covered[[index[x] for x in existing["village_id"]]] = True
    cand = village_tower_candidates(the_region, np.ones(len(v), bool))
    cov = baseline.tower_coverage(the_region, towers=cand, radio_cfg=radio_cfg)
    sets = {
        sid: np.array([index[x] for x in g["village_id"]], dtype=int)
        for sid, g in cov.groupby("site_id", sort=True)
    }
    n_rural = int(rural.sum())
    chosen: list[str] = []

    def short() -> bool:
        return (rural & ~covered).sum() > NO_SERVICE_SHARE * n_rural or (~rural & ~covered).any()

    while short() and sets:
        best, best_key = None, None
        for sid, idx in sets.items():
            new = idx[~covered[idx]]
            key = (int((~rural[new]).sum()), new.size, pop[new].sum())
            if new.size and (best_key is None or key > best_key):
                best, best_key = sid, key
        if best is None:
            break
        covered[sets.pop(best)] = True
        chosen.append(best)
    rng = np.random.default_rng([seed, region.STREAM_VILLAGE_TOWERS])
    picked = cand.set_index("site_id").loc[sorted(chosen)]
    ops = _draw_operators(len(picked), rng)
    tech = np.where(rng.uniform(size=len(picked)) < VILLAGE_TOWER_3G_PROBABILITY, "3g", "2g")
    df = pd.DataFrame(
        {
            "tower_id": ["t-v" + s.removeprefix("vt-") for s in picked.index],
            "operator_id": ops.astype(str),
            "height_m": picked["height_m"].to_numpy(float),
            "technology": tech,
            "source": "derived",
        }
    )
    geom = gpd.points_from_xy(picked["x"], picked["y"])
    return gpd.GeoDataFrame(df, geometry=geom, crs=the_region.crs)


def derive_pops(
    county_seats: gpd.GeoDataFrame, seats: gpd.GeoDataFrame, seed: int = region.SEED
) -> gpd.GeoDataFrame:
    """Fiber points of presence by rule (no public layer exists for the area).

    Every operator has a PoP at every county seat. At each township seat farther than
    ``SEAT_MERGE_RADIUS_M`` from its county seat, operator ``o`` has a PoP with probability
    ``POP_TOWNSHIP_PROBABILITY[o]`` (China Telecom always), drawn in town-code order.

    Parameters
    ----------
    county_seats : geopandas.GeoDataFrame
        ``district_id``, ``name``, metric points.
    seats : geopandas.GeoDataFrame
        Township seats, metric points.
    seed : int
        Base seed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``pop_id``, ``operator_id``, ``kind``, ``name``, ``source``, metric points.
    """
    rng = np.random.default_rng([seed, region.STREAM_POPS])
    rows = []
    for cs in county_seats.itertuples():
        for op in OPERATORS:
            oid = op["operator_id"]
            rows.append((f"{oid}-{cs.district_id}", oid, "county_seat", cs.name, cs.geometry))
    cs_xy = {cs.district_id: cs.geometry for cs in county_seats.itertuples()}
    for s in seats.sort_values("town_id").itertuples():
        near = s.geometry.distance(cs_xy[s.district_id]) <= SEAT_MERGE_RADIUS_M
        draws = rng.uniform(size=len(OPERATORS))
        if near:
            continue
        for op, u in zip(OPERATORS, draws, strict=True):
            oid = op["operator_id"]
            if u < POP_TOWNSHIP_PROBABILITY[oid]:
                rows.append((f"{oid}-{s.town_id}", oid, "township_seat", s.name, s.geometry))
    df = pd.DataFrame(rows, columns=["pop_id", "operator_id", "kind", "name", "geometry"])
    df["source"] = "derived"
    return gpd.GeoDataFrame(df, geometry="geometry", crs=region.METRIC_CRS)


def existing_service(the_region: Region) -> tuple[np.ndarray, float]:
    """The service each village had at end-2015: what the network provides, fiber calibrated.

    The fiber reach is set so that ``FIBER_SHARE_RURAL`` of the rural villages (nearest to a PoP
    by route first) are fibered (:func:`universal_service.baseline.calibrate_reach_km`); every
    label then comes from :func:`universal_service.baseline.service_levels`, the plan's own
    coverage and route tests.

    Parameters
    ----------
    the_region : universal_service.io.Region
        The region with all its towers and PoPs.

    Returns
    -------
    tuple
        Service labels (object strings, villages' order) and the fiber reach [km].
    """
    rural = the_region.villages["ur_code"].isin((210, 220)).to_numpy()
    route = baseline.fiber_route_km(the_region).to_numpy()
    reach = baseline.calibrate_reach_km(route[rural], FIBER_SHARE_RURAL)
    levels = baseline.service_levels(the_region, reach_km=reach)
    return levels["provided"].to_numpy(object), reach


def operators_table() -> pd.DataFrame:
    """Operators with revenue, profit, mobile subscriber share and technologies (2016).

    Returns
    -------
    pandas.DataFrame
        ``operator_id``, ``name``, ``revenue_cny`` [CNY/yr], ``profit_cny`` [CNY/yr],
        ``market_share`` [-, sums to 1], ``technologies`` (``;``-joined).
    """
    df = pd.DataFrame(OPERATORS)
    share = df["subscribers_m"] / df["subscribers_m"].sum()
    df["market_share"] = share.round(6)
    df.loc[0, "market_share"] = 1.0 - df["market_share"].iloc[1:].sum()
    cols = ["operator_id", "name", "revenue_cny", "profit_cny", "market_share", "technologies"]
    return df[cols]


def read_roads(shared: Path, counties: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """OSM expressways (highway=motorway) clipped to the 12 counties, as single LineStrings.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder (``osm-qiannan/roads.gpkg``, WGS84, already cut at county lines).
    counties : geopandas.GeoDataFrame
        County polygons in WGS84.

    Returns
    -------
    geopandas.GeoDataFrame
        ``road_id``, ``name``, ``ref``, ``highway``, LineString geometry in WGS84.
    """
    roads = pyogrio.read_dataframe(shared / "osm-qiannan" / "roads.gpkg", layer="roads")
    code = roads["county_adcode"].fillna("").astype(str)
    roads = roads[code.str.startswith(region.PREFECTURE_ID[:4])].reset_index(drop=True)
    counties_union = shapely.union_all(counties.geometry.to_numpy())
    roads["geometry"] = shapely.intersection(roads.geometry.to_numpy(), counties_union)
    roads = roads.explode(index_parts=False).reset_index(drop=True)
    roads = roads[
        (roads.geom_type == "LineString") & (roads.to_crs(region.METRIC_CRS).length > 1.0)
    ]
    roads = roads.reset_index(drop=True)
    out = gpd.GeoDataFrame(
        {
            "road_id": [f"osm-{i + 1:04d}" for i in range(len(roads))],
            "name": roads["name"].fillna("").astype(str).to_numpy(),
            "ref": roads["ref"].fillna("").astype(str).to_numpy(),
            "highway": roads["highway"].astype(str).to_numpy(),
        },
        geometry=roads.geometry.to_numpy(),
        crs=region.GEO_CRS,
    )
    return out
