"""Plausibility and cross-layer checks of a region's data, against ``schema.PLAUSIBLE``.

Each check appends to ``problems`` (the data cannot be right: the loader raises one
:class:`~universal_service.errors.InputDataError`) or to ``warnings`` (odd but possible: the
loader logs them and keeps them on ``Region.warnings``). Every message names the file, the rows
or column, what was expected, what was received and the fix. Limits live in
:data:`universal_service.schema.PLAUSIBLE` (errors) and :data:`universal_service.schema.TYPICAL`
(warnings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import xarray as xr

from ..errors import InputDataError, rows_in
from ..schema import PLAUSIBLE, TYPICAL

#: Values GIS tools write for "no data" when none is declared (GDAL, SRTM, ArcGIS, float32 min).
NODATA_SENTINELS = (-32768.0, -32767.0, -9999.0, -99999.0, 32767.0, 65535.0)
FEET_UNITS = {"ft", "feet", "foot", "us-ft", "ftus", "us_survey_foot", "us survey foot", "ft_us"}


def _ids(df: pd.DataFrame, col: str, rows: np.ndarray, n: int = 3) -> list[str]:
    return [str(x) for x in df[col].iloc[rows[:n]]]


# --------------------------------------------------------------------------------------- the CRS


def crs_scale_error(crs: pyproj.CRS, villages: gpd.GeoDataFrame) -> float:
    """Length error of ``crs`` at the villages: median |scale factor - 1| (inf if unmappable).

    The median, so that a few misplaced villages (reported by the district checks) do not
    condemn the CRS.

    Parameters
    ----------
    crs : pyproj.CRS
        A projected CRS.
    villages : geopandas.GeoDataFrame
        Points in any CRS.

    Returns
    -------
    float
        Dimensionless (0.01 is 1 % longer or shorter on the map than on the ground).
    """
    geo = villages.geometry.to_crs("EPSG:4326")
    lon, lat = geo.x.to_numpy(), geo.y.to_numpy()
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    if not ok.any():
        return 0.0
    f = pyproj.Proj(crs).get_factors(lon[ok], lat[ok], errcheck=False)
    k = np.maximum(
        np.abs(np.asarray(f.meridional_scale) - 1), np.abs(np.asarray(f.parallel_scale) - 1)
    )
    return float(np.median(np.where(np.isfinite(k), k, np.inf)))


def area_distance_deg(crs: pyproj.CRS, villages: gpd.GeoDataFrame) -> float:
    """Degrees from the villages' median point to the CRS's area of use (0 inside; 0 if unknown).

    A transverse Mercator zone is also true to scale on the antipodal meridian, so the scale
    error alone does not catch a UTM zone on the other side of the world.
    """
    area = crs.area_of_use
    if area is None:
        return 0.0
    geo = villages.geometry.to_crs("EPSG:4326")
    lon, lat = float(np.nanmedian(geo.x)), float(np.nanmedian(geo.y))
    west, east = area.west, area.east if area.east >= area.west else area.east + 360
    lon = lon + 360 if lon < west else lon
    dlon = max(west - lon, lon - east, 0.0)
    dlon = min(dlon, max(360 - (east - west) - dlon, 0.0))
    dlat = max(area.south - lat, lat - area.north, 0.0)
    return float(np.hypot(dlon, dlat))


def check_region_crs(
    toml_path: Path,
    crs: pyproj.CRS,
    villages: gpd.GeoDataFrame | None,
    problems: list[str],
    warnings: list[str],
) -> bool:
    """Check that the region's declared CRS measures lengths at the villages as metres.

    A UTM zone on the other side of the world cannot represent them; Web Mercator stretches
    lengths by 1/cos(latitude). Returns False when the CRS cannot be used (a problem was added).
    """
    if villages is None or len(villages) == 0 or villages.crs is None:
        return True
    try:
        geo = villages.geometry.to_crs("EPSG:4326")
        b = geo.total_bounds
        degrees = np.abs(b[[0, 2]]).max() <= 180 and np.abs(b[[1, 3]]).max() <= 90
        if not (np.isfinite(b).all() and degrees):
            return True  # coordinates the layer checks reject (metres labelled degrees, ...)
        err = crs_scale_error(crs, villages)
        away = area_distance_deg(crs, villages)
    except Exception:  # the same, when PROJ refuses them
        return True
    lim, typical = PLAUSIBLE["region.crs_scale_error"], TYPICAL["region.crs_scale_error"][1]
    far = PLAUSIBLE["region.crs_area_distance_deg"]
    if err <= typical and away <= far.high:
        return True
    utm = villages.estimate_utm_crs().to_string()
    at = f"lon {geo.x.median():.1f}, lat {geo.y.median():.1f}"
    name = f"{toml_path}: crs = {crs.to_string()!r} ({crs.name})"
    if away > far.high:
        a = crs.area_of_use
        text = (
            f"{name} is made for lon {a.west:g}..{a.east:g}, lat {a.south:g}..{a.north:g}, but "
            f"the villages lie at {at}, {away:.0f} degrees away; expected them within "
            f"{far.high:g} degrees of its area of use."
        )
    else:
        text = (
            f"{name} measures lengths at the villages ({at}) "
            + ("not at all" if not np.isfinite(err) else f"{err:.1%} off")
            + f"; expected a CRS in metres true to within {lim.high:.0%} there ({lim.reason})."
        )
    if err > lim.high or away > far.high:
        problems.append(f'{text} Set crs = "{utm}" (the villages\' UTM zone) in region.toml.')
        return False
    warnings.append(f'{text} The plan uses it; crs = "{utm}" would be exact.')
    return True


def swapped_lon_lat(bounds: np.ndarray) -> bool:
    """Whether geographic bounds [minx, miny, maxx, maxy] look like (lat, lon) pairs."""
    return bool(np.abs(bounds[[0, 2]]).max() <= 90 < np.abs(bounds[[1, 3]]).max() <= 180)


def repair_polygons(
    gdf: gpd.GeoDataFrame, where: str, problems: list[str], warnings: list[str]
) -> gpd.GeoDataFrame:
    """Repair invalid polygons whose repair keeps their area (a ring touching itself); report
    the others (a bow tie, crossing edges) as errors rather than later as a CRS problem."""
    geom = gdf.geometry.to_numpy()
    bad = np.flatnonzero(
        ~shapely.is_valid(geom) & ~shapely.is_missing(geom) & ~shapely.is_empty(geom)
    )
    if not bad.size:
        return gdf
    fixed = shapely.buffer(geom[bad], 0)
    before, after = shapely.area(geom[bad]), shapely.area(fixed)
    kept = np.abs(after - before) <= 0.01 * np.maximum(after, before)
    why = [shapely.is_valid_reason(g) for g in geom[bad[~kept][:3]]]
    if (~kept).any():
        problems.append(
            f"{rows_in(where, bad[~kept])}: invalid polygon ({'; '.join(why)}); expected a "
            "valid polygon (no self-intersecting boundary). Repair it, e.g. `ogr2ogr -makevalid "
            f"fixed.gpkg {where}` or shapely.make_valid, and check the vertices' order."
        )
    if kept.any():
        warnings.append(
            f"{rows_in(where, bad[kept])}: invalid polygon (a boundary touching itself) "
            "repaired with buffer(0), area unchanged within 1 %."
        )
        gdf = gdf.copy()
        geom = geom.copy()
        geom[bad[kept]] = fixed[kept]
        gdf[gdf.geometry.name] = gpd.GeoSeries(geom, index=gdf.index, crs=gdf.crs)
    return gdf


# ------------------------------------------------------------------------------------------- DEM


def dem_values(da: xr.DataArray, path: Path) -> list[str]:
    """Problems with a DEM's values as read (before reprojection): unit, infinities, nodata.

    Parameters
    ----------
    da : xarray.DataArray
        The grid as read, declared nodata already NaN.
    path : pathlib.Path
        The DEM file, named in every message.

    Returns
    -------
    list of str
        One message per problem (empty when the values can be elevations in metres).
    """
    out: list[str] = []
    unit = str(da.attrs.get("units", "") or "").strip().lower()
    crs = da.rio.crs
    if crs is not None and len(pyproj.CRS(crs).sub_crs_list) > 1:
        vert = pyproj.CRS(crs).sub_crs_list[-1]
        unit = unit or (vert.axis_info[0].unit_name.lower() if vert.axis_info else "")
    if unit in FEET_UNITS or "feet" in unit or "foot" in unit:
        out.append(
            f"{path}: the DEM's elevations are in {unit!r}; expected metres. Convert them "
            "(multiply by 0.3048, e.g. `gdal_calc.py -A dem.tif --calc=A*0.3048 --outfile="
            "dem_m.tif`) and write the unit as 'm'."
        )
    v = np.asarray(da.values)
    if not np.issubdtype(v.dtype, np.floating):
        v = v.astype(np.float64)
    lim = PLAUSIBLE["dem.elevation_m"]
    with np.errstate(invalid="ignore"):
        v = v[(v < lim.low) | (v > lim.high)]  # sentinels and infinities lie outside; NaN not
    inf = np.isinf(v)
    if inf.any():
        out.append(
            f"{path}: {int(inf.sum())} DEM cells are infinite; expected finite elevations [m] "
            "or nodata. Set those cells to the nodata value (e.g. with gdal_calc.py) and "
            "declare it (`gdal_edit.py -a_nodata`)."
        )
    fill = da.attrs.get("_FillValue", da.rio.nodata)
    for value in (*NODATA_SENTINELS, float(np.finfo(np.float32).min)):
        hit = v == value if value > -1e38 else v <= -1e38
        if hit.any():
            out.append(
                f"{path}: {int(hit.sum())} DEM cells hold {value:g}, a common nodata value, but "
                f"the file declares nodata = {fill!r}; expected elevations [m] within "
                f"{lim.low:g} to {lim.high:g} m. Declare it: `gdal_edit.py -a_nodata {value:g} "
                f"{path.name}` (netCDF: set the variable's _FillValue)."
            )
            v = np.where(hit, np.nan, v)
    finite = v[np.isfinite(v)]
    if not out and finite.size:
        out.append(
            f"{path}: DEM elevations reach {finite.min():g} to {finite.max():g}; expected "
            f"{lim.low:g} to {lim.high:g} m ({lim.reason}). Check the unit and the scale of the "
            "file, declare its nodata value, and clip sea-floor depths to 0."
        )
    return out


# ------------------------------------------------------------------------------------ cross checks


def dem_array(da: xr.DataArray, path: Path, crs: pyproj.CRS | None = None) -> xr.DataArray:
    """Check and normalise a DEM held in memory as :func:`read_dem` returns it (``path``
    names it in messages): one band, a CRS in metres, ``y`` descending, NaN nodata."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    if "band" in da.dims:  # values are checked after this, in checks.dem_values
        if da.sizes["band"] != 1:
            raise InputDataError(
                f"{path}: the DEM has {da.sizes['band']} bands; expected 1 (elevation in metres). "
                "Extract it with `gdal_translate -b 1`."
            )
        da = da.squeeze("band", drop=True)
    if set(da.dims) != {"y", "x"}:
        raise InputDataError(f"{path}: DEM dims are {da.dims}; expected ('y', 'x').")
    if da.rio.crs is None:
        raise InputDataError(
            f"{path}: the DEM has no CRS. Write one into the file (e.g. `gdal_edit.py -a_srs "
            "EPSG:32648 dem.tif`)."
        )
    found = dem_values(da, path)
    if found:
        raise InputDataError(found)
    dtype = np.float32 if da.dtype.itemsize <= 4 else np.float64
    da = da.astype(dtype).transpose("y", "x")
    da.attrs = {
        k: v for k, v in da.attrs.items() if k not in {"_FillValue", "scale_factor", "add_offset"}
    }
    da.encoding = {}
    if crs is not None and pyproj.CRS(da.rio.crs) != pyproj.CRS(crs):
        from rasterio.enums import Resampling

        da = da.rio.reproject(crs, resampling=Resampling.bilinear, nodata=np.nan)
    own = pyproj.CRS(da.rio.crs)
    units = (own.axis_info[0].unit_name if own.axis_info else "").lower()
    if own.is_geographic or units not in {"metre", "meter", "m", "metres", "meters"}:
        raise InputDataError(
            f"{path}: expected a projected CRS in metres, received {own.to_string()} "
            f"(units {units or 'degrees'}); reproject to a metric CRS, e.g. "
            "`gdalwarp -t_srs EPSG:32648 -tr 90 90 in.tif out.tif`, or set the region's crs."
        )
    if not np.isfinite(da.values).any():
        raise InputDataError(
            f"{path}: every DEM cell is nodata (NaN); the file is empty or its nodata value is "
            "wrong. Check `gdalinfo` and rewrite the DEM."
        )
    if da.y.size > 1 and da.y.values[0] < da.y.values[-1]:
        da = da.isel(y=slice(None, None, -1))
    da = da.rio.write_nodata(np.nan, encoded=False)
    da.name = "elevation"
    da.attrs.update(units="m", source_file=path.name)
    return da


def cross_checks(
    out: dict[str, Any],
    dem: xr.DataArray | None,
    files: dict[str, Path],
    problems: list[str],
    warnings: list[str],
) -> None:
    """Checks within and across layers once each layer meets its columns' contract.

    Populations and households, villages against their district polygons, overlapping districts,
    villages on the DEM, operators named by PoPs and towers, market shares, tower heights.
    """
    populations(out["villages"], files["villages"].name, problems, warnings)
    if "districts" in out:
        districts(out["villages"], out["districts"], files, problems, warnings)
    if dem is not None:
        on_dem(out["villages"], dem, files, problems)
    if "operators" in out:
        operators(out, files, problems)
    if "towers" in out and len(out["towers"]):
        tower_heights(out["towers"], files["towers"].name, problems, warnings)


def populations(v: gpd.GeoDataFrame, vfile: str, problems: list[str], warnings: list[str]) -> None:
    """Every population zero, absurd populations, more households than residents."""
    pop, hh = v["population"].to_numpy(float), v["households"].to_numpy(float)
    rows = np.arange(len(v))
    if len(v) and not (pop > 0).any():
        problems.append(
            f"{vfile}: column 'population' is 0 in every row ({len(v)} villages); expected "
            "residents [persons] > 0 in at least one village (coverage is a share of the "
            "population). Fill in the populations."
        )
    lim, typical = PLAUSIBLE["villages.population"], TYPICAL["villages.population"][1]
    absurd = rows[pop > lim.high]
    if absurd.size:
        problems.append(
            f"{rows_in(vfile, absurd)}: column 'population' = "
            f"{[f'{p:g}' for p in pop[absurd[:3]]]} (village ids {_ids(v, 'village_id', absurd)}); "
            f"expected at most {lim.high:,.0f} {lim.unit} ({lim.reason}). Correct the value or its "
            "unit (thousands?), or split the place into villages."
        )
    big = rows[(pop > typical) & (pop <= lim.high)]
    if big.size:
        warnings.append(
            f"{rows_in(vfile, big)}: population above {typical:,.0f} persons (village ids "
            f"{_ids(v, 'village_id', big)}): a town rather than a village; planned as given."
        )
    more = rows[hh > pop]
    if more.size:
        problems.append(
            f"{rows_in(vfile, more)}: column 'households' exceeds 'population' "
            f"({[f'{h:g} > {p:g}' for h, p in zip(hh[more[:3]], pop[more[:3]], strict=True)]}); "
            "expected at most one household per resident. Check whether the columns are swapped."
        )


def districts(
    v: gpd.GeoDataFrame,
    d: gpd.GeoDataFrame,
    files: dict[str, Path],
    problems: list[str],
    warnings: list[str],
) -> None:
    """Villages against district ids and polygons; overlapping district polygons."""
    vfile, dfile = files["villages"].name, files["districts"].name
    rows = np.arange(len(v))
    known = set(d["district_id"])
    unknown = rows[~v["district_id"].isin(known).to_numpy()]
    if unknown.size:
        problems.append(
            f"{rows_in(vfile, unknown)}: district_id "
            f"{sorted(set(v['district_id'].iloc[unknown]))[:5]} not found in {dfile}. Fix the "
            "ids or add the districts."
        )
    pts = gpd.GeoDataFrame({"row": rows, "own": v["district_id"].to_numpy()}, geometry=v.geometry)
    joined = gpd.sjoin(pts, d[["district_id", "geometry"]], how="left", predicate="within")
    outside = np.unique(joined.loc[joined["district_id"].isna(), "row"].to_numpy())
    if outside.size:
        problems.append(
            f"{rows_in(vfile, outside)}: village lies outside every district polygon of "
            f"{dfile} (village ids {_ids(v, 'village_id', outside)}). Check the coordinates "
            "and CRS."
        )
    inside = joined[joined["district_id"].notna()]
    home = inside.loc[inside["own"] == inside["district_id"], "row"].to_numpy(dtype=int)
    other = np.setdiff1d(inside["row"].to_numpy(dtype=int), np.concatenate([home, unknown]))
    if other.size:
        poly = inside.drop_duplicates("row").set_index("row")["district_id"]
        pairs = [
            f"{v['village_id'].iloc[r]}: {v['district_id'].iloc[r]} -> {poly[r]}" for r in other[:3]
        ]
        share, lim = other.size / len(v), PLAUSIBLE["villages.other_district_share"]
        text = (
            f"{rows_in(vfile, other)}: village lies in another district's polygon of "
            f"{dfile} than its district_id ({share:.0%} of villages; village: district_id -> "
            f"polygon {pairs})"
        )
        if share > lim.high:
            problems.append(
                f"{text}; expected at most {lim.high:.0%}. Check that district_id and the "
                "polygons use the same codes, and the layers' CRS."
            )
        else:
            warnings.append(f"{text}; planned with the district_id (a boundary village?).")
    overlaps(d, dfile, problems, warnings)
    counts = v["district_id"].value_counts()
    for did in sorted(known - set(counts.index)):
        warnings.append(f"district {did} has no villages ({dfile})")


def overlaps(d: gpd.GeoDataFrame, dfile: str, problems: list[str], warnings: list[str]) -> None:
    """District polygons that share area beyond digitising slivers."""
    if len(d) < 2:
        return
    poly = gpd.GeoDataFrame({"row": np.arange(len(d))}, geometry=d.geometry.to_numpy(), crs=d.crs)
    pairs = gpd.sjoin(poly, poly, predicate="intersects")
    pairs = pairs[pairs["row_left"] < pairs["row_right"]]
    lim, typical = PLAUSIBLE["districts.overlap_share"], TYPICAL["districts.overlap_share"][1]
    geom, area = d.geometry.to_numpy(), d.geometry.area.to_numpy()
    for i, j in zip(pairs["row_left"], pairs["row_right"], strict=True):
        share = geom[i].intersection(geom[j]).area / max(min(area[i], area[j]), 1e-9)
        if share <= typical:
            continue
        text = (
            f"{rows_in(dfile, [i, j])}: districts {d['district_id'].iloc[i]} and "
            f"{d['district_id'].iloc[j]} overlap by {share:.1%} of the smaller one"
        )
        if share > lim.high:
            problems.append(
                f"{text}; expected at most {lim.high:.0%} ({lim.reason}). Fix the polygons "
                "(a duplicated or mis-drawn district?)."
            )
        else:
            warnings.append(f"{text}; villages there count for their district_id.")


def on_dem(
    v: gpd.GeoDataFrame, dem: xr.DataArray, files: dict[str, Path], problems: list[str]
) -> None:
    """Every village on the DEM and on a valid cell."""
    vfile, demfile = files["villages"].name, files["dem"].name
    rows = np.arange(len(v))
    x, y = v.geometry.x.to_numpy(), v.geometry.y.to_numpy()
    xs, ys = dem.x.values, dem.y.values
    half_x = abs(float(xs[1] - xs[0])) / 2 if xs.size > 1 else 0
    half_y = abs(float(ys[1] - ys[0])) / 2 if ys.size > 1 else 0
    inside = (
        (x >= xs.min() - half_x)
        & (x <= xs.max() + half_x)
        & (y >= ys.min() - half_y)
        & (y <= ys.max() + half_y)
    )
    elev = np.full(len(v), np.nan)
    if inside.any():
        px, py = xr.DataArray(x[inside], dims="p"), xr.DataArray(y[inside], dims="p")
        elev[inside] = dem.sel(x=px, y=py, method="nearest").values
    off = rows[~inside]
    if off.size:
        problems.append(
            f"{rows_in(vfile, off)}: village lies off the DEM ({demfile} covers x "
            f"{xs.min():.0f}..{xs.max():.0f}, y {ys.min():.0f}..{ys.max():.0f} m). Extend the DEM "
            "or check the coordinates."
        )
    hole = rows[inside & ~np.isfinite(elev)]
    if hole.size:
        problems.append(
            f"{rows_in(vfile, hole)}: the DEM has nodata under these villages ({demfile}); "
            "fill the holes (e.g. `gdal_fillnodata.py`)."
        )


def operators(out: dict[str, Any], files: dict[str, Path], problems: list[str]) -> None:
    """PoPs and towers name known operators; market shares add up to about 1."""
    ops = out["operators"]
    ofile = files["operators"].name
    known = set(ops["operator_id"])
    for layer in ("pops", "towers"):
        if layer not in out or not len(out[layer]):
            continue
        ids = out[layer]["operator_id"]
        bad = np.flatnonzero(~ids.isin(known).to_numpy())
        if bad.size:
            problems.append(
                f"{rows_in(files[layer].name, bad)}: operator_id "
                f"{sorted(set(ids.iloc[bad]))[:5]} not found in {ofile} (known: {sorted(known)}). "
                f"Fix the ids or add the operators to {ofile}."
            )
    share = ops["market_share"].to_numpy(float)
    given = np.isfinite(share)
    if not given.any():
        return
    lim, total = PLAUSIBLE["operators.market_share_sum"], float(share[given].sum())
    if given.all() and not lim.low <= total <= lim.high:  # a partly empty column: _coerce
        hint = " They look like percentages: divide by 100." if 90 <= total <= 110 else ""
        problems.append(
            f"{ofile}: column 'market_share' sums to {total:g}; expected {lim.low:g} to "
            f"{lim.high:g} ({lim.reason}).{hint} Rescale the shares so they add up to 1."
        )


def tower_heights(
    t: gpd.GeoDataFrame, tfile: str, problems: list[str], warnings: list[str]
) -> None:
    """Tower heights within the plausible range (error) and the typical one (warning)."""
    h = t["height_m"].to_numpy(float)
    lim, (low, high) = PLAUSIBLE["towers.height_m"], TYPICAL["towers.height_m"]
    bad = np.flatnonzero(h > lim.high)
    if bad.size:
        problems.append(
            f"{rows_in(tfile, bad)}: column 'height_m' = {[f'{x:g}' for x in h[bad[:3]]]}; "
            f"expected at most {lim.high:g} m ({lim.reason}). Correct the value or its unit "
            "(feet? centimetres?)."
        )
    odd = np.flatnonzero(((h < low) | (h > high)) & (h <= lim.high))
    if odd.size:
        warnings.append(
            f"{rows_in(tfile, odd)}: tower height {[f'{x:g}' for x in h[odd[:3]]]} m is "
            f"unusual (typically {low:g} to {high:g} m); planned as given."
        )
