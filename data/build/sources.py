"""Read the shared NBS division codes and county boundaries, converted to WGS84."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from universal_service import gcj02

from . import region


def read_divisions(shared: Path) -> pd.DataFrame:
    """Read Qiannan's rows of the NBS 2016 division codes, with WGS84 points where Amap has one.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder (holding ``china-admin/divisions.csv.gz``).

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``parent``, ``name``, ``level``, ``ur_code`` (nullable int), ``county``,
        ``town``, ``lon``, ``lat`` (WGS84 degrees, NaN where the source has no point), sorted by code.
    """
    df = pd.read_csv(shared / "china-admin" / "divisions.csv.gz", dtype=str, keep_default_na=False)
    df = df[df["code"].str.startswith(region.PREFECTURE_ID[:4])].copy()
    g_lon = pd.to_numeric(df["longitude"].replace("", np.nan)).to_numpy(dtype=float)
    g_lat = pd.to_numeric(df["latitude"].replace("", np.nan)).to_numpy(dtype=float)
    # Amap points are GCJ-02: convert to WGS84 before overlaying anything (see gcj02.gcj02_to_wgs84).
    df["lon"], df["lat"] = gcj02.gcj02_to_wgs84(g_lon, g_lat)
    df["ur_code"] = pd.to_numeric(df["ur_code"].replace("", np.nan)).astype("Int64")
    cols = ["code", "parent", "name", "level", "ur_code", "county", "town", "lon", "lat"]
    return df[cols].sort_values("code").reset_index(drop=True)


def read_counties(shared: Path) -> gpd.GeoDataFrame:
    """Read the 12 county boundaries and convert them from GCJ-02 to WGS84.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder (holding ``china-admin/counties.gpkg``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``district_id`` (6-digit adcode), ``name``, ``parent_id``, geometry in EPSG:4326, sorted by id.
    """
    gdf = pyogrio.read_dataframe(
        shared / "china-admin" / "counties.gpkg",
        layer="counties",
        where=f"adcode LIKE '{region.PREFECTURE_ID[:4]}%' AND adcode != '{region.PREFECTURE_ID}'",
    )
    # The file is labelled EPSG:4326 but its coordinates are GCJ-02 (Amap boundaries).
    geoms = gcj02.geometries_gcj02_to_wgs84(gdf.geometry.to_numpy())
    geoms = shapely.make_valid(geoms)
    out = gpd.GeoDataFrame(
        {
            "district_id": gdf["adcode"].astype(str).to_numpy(),
            "name": gdf["name"].astype(str).to_numpy(),
            "parent_id": region.PREFECTURE_ID,
        },
        geometry=geoms,
        crs=region.GEO_CRS,
    )
    out["geometry"] = out.geometry.apply(_as_multipolygon)
    return out.sort_values("district_id").reset_index(drop=True)


def _as_multipolygon(geom: shapely.Geometry) -> shapely.MultiPolygon:
    """Keep only the polygonal parts of ``geom``, as one MultiPolygon."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys: list[shapely.Polygon] = []
    for part in parts:
        polys.extend(shapely.get_parts(part))
    return shapely.MultiPolygon(polys)
