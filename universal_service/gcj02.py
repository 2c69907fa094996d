"""Datum conversion between WGS84 and GCJ-02, the obfuscated datum of Chinese web maps (Amap, Tencent)."""

from __future__ import annotations

import numpy as np
import shapely

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
