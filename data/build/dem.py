"""The 90 m DEM: cubic-spline trend of the 12 km relief plus calibrated seeded detail."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import Affine
from scipy import ndimage

from . import region

#: DEM cell size [m] and buffer around the 12 counties [m] (project brief: 90 m, ~5 km).
DEM_CELL_M = 90.0
DEM_BUFFER_M = 5_000.0
DEM_NODATA = -32768
#: Target median local relief of the 90 m surface over the 12 counties [m]: the median of
#: max - min elevation in 11 x 11-cell (0.99 km x 0.99 km, i.e. about 1 km^2) windows.
#: Source: Chen, Ng, Zhang & Tian (eds.), Dictionary of Geotourism, Springer 2020, entry
#: "Libo Peak Cluster Landscape, Guizhou" (doi:10.1007/978-981-13-2538-0_1394): cone peaks rise
#: 100-250 m and the height difference between peak and depression is "generally 180-300 m".
#: Libo (522722) is one of the 12 counties. We take 200 m, the low end, as the prefecture-wide
#: median because the northern counties are plateau hills rather than peak clusters; the detail
#: amplitude is modulated by the coarse relief (see ``relief_modulation``) so the south is rougher.
RELIEF_TARGET_M = 200.0
RELIEF_WINDOW_CELLS = 11
#: Spectral exponent of the synthetic detail: power spectral density ~ k^-beta (2-D), beta = 3
#: corresponds to a fractional Brownian surface with Hurst exponent H = 0.5 (beta = 2H + 2),
#: within the range reported for natural topography (assumption, stated in data/README.md).
DETAIL_BETA = 3.0
#: Wavelength above which the detail is tapered off [m]: the trend carries scales above ~2 cells
#: of the 12 km grid, the detail only what that grid cannot resolve.
DETAIL_CUTOFF_M = 8_000.0
#: Plausibility bounds of the final surface [m]. Qiannan spans roughly 250 m (Hongshui river,
#: Luodian) to about 1,960 m (Doupeng shan); values are soft-floored at ELEV_FLOOR_M.
ELEV_FLOOR_M = 240.0

#: How the DEM is made, as written to its GeoTIFF tags and to ``region.toml``.
METHOD = (
    "trend: dem/china_12km.tif (0.117 deg, from github zengxing358/webgis data/dem.tif, origin "
    "unstated) evaluated at each 90 m UTM 48N cell centre by interpolating cubic B-spline "
    "(scipy.ndimage.map_coordinates order 3); detail: seeded spectral 1/f^beta surface "
    f"(beta={DETAIL_BETA}, wavelengths above {DETAIL_CUTOFF_M:.0f} m tapered), amplitude "
    "modulated by the 12 km grid's 3x3 roughness (clipped 0.5-1.6) and scaled so the median "
    f"max-min relief in {RELIEF_WINDOW_CELLS}x{RELIEF_WINDOW_CELLS}-cell (~1 km2) windows over "
    f"the 12 counties is {RELIEF_TARGET_M:.0f} m (Libo peak-cluster relief 180-300 m, "
    f"Dictionary of Geotourism 2020); soft floor at {ELEV_FLOOR_M:.0f} m"
)
#: Where the trend comes from (its origin is not stated upstream).
TREND_SOURCE = "zengxing358/webgis data/dem.tif (origin not stated)"


def dem_grid(
    counties_utm: gpd.GeoDataFrame, cell_m: float = DEM_CELL_M, buffer_m: float = DEM_BUFFER_M
) -> tuple[Affine, tuple[int, int]]:
    """Grid of the DEM: the counties' bounds plus a buffer, snapped outward to whole cells.

    Parameters
    ----------
    counties_utm : geopandas.GeoDataFrame
        County polygons in the metric CRS.
    cell_m : float
        Cell size. [m]
    buffer_m : float
        Margin around the counties' bounding box. [m]

    Returns
    -------
    tuple
        The affine transform (north-up) and the grid shape ``(rows, cols)``.
    """
    xmin, ymin, xmax, ymax = counties_utm.total_bounds
    xmin = np.floor((xmin - buffer_m) / cell_m) * cell_m
    ymin = np.floor((ymin - buffer_m) / cell_m) * cell_m
    xmax = np.ceil((xmax + buffer_m) / cell_m) * cell_m
    ymax = np.ceil((ymax + buffer_m) / cell_m) * cell_m
    shape = (round((ymax - ymin) / cell_m), round((xmax - xmin) / cell_m))
    return Affine(cell_m, 0.0, xmin, 0.0, -cell_m, ymax), shape


def _cell_lonlat(transform: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude and latitude of every cell centre of a metric grid. [degrees]"""
    rows, cols = shape
    xs = transform.c + transform.a * (np.arange(cols) + 0.5)
    ys = transform.f + transform.e * (np.arange(rows) + 0.5)
    xx, yy = np.meshgrid(xs, ys)
    to_geo = Transformer.from_crs(region.METRIC_CRS, region.GEO_CRS, always_xy=True)
    lon, lat = to_geo.transform(xx, yy)
    return np.asarray(lon), np.asarray(lat)


def read_coarse_dem(path: Path, lonlat_bounds: tuple[float, float, float, float]) -> tuple:
    """Read a window of the 12 km DEM around ``lonlat_bounds`` with a 3-cell margin.

    Parameters
    ----------
    path : pathlib.Path
        ``dem/china_12km.tif`` (EPSG:4326, int16 metres).
    lonlat_bounds : tuple of float
        ``(west, south, east, north)``. [degrees]

    Returns
    -------
    tuple
        The elevation window as float64 [m] (nodata must be absent) and its affine transform.
    """
    with rasterio.open(path) as src:
        win = rasterio.windows.from_bounds(*lonlat_bounds, transform=src.transform)
        win = win.round_offsets().round_lengths()
        win = rasterio.windows.Window(
            win.col_off - 3, win.row_off - 3, win.width + 7, win.height + 7
        )
        arr = src.read(1, window=win).astype(float)
        if src.nodata is not None and np.any(arr == src.nodata):
            raise ValueError(f"{path}: nodata inside the region window {lonlat_bounds}")
        return arr, src.window_transform(win)


def trend_surface(
    coarse: np.ndarray, coarse_transform: Affine, lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """Interpolate the coarse DEM smoothly at the given points (interpolating cubic B-spline).

    Parameters
    ----------
    coarse : numpy.ndarray
        Coarse elevation grid. [m]
    coarse_transform : affine.Affine
        Its transform (EPSG:4326, degrees).
    lon, lat : numpy.ndarray
        Points to evaluate. [degrees]

    Returns
    -------
    numpy.ndarray
        Elevation at the points, same shape as ``lon``. [m]
    """
    col = (lon - coarse_transform.c) / coarse_transform.a - 0.5
    row = (lat - coarse_transform.f) / coarse_transform.e - 0.5
    return ndimage.map_coordinates(coarse, [row, col], order=3, mode="nearest")


def spectral_detail(
    shape: tuple[int, int],
    cell_m: float,
    rng: np.random.Generator,
    beta: float = DETAIL_BETA,
    cutoff_m: float = DETAIL_CUTOFF_M,
) -> np.ndarray:
    """Seeded fractal (power-law) surface with unit standard deviation, long waves removed.

    White Gaussian noise is filtered in the Fourier domain by ``k^(-beta/2) * (1 - exp(-(k/kc)^2))``
    with ``kc = 1/cutoff_m``: a 1/f^beta surface whose wavelengths above ``cutoff_m`` are tapered
    off, so the detail adds relief the coarse trend cannot hold without shifting its mean.

    Parameters
    ----------
    shape : tuple of int
        Grid shape ``(rows, cols)``.
    cell_m : float
        Cell size. [m]
    rng : numpy.random.Generator
        Seeded generator (the only source of randomness).
    beta : float
        Exponent of the 2-D power spectral density. [-]
    cutoff_m : float
        Taper wavelength. [m]

    Returns
    -------
    numpy.ndarray
        float64 field of mean 0 and standard deviation 1. [-]
    """
    noise = rng.standard_normal(shape)
    spec = np.fft.rfft2(noise)
    ky = np.fft.fftfreq(shape[0], d=cell_m)
    kx = np.fft.rfftfreq(shape[1], d=cell_m)
    k = np.hypot(ky[:, None], kx[None, :])
    with np.errstate(divide="ignore"):
        amp = np.where(k > 0, k ** (-beta / 2.0), 0.0)
    amp *= 1.0 - np.exp(-((k * cutoff_m) ** 2))
    field = np.fft.irfft2(spec * amp, s=shape)
    field -= field.mean()
    return field / field.std()


def relief_modulation(
    coarse: np.ndarray, coarse_transform: Affine, lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """Relative roughness of the coarse DEM, used to vary the detail amplitude in space.

    The standard deviation of the 12 km DEM in 3 x 3 windows (about 36 km) measures how dissected
    the land is (peak clusters and gorges in the south, plateau in the north). It is interpolated
    bilinearly to the points, divided by its median over the points and clipped to [0.5, 1.6].

    Parameters
    ----------
    coarse : numpy.ndarray
        Coarse elevation grid. [m]
    coarse_transform : affine.Affine
        Its transform (degrees).
    lon, lat : numpy.ndarray
        Points to evaluate. [degrees]

    Returns
    -------
    numpy.ndarray
        Multiplier of the detail amplitude at the points. [-]
    """
    mean = ndimage.uniform_filter(coarse, size=3, mode="nearest")
    sq = ndimage.uniform_filter(coarse**2, size=3, mode="nearest")
    rough = np.sqrt(np.maximum(sq - mean**2, 0.0))
    col = (lon - coarse_transform.c) / coarse_transform.a - 0.5
    row = (lat - coarse_transform.f) / coarse_transform.e - 0.5
    field = ndimage.map_coordinates(rough, [row, col], order=1, mode="nearest")
    return np.clip(field / np.median(field), 0.5, 1.6)


def _window_relief(z: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Max - min of ``z`` in ``size`` x ``size`` windows centred on (rows, cols). [m]"""
    half = size // 2
    d = np.arange(-half, half + 1)
    patches = z[rows[:, None, None] + d[None, :, None], cols[:, None, None] + d[None, None, :]]
    return patches.max(axis=(1, 2)) - patches.min(axis=(1, 2))


def calibrate_detail_scale(
    trend: np.ndarray,
    detail: np.ndarray,
    inside: np.ndarray,
    rng: np.random.Generator,
    target_m: float = RELIEF_TARGET_M,
    window: int = RELIEF_WINDOW_CELLS,
    n_windows: int = 20_000,
) -> float:
    """Scale of the detail so the median local relief of ``trend + scale * detail`` hits a target.

    Parameters
    ----------
    trend : numpy.ndarray
        Smooth trend surface. [m]
    detail : numpy.ndarray
        Modulated unit detail. [-]
    inside : numpy.ndarray of bool
        Cells inside the counties, where the median is taken.
    rng : numpy.random.Generator
        Seeded generator choosing the sample windows.
    target_m : float
        Target median relief. [m]
    window : int
        Window size in cells.
    n_windows : int
        Number of sample windows.

    Returns
    -------
    float
        The scale [m] found by bisection (relief grows monotonically with it).
    """
    half = window // 2
    ok = inside.copy()
    ok[:half, :] = ok[-half:, :] = False
    ok[:, :half] = ok[:, -half:] = False
    flat = np.flatnonzero(ok)
    pick = np.sort(rng.choice(flat, size=min(n_windows, flat.size), replace=False))
    rows, cols = np.unravel_index(pick, inside.shape)
    d = np.arange(-half, half + 1)
    idx = (rows[:, None, None] + d[None, :, None], cols[:, None, None] + d[None, None, :])
    t_p, d_p = trend[idx], detail[idx]

    def median_relief(scale: float) -> float:
        z = t_p + scale * d_p
        return float(np.median(z.max(axis=(1, 2)) - z.min(axis=(1, 2))))

    lo, hi = 0.0, 1.0
    while median_relief(hi) < target_m:
        hi *= 2.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if median_relief(mid) < target_m else (lo, mid)
    return 0.5 * (lo + hi)


def soft_floor(z: np.ndarray, floor_m: float = ELEV_FLOOR_M, width_m: float = 60.0) -> np.ndarray:
    """Bend elevations below ``floor_m + width_m`` smoothly so none falls below ``floor_m``.

    ``z' = floor + width * log(1 + exp((z - floor) / width))``: the change is below 0.5 m once
    ``z > floor + 5 width`` and vanishes quickly above.

    Parameters
    ----------
    z : numpy.ndarray
        Elevation. [m]
    floor_m : float
        Lowest allowed elevation. [m]
    width_m : float
        Width of the transition. [m]

    Returns
    -------
    numpy.ndarray
        Elevation, strictly above ``floor_m``. [m]
    """
    return floor_m + width_m * np.logaddexp(0.0, (z - floor_m) / width_m)


def build_dem(
    shared: Path, counties: gpd.GeoDataFrame, seed: int = region.SEED
) -> tuple[np.ndarray, Affine, dict]:
    """Build the 90 m DEM: cubic-spline trend of the 12 km relief plus calibrated fractal detail.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder.
    counties : geopandas.GeoDataFrame
        County polygons in WGS84.
    seed : int
        Base seed.

    Returns
    -------
    tuple
        int16 elevation grid [m], its transform (EPSG:32648) and a dict of build facts for metadata.
    """
    counties_utm = counties.to_crs(region.METRIC_CRS)
    transform, shape = dem_grid(counties_utm)
    lon, lat = _cell_lonlat(transform, shape)
    bounds = (lon.min(), lat.min(), lon.max(), lat.max())
    coarse, coarse_t = read_coarse_dem(shared / "dem" / "china_12km.tif", bounds)
    trend = trend_surface(coarse, coarse_t, lon, lat)
    modulation = relief_modulation(coarse, coarse_t, lon, lat)
    del lon, lat
    rng = np.random.default_rng([seed, region.STREAM_DEM])
    detail = spectral_detail(shape, DEM_CELL_M, rng) * modulation
    inside = rasterize(
        [(g, 1) for g in counties_utm.geometry], out_shape=shape, transform=transform, fill=0
    ).astype(bool)
    scale = calibrate_detail_scale(trend, detail, inside, rng)
    z = soft_floor(trend + scale * detail)
    dem = np.rint(z).astype(np.int16)
    rows, cols = np.nonzero(inside)
    relief = _window_relief(dem, rows[::97], cols[::97], size=RELIEF_WINDOW_CELLS).astype(float)
    facts = {
        "detail_scale_m": round(scale, 2),
        "trend_min_m": round(float(trend[inside].min()), 1),
        "trend_max_m": round(float(trend[inside].max()), 1),
        "median_relief_1km_m": float(np.median(relief)),
    }
    return dem, transform, facts


def geotiff_tags(seed: int, facts: dict[str, object]) -> dict[str, str]:
    """Dataset tags of the DEM GeoTIFF: the synthetic-detail flag, seed, method and build facts.

    Parameters
    ----------
    seed : int
        Base seed of the build.
    facts : dict
        Build facts from :func:`build_dem` (``detail_scale_m`` [m], ``median_relief_1km_m`` [m]).

    Returns
    -------
    dict of str
        Tag name to value.
    """
    return {
        "synthetic_detail": "true",
        "seed": str(seed),
        "method": METHOD,
        "trend_source": TREND_SOURCE,
        "detail_scale_m": str(facts["detail_scale_m"]),
        "median_relief_1km_m": str(facts["median_relief_1km_m"]),
    }


def write_dem(path: Path, dem: np.ndarray, transform: Affine, tags: dict[str, str]) -> None:
    """Write the DEM as a tiled, DEFLATE-compressed int16 GeoTIFF in EPSG:32648.

    Parameters
    ----------
    path : pathlib.Path
        Output file.
    dem : numpy.ndarray
        int16 elevation. [m]
    transform : affine.Affine
        Grid transform.
    tags : dict
        Dataset tags (provenance, ``synthetic_detail``, seed, method).
    """
    profile = {
        "driver": "GTiff",
        "dtype": "int16",
        "nodata": DEM_NODATA,
        "width": dem.shape[1],
        "height": dem.shape[0],
        "count": 1,
        "crs": region.METRIC_CRS,
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 2,
        "zlevel": 9,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dem, 1)
        dst.update_tags(**tags)
        dst.update_tags(1, units="m", description="elevation above sea level")
        dst.set_band_description(1, "elevation")
        dst.set_band_unit(1, "m")
