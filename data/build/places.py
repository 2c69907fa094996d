"""Where the seats and villages are: county and township seats, township areas, placement."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import Affine

from . import region


class Grid:
    """A north-up metric raster grid with the slope at every cell (a thin holder).

    Parameters
    ----------
    transform : affine.Affine
        Grid transform in the metric CRS.
    slope : numpy.ndarray
        Slope of each cell. [degrees]
    """

    def __init__(self, transform: Affine, slope: np.ndarray) -> None:
        self.transform = transform
        self.slope = slope
        self.shape = slope.shape

    def centres(self, flat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Metric x, y of cell centres given flat indices. [m]"""
        rows, cols = np.unravel_index(flat_index, self.shape)
        x = self.transform.c + self.transform.a * (cols + 0.5)
        y = self.transform.f + self.transform.e * (rows + 0.5)
        return x, y

    def cells_in(self, geom: shapely.Geometry) -> np.ndarray:
        """Flat indices of cells whose centre lies inside ``geom`` (metric CRS)."""
        if geom.is_empty:
            return np.zeros(0, dtype=np.int64)
        mask = rasterize([(geom, 1)], out_shape=self.shape, transform=self.transform, fill=0)
        return np.flatnonzero(mask)


def is_street_office(town_id: str) -> bool:
    """Whether an NBS township code is an urban sub-district (街道, codes xxx001-099)."""
    return int(town_id[6:9]) < 100


def township_seats(
    divisions: pd.DataFrame,
    counties_utm: gpd.GeoDataFrame,
    grid: Grid,
    seed: int = region.SEED,
) -> gpd.GeoDataFrame:
    """Locate the seat of every township, deriving the 17 that Amap gives no point.

    Rule, in order (``seat_source``):

    1. ``amap``: the township's own Amap point.
    2. ``amap_village``: else the Amap point of its seat village (ur_code 210), or the mean of its
       villages' Amap points (the nearest of them if the mean falls outside the county).
    3. ``derived_street``: else, for an urban sub-district, a seeded low-slope cell 1.5-4 km
       from the county seat and at least 1.5 km from other seats.
    4. ``derived_gap``: else the low-slope cell (slope < 15 degrees, at least 2 km inside the
       county) farthest from all seats already placed in the county: the centre of the largest
       gap, where a township whose seat is unknown must lie since townships tile the county.

    Parameters
    ----------
    divisions : pandas.DataFrame
        Output of :func:`sources.read_divisions`.
    counties_utm : geopandas.GeoDataFrame
        County polygons in the metric CRS.
    grid : Grid
        DEM grid with slope.
    seed : int
        Base seed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``town_id``, ``name``, ``district_id``, ``seat_source``, point geometry in the metric CRS.
    """
    to_utm = Transformer.from_crs(region.GEO_CRS, region.METRIC_CRS, always_xy=True)
    towns = divisions[divisions["level"] == "town"].copy()
    villages = divisions[divisions["level"] == "village"]
    counties = divisions[divisions["level"] == "county"].set_index("code")
    polys = counties_utm.set_index("district_id").geometry
    records = []
    for district_id, group in towns.groupby(towns["code"].str[:6], sort=True):
        rng = np.random.default_rng([seed, region.STREAM_SEATS, int(district_id)])
        poly = polys[district_id]
        cs = counties.loc[district_id + "000000"]
        cs_xy = np.array(to_utm.transform(cs["lon"], cs["lat"]))
        placed: dict[str, tuple[np.ndarray, str]] = {}
        for _, town in group.iterrows():
            if np.isfinite(town["lon"]):
                placed[town["code"]] = (
                    np.array(to_utm.transform(town["lon"], town["lat"])),
                    "amap",
                )
                continue
            vil = villages[(villages["parent"] == town["code"]) & np.isfinite(villages["lon"])]
            if len(vil):
                seat_vil = vil[vil["ur_code"] == 210]
                use = seat_vil.iloc[:1] if len(seat_vil) else vil
                xs, ys = to_utm.transform(use["lon"].to_numpy(), use["lat"].to_numpy())
                xy = np.array([np.mean(xs), np.mean(ys)])
                if not poly.contains(shapely.Point(xy)):
                    i = int(np.argmin(np.hypot(np.asarray(xs) - xy[0], np.asarray(ys) - xy[1])))
                    xy = np.array([xs[i], ys[i]])
                placed[town["code"]] = (xy, "amap_village")
        missing = group[~group["code"].isin(list(placed))]
        for _, town in missing.iterrows():
            others = np.array([xy for xy, _ in placed.values()])
            if is_street_office(town["code"]):
                cells = grid.cells_in(poly.buffer(-300.0))
                x, y = grid.centres(cells)
                d_cs = np.hypot(x - cs_xy[0], y - cs_xy[1])
                d_oth = np.min(np.hypot(x[:, None] - others[:, 0], y[:, None] - others[:, 1]), 1)
                ok = (d_cs >= 1500.0) & (d_cs <= 4000.0) & (d_oth >= 1500.0)
                if not ok.any():  # no room in the ring: anywhere within 10 km, 500 m from seats
                    ok = (d_cs <= 10_000.0) & (d_oth >= 500.0)
                w = np.exp(-grid.slope.ravel()[cells] / 8.0) * ok
                i = rng.choice(cells.size, p=w / w.sum())
                placed[town["code"]] = (np.array([x[i], y[i]]), "derived_street")
            else:
                cells = grid.cells_in(poly.buffer(-2000.0))
                cells = cells[grid.slope.ravel()[cells] < 15.0]
                x, y = grid.centres(cells)
                d_oth = np.min(np.hypot(x[:, None] - others[:, 0], y[:, None] - others[:, 1]), 1)
                i = int(np.argmax(d_oth))
                placed[town["code"]] = (np.array([x[i], y[i]]), "derived_gap")
        for _, town in group.iterrows():
            xy, source = placed[town["code"]]
            records.append(
                {
                    "town_id": town["code"],
                    "name": town["name"],
                    "district_id": district_id,
                    "seat_source": source,
                    "geometry": shapely.Point(xy),
                }
            )
    return gpd.GeoDataFrame(records, geometry="geometry", crs=region.METRIC_CRS)


def township_areas(seats: gpd.GeoDataFrame, county: shapely.Geometry) -> gpd.GeoSeries:
    """Township areas of one county: Voronoi cells of its seats clipped to the county.

    Parameters
    ----------
    seats : geopandas.GeoDataFrame
        The county's township seats (``town_id``, points in a metric CRS).
    county : shapely.Geometry
        The county polygon in the same CRS.

    Returns
    -------
    geopandas.GeoSeries
        One (multi)polygon per town, indexed by ``town_id``; together they tile the county.
    """
    pts = shapely.MultiPoint(list(seats.geometry))
    extent = shapely.box(*county.buffer(50_000.0).bounds)
    cells = list(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=extent)))
    areas = {}
    for town_id, point in zip(seats["town_id"], seats.geometry, strict=True):
        cell = next(c for c in cells if c.contains(point))
        areas[town_id] = shapely.intersection(cell, county)
    return gpd.GeoSeries(areas, crs=seats.crs)


def _placement_preference(ur_code: int, d_seat_m: np.ndarray) -> np.ndarray:
    """Preference for a village type by distance to its township seat. [-]

    Seat villages (210) within about 1 km, town and city cores (111, 121) about 1.5 km, urban
    fringes (112, 122, 123) about 3 km; rural villages (220) anywhere in the township.
    """
    scale = {210: 1000.0, 111: 1500.0, 121: 1500.0, 112: 3000.0, 122: 3000.0, 123: 3000.0}
    if ur_code in scale:
        return np.exp(-d_seat_m / scale[ur_code])
    return np.ones_like(d_seat_m)


def place_villages(
    villages: pd.DataFrame,
    seats: gpd.GeoDataFrame,
    areas: gpd.GeoSeries,
    grid: Grid,
    rng: np.random.Generator,
    inset_m: float = 100.0,
    slope_scale_deg: float = 8.0,
    tries: int = 64,
) -> pd.DataFrame:
    """Place one county's villages that lack a point inside their township's area.

    Cells are drawn with probability ``exp(-slope / slope_scale_deg)`` times a preference for the
    village type (:func:`_placement_preference`), from the township area inset by ``inset_m``.
    Candidates closer than a spacing ``r = min(0.5 sqrt(area / n), 2.5 km)`` (400 m for urban and
    seat units) to any village or seat already placed are rejected; after ``tries`` rejections
    ``r`` shrinks by 30%. The point is then jittered uniformly within +-0.4 cell. Villages with an
    Amap point keep it. Villages are processed by township, seat villages first, then by code.

    Parameters
    ----------
    villages : pandas.DataFrame
        The county's villages: ``code``, ``parent`` (town id), ``ur_code``, ``x``, ``y`` (metric,
        NaN where unknown).
    seats : geopandas.GeoDataFrame
        The county's township seats (``town_id``, metric points).
    areas : geopandas.GeoSeries
        Township areas by ``town_id`` (:func:`township_areas`).
    grid : Grid
        DEM grid with slope.
    rng : numpy.random.Generator
        Seeded generator (one per county, so a county can be rebuilt alone).
    inset_m : float
        Distance kept from township edges. [m]
    slope_scale_deg : float
        e-folding slope of the preference. [degrees]
    tries : int
        Candidates per spacing level.

    Returns
    -------
    pandas.DataFrame
        ``villages`` with ``x``, ``y`` filled and ``location_source`` (``amap`` / ``derived``).
    """
    out = villages.copy()
    out["location_source"] = np.where(np.isfinite(out["x"]), "amap", "derived")
    seat_xy = {t: (g.x, g.y) for t, g in zip(seats["town_id"], seats.geometry, strict=True)}
    occupied = [np.column_stack([out["x"], out["y"]])[np.isfinite(out["x"])]]
    occupied.append(np.array(list(seat_xy.values())))
    occ = np.vstack(occupied)
    slope = grid.slope.ravel()
    for town_id, town in out.groupby("parent", sort=True):
        todo = town[~np.isfinite(town["x"])]
        if todo.empty:
            continue
        area = areas[town_id]
        cells = grid.cells_in(area.buffer(-inset_m))
        if cells.size < 10:
            cells = grid.cells_in(area)
        cx, cy = grid.centres(cells)
        sx, sy = seat_xy[town_id]
        d_seat = np.hypot(cx - sx, cy - sy)
        base = np.exp(-slope[cells] / slope_scale_deg)
        r_rural = min(0.5 * np.sqrt(area.area / len(town)), 2500.0)
        order = todo.assign(first=(todo["ur_code"] != 210)).sort_values(["first", "code"])
        for idx, row in order.iterrows():
            w = base * _placement_preference(int(row["ur_code"]), d_seat)
            p = w / w.sum()
            r = r_rural if row["ur_code"] == 220 else min(400.0, r_rural)
            chosen = None
            for _ in range(12):
                cand = rng.choice(cells.size, size=tries, p=p)
                d = np.min(np.hypot(cx[cand, None] - occ[:, 0], cy[cand, None] - occ[:, 1]), 1)
                good = np.flatnonzero(d >= r)
                if good.size:
                    chosen = cand[good[0]]
                    break
                r *= 0.7
            if chosen is None:
                chosen = cand[int(np.argmax(d))]
            jitter = rng.uniform(-0.4, 0.4, size=2) * grid.transform.a
            x, y = cx[chosen] + jitter[0], cy[chosen] + jitter[1]
            out.loc[idx, ["x", "y"]] = x, y
            occ = np.vstack([occ, [x, y]])
    return out


def county_seats(divisions: pd.DataFrame, counties_utm: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """County seats: the Amap point of each county (converted to WGS84), in the metric CRS.

    Parameters
    ----------
    divisions : pandas.DataFrame
        Output of :func:`sources.read_divisions`.
    counties_utm : geopandas.GeoDataFrame
        County polygons in the metric CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        ``district_id``, ``name``, point geometry in the metric CRS.
    """
    rows = divisions[divisions["level"] == "county"].sort_values("code")
    pts = gpd.GeoSeries(gpd.points_from_xy(rows["lon"], rows["lat"]), crs=region.GEO_CRS)
    out = gpd.GeoDataFrame(
        {"district_id": rows["code"].str[:6].to_numpy(), "name": rows["name"].to_numpy()},
        geometry=pts.to_crs(region.METRIC_CRS).to_numpy(),
        crs=region.METRIC_CRS,
    )
    polys = counties_utm.set_index("district_id").geometry
    inside = [polys[d].contains(g) for d, g in zip(out["district_id"], out.geometry, strict=True)]
    if not all(inside):
        raise ValueError(f"county seats outside their county: {out[~np.array(inside)]}")
    return out


def locate_county_villages(
    villages: pd.DataFrame,
    seats: gpd.GeoDataFrame,
    county: shapely.Geometry,
    grid: Grid,
    district_id: str,
    seed: int = region.SEED,
) -> pd.DataFrame:
    """Locate one county's villages: township areas, then seeded placement.

    The random stream is ``default_rng([seed, region.STREAM_VILLAGES, int(district_id)])``, so each
    county is reproducible on its own.

    Parameters
    ----------
    villages : pandas.DataFrame
        The county's villages (``code``, ``parent``, ``ur_code``, ``x``, ``y`` metric or NaN).
    seats : geopandas.GeoDataFrame
        The county's township seats (``town_id``, metric points).
    county : shapely.Geometry
        The county polygon, metric CRS.
    grid : Grid
        DEM grid with slope.
    district_id : str
        6-digit county code.
    seed : int
        Base seed.

    Returns
    -------
    pandas.DataFrame
        See :func:`place_villages`.
    """
    rng = np.random.default_rng([seed, region.STREAM_VILLAGES, int(district_id)])
    areas = township_areas(seats, county)
    return place_villages(villages, seats, areas, grid, rng)
