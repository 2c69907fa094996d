"""Build the national input pack (``data/china/``) from the reference data in ``../shared/data``.

Run from the repository root::

    python data/build_china.py --shared ../shared/data --out data/china

The pack holds what a national run needs and nothing else, so it never reads ``../shared``:

- ``villages.parquet``: every rural administrative village (NBS urban-rural code 210 township
  seat or 220 village, 2016 division codes): ``code`` (12 digits), ``name``, ``ur_code``, and
  ``lon``/``lat`` [degrees, WGS84] where Amap gives a point (NaN elsewhere: a county builder
  locates those by its seeded rule). County (first 6 digits), township (first 9) and province
  (first 2) follow from the code.
- ``townships.parquet``: every township with at least one rural village: ``code`` (9 digits),
  ``name``, ``lon``/``lat`` [degrees, WGS84; NaN where Amap has no point].
- ``counties.gpkg`` (layer ``counties``): the county-level units that have rural villages:
  ``adcode`` (6 digits), ``name``, ``province`` and ``province_adcode`` (6 digits), boundaries
  converted from GCJ-02 to WGS84 and simplified to :data:`SIMPLIFY_DEG`.
- ``dem_12km.tif``: the 12 km relief of China (int16 m, EPSG:4326), copied as it is.
- ``operators.csv``: the three operators with their 2016 revenue, profit and market share, the
  same table as the bundled region's (``build.infrastructure.operators_table``).

Coordinates in the sources are GCJ-02 (Amap); they are converted to WGS84 with
:func:`universal_service.gcj02.gcj02_to_wgs84` before they are written.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

# ``data/`` is the script's folder, so the package ``data/build`` imports as ``build``.
from build import infrastructure, write

from universal_service import gcj02

#: Rural administrative villages: NBS urban-rural codes 210 (township seat) and 220 (village).
RURAL_CODES = ("210", "220")
#: Boundary simplification tolerance [degrees] (about 1 km): the county polygons serve maps and
#: the choice of which DEM cells a county needs, not the placement of villages at 90 m.
SIMPLIFY_DEG = 0.01


def _point(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat of rows with a GCJ-02 point (NaN where there is none)."""
    lon = df["longitude"].to_numpy(float)
    lat = df["latitude"].to_numpy(float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    out_lon, out_lat = np.full(len(df), np.nan), np.full(len(df), np.nan)
    out_lon[ok], out_lat[ok] = gcj02.gcj02_to_wgs84(lon[ok], lat[ok])
    return out_lon, out_lat


def build(shared: Path, out: Path) -> dict[str, object]:
    """Write the pack into ``out`` and return its counts.

    Parameters
    ----------
    shared : pathlib.Path
        The shared reference data folder (``china-admin/``, ``dem/``).
    out : pathlib.Path
        The pack folder (replaced).

    Returns
    -------
    dict
        Counts of villages, townships, counties and provinces, and the pack's size [MB].
    """
    # reproducible GeoPackages: GDAL stamps the current time into gpkg_contents otherwise
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": write.GPKG_TIMESTAMP})
    d = pd.read_csv(
        shared / "china-admin" / "divisions.csv.gz",
        dtype={"code": str, "parent": str, "ur_code": str},
    )
    v = d[(d["level"] == "village") & d["ur_code"].isin(RURAL_CODES)].sort_values("code")
    lon, lat = _point(v)
    villages = pd.DataFrame(
        {
            "code": v["code"].to_numpy(str),
            "name": v["name"].to_numpy(str),
            "ur_code": v["ur_code"].astype(np.int16).to_numpy(),
            "lon": lon.astype(np.float32),
            "lat": lat.astype(np.float32),
        }
    )
    town_codes = set(villages["code"].str[:9])
    t = d[(d["level"] == "town") & d["code"].str[:9].isin(town_codes)].sort_values("code")
    t_lon, t_lat = _point(t)
    townships = pd.DataFrame(
        {
            "code": t["code"].str[:9].to_numpy(str),
            "name": t["name"].to_numpy(str),
            "lon": t_lon.astype(np.float32),
            "lat": t_lat.astype(np.float32),
        }
    )
    county_codes = sorted(set(villages["code"].str[:6]))
    c = gpd.read_file(shared / "china-admin" / "counties.gpkg", layer="counties")
    c = c[c["adcode"].isin(county_codes)].sort_values("adcode").reset_index(drop=True)
    missing = sorted(set(county_codes) - set(c["adcode"]))
    geom = gcj02.geometries_gcj02_to_wgs84(c.geometry.to_numpy())
    geom = shapely.make_valid(shapely.simplify(geom, SIMPLIFY_DEG, preserve_topology=True))
    counties = gpd.GeoDataFrame(
        {
            "adcode": c["adcode"].to_numpy(str),
            "name": c["name"].to_numpy(str),
            "province": c["province"].to_numpy(str),
            "province_adcode": c["adcode"].str[:2].to_numpy(str).astype(object) + "0000",
        },
        geometry=geom,
        crs="EPSG:4326",
    )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    villages.to_parquet(out / "villages.parquet", index=False, compression="zstd")
    townships.to_parquet(out / "townships.parquet", index=False, compression="zstd")
    counties.to_file(out / "counties.gpkg", layer="counties", driver="GPKG")
    shutil.copyfile(shared / "dem" / "china_12km.tif", out / "dem_12km.tif")
    infrastructure.operators_table().to_csv(out / "operators.csv", index=False)
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    return {
        "villages": len(villages),
        "villages with a point": int(np.isfinite(villages["lon"]).sum()),
        "townships": len(townships),
        "counties with rural villages": len(county_codes),
        "counties without a boundary": ", ".join(missing) or "none",
        "provinces": villages["code"].str[:2].nunique(),
        "size_mb": round(size, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python data/build_china.py [--shared DIR] [--out DIR]``."""
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=root / ".." / "shared" / "data")
    parser.add_argument("--out", type=Path, default=root / "data" / "china")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    for key, value in build(args.shared.resolve(), args.out).items():
        print(f"{key}: {value}")
    print(f"built {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
