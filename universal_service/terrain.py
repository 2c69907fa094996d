"""Terrain: DEM loading and checking, bilinear sampling, Horn slope, local relief and hilltops.

A DEM here is an :class:`xarray.DataArray` with dims ``("y", "x")``, 1-D evenly spaced coordinates
at cell centres in a projected CRS whose unit is the metre (``dem.rio.crs``), elevation in metres
and NaN for nodata; ``y`` may be ascending or descending. :func:`check_dem` enforces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor that check_dem reads)
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from universal_service import io
from universal_service.errors import InputDataError

__all__ = [
    "Grid",
    "bilinear",
    "check_dem",
    "dem_grid",
    "grid_array",
    "hilltops",
    "horn_slope_deg",
    "load_dem",
    "local_relief",
    "sample",
    "slope_deg",
]

_METRE_UNITS = frozenset({"metre", "meter", "m", "metres", "meters"})


# ---------------------------------------------------------------------------------------------
# The DEM grid
# ---------------------------------------------------------------------------------------------


def _regular_step(coord: np.ndarray, axis: str, name: str) -> float:
    """Signed step between the cell centres of one axis, or InputDataError if uneven."""
    if coord.ndim != 1 or coord.size < 2:
        raise InputDataError(
            f"{name}: coordinate {axis!r}: expected a 1-D coordinate with at least 2 cells, "
            f"received shape {coord.shape}; fix: pass a raster of at least 2 x 2 cells"
        )
    steps = np.diff(coord)
    step = float(steps.mean())
    if step == 0 or not np.allclose(steps, step, rtol=1e-6, atol=1e-6 * abs(step)):
        raise InputDataError(
            f"{name}: coordinate {axis!r}: expected evenly spaced cell centres, received steps "
            f"from {steps.min():g} to {steps.max():g} m; fix: resample the DEM to a regular grid"
        )
    return step


def check_dem(dem: xr.DataArray, name: str = "dem") -> xr.DataArray:
    """Check an in-memory DEM grid against the convention of this module and return it.

    The one DEM check for grids already in memory (files go through :func:`load_dem`, which
    calls it after reading). A DEM must be an :class:`xarray.DataArray` whose dims are ``y`` and
    ``x`` once any length-1 dimension (a raster band) is squeezed, with 1-D, evenly spaced
    cell-centre coordinates of at least 2 cells each; when a CRS is set (``dem.rio.crs``) it must
    be projected with metre units. Coordinates may ascend or descend.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation [m] (or any other field on a DEM grid, such as a slope).
    name : str
        What the grid is, for the error message (``"dem"``, ``"slope"``, a file name).

    Returns
    -------
    xarray.DataArray
        The same grid with dims ``("y", "x")``: ``dem`` itself when it already has them,
        otherwise squeezed and transposed.

    Raises
    ------
    InputDataError
        Naming ``name``, what was expected, what was received and the fix: not a DataArray,
        other dims than ``y`` and ``x`` (besides length-1 ones), fewer than 2 cells or uneven
        spacing along an axis, or a geographic or non-metre CRS.
    """
    if not isinstance(dem, xr.DataArray):
        raise InputDataError(
            f"{name}: expected an xarray.DataArray, received {type(dem).__name__}; "
            "fix: read it with terrain.load_dem(path)"
        )
    extra = [d for d in dem.dims if d not in ("y", "x")]
    if set(dem.dims) - set(extra) != {"y", "x"} or any(dem.sizes[d] != 1 for d in extra):
        raise InputDataError(
            f"{name}: expected dims ('y', 'x') (a length-1 band is dropped), received dims "
            f"{tuple(dem.dims)} with sizes {dict(dem.sizes)}; fix: select one band and name "
            "the axes 'y' and 'x'"
        )
    if extra:
        dem = dem.squeeze(extra, drop=True)
    if dem.dims != ("y", "x"):
        dem = dem.transpose("y", "x")
    _regular_step(np.asarray(dem["x"].values, dtype=float), "x", name)
    _regular_step(np.asarray(dem["y"].values, dtype=float), "y", name)
    crs = dem.rio.crs
    if crs is not None:
        own = pyproj.CRS(crs)
        units = (own.axis_info[0].unit_name if own.axis_info else "").lower()
        if own.is_geographic or units not in _METRE_UNITS:
            raise InputDataError(
                f"{name}: expected a projected CRS in metres, received {own.to_string()} "
                f"(units {units or 'degrees'}); fix: reproject to a metric CRS, e.g. "
                "dem.rio.reproject('EPSG:32648')"
            )
    return dem


class Grid(NamedTuple):
    """A checked DEM's values and cell-centre geometry, for array-level code."""

    z: np.ndarray  #: (ny, nx) elevation [m], NaN for nodata
    x0: float  #: x of the centre of column 0 [m]
    y0: float  #: y of the centre of row 0 [m]
    dx: float  #: signed step between columns [m]
    dy: float  #: signed step between rows [m] (negative when y descends)

    @property
    def ny(self) -> int:
        """Number of rows."""
        return self.z.shape[0]

    @property
    def nx(self) -> int:
        """Number of columns."""
        return self.z.shape[1]

    @property
    def resolution_m(self) -> float:
        """The smaller cell side [m]."""
        return float(min(abs(self.dx), abs(self.dy)))


def dem_grid(dem: xr.DataArray) -> Grid:
    """Check a DEM (:func:`check_dem`) and extract its values and cell-centre geometry.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].

    Returns
    -------
    Grid
        Values as a floating array (integers are converted to float64) and the grid geometry [m].
    """
    dem = check_dem(dem)
    x = np.asarray(dem["x"].values, dtype=float)
    y = np.asarray(dem["y"].values, dtype=float)
    z = np.asarray(dem.values)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    dx, dy = float(np.diff(x).mean()), float(np.diff(y).mean())
    return Grid(z=z, x0=float(x[0]), y0=float(y[0]), dx=dx, dy=dy)


def load_dem(path: str | Path) -> xr.DataArray:
    """Read a DEM from a GeoTIFF (or any GDAL raster) or a netCDF file.

    The band dimension is squeezed, nodata becomes NaN, values become float32 (16-bit and float32
    sources) or float64, and the CRS must be projected with metre units.

    Parameters
    ----------
    path : str or pathlib.Path
        Raster file. netCDF files (``.nc``) must hold one elevation variable (or one named
        ``dem``, ``elevation``, ``z`` or ``band_data``) with a CF grid mapping.

    Returns
    -------
    xarray.DataArray
        Elevation [m] with dims ``("y", "x")`` and ``.rio.crs`` set.

    Raises
    ------
    InputDataError
        If the file is missing, has no CRS, a geographic or non-metre CRS, or an irregular grid.
    """
    path = Path(path)
    return check_dem(io.read_dem(path), name=str(path))


# ---------------------------------------------------------------------------------------------
# Sampling and surface derivatives
# ---------------------------------------------------------------------------------------------


def bilinear(grid: Grid, x_m: np.ndarray, y_m: np.ndarray) -> NDArray[np.float64]:
    """Bilinear interpolation on a grid (the array-level kernel of :func:`sample`).

    Parameters
    ----------
    grid : Grid
        Values and geometry (:func:`dem_grid`).
    x_m, y_m : numpy.ndarray
        Point coordinates [m], of one shape.

    Returns
    -------
    numpy.ndarray
        Values at the points, in their shape; see :func:`sample` for the edges and nodata.
    """
    fi = (y_m - grid.y0) / grid.dy
    fj = (x_m - grid.x0) / grid.dx
    ny, nx = grid.ny, grid.nx
    # Inside the raster extent (cell edges), including the half-cell border around the centres.
    inside = (fi >= -0.5) & (fi <= ny - 0.5) & (fj >= -0.5) & (fj <= nx - 0.5)
    fi = np.clip(np.where(inside, fi, 0.0), 0.0, ny - 1.0)
    fj = np.clip(np.where(inside, fj, 0.0), 0.0, nx - 1.0)
    i0 = np.minimum(np.floor(fi).astype(np.intp), max(ny - 2, 0))
    j0 = np.minimum(np.floor(fj).astype(np.intp), max(nx - 2, 0))
    t = fi - i0
    u = fj - j0
    i1 = np.minimum(i0 + 1, ny - 1)
    j1 = np.minimum(j0 + 1, nx - 1)
    z = grid.z
    out = np.zeros(np.shape(fi))
    bad = ~inside
    for ii, jj, w in (
        (i0, j0, (1 - t) * (1 - u)),
        (i0, j1, (1 - t) * u),
        (i1, j0, t * (1 - u)),
        (i1, j1, t * u),
    ):
        v = z[ii, jj]
        nan = np.isnan(v)
        bad |= nan & (w > 0)
        out += np.where(nan, 0.0, v) * w
    out[bad] = np.nan
    return out


def sample(dem: xr.DataArray, x_m: ArrayLike, y_m: ArrayLike) -> NDArray[np.float64]:
    """Bilinear elevation at arbitrary points.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM (see module docstring).
    x_m, y_m : array_like
        Point coordinates in the DEM's CRS [m]; broadcast against each other.

    Returns
    -------
    numpy.ndarray
        Elevation [m], NaN outside the raster extent and where a cell that contributes to the
        interpolation is nodata. Between the outermost cell centres and the raster edge the
        value is extrapolated as constant (edge cells).
    """
    grid = dem_grid(dem)
    x, y = np.broadcast_arrays(np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float))
    return bilinear(grid, x, y)


def horn_slope_deg(z: np.ndarray, dx_m: float, dy_m: float) -> NDArray[np.float64]:
    """Slope of a gridded surface by Horn's third-order finite difference.

    ``dz/dx = ((c + 2f + i) - (a + 2d + g)) / (8 dx)``, ``dz/dy = ((g + 2h + i) - (a + 2b + c)) /
    (8 dy)`` over the 3 x 3 window ``a b c / d e f / g h i``, slope ``= atan(hypot(dz/dx, dz/dy))``
    (Horn, B. K. P., 1981, "Hill shading and the reflectance map", Proc. IEEE 69(1), 14-47;
    the same weights as GDAL ``gdaldem slope`` default). Border cells use an odd reflection of
    the surface (a linear extrapolation), so a plane keeps its slope up to the edge.

    Parameters
    ----------
    z : numpy.ndarray
        Elevation [m] on a regular grid, shape (rows, cols), NaN for nodata.
    dx_m, dy_m : float
        Cell sides along the columns and the rows [m]; the sign is ignored.

    Returns
    -------
    numpy.ndarray
        float64 slope [degrees] of the shape of ``z``; NaN where one of the 8 neighbours is
        nodata (the centre cell does not enter the formula).
    """
    z = np.asarray(z)
    out = np.empty(z.shape, dtype=np.float64)
    rows = max(1, _SLOPE_BLOCK_CELLS // max(z.shape[1], 1))
    for r0 in range(0, z.shape[0], rows):  # row blocks: the temporaries stay small and warm
        r1 = min(r0 + rows, z.shape[0])
        out[r0:r1] = _horn_rows(z, r0, r1, dx_m, dy_m)
    return out


#: Cells of one row block of :func:`horn_slope_deg` (about 2 MB of float64 per temporary).
_SLOPE_BLOCK_CELLS = 1 << 18


def _horn_rows(z: np.ndarray, r0: int, r1: int, dx_m: float, dy_m: float) -> np.ndarray:
    """Horn slope [degrees] of rows ``r0:r1`` of ``z``, as if ``z`` were padded by one cell
    with ``np.pad(mode="reflect", reflect_type="odd")`` (a linear extrapolation)."""
    lo, hi = max(r0 - 1, 0), min(r1 + 1, z.shape[0])
    block = np.asarray(z[lo:hi], dtype=np.float64)
    top = r0 == 0
    bottom = r1 == z.shape[0]
    # pad the rows the block lacks at the grid's edges, then one column each side, as np.pad
    # does on the whole grid: odd reflection about the edge cell
    if top or bottom:
        block = np.pad(block, ((int(top), int(bottom)), (0, 0)), mode="reflect", reflect_type="odd")
    zp = np.pad(block, ((0, 0), (1, 1)), mode="reflect", reflect_type="odd")
    # With the 3 x 3 window  a b c / d e f / g h i :
    # dz/dx = ((c + 2f + i) - (a + 2d + g)) / 8dx, dz/dy = ((g + 2h + i) - (a + 2b + c)) / 8dy,
    # summed as weighted sums of column (row) differences
    across = zp[:, 2:] - zp[:, :-2]
    dzdx = across[:-2] + across[2:]
    dzdx += 2 * across[1:-1]
    down = zp[2:, :] - zp[:-2, :]
    dzdy = down[:, :-2] + down[:, 2:]
    dzdy += 2 * down[:, 1:-1]
    dzdx /= 8.0 * abs(dx_m)
    dzdy /= 8.0 * abs(dy_m)
    slope = np.hypot(dzdx, dzdy, out=dzdx)
    np.arctan(slope, out=slope)
    return np.degrees(slope, out=slope)


def slope_deg(dem: xr.DataArray) -> xr.DataArray:
    """Terrain slope of a DEM by Horn's method (:func:`horn_slope_deg`).

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].

    Returns
    -------
    xarray.DataArray
        float32 slope [degrees] on the DEM grid; border cells use a linear extrapolation of the
        DEM, cells with a nodata neighbour are NaN.
    """
    grid = dem_grid(dem)
    slope = horn_slope_deg(grid.z, grid.dx, grid.dy)
    return grid_array(dem, slope.astype(np.float32), "slope", "degree")


def _window_cells(grid: Grid, window_m: float) -> tuple[int, int]:
    """Window size in cells (rows, cols): the nearest whole number of cells, made odd, >= 3."""

    def cells(step: float) -> int:
        n = max(int(np.floor(window_m / abs(step) + 0.5)), 3)
        return n if n % 2 else n + 1

    return cells(grid.dy), cells(grid.dx)


def local_relief(dem: xr.DataArray, *, window_m: float = 1_000.0) -> xr.DataArray:
    """Local relief: maximum minus minimum elevation in a square window around each cell.

    A standard roughness measure (e.g. Evans, I. S., 1972, "General geomorphometry, derivatives of
    altitude, and descriptive statistics", in Chorley (ed.) Spatial Analysis in Geomorphology,
    pp. 17-90). Nodata cells are ignored inside the window and stay NaN themselves.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    window_m : float
        Side of the square window [m]; rounded to a whole, odd number of cells (at least 3).

    Returns
    -------
    xarray.DataArray
        Relief [m] on the DEM grid.
    """
    grid = dem_grid(dem)
    size = _window_cells(grid, window_m)
    z = grid.z.astype(np.float64)
    nan = np.isnan(z)
    zmax = ndimage.maximum_filter(np.where(nan, -np.inf, z), size=size, mode="nearest")
    zmin = ndimage.minimum_filter(np.where(nan, np.inf, z), size=size, mode="nearest")
    relief = np.where(nan, np.nan, zmax - zmin)
    return grid_array(dem, relief.astype(np.float32), "local_relief", "m")


def grid_array(dem: xr.DataArray, values: np.ndarray, name: str, units: str) -> xr.DataArray:
    """A new DataArray of values on a DEM's grid and CRS.

    Parameters
    ----------
    dem : xarray.DataArray
        The DEM whose ``y``/``x`` coordinates and CRS the result takes.
    values : numpy.ndarray
        Values of shape (y, x).
    name : str
        Name of the result.
    units : str
        Its ``units`` attribute.

    Returns
    -------
    xarray.DataArray
        Dims ``("y", "x")``, only the ``y`` and ``x`` coordinates, and the DEM's CRS if it has one.
    """
    out = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": dem["y"].values, "x": dem["x"].values},
        name=name,
        attrs={"units": units},
    )
    crs = dem.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


def hilltops(
    dem: xr.DataArray,
    *,
    window_m: float = 2_000.0,
    min_prominence_m: float = 50.0,
    max_n: int | None = None,
) -> pd.DataFrame:
    """Local maxima of the DEM as candidate tower sites.

    A cell is a hilltop when it is the highest cell of the square window of side ``window_m``
    centred on it; a flat top (several equal maxima touching each other) counts once. Its
    ``prominence`` is a local one: the elevation minus the lowest elevation in the same window
    (the drop to the surroundings), not the topographic prominence to the key col, which needs a
    global search. Non-maximum suppression with a fixed window is the usual peak detector for
    rasters (e.g. ``skimage.feature.peak_local_max``).

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    window_m : float
        Side of the search window [m]: two hilltops are at least about ``window_m / 2`` apart.
    min_prominence_m : float
        Keep hilltops whose local prominence is at least this [m].
    max_n : int, optional
        Keep the ``max_n`` most prominent.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y`` (cell centre in the DEM CRS [m]), ``elevation_m`` [m] and
        ``prominence`` [m], sorted by decreasing prominence then elevation.
    """
    grid = dem_grid(dem)
    size = _window_cells(grid, window_m)
    z = grid.z.astype(np.float64)
    nan = np.isnan(z)
    zmax = ndimage.maximum_filter(np.where(nan, -np.inf, z), size=size, mode="nearest")
    zmin = ndimage.minimum_filter(np.where(nan, np.inf, z), size=size, mode="nearest")
    peak = (z == zmax) & ~nan
    labels, n = ndimage.label(peak, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype=float) for c in ("x", "y", "elevation_m", "prominence")}
        )
    flat = labels.ravel()
    _, first = np.unique(flat, return_index=True)
    first = first[flat[first] > 0]  # one cell per connected flat top
    rows, cols = np.unravel_index(first, z.shape)
    elev = z[rows, cols]
    prom = elev - zmin[rows, cols]
    df = pd.DataFrame(
        {
            "x": grid.x0 + cols * grid.dx,
            "y": grid.y0 + rows * grid.dy,
            "elevation_m": elev,
            "prominence": prom,
        }
    )
    df = df[df["prominence"] >= min_prominence_m]
    df = df.sort_values(["prominence", "elevation_m"], ascending=False, kind="stable")
    if max_n is not None:
        df = df.head(max_n)
    return df.reset_index(drop=True)
