"""What is built: towers, points of presence, existing service, expressways, operators."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from . import region

#: Tower rule (assumptions): heights of ground masts [m] and the spacing along expressways [m].
TOWER_HEIGHT_SEAT_M = 35.0
TOWER_HEIGHT_EXPRESSWAY_M = 40.0
EXPRESSWAY_TOWER_SPACING_M = 8_000.0
#: existing_service rule for rural villages (ur_code 220): distance to the nearest tower [m].
SERVICE_3G_M = 5_000.0
SERVICE_2G_M = 10_000.0
#: PoP rule: probability that an operator has a PoP at a township seat (assumption; China
#: Telecom inherited the fixed network that reached every township, so it is always present).
POP_TOWNSHIP_PROBABILITY = {"ct": 1.0, "cmcc": 0.7, "cu": 0.4}
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
    df["technology"] = "4g"
    df["source"] = "derived"
    return gpd.GeoDataFrame(df, geometry="geometry", crs=region.METRIC_CRS)


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


def existing_service(ur_code: np.ndarray, tower_distance_m: np.ndarray) -> np.ndarray:
    """Service a village had in 2016, by rule.

    Urban units (ur_code 1xx) ``fiber``; township seat villages (210) ``4g``; rural villages (220)
    ``3g`` within SERVICE_3G_M of a tower, ``2g`` within SERVICE_2G_M, else ``none``.

    Parameters
    ----------
    ur_code : numpy.ndarray
        NBS urban-rural codes.
    tower_distance_m : numpy.ndarray
        Distance to the nearest tower. [m]

    Returns
    -------
    numpy.ndarray
        Service labels (object strings).
    """
    ur = np.asarray(ur_code)
    d = np.asarray(tower_distance_m, dtype=float)
    rural = np.where(d <= SERVICE_3G_M, "3g", np.where(d <= SERVICE_2G_M, "2g", "none"))
    return np.where(ur < 200, "fiber", np.where(ur == 210, "4g", rural)).astype(object)


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
