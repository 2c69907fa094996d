"""Build the bundled Qiannan region (``data/qiannan/``) from the reference data in ``../shared/data``.

Run from the repository root::

    python data/build_region.py --shared ../shared/data --out data/qiannan

The project never reads ``../shared`` at run time: this script is the only reader, and its output
folder is what ``io.load_region`` loads. Every value that the sources lack is derived here by a
documented, seeded rule, one function per rule, so a real layer can replace any of them. Sources,
figures and methods are listed in ``data/README.md``; each figure is cited where it is defined below.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import Affine
from scipy import ndimage

# ---------------------------------------------------------------------------------------------
# Constants (every figure with its source)
# ---------------------------------------------------------------------------------------------

#: Base seed of every random draw in the build. Each step derives its own stream from it.
SEED = 2016
#: Independent random streams, one per derivation step (``np.random.default_rng([seed, stream])``).
STREAM_DEM, STREAM_SEATS, STREAM_VILLAGES, STREAM_INCOME = 1, 2, 3, 4
STREAM_TOWERS, STREAM_POPS, STREAM_POWER = 5, 6, 7

PREFECTURE_ID = "522700"
REGION_NAME = "Qiannan Buyei and Miao Autonomous Prefecture, Guizhou (2016 divisions)"
#: The metric CRS of the region (UTM zone 48N); the DEM is written in it.
METRIC_CRS = "EPSG:32648"
GEO_CRS = "EPSG:4326"

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

#: 2010 census resident population of the prefecture [persons]: "about 3.23 million" (shared
#: data README; the 2020 census gives 3,494,385, Guizhou 7th census communique No. 2).
POPULATION_TOTAL = 3_230_000
#: Average family-household size, Guizhou 2010 census [persons per household]: 3.24 (Guizhou
#: Provincial Government press conference on the 7th census, 2021-05-25: "2.81, down 0.43 from
#: 3.24 in 2010"). Applied to every unit (assumption: no village-level figure exists).
HOUSEHOLD_SIZE = 3.24
#: Weight multipliers by NBS urban-rural code when spreading county totals over units
#: (assumption: cores are denser than fringes, seat villages larger than other villages).
UR_WEIGHT = {111: 2.0, 112: 1.5, 121: 2.0, 122: 1.5, 123: 1.5, 210: 1.3, 220: 1.0}
#: Share of the prefecture's population living in urban units (ur_code 1xx, the NBS definition
#: behind the urbanisation rate). Assumption: 0.40. Guizhou's 2015 rate was 42.01% and only
#: Guiyang and Zunyi were above it, the lowest being Qiandongnan at 35.52% (Guizhou Statistics
#: Bureau via Xinhua, 2016-03-17), so Qiannan's 2015 rate lay between 35.5% and 42%; Guizhou's
#: 2016 rate was 44.15% (15.6953 of 35.55 million, Guizhou 2016 statistical communique).
URBAN_POPULATION_SHARE = 0.40
#: Floor and cap of the GPW density weight, as multiples of the county's median density at its
#: villages (assumption: GPW spreads each census unit evenly, so ratios beyond ~4x are artefacts
#: of urban census units; the floor keeps remote villages above a few hundred persons).
DENSITY_FLOOR_X, DENSITY_CAP_X = 0.5, 4.0

#: Guizhou rural per-capita disposable income, 2016 [CNY per person per year] (NBS statistical
#: communique 2016, via the shared data README; approximate).
RURAL_INCOME_YEAR = 8_090.0
#: Urban/rural income ratio (assumption): China's 2016 ratio 33,616 / 12,363 = 2.72 (NBS
#: statistical communique on the 2016 national economic and social development). Guizhou's own
#: ratio is higher, so this is conservative.
URBAN_INCOME_RATIO = 33_616.0 / 12_363.0
#: Log-standard deviation of village income around the mean (assumption, mean preserved).
INCOME_SIGMA = 0.3

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
#: Electrification rule (assumption): among rural villages without mobile service, the most remote
#: decile (distance to the nearest township seat) is off-grid with this probability.
OFFGRID_PROBABILITY = 0.3
OFFGRID_QUANTILE = 0.9

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

#: A fixed timestamp for GeoPackage metadata so that rebuilds give the same bytes.
GPKG_TIMESTAMP = "2016-12-31T00:00:00.000Z"


# ---------------------------------------------------------------------------------------------
# Coordinates: GCJ-02 (the source datum) to WGS84
# ---------------------------------------------------------------------------------------------

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis [m], as used by the GCJ-02 formula
_GCJ_EE = 0.00669342162296594323  # its first eccentricity squared


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS84 coordinates to GCJ-02 with the published closed-form approximation.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        WGS84 longitude and latitude. [degrees]

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 longitude and latitude. [degrees]

    Notes
    -----
    The widely circulated open implementation of GCJ-02 (e.g. ``eviltransform``); it is accurate to
    about 1 m against the official obfuscation inside China, which is all that matters here.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = np.deg2rad(lat)
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_GCJ_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(
    lon: np.ndarray, lat: np.ndarray, iterations: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 coordinates to WGS84 by iterating the forward formula.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        GCJ-02 longitude and latitude (Amap coordinates). [degrees]
    iterations : int, default 6
        Fixed-point iterations ``w <- w - (gcj(w) - g)``; six leave a residual far below 1 mm.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude. [degrees]
    """
    g_lon = np.asarray(lon, dtype=float)
    g_lat = np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(iterations):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        w_lon = w_lon - (f_lon - g_lon)
        w_lat = w_lat - (f_lat - g_lat)
    return w_lon, w_lat


def geometries_gcj02_to_wgs84(geoms: np.ndarray) -> np.ndarray:
    """Convert shapely geometries from GCJ-02 to WGS84 vertex by vertex.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely.Geometry
        Geometries in GCJ-02 longitude/latitude. [degrees]

    Returns
    -------
    numpy.ndarray of shapely.Geometry
        The same geometries in WGS84. [degrees]
    """

    def _convert(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, _convert)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


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
    df = df[df["code"].str.startswith(PREFECTURE_ID[:4])].copy()
    g_lon = pd.to_numeric(df["longitude"].replace("", np.nan)).to_numpy(dtype=float)
    g_lat = pd.to_numeric(df["latitude"].replace("", np.nan)).to_numpy(dtype=float)
    # Amap points are GCJ-02: convert to WGS84 before overlaying anything (see gcj02_to_wgs84).
    df["lon"], df["lat"] = gcj02_to_wgs84(g_lon, g_lat)
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
        where=f"adcode LIKE '{PREFECTURE_ID[:4]}%' AND adcode != '{PREFECTURE_ID}'",
    )
    # The file is labelled EPSG:4326 but its coordinates are GCJ-02 (Amap boundaries).
    geoms = geometries_gcj02_to_wgs84(gdf.geometry.to_numpy())
    geoms = shapely.make_valid(geoms)
    out = gpd.GeoDataFrame(
        {
            "district_id": gdf["adcode"].astype(str).to_numpy(),
            "name": gdf["name"].astype(str).to_numpy(),
            "parent_id": PREFECTURE_ID,
        },
        geometry=geoms,
        crs=GEO_CRS,
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


# ---------------------------------------------------------------------------------------------
# DEM: the 12 km relief as the trend plus seeded spectral detail
# ---------------------------------------------------------------------------------------------


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
    to_geo = Transformer.from_crs(METRIC_CRS, GEO_CRS, always_xy=True)
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
    shared: Path, counties: gpd.GeoDataFrame, seed: int = SEED
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
    counties_utm = counties.to_crs(METRIC_CRS)
    transform, shape = dem_grid(counties_utm)
    lon, lat = _cell_lonlat(transform, shape)
    bounds = (lon.min(), lat.min(), lon.max(), lat.max())
    coarse, coarse_t = read_coarse_dem(shared / "dem" / "china_12km.tif", bounds)
    trend = trend_surface(coarse, coarse_t, lon, lat)
    modulation = relief_modulation(coarse, coarse_t, lon, lat)
    del lon, lat
    rng = np.random.default_rng([seed, STREAM_DEM])
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


def slope_degrees(dem: np.ndarray, cell_m: float = DEM_CELL_M) -> np.ndarray:
    """Slope of a DEM by central differences.

    Parameters
    ----------
    dem : numpy.ndarray
        Elevation. [m]
    cell_m : float
        Cell size. [m]

    Returns
    -------
    numpy.ndarray
        float32 slope. [degrees]
    """
    gy, gx = np.gradient(dem.astype(np.float32), cell_m)
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


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
        "crs": METRIC_CRS,
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


# ---------------------------------------------------------------------------------------------
# Township seats and township areas
# ---------------------------------------------------------------------------------------------


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
    seed: int = SEED,
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
        Output of :func:`read_divisions`.
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
    to_utm = Transformer.from_crs(GEO_CRS, METRIC_CRS, always_xy=True)
    towns = divisions[divisions["level"] == "town"].copy()
    villages = divisions[divisions["level"] == "village"]
    counties = divisions[divisions["level"] == "county"].set_index("code")
    polys = counties_utm.set_index("district_id").geometry
    records = []
    for district_id, group in towns.groupby(towns["code"].str[:6], sort=True):
        rng = np.random.default_rng([seed, STREAM_SEATS, int(district_id)])
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
    return gpd.GeoDataFrame(records, geometry="geometry", crs=METRIC_CRS)


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


# ---------------------------------------------------------------------------------------------
# Village locations
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Population, households, income
# ---------------------------------------------------------------------------------------------


def _pixel_area_km2(transform: Affine, rows: int) -> np.ndarray:
    """Area of each row's pixels of a lon/lat grid on the authalic sphere. [km^2]"""
    radius_km = 6371.0072
    top = transform.f + transform.e * np.arange(rows)
    bottom = top + transform.e
    dlon = np.deg2rad(transform.a)
    band = np.abs(np.sin(np.deg2rad(top)) - np.sin(np.deg2rad(bottom)))
    return radius_km**2 * dlon * band


def county_population(
    gpw_path: Path, counties: gpd.GeoDataFrame, total: int = POPULATION_TOTAL
) -> pd.Series:
    """County totals: GPW 2020 county sums rescaled to the prefecture's census total.

    GPW's band 1 (persons per km^2) times pixel area, summed over pixels whose centre lies in each
    county, is used only as each county's share of the prefecture (the grid runs 15-20% low).

    Parameters
    ----------
    gpw_path : pathlib.Path
        ``osm-qiannan/gpw_popdens_2020_decoded.tif``.
    counties : geopandas.GeoDataFrame
        County polygons in WGS84.
    total : int
        Prefecture total. [persons]

    Returns
    -------
    pandas.Series
        Integer persons by ``district_id`` summing exactly to ``total`` (largest remainder).
    """
    with rasterio.open(gpw_path) as src:
        dens = src.read(1)
        transform = src.transform
    dens = np.where(dens >= 0, dens, 0.0)
    people = dens * _pixel_area_km2(transform, dens.shape[0])[:, None]
    labels = rasterize(
        [(g, i + 1) for i, g in enumerate(counties.geometry)],
        out_shape=dens.shape,
        transform=transform,
        fill=0,
    )
    sums = ndimage.sum(people, labels, index=np.arange(1, len(counties) + 1))
    shares = pd.Series(sums / sums.sum(), index=counties["district_id"].to_numpy())
    return largest_remainder(shares * total)


def largest_remainder(values: pd.Series) -> pd.Series:
    """Round non-negative values to integers preserving their (rounded) sum.

    Parameters
    ----------
    values : pandas.Series
        Non-negative reals.

    Returns
    -------
    pandas.Series
        int64 values with ``sum == round(values.sum())``; ties broken by position.
    """
    floor = np.floor(values.to_numpy())
    short = int(round(values.sum() - floor.sum()))
    order = np.argsort(-(values.to_numpy() - floor), kind="stable")
    floor[order[:short]] += 1
    return pd.Series(floor.astype(np.int64), index=values.index)


def village_population(
    villages: pd.DataFrame,
    county_totals: pd.Series,
    gpw_path: Path,
    urban_share: float = URBAN_POPULATION_SHARE,
) -> pd.Series:
    """Spread each county's total over its village-level units.

    Base weight = GPW density at the unit's location, clipped to [DENSITY_FLOOR_X, DENSITY_CAP_X]
    times the county's median density at its units, times ``UR_WEIGHT[ur_code]``. Urban units'
    weights are then multiplied by one prefecture-wide factor, found by bisection, so that urban
    units hold ``urban_share`` of the population. Each county keeps its total exactly.

    Parameters
    ----------
    villages : pandas.DataFrame
        ``district_id``, ``ur_code``, ``lon``, ``lat`` (WGS84 degrees).
    county_totals : pandas.Series
        Persons by ``district_id``.
    gpw_path : pathlib.Path
        The GPW density grid.
    urban_share : float
        Target share of the population in urban units (ur_code < 200). [-]

    Returns
    -------
    pandas.Series
        int64 persons per unit (index of ``villages``), summing to each county's total.
    """
    with rasterio.open(gpw_path) as src:
        dens = src.read(1)
        rows, cols = rasterio.transform.rowcol(
            src.transform, villages["lon"].to_numpy(), villages["lat"].to_numpy()
        )
    d = dens[np.asarray(rows), np.asarray(cols)].astype(float)
    d = np.where(d >= 0, d, np.nan)
    district = villages["district_id"].to_numpy()
    urban = villages["ur_code"].to_numpy(dtype=int) < 200
    base = np.zeros(len(villages))
    for district_id in np.unique(district):
        sel = district == district_id
        med = np.nanmedian(d[sel])
        base[sel] = np.clip(
            np.nan_to_num(d[sel], nan=med), DENSITY_FLOOR_X * med, DENSITY_CAP_X * med
        )
    base *= villages["ur_code"].map(UR_WEIGHT).to_numpy(dtype=float)
    total_of = county_totals.reindex(district).to_numpy(dtype=float)

    def allocate(factor: float) -> np.ndarray:
        w = base * np.where(urban, factor, 1.0)
        county_w = pd.Series(w).groupby(district).transform("sum").to_numpy()
        return w / county_w * total_of

    lo, hi = -10.0, 10.0  # log of the urban factor
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        share = allocate(np.exp(mid))[urban].sum() / county_totals.sum()
        lo, hi = (mid, hi) if share < urban_share else (lo, mid)
    people = pd.Series(allocate(np.exp(0.5 * (lo + hi))), index=villages.index)
    pop = pd.Series(0, index=villages.index, dtype=np.int64)
    for district_id in np.unique(district):
        idx = villages.index[district == district_id]
        pop.loc[idx] = largest_remainder(people.loc[idx])
    return pop


def village_income(ur_code: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Monthly per-capita disposable income with seeded, mean-preserving lognormal dispersion.

    Mean = RURAL_INCOME_YEAR / 12 for rural units (ur_code 2xx) and URBAN_INCOME_RATIO times that
    for urban units (1xx); each unit draws ``mean * exp(sigma Z - sigma^2 / 2)``, Z ~ N(0, 1).

    Parameters
    ----------
    ur_code : numpy.ndarray
        NBS urban-rural codes.
    rng : numpy.random.Generator
        Seeded generator.

    Returns
    -------
    numpy.ndarray
        Income rounded to 0.01. [CNY per person per month]
    """
    mean = RURAL_INCOME_YEAR / 12.0 * np.where(np.asarray(ur_code) < 200, URBAN_INCOME_RATIO, 1.0)
    z = rng.standard_normal(len(mean))
    return np.round(mean * np.exp(INCOME_SIGMA * z - 0.5 * INCOME_SIGMA**2), 2)


# ---------------------------------------------------------------------------------------------
# Infrastructure: towers, points of presence, existing service, electrification
# ---------------------------------------------------------------------------------------------


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
    seed: int = SEED,
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
        Township seats (:func:`township_seats`), metric points.
    roads_utm : geopandas.GeoDataFrame
        Expressway lines in the metric CRS.
    seed : int
        Base seed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``tower_id``, ``operator_id``, ``height_m``, ``technology``, ``source``, metric points.
    """
    rng = np.random.default_rng([seed, STREAM_TOWERS])
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
    return gpd.GeoDataFrame(df, geometry="geometry", crs=METRIC_CRS)


def derive_pops(
    county_seats: gpd.GeoDataFrame, seats: gpd.GeoDataFrame, seed: int = SEED
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
    rng = np.random.default_rng([seed, STREAM_POPS])
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
    return gpd.GeoDataFrame(df, geometry="geometry", crs=METRIC_CRS)


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


def electrified(
    ur_code: np.ndarray, service: np.ndarray, seat_distance_m: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Grid electricity at the village, by rule (flagged as an assumption).

    China reported universal household electricity access by the end of 2015, so ``False`` here
    stands for "no reliable grid power at a would-be site": rural villages (220) without service in
    the most remote ``1 - OFFGRID_QUANTILE`` by distance to their nearest township seat are
    off-grid with probability OFFGRID_PROBABILITY.

    Parameters
    ----------
    ur_code : numpy.ndarray
        NBS urban-rural codes.
    service : numpy.ndarray
        Output of :func:`existing_service`.
    seat_distance_m : numpy.ndarray
        Distance to the nearest township seat. [m]
    rng : numpy.random.Generator
        Seeded generator.

    Returns
    -------
    numpy.ndarray of bool
    """
    rural = np.asarray(ur_code) == 220
    cut = np.quantile(np.asarray(seat_distance_m)[rural], OFFGRID_QUANTILE)
    remote = rural & (np.asarray(service) == "none") & (np.asarray(seat_distance_m) >= cut)
    draws = rng.uniform(size=len(rural))
    return ~(remote & (draws < OFFGRID_PROBABILITY))


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


# ---------------------------------------------------------------------------------------------
# Roads, county seats
# ---------------------------------------------------------------------------------------------


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
    roads = roads[code.str.startswith(PREFECTURE_ID[:4])].reset_index(drop=True)
    region = shapely.union_all(counties.geometry.to_numpy())
    roads["geometry"] = shapely.intersection(roads.geometry.to_numpy(), region)
    roads = roads.explode(index_parts=False).reset_index(drop=True)
    roads = roads[(roads.geom_type == "LineString") & (roads.to_crs(METRIC_CRS).length > 1.0)]
    roads = roads.reset_index(drop=True)
    out = gpd.GeoDataFrame(
        {
            "road_id": [f"osm-{i + 1:04d}" for i in range(len(roads))],
            "name": roads["name"].fillna("").astype(str).to_numpy(),
            "ref": roads["ref"].fillna("").astype(str).to_numpy(),
            "highway": roads["highway"].astype(str).to_numpy(),
        },
        geometry=roads.geometry.to_numpy(),
        crs=GEO_CRS,
    )
    return out


def county_seats(divisions: pd.DataFrame, counties_utm: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """County seats: the Amap point of each county (converted to WGS84), in the metric CRS.

    Parameters
    ----------
    divisions : pandas.DataFrame
        Output of :func:`read_divisions`.
    counties_utm : geopandas.GeoDataFrame
        County polygons in the metric CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        ``district_id``, ``name``, point geometry in the metric CRS.
    """
    rows = divisions[divisions["level"] == "county"].sort_values("code")
    pts = gpd.GeoSeries(gpd.points_from_xy(rows["lon"], rows["lat"]), crs=GEO_CRS)
    out = gpd.GeoDataFrame(
        {"district_id": rows["code"].str[:6].to_numpy(), "name": rows["name"].to_numpy()},
        geometry=pts.to_crs(METRIC_CRS).to_numpy(),
        crs=METRIC_CRS,
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
    seed: int = SEED,
) -> pd.DataFrame:
    """Locate one county's villages: township areas, then seeded placement.

    The random stream is ``default_rng([seed, STREAM_VILLAGES, int(district_id)])``, so each
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
    rng = np.random.default_rng([seed, STREAM_VILLAGES, int(district_id)])
    areas = township_areas(seats, county)
    return place_villages(villages, seats, areas, grid, rng)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    """A TOML literal for a str, bool, int or float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def write_region_toml(path: Path, meta: dict[str, object]) -> None:
    """Write ``region.toml``: name, CRS, currency, layer files and provenance metadata.

    Parameters
    ----------
    path : pathlib.Path
        Output file.
    meta : dict
        Flat provenance entries for the ``[meta]`` table (str, bool, int or float values).
    """
    lines = [
        "# Bundled region, written by data/build_region.py (do not edit by hand; rebuild).",
        f"name = {_toml_value(REGION_NAME)}",
        f'crs = "{METRIC_CRS}"  # the metric CRS every layer is reprojected to on load (UTM 48N)',
        'currency = "CNY"',
        "",
        "[layers]",
        'villages = "villages.gpkg"',
        'districts = "districts.gpkg"',
        'dem = "dem.tif"',
        'pops = "pops.gpkg"',
        'towers = "towers.gpkg"',
        'roads = "roads.gpkg"',
        'operators = "operators.csv"',
        "",
        "[meta]",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in meta.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """Write one layer to a fresh GeoPackage in WGS84."""
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(gdf.to_crs(GEO_CRS), path, layer=layer, driver="GPKG")


# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------


def build(shared: Path, out: Path, seed: int = SEED) -> dict[str, object]:
    """Build every layer of the region and write it to ``out``.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder (read only here).
    out : pathlib.Path
        Output folder (created).
    seed : int
        Base seed of every random draw.

    Returns
    -------
    dict
        Summary figures (counts, totals, DEM facts) also written to ``region.toml``.
    """
    # Reproducible GeoPackages: GDAL stamps the current time into gpkg_contents otherwise.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
    out.mkdir(parents=True, exist_ok=True)
    divisions = read_divisions(shared)
    counties = read_counties(shared)
    counties_utm = counties.to_crs(METRIC_CRS)

    dem, transform, dem_facts = build_dem(shared, counties, seed)
    method = (
        "trend: dem/china_12km.tif (0.117 deg, from github zengxing358/webgis data/dem.tif, origin "
        "unstated) evaluated at each 90 m UTM 48N cell centre by interpolating cubic B-spline "
        "(scipy.ndimage.map_coordinates order 3); detail: seeded spectral 1/f^beta surface "
        f"(beta={DETAIL_BETA}, wavelengths above {DETAIL_CUTOFF_M:.0f} m tapered), amplitude "
        "modulated by the 12 km grid's 3x3 roughness (clipped 0.5-1.6) and scaled so the median "
        f"max-min relief in {RELIEF_WINDOW_CELLS}x{RELIEF_WINDOW_CELLS}-cell (~1 km2) windows over "
        f"the 12 counties is {RELIEF_TARGET_M:.0f} m (Libo peak-cluster relief 180-300 m, "
        f"Dictionary of Geotourism 2020); soft floor at {ELEV_FLOOR_M:.0f} m"
    )
    dem_tags = {
        "synthetic_detail": "true",
        "seed": str(seed),
        "method": method,
        "trend_source": "zengxing358/webgis data/dem.tif (origin not stated)",
        "detail_scale_m": str(dem_facts["detail_scale_m"]),
        "median_relief_1km_m": str(dem_facts["median_relief_1km_m"]),
    }
    write_dem(out / "dem.tif", dem, transform, dem_tags)
    grid = Grid(transform, slope_degrees(dem))

    cseats = county_seats(divisions, counties_utm)
    seats = township_seats(divisions, counties_utm, grid, seed)

    to_utm = Transformer.from_crs(GEO_CRS, METRIC_CRS, always_xy=True)
    vil = divisions[divisions["level"] == "village"].copy()
    vil["district_id"] = vil["code"].str[:6]
    vil["x"], vil["y"] = to_utm.transform(vil["lon"].to_numpy(), vil["lat"].to_numpy())
    polys_utm = counties_utm.set_index("district_id").geometry
    placed = []
    for district_id, group in vil.groupby("district_id", sort=True):
        s = seats[seats["district_id"] == district_id]
        placed.append(
            locate_county_villages(group, s, polys_utm[district_id], grid, district_id, seed)
        )
    vil = pd.concat(placed).sort_values("code").reset_index(drop=True)
    to_geo = Transformer.from_crs(METRIC_CRS, GEO_CRS, always_xy=True)
    vil["lon"], vil["lat"] = to_geo.transform(vil["x"].to_numpy(), vil["y"].to_numpy())
    points = gpd.GeoSeries(gpd.points_from_xy(vil["lon"], vil["lat"]), crs=GEO_CRS)
    polys = counties.set_index("district_id").geometry
    outside = [not polys[d].contains(p) for d, p in zip(vil["district_id"], points, strict=True)]
    if any(outside):
        raise ValueError(f"villages outside their county: {vil.loc[outside, 'code'].tolist()}")

    totals = county_population(
        shared / "osm-qiannan" / "gpw_popdens_2020_decoded.tif", counties, POPULATION_TOTAL
    )
    population = village_population(
        vil, totals, shared / "osm-qiannan" / "gpw_popdens_2020_decoded.tif"
    )
    households = np.maximum(np.rint(population / HOUSEHOLD_SIZE), 1).astype(np.int64)
    income = village_income(
        vil["ur_code"].to_numpy(dtype=int), np.random.default_rng([seed, STREAM_INCOME])
    )

    roads = read_roads(shared, counties)
    towers = derive_towers(cseats, seats, roads.to_crs(METRIC_CRS), seed)
    pops = derive_pops(cseats, seats, seed)
    vxy = np.column_stack([vil["x"], vil["y"]])
    txy = shapely.get_coordinates(towers.geometry.to_numpy())
    sxy = shapely.get_coordinates(seats.geometry.to_numpy())
    d_tower = np.min(np.hypot(vxy[:, None, 0] - txy[:, 0], vxy[:, None, 1] - txy[:, 1]), axis=1)
    d_seat = np.min(np.hypot(vxy[:, None, 0] - sxy[:, 0], vxy[:, None, 1] - sxy[:, 1]), axis=1)
    ur = vil["ur_code"].to_numpy(dtype=int)
    service = existing_service(ur, d_tower)
    power = electrified(ur, service, d_seat, np.random.default_rng([seed, STREAM_POWER]))

    villages = gpd.GeoDataFrame(
        {
            "village_id": vil["code"].to_numpy(),
            "name": vil["name"].to_numpy(),
            "district_id": vil["district_id"].to_numpy(),
            "town_id": vil["parent"].to_numpy(),
            "town_name": vil["town"].to_numpy(),
            "ur_code": ur.astype(np.int64),
            "population": population.to_numpy(dtype=np.int64),
            "households": households.to_numpy(dtype=np.int64),
            "income_monthly": income.astype(np.float64),
            "existing_service": service.astype(str),
            "electrified": power.astype(bool),
            "weight": np.ones(len(vil), dtype=np.float64),
            "location_source": vil["location_source"].to_numpy(),
            "population_source": "derived",
            "income_source": "derived",
        },
        geometry=points.to_numpy(),
        crs=GEO_CRS,
    )
    _write_gpkg(villages, out / "villages.gpkg", "villages")
    _write_gpkg(counties, out / "districts.gpkg", "districts")
    _write_gpkg(pops, out / "pops.gpkg", "pops")
    _write_gpkg(towers, out / "towers.gpkg", "towers")
    _write_gpkg(roads, out / "roads.gpkg", "roads")
    operators_table().to_csv(out / "operators.csv", index=False, lineterminator="\n")

    summary: dict[str, object] = {
        "villages": len(villages),
        "villages_rural": int(np.isin(ur, (210, 220)).sum()),
        "villages_location_amap": int((villages["location_source"] == "amap").sum()),
        "population_total": int(villages["population"].sum()),
        "towers": len(towers),
        "pops": len(pops),
        "roads": len(roads),
        "not_electrified": int((~villages["electrified"]).sum()),
        "dem_shape": f"{dem.shape[0]}x{dem.shape[1]}",
        "dem_min_m": int(dem.min()),
        "dem_max_m": int(dem.max()),
        **dem_facts,
    }
    for label in ("none", "2g", "3g", "4g", "fiber"):
        summary[f"service_{label}"] = int((villages["existing_service"] == label).sum())
    derived_seats = seats[~seats["seat_source"].eq("amap")]
    meta: dict[str, object] = {
        "build_command": "python data/build_region.py --shared ../shared/data --out data/qiannan",
        "seed": seed,
        "dem_synthetic_detail": True,
        "dem_method": method,
        "dem_trend_source": "zengxing358/webgis data/dem.tif (12 km, origin not stated)",
        "divisions_source": "Vonng/adcode (CC BY 4.0), after NBS 2016 statistical division codes "
        "and Amap district boundaries; GCJ-02 converted to WGS84",
        "roads_source": "(c) OpenStreetMap contributors, ODbL 1.0 (highway=motorway)",
        "population_source": "GPWv4.11 2020 density (CIESIN, CC BY 4.0) as relative weight, "
        f"rescaled to the 2010 census total {POPULATION_TOTAL}",
        "household_size": HOUSEHOLD_SIZE,
        "income_rural_cny_per_year": RURAL_INCOME_YEAR,
        "income_urban_ratio": round(URBAN_INCOME_RATIO, 4),
        "income_sigma": INCOME_SIGMA,
        "towers_rule": "derived: county seats (one per operator), township seats (one, operator by "
        f"share), expressways every >= {EXPRESSWAY_TOWER_SPACING_M:.0f} m",
        "pops_rule": "derived: every operator at county seats; township seats with probability "
        + ", ".join(f"{k} {v}" for k, v in POP_TOWNSHIP_PROBABILITY.items()),
        "existing_service_rule": f"1xx fiber; 210 4g; 220 3g within {SERVICE_3G_M:.0f} m of a "
        f"tower, 2g within {SERVICE_2G_M:.0f} m, else none",
        "derived_township_seats": ";".join(
            f"{t}:{s}"
            for t, s in zip(derived_seats["town_id"], derived_seats["seat_source"], strict=True)
        ),
        **summary,
    }
    write_region_toml(out / "region.toml", meta)
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python data/build_region.py [--shared DIR] [--out DIR]``."""
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=root / ".." / "shared" / "data",
        help="shared reference data folder (default: ../shared/data from the repo root)",
    )
    parser.add_argument("--out", type=Path, default=root / "data" / "qiannan", help="output folder")
    parser.add_argument("--seed", type=int, default=SEED, help="base seed")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = build(args.shared.resolve(), args.out, args.seed)
    for key, value in summary.items():
        print(f"{key}: {value}")
    print(f"built {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
