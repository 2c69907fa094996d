"""Viewshed: the cells of a DEM visible from an observer, by a ring sweep over a window."""

from __future__ import annotations

import numpy as np
import xarray as xr

from universal_service import los, terrain
from universal_service.errors import InputDataError

__all__ = ["viewshed"]


def viewshed(
    dem: xr.DataArray,
    x: float,
    y: float,
    *,
    observer_height_m: float,
    target_height_m: float,
    max_distance_m: float | None,
    k_factor: float = 4.0 / 3.0,
    earth_radius_m: float = los.EARTH_RADIUS_M,
) -> xr.DataArray:
    """Cells of the DEM from which a target is visible to an observer.

    The sweep of Wang, Robinson & White (2000), "Generating viewsheds without using sightlines",
    Photogrammetric Engineering & Remote Sensing 66(1), 87-90, with the "edge" interpolation of
    GDAL's ``gdal_viewshed``: cells are processed in square rings of growing Chebyshev distance r
    from the observer; each cell's horizon height is interpolated from the two cells of ring
    r - 1 that straddle its sight line and projected out by r / (r - 1); the target is visible
    when ``ground + target_height`` is at or above that horizon; the cell then carries
    ``max(ground, horizon)`` outward. Heights are relative to the observer's eye and lowered by
    ``d^2 / (2 k a)`` for earth curvature and refraction (GDAL ``-cc`` = 1/k). Each side of each
    ring is a few vectorised NumPy operations on views of the window.

    The 8 cells around the observer are always visible, as in current GDAL. GDAL 3.6 instead
    compares them with the observer's ground height, which hides the slopes just below a summit
    observer; that is the only difference found (agreement 99.06-99.998 % of in-range cells with
    GDAL 3.6.2 on SRTM, >= 99.997 % once that rule is mimicked).

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    x, y : float
        Observer position [m]; the observer stands on the cell containing it, at that cell's
        elevation.
    observer_height_m : float
        Eye (antenna) height above the ground [m].
    target_height_m : float
        Target height above the ground at every cell [m].
    max_distance_m : float or None
        Only cells whose centre is within this distance of the observer cell's centre are
        computed [m]; the rest are False. None: the whole DEM.
    k_factor : float
        Effective earth-radius factor [-]; ``np.inf`` for no curvature.
    earth_radius_m : float
        Earth radius [m] (GDAL uses the CRS ellipsoid's semi-major axis; 6 371 km here).

    Returns
    -------
    xarray.DataArray of bool
        Visibility on the DEM grid (same coordinates and CRS); nodata cells are False and do not
        block (the horizon is carried across them).

    Raises
    ------
    InputDataError
        If the observer is outside the DEM or on a nodata cell.
    """
    grid = terrain.dem_grid(dem)
    if not k_factor > 0:
        raise ValueError(f"k_factor must be > 0 (got {k_factor}); use np.inf for a flat earth")
    oi = int(np.floor((y - grid.y0) / grid.dy + 0.5))
    oj = int(np.floor((x - grid.x0) / grid.dx + 0.5))
    if not (0 <= oi < grid.ny and 0 <= oj < grid.nx):
        raise InputDataError(
            f"viewshed: observer ({x:.1f}, {y:.1f}) is outside the DEM; fix: pass a point "
            "inside the DEM extent, in the DEM's CRS"
        )
    z_obs = float(grid.z[oi, oj])
    if np.isnan(z_obs):
        raise InputDataError(
            f"viewshed: observer ({x:.1f}, {y:.1f}) stands on a nodata cell; fix: move it to "
            "a cell with elevation data or fill the DEM"
        )
    if max_distance_m is not None and not max_distance_m > 0:
        raise ValueError(f"max_distance_m must be > 0 or None (got {max_distance_m})")
    if max_distance_m is None:
        r0, r1, c0, c1 = 0, grid.ny - 1, 0, grid.nx - 1
        max_d2 = np.inf
    else:
        rr = int(np.floor(max_distance_m / abs(grid.dy) + 1e-9))
        rc = int(np.floor(max_distance_m / abs(grid.dx) + 1e-9))
        r0, r1 = max(oi - rr, 0), min(oi + rr, grid.ny - 1)
        c0, c1 = max(oj - rc, 0), min(oj + rc, grid.nx - 1)
        max_d2 = float(max_distance_m) ** 2
    window = grid.z[r0 : r1 + 1, c0 : c1 + 1].astype(np.float64)
    di = np.arange(r0, r1 + 1) - oi
    dj = np.arange(c0, c1 + 1) - oj
    visible = _viewshed_window(
        window,
        di,
        dj,
        dy=abs(grid.dy),
        dx=abs(grid.dx),
        eye_m=z_obs + observer_height_m,
        target_height_m=target_height_m,
        curvature_per_m2=1.0 / (2.0 * k_factor * earth_radius_m),
        max_d2=max_d2,
    )
    full = np.zeros((grid.ny, grid.nx), dtype=bool)
    full[r0 : r1 + 1, c0 : c1 + 1] = visible
    out = terrain.grid_array(dem, full, "viewshed", "1")
    out.attrs.update(
        observer_x_m=float(x),
        observer_y_m=float(y),
        observer_height_m=float(observer_height_m),
        target_height_m=float(target_height_m),
        max_distance_m=float(max_distance_m) if max_distance_m is not None else np.inf,
        k_factor=float(k_factor),
    )
    del out.attrs["units"]
    return out


def _viewshed_window(
    z: np.ndarray,
    di: np.ndarray,
    dj: np.ndarray,
    *,
    dy: float,
    dx: float,
    eye_m: float,
    target_height_m: float,
    curvature_per_m2: float,
    max_d2: float,
) -> np.ndarray:
    """Ring sweep on a window; ``di``/``dj`` are row/column offsets from the observer cell.

    Ring r is the square of cells at Chebyshev distance r. Its top and bottom rows and its left
    and right columns are contiguous slices of the window, and each cell's two predecessors (one
    step diagonally towards the observer, p1, and one step along the major axis, p2) are the
    matching slices of ring r - 1, shifted by one cell: so each side of a ring is a handful of
    vectorised operations on views, with no index arrays over the whole window. With the offset
    a along the side, the horizon is ``(H[p1] a + H[p2] (r - a)) / (r - 1)`` (GDAL
    CalcHeightEdge; CalcHeightLine on the axes and diagonals, where a = 0 or a = r).
    """
    nr, nc = z.shape
    pi = int(np.flatnonzero(di == 0)[0])
    pj = int(np.flatnonzero(dj == 0)[0])
    d2 = ((di * dy) ** 2)[:, None] + ((dj * dx) ** 2)[None, :]
    # Heights relative to the eye, lowered for curvature and refraction (GDAL adjustHeight).
    rel = z - eye_m - d2 * curvature_per_m2
    horizon = rel.copy()
    visible = np.zeros((nr, nc), dtype=bool)
    # The observer's cell and ring 1 are visible (as in current GDAL); a nodata cell of ring 1
    # carries the observer's ground height as its horizon.
    i0, i1, j0, j1 = max(pi - 1, 0), min(pi + 2, nr), max(pj - 1, 0), min(pj + 2, nc)
    block = rel[i0:i1, j0:j1]
    visible[i0:i1, j0:j1] = ~np.isnan(block)
    horizon[i0:i1, j0:j1] = np.where(np.isnan(block), rel[pi, pj], block)
    # Per row/column: offset magnitude and the index one step towards the observer.
    cols, rows = np.arange(nc), np.arange(nr)
    a_col = np.abs(cols - pj).astype(np.float64)
    a_row = np.abs(rows - pi).astype(np.float64)
    toward_col = cols - np.sign(cols - pj)
    toward_row = rows - np.sign(rows - pi)
    t = target_height_m

    def update(cur: np.ndarray, zr: np.ndarray, out_vis: np.ndarray, out_h: np.ndarray) -> None:
        out_vis[...] = cur + t >= zr
        out_h[...] = np.fmax(cur, zr)

    for r in range(2, max(pi, nr - 1 - pi, pj, nc - 1 - pj) + 1):
        inv = 1.0 / (r - 1)
        # Top and bottom rows (corners included): a = |dj|, p2 straight towards the observer.
        c_lo, c_hi = max(pj - r, 0), min(pj + r, nc - 1) + 1
        inner_lo, inner_hi = max(pj - r + 1, 0), min(pj + r - 1, nc - 1) + 1
        a = a_col[c_lo:c_hi]
        for row, prev in ((pi - r, pi - r + 1), (pi + r, pi + r - 1)):
            if not 0 <= row < nr:
                continue
            hp = horizon[prev]
            zr = hp[toward_col[c_lo:c_hi]] * a
            zr[inner_lo - c_lo : inner_hi - c_lo] += hp[inner_lo:inner_hi] * (
                r - a_col[inner_lo:inner_hi]
            )
            zr *= inv
            update(rel[row, c_lo:c_hi], zr, visible[row, c_lo:c_hi], horizon[row, c_lo:c_hi])
        # Left and right columns (corners excluded): a = |di|, p2 straight towards the observer.
        r_lo, r_hi = max(pi - r + 1, 0), min(pi + r - 1, nr - 1) + 1
        b = a_row[r_lo:r_hi]
        for col, prev in ((pj - r, pj - r + 1), (pj + r, pj + r - 1)):
            if not 0 <= col < nc:
                continue
            hp = horizon[:, prev]
            zr = (hp[toward_row[r_lo:r_hi]] * b + hp[r_lo:r_hi] * (r - b)) * inv
            update(rel[r_lo:r_hi, col], zr, visible[r_lo:r_hi, col], horizon[r_lo:r_hi, col])
    visible &= d2 <= max_d2
    return visible
