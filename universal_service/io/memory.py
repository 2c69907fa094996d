"""A region built from layers held in memory, checked exactly as a region folder is.

:func:`universal_service.io.load_region` reads files, then checks, reprojects and coerces the
layers and cross-checks them; :func:`region_from_layers` runs the same checks on layers a
program has built (the county builder of the national run), without writing and reading files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from ..errors import InputDataError
from . import _checked_region, _prepare_layers, normalise_columns
from .checks import dem_array

log = logging.getLogger(__name__)


def dem_from_grid(z: np.ndarray, transform: Any, crs: pyproj.CRS) -> xr.DataArray:
    """An elevation grid [m] and its affine transform as the DataArray a GeoTIFF of them reads as.

    Parameters
    ----------
    z : numpy.ndarray
        Elevation [m], rows from north to south, NaN for nodata.
    transform : affine.Affine
        Cell corners: ``x = c + a x column``, ``y = f + e x row`` (``e`` < 0), no rotation.
    crs : pyproj.CRS

    Returns
    -------
    xarray.DataArray
        Dims ``(y, x)`` at cell centres, float32, with the CRS written through rioxarray.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    ny, nx = z.shape
    x = transform.c + transform.a * (np.arange(nx) + 0.5)
    y = transform.f + transform.e * (np.arange(ny) + 0.5)
    da = xr.DataArray(np.asarray(z, dtype=np.float32), dims=("y", "x"), coords={"y": y, "x": x})
    return da.rio.write_crs(crs)


def region_from_layers(
    name: str,
    crs: pyproj.CRS,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    dem: xr.DataArray,
    *,
    meta: dict[str, Any] | None = None,
    where: str | Path = "memory",
) -> Any:
    """A :class:`universal_service.io.Region` from layers in memory, checked like a folder's.

    Parameters
    ----------
    name : str
        The region's name.
    crs : pyproj.CRS
        Its metric CRS; layers in another CRS are reprojected.
    layers : dict
        ``villages``, ``districts``, ``pops``, ``operators`` and optionally ``towers`` and
        ``roads``, with the columns of :data:`universal_service.schema.LAYERS`.
    dem : xarray.DataArray
        Elevation [m] (:func:`dem_from_grid`), checked by :func:`universal_service.io.checks.dem_array`.
    meta : dict, optional
        The region's ``[meta]`` (what is derived or synthetic, and how).
    where : str or path-like
        Names the region in messages (``<last part of where>: villages, row 3: ...``).

    Returns
    -------
    Region

    Raises
    ------
    InputDataError
        Every problem found, as :func:`universal_service.io.load_region` reports them.
    """
    root = Path(where)
    problems: list[str] = []
    warnings: list[str] = []
    raw = {
        k: (v.copy() if isinstance(v, gpd.GeoDataFrame) else normalise_columns(v.copy()))
        for k, v in layers.items()
    }
    # messages name a layer as "<where's last part>: villages, row 3: ..." (a file's by its name)
    files = {k: Path(f"{root.name}: {k}") for k in [*raw, "dem"]}
    out = _prepare_layers(raw, files, crs, problems, warnings)
    try:
        checked = dem_array(dem, files["dem"], crs)
    except InputDataError as exc:
        problems.extend(exc.problems)
        checked = None
    cfg = {"name": name, "meta": dict(meta or {})}
    return _checked_region(cfg, root, crs, out, checked, files, problems, warnings)
