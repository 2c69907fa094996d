"""Read a region folder into a validated :class:`Region`.

A region folder holds a ``region.toml`` naming its layers::

    name = "Qiannan"
    crs = "EPSG:32648"            # metric CRS every layer is reprojected to (optional: UTM guessed)
    [layers]
    villages = "villages.gpkg"    # or a table: {path = "v.csv", crs = "EPSG:4326"}
    districts = "districts.gpkg"
    dem = "dem.tif"
    pops = "pops.gpkg"
    towers = "towers.gpkg"        # optional
    roads = "roads.gpkg"          # optional
    operators = "operators.csv"

Vector layers are read from GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV (with lon/lat
columns, WGS84 unless the layer names a ``crs``); the DEM from GeoTIFF or netCDF. Column names are
normalised once here (see :data:`universal_service.schema.ALIASES`). Validation collects every
problem across all layers and raises one :class:`~universal_service.errors.InputDataError`; the
plausibility and cross-layer checks live in :mod:`universal_service.io.checks`, and odd but
possible data is logged and kept on :attr:`Region.warnings`.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import xarray as xr
from shapely import box as shapely_box

from ..errors import InputDataError, rows_in
from ..schema import ALIASES, LAT_NAMES, LAYERS, LON_NAMES, Column, LayerSpec
from . import checks

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".csv"}
NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf", ".cdf", ".h5"}
RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".img", *NETCDF_SUFFIXES}


@dataclass(frozen=True)
class Region:
    """A loaded, validated region, every layer in one metric CRS.

    Attributes
    ----------
    name : str
    crs : pyproj.CRS
        Projected CRS with metre units shared by every layer.
    villages, districts, pops, towers, roads : geopandas.GeoDataFrame
        Layers with normalised columns (``towers`` and ``roads`` may be empty).
    operators : pandas.DataFrame
    dem : xarray.DataArray
        Elevation [m] with dims ``(y, x)``, NaN where unknown.
    meta : dict
        The ``[meta]`` table of ``region.toml`` (provenance, flags such as synthetic DEM detail).
    path : pathlib.Path
        The region folder.
    warnings : list of str
        Odd but possible data found on load (also logged), for the summary to list.
    """

    name: str
    crs: pyproj.CRS
    villages: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    pops: gpd.GeoDataFrame
    towers: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    operators: pd.DataFrame
    dem: xr.DataArray
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path = Path(".")
    warnings: list[str] = field(default_factory=list)
    #: Derived results computed once per region (e.g. the fiber route graph,
    #: :func:`universal_service.costs.route_graph`), keyed by what they depend on; not
    #: pickled, not compared, fresh on every new Region (``subset``, ``dataclasses.replace``).
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["memo"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, val in state.items():
            object.__setattr__(self, k, val)

    def subset(self, district_ids: list[str], buffer_m: float | None = None) -> Region:
        """Return the region restricted to some districts.

        Parameters
        ----------
        district_ids : list of str
            The districts kept (their villages and polygons).
        buffer_m : float, optional
            Crop the DEM and the infrastructure (PoPs, towers, roads) to the kept districts'
            bounding box grown by this distance [m]: what lies farther cannot serve them (pass
            the longest reach of any link, e.g. :func:`universal_service.costs.reach_buffer_m`).
            By default every layer but villages and districts is kept whole.

        Returns
        -------
        Region
            A region sharing the unchanged layers with this one; ``meta["subset_of"]`` names
            the districts' parent region when cropped.
        """
        keep = set(map(str, district_ids))
        v = self.villages[self.villages["district_id"].isin(keep)].copy()
        d = self.districts[self.districts["district_id"].isin(keep)].copy()
        pops, towers, roads, dem = self.pops, self.towers, self.roads, self.dem
        meta = dict(self.meta)
        if buffer_m is not None and len(v):
            x0, y0, x1, y1 = np.asarray(v.total_bounds, float)
            if len(d):
                dx0, dy0, dx1, dy1 = np.asarray(d.total_bounds, float)
                x0, y0, x1, y1 = min(x0, dx0), min(y0, dy0), max(x1, dx1), max(y1, dy1)
            b = float(buffer_m)
            x0, y0, x1, y1 = x0 - b, y0 - b, x1 + b, y1 + b

            def inside(g: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
                if not len(g):
                    return g
                return g[g.geometry.intersects(shapely_box(x0, y0, x1, y1))]

            pops, towers, roads = inside(pops), inside(towers), inside(roads)
            ys = dem["y"].to_numpy()
            ysl = slice(y1, y0) if len(ys) > 1 and ys[0] > ys[-1] else slice(y0, y1)
            dem = dem.sel(x=slice(x0, x1), y=ysl)
            meta["subset_of"] = self.name
        return Region(
            self.name,
            self.crs,
            v,
            d,
            pops,
            towers,
            roads,
            self.operators,
            dem,
            meta,
            self.path,
            list(self.warnings),
        )


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def normalise_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Lower-case and strip column names and map known aliases to the contract's names.

    A source column is renamed only when the contract name is not already present.

    Parameters
    ----------
    df : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        A copy with renamed columns.
    """
    rename: dict[str, str] = {}
    present = {str(c).strip().lower() for c in df.columns}
    for c in df.columns:
        if c == "geometry":
            continue
        low = str(c).strip().lower().replace(" ", "_")
        target = ALIASES.get(low, low)
        if target != low and target in present:
            target = low
        rename[c] = target
    return df.rename(columns=rename)


def read_vector(
    path: Path, *, layer: str | None = None, crs: str | None = None
) -> gpd.GeoDataFrame:
    """Read a vector layer from any supported format.

    Parameters
    ----------
    path : pathlib.Path
        GeoPackage, GeoJSON, Shapefile, GeoParquet, or CSV with lon/lat columns.
    layer : str, optional
        Layer name inside a multi-layer file (GeoPackage).
    crs : str, optional
        CRS to assume when the file carries none (CSV coordinates default to ``EPSG:4326``).

    Returns
    -------
    geopandas.GeoDataFrame
        Normalised column names; CRS as read (or ``crs``), not yet reprojected.

    Raises
    ------
    InputDataError
        The file is missing, unreadable, of an unknown format, or lacks a CRS.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: file not found. Check the path in region.toml.")
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise InputDataError(
            f"{path}: unknown vector format '{suffix}'; expected one of "
            f"{', '.join(sorted(VECTOR_SUFFIXES))}."
        )
    try:
        if suffix == ".csv":
            df = normalise_columns(pd.read_csv(path, dtype=str, keep_default_na=False))
            lon = next((c for c in LON_NAMES if c in df.columns), None)
            lat = next((c for c in LAT_NAMES if c in df.columns), None)
            if lon is None or lat is None:
                raise InputDataError(
                    f"{path}: a CSV point layer needs longitude and latitude columns "
                    f"(one of {LON_NAMES} and one of {LAT_NAMES}); found {list(df.columns)}."
                )
            x = pd.to_numeric(df[lon], errors="coerce")
            y = pd.to_numeric(df[lat], errors="coerce")
            bad = np.flatnonzero((x.isna() | y.isna()).to_numpy())
            if bad.size:
                raise InputDataError(
                    f"{rows_in(path.name, bad)}: columns '{lon}'/'{lat}' must "
                    "be numbers; fix or remove those rows."
                )
            gdf = gpd.GeoDataFrame(
                df.drop(columns=[lon, lat]),
                geometry=gpd.points_from_xy(x, y),
                crs=crs or "EPSG:4326",
            )
            return gdf
        if suffix in {".parquet", ".geoparquet"}:
            gdf = gpd.read_parquet(path)
        else:
            gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except InputDataError:
        raise
    except Exception as exc:  # the GIS stack raises many types; name the file and pass it on
        raise InputDataError(f"{path}: could not be read ({type(exc).__name__}: {exc}).") from exc
    if gdf.crs is None:
        if crs is None:
            raise InputDataError(
                f"{path}: the layer has no CRS. Add one to the file, or state it in region.toml "
                f'as {{path = "{path.name}", crs = "EPSG:4326"}}.'
            )
        gdf = gdf.set_crs(crs)
    gdf = normalise_columns(gdf)
    return gdf.set_geometry("geometry") if "geometry" in gdf.columns else gdf


def read_toml(path: Path) -> dict[str, Any]:
    """Read a UTF-8 TOML file.

    Raises
    ------
    InputDataError
        The file is not UTF-8 or not valid TOML (the message names the file and the line).
    """
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputDataError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputDataError(f"{path}: not valid TOML ({exc}).") from exc


def read_table(path: Path) -> pd.DataFrame:
    """Read a plain table (CSV, or Parquet) with normalised column names.

    Raises
    ------
    InputDataError
        The file is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: file not found. Check the path in region.toml.")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputDataError(f"{path}: could not be read ({type(exc).__name__}: {exc}).") from exc
    return normalise_columns(df)


def read_dem(path: Path, crs: pyproj.CRS | None = None) -> xr.DataArray:
    """Read a DEM (GeoTIFF or netCDF) as elevation [m] with dims ``(y, x)``.

    Parameters
    ----------
    path : pathlib.Path
        GeoTIFF (read with rioxarray; any GDAL raster works) or netCDF holding one 2-D elevation
        variable (preferably named ``dem``, ``elevation``, ``z`` or ``band_data``) with a CF grid
        mapping or a ``crs`` attribute.
    crs : pyproj.CRS, optional
        Target CRS; the DEM is reprojected (bilinear) when its own CRS differs.

    Returns
    -------
    xarray.DataArray
        float32 (float64 for 64-bit sources) elevation [m], nodata as NaN, ``y`` descending, in a
        projected CRS with metre units set through rioxarray.

    Raises
    ------
    InputDataError
        Missing file, unknown format, no CRS, more than one band, not two-dimensional, not in
        metres (and no ``crs`` to reproject to), or no valid cell.
    """
    import rioxarray  # registers the .rio accessor; used below

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: DEM file not found. Check the path in region.toml.")
    suffix = path.suffix.lower()
    if suffix not in RASTER_SUFFIXES:
        raise InputDataError(
            f"{path}: unknown DEM format '{suffix}'; expected GeoTIFF (.tif) or netCDF (.nc)."
        )
    try:
        if suffix in NETCDF_SUFFIXES:
            ds = xr.open_dataset(path, decode_coords="all")
            names = [n for n in ("dem", "elevation", "z", "band_data") if n in ds.data_vars]
            names = names or [n for n, v in ds.data_vars.items() if v.ndim >= 2]
            if not names:
                raise InputDataError(
                    f"{path}: expected a 2-D elevation variable, found {list(ds.data_vars)}; "
                    "name the variable 'dem' or 'elevation'."
                )
            da = ds[names[0]].load()
            ds.close()
            fill = da.encoding.get("_FillValue", da.attrs.get("_FillValue"))
            if fill is not None and not np.issubdtype(da.dtype, np.floating):
                da = da.where(da != fill)
            ren = {"lon": "x", "longitude": "x", "lat": "y", "latitude": "y"}
            da = da.rename({d: ren[d] for d in da.dims if d in ren})
            if da.rio.crs is None and "crs" in da.attrs:
                da = da.rio.write_crs(da.attrs.pop("crs"))
        else:
            da = rioxarray.open_rasterio(path, masked=True).load()
    except InputDataError:
        raise
    except Exception as exc:
        raise InputDataError(
            f"{path}: DEM could not be read ({type(exc).__name__}: {exc})."
        ) from exc
    return checks.dem_array(da, path, crs)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _coerce(df: pd.DataFrame, spec: LayerSpec, where: str, problems: list[str]) -> pd.DataFrame:
    """Check and coerce a layer's columns against its spec, appending problems (no raise)."""
    df = df.copy()
    missing = [c.name for c in spec.columns if c.required and c.name not in df.columns]
    if missing:
        have = [c for c in df.columns if c != "geometry"]
        problems.append(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (found {have}). Rename the source column or "
            "add it; accepted aliases are listed in universal_service.schema.ALIASES."
        )
    for col in spec.columns:
        if col.name not in df.columns:
            if not col.required:
                df[col.name] = col.default
            continue
        _coerce_column(df, col, where, problems)
    return df


def _coerce_column(df: pd.DataFrame, col: Column, where: str, problems: list[str]) -> None:
    raw = df[col.name]
    rows = np.arange(len(df))
    if col.kind == "str":
        s = raw.astype("string").fillna("").str.strip()
        # numeric ids read from GeoPackages as floats come back as "522701.0"
        s = s.str.replace(r"^(\d+)\.0$", r"\1", regex=True)
        if col.required:
            empty = rows[(s == "").to_numpy()]
            if empty.size:
                problems.append(
                    f"{rows_in(where, empty)}: column '{col.name}' ({col.description}) is "
                    "empty; every row needs a value."
                )
        df[col.name] = s.astype(object).to_numpy()
    elif col.kind in {"float", "int"}:
        if raw.dtype == object or pd.api.types.is_string_dtype(raw):
            blank = raw.astype("string").str.strip().isin(["", "nan", "NaN", "NA", "null"])
            v = pd.to_numeric(raw.where(~blank.fillna(True), None), errors="coerce")
        else:
            v = pd.to_numeric(raw, errors="coerce")
        nan = rows[v.isna().to_numpy()]
        if nan.size:
            problems.append(
                f"{rows_in(where, nan)}: column '{col.name}' ({col.description}) must be a "
                f"number; got {_sample(raw, nan)}. Fill in the missing values"
                + ("." if col.required else " or drop the optional column.")
            )
        inf = rows[np.isinf(v.to_numpy(dtype=float))]
        if inf.size:
            problems.append(
                f"{rows_in(where, inf)}: column '{col.name}' ({col.description}) must be "
                f"finite; got {_sample(raw, inf)}. Correct those values."
            )
        if col.min_value is not None:
            vv = v.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                low = vv <= col.min_value if col.exclusive_min else vv < col.min_value
            bad = rows[low]
            if bad.size:
                op = ">" if col.exclusive_min else ">="
                problems.append(
                    f"{rows_in(where, bad)}: column '{col.name}' ({col.description}) must be "
                    f"{op} {col.min_value:g}; got {_sample(raw, bad)}. Correct those values."
                )
        df[col.name] = v.astype(float)
    elif col.kind == "bool":
        s = raw.astype("string").str.strip().str.lower()
        truth = {
            "true": True,
            "1": True,
            "yes": True,
            "false": False,
            "0": False,
            "no": False,
            "1.0": True,
            "0.0": False,
        }
        mapped = s.map(truth)
        bad = rows[mapped.isna().to_numpy()]
        if bad.size:
            problems.append(
                f"{rows_in(where, bad)}: column '{col.name}' must be true/false; got "
                f"{_sample(raw, bad)}."
            )
        df[col.name] = mapped.fillna(bool(col.default)).astype(bool).to_numpy()
    if col.allowed is not None and col.name in df.columns:
        s = pd.Series(df[col.name]).astype(str).str.lower()
        df[col.name] = s.to_numpy()
        bad = rows[~s.isin(col.allowed).to_numpy()]
        if bad.size:
            problems.append(
                f"{rows_in(where, bad)}: column '{col.name}' must be one of "
                f"{list(col.allowed)}; got {_sample(raw, bad)}."
            )
    if col.unique and col.name in df.columns:
        dup_mask = pd.Series(df[col.name]).duplicated(keep=False).to_numpy()
        dup = rows[dup_mask]
        if dup.size:
            vals = sorted(set(pd.Series(df[col.name]).iloc[dup].astype(str)))[:5]
            problems.append(
                f"{rows_in(where, dup)}: column '{col.name}' must be unique; duplicated "
                f"values {vals}. Give each row its own id or drop the duplicates."
            )


def _sample(raw: pd.Series, rows: np.ndarray, n: int = 3) -> str:
    vals = [repr(v) for v in raw.iloc[rows[:n]].tolist()]
    return ", ".join(vals) + (", ..." if rows.size > n else "")


def _check_geometry(
    gdf: gpd.GeoDataFrame, spec: LayerSpec, where: str, problems: list[str]
) -> None:
    rows = np.arange(len(gdf))
    empty = rows[(gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy()]
    if empty.size:
        problems.append(
            f"{rows_in(where, empty)}: empty or missing geometry. Give every feature a "
            "geometry or drop it."
        )
    expected = {
        "point": {"Point"},
        "polygon": {"Polygon", "MultiPolygon"},
        "line": {"LineString", "MultiLineString"},
    }.get(spec.geometry)
    if expected:
        types = gdf.geometry.geom_type.fillna("None")
        bad = rows[(~types.isin(expected) & (types != "None")).to_numpy()]
        if bad.size:
            problems.append(
                f"{rows_in(where, bad)}: geometry must be {'/'.join(sorted(expected))}; "
                f"got {sorted(set(types.iloc[bad]))}."
            )


def _check_crs_units(gdf: gpd.GeoDataFrame, where: str, problems: list[str]) -> bool:
    """Catch coordinates that cannot be in the stated CRS (projected metres labelled as degrees)."""
    if gdf.crs is None or len(gdf) == 0:
        return True
    b = gdf.total_bounds
    if gdf.crs.is_geographic and checks.swapped_lon_lat(b):
        problems.append(
            f"{where}: the CRS is geographic ({gdf.crs.to_string()}) but x stays within "
            f"{b[[0, 2]].round(3).tolist()} and y reaches {b[[1, 3]].round(3).tolist()}, beyond "
            "+-90 degrees of latitude: longitude and latitude look swapped. Swap them (x = "
            "longitude, y = latitude; in a CSV, exchange the lon and lat column names)."
        )
        return False
    if gdf.crs.is_geographic and (np.abs(b[[0, 2]]).max() > 180 or np.abs(b[[1, 3]]).max() > 90):
        problems.append(
            f"{where}: the CRS is geographic ({gdf.crs.to_string()}, degrees) but coordinates "
            f"reach {b.round(1).tolist()}, which look like metres. Set the layer's true projected "
            "CRS in the file or in region.toml."
        )
        return False
    if gdf.crs.is_projected and np.abs(b).max() < 360 and (b[2] - b[0]) < 5:
        problems.append(
            f"{where}: the CRS is projected ({gdf.crs.to_string()}, metres) but all coordinates "
            f'lie within {b.round(3).tolist()}, which look like degrees. Set crs = "EPSG:4326" '
            "for this layer in region.toml."
        )
        return False
    return True


# --------------------------------------------------------------------------------------------
# Region
# --------------------------------------------------------------------------------------------


def _layer_entry(entry: Any, name: str = "") -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and "path" in entry:
        opts = {k: v for k, v in entry.items() if k != "path"}
        return str(entry["path"]), opts
    key = f"[layers] {name}" if name else "a layer"
    raise InputDataError(
        f"region.toml: {key} must be a path or a table with 'path'; got {str(entry)[:80]!r}. "
        f'Write it as {name or "villages"} = "FILE" or {{path = "FILE", crs = "EPSG:4326"}}.'
    )


def load_region(path: str | os.PathLike[str]) -> Region:
    """Load and validate a region folder described by ``region.toml``.

    Parameters
    ----------
    path : str or path-like
        The region folder (or its ``region.toml``).

    Returns
    -------
    Region
        Every layer reprojected to the region's metric CRS, columns normalised and coerced.

    Raises
    ------
    InputDataError
        Listing every problem found, each naming the file, rows or column, what was expected,
        what was received and how to fix it.
    """
    toml_path, cfg = _read_region_toml(Path(path))
    layers_cfg = cfg.get("layers", {})
    root = toml_path.parent
    problems: list[str] = []
    warnings: list[str] = []
    raw, files = _read_layers(root, layers_cfg, problems)
    crs = _region_crs(toml_path, cfg, raw, problems)
    villages = raw.get("villages")
    if crs is not None and "crs" in cfg and isinstance(villages, gpd.GeoDataFrame):
        if not checks.check_region_crs(toml_path, crs, villages, problems, warnings):
            crs = None  # reported; reprojecting into it would only add noise
    out = _prepare_layers(raw, files, crs, problems, warnings)
    dem: xr.DataArray | None = None
    try:
        rel, _ = _layer_entry(layers_cfg["dem"], "dem")
        files["dem"] = root / rel
        dem = read_dem(files["dem"], crs)
    except InputDataError as exc:
        problems.extend(exc.problems)
    return _checked_region(cfg, root, crs, out, dem, files, problems, warnings)


def _checked_region(cfg, root, crs, out, dem, files, problems, warnings) -> Region:
    """Cross-check the prepared layers, raise every problem found, log the warnings, assemble
    (the end of :func:`load_region` and :func:`universal_service.io.memory.region_from_layers`)."""
    if "villages" in out and not problems:
        checks.cross_checks(out, dem, files, problems, warnings)
    if problems:
        raise InputDataError(problems)
    for w in warnings:
        log.warning("%s", w)
    region = _assemble(cfg, root, crs, out, dem)
    region.warnings.extend(warnings)
    return region


def _read_region_toml(path: Path) -> tuple[Path, dict[str, Any]]:
    """Read ``region.toml`` and check that its ``[layers]`` names every required layer."""
    toml_path = path if path.suffix == ".toml" else path / "region.toml"
    if not toml_path.exists():
        raise InputDataError(
            f"{toml_path}: not found. A region folder needs a region.toml naming its layers "
            "(see universal_service.io's docstring for the format)."
        )
    cfg = read_toml(toml_path)
    layers_cfg = cfg.get("layers", {})
    if not isinstance(layers_cfg, dict):
        raise InputDataError(
            f"{toml_path}: 'layers' must be a table naming each layer's file; got "
            f"{type(layers_cfg).__name__} {str(layers_cfg)[:80]!r}. Write a [layers] table with "
            'one line per layer: `villages = "villages.gpkg"`, `dem = "dem.tif"`, ...'
        )
    problems: list[str] = []
    for name, spec in LAYERS.items():
        if spec.required and name not in layers_cfg:
            problems.append(
                f"{toml_path}: [layers] has no '{name}' entry; add `{name} = \"FILE\"`."
            )
    if "dem" not in layers_cfg:
        problems.append(f"{toml_path}: [layers] has no 'dem' entry; add `dem = \"dem.tif\"`.")
    unknown = sorted(set(layers_cfg) - set(LAYERS) - {"dem"})
    if unknown:
        problems.append(
            f"{toml_path}: unknown layers {unknown}; known: {sorted([*LAYERS, 'dem'])}."
        )
    if problems:
        raise InputDataError(problems)
    return toml_path, cfg


def _read_layers(
    root: Path, layers_cfg: dict[str, Any], problems: list[str]
) -> tuple[dict[str, gpd.GeoDataFrame | pd.DataFrame], dict[str, Path]]:
    """Read every vector and table layer named in ``[layers]``, collecting read problems."""
    raw: dict[str, gpd.GeoDataFrame | pd.DataFrame] = {}
    files: dict[str, Path] = {}
    for name, spec in LAYERS.items():
        if name not in layers_cfg:
            continue
        rel, opts = _layer_entry(layers_cfg[name], name)
        files[name] = root / rel
        try:
            if spec.geometry == "none":
                raw[name] = read_table(files[name])
            else:
                raw[name] = read_vector(files[name], layer=opts.get("layer"), crs=opts.get("crs"))
        except InputDataError as exc:
            problems.extend(exc.problems)
    return raw, files


def _region_crs(
    toml_path: Path,
    cfg: dict[str, Any],
    raw: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    problems: list[str],
) -> pyproj.CRS | None:
    """The region's metric CRS: the one ``region.toml`` states, or the villages' UTM zone."""
    crs: pyproj.CRS | None = None
    if "crs" in cfg:
        try:
            crs = pyproj.CRS(cfg["crs"])
        except pyproj.exceptions.CRSError as exc:
            problems.append(
                f"{toml_path}: crs = {cfg['crs']!r} is not a CRS ({exc}). Use a projected CRS in "
                "metres, e.g. the UTM zone of the region (EPSG:326NN north, EPSG:327NN south)."
            )
        if crs is not None and not crs.is_projected:
            problems.append(
                f"{toml_path}: crs = {cfg['crs']!r} is geographic (degrees); the planner needs a "
                "projected CRS in metres, e.g. the UTM zone of the region (EPSG:326NN)."
            )
            crs = None
    elif isinstance(raw.get("villages"), gpd.GeoDataFrame) and len(raw["villages"]):
        crs = raw["villages"].estimate_utm_crs()
        log.info("region.toml has no crs; using %s", crs.to_string())
    return crs


def _prepare_layers(
    raw: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    files: dict[str, Path],
    crs: pyproj.CRS | None,
    problems: list[str],
    warnings: list[str],
) -> dict[str, Any]:
    """Check geometry and units, reproject to ``crs`` and coerce each layer to its schema."""
    out: dict[str, Any] = {}
    for name, spec in LAYERS.items():
        if name not in raw:
            continue
        where = files[name].name
        df = raw[name]
        if name in {"villages", "districts", "operators", "pops"} and len(df) == 0:
            problems.append(
                f"{where}: the layer is empty (no {name}); the planner needs at least one row. "
                "Check the file and the layer name in region.toml."
            )
            continue
        if isinstance(df, gpd.GeoDataFrame):
            _check_geometry(df, spec, where, problems)
            if spec.geometry == "polygon":
                df = checks.repair_polygons(df, where, problems, warnings)
            ok = _check_crs_units(df, where, problems)
            if ok and crs is not None and len(df):
                df = df.to_crs(crs)
        out[name] = _coerce(df, spec, where, problems)
    return out


def _assemble(
    cfg: dict[str, Any],
    root: Path,
    crs: pyproj.CRS | None,
    out: dict[str, Any],
    dem: xr.DataArray | None,
) -> Region:
    """The validated layers as a :class:`Region`, each sorted by its id."""
    empty_lines = gpd.GeoDataFrame({"geometry": gpd.GeoSeries([], crs=crs)}, crs=crs)
    return Region(
        name=str(cfg.get("name", root.name)),
        crs=crs,
        villages=out["villages"].sort_values("village_id").reset_index(drop=True),
        districts=out["districts"].sort_values("district_id").reset_index(drop=True),
        pops=out["pops"].sort_values("pop_id").reset_index(drop=True),
        towers=out.get("towers", _empty_points(crs, LAYERS["towers"])),
        roads=out.get("roads", empty_lines),
        operators=out["operators"].sort_values("operator_id").reset_index(drop=True),
        dem=dem,
        meta=dict(cfg.get("meta", {})),
        path=root,
    )


def _empty_points(crs: pyproj.CRS, spec: LayerSpec) -> gpd.GeoDataFrame:
    cols = {c.name: pd.Series([], dtype=object if c.kind == "str" else float) for c in spec.columns}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
