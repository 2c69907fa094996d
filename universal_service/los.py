"""Line of sight: earth bulge, Fresnel radius, terrain profiles, path clearance and visibility.

Geometry (all lengths in metres): earth curvature is modelled by an effective Earth radius
``a_e = k * a`` with ``a = 6 371 km`` (ITU-R P.452-16 eq. (6a)); the terrain between two points at
distances ``d1`` and ``d2`` from the ends is raised by the earth bulge ``d1 * d2 / (2 a_e)``
(ITU-R P.452-16 §4.2.1, the ``500 C_e d_i (d - d_i)`` term of eq. (14), here in metres). The path
between two antennas is the straight chord joining them above that curved terrain; antenna
heights are above ground, and ground at a point is the bilinear interpolation of the DEM.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from universal_service import terrain

__all__ = [
    "EARTH_RADIUS_M",
    "MAX_SAMPLES_PER_CHUNK",
    "SPEED_OF_LIGHT_M_S",
    "Clearance",
    "Profiles",
    "clearance_ratio",
    "earth_bulge_m",
    "fresnel_radius_m",
    "iter_profiles",
    "line_of_sight",
    "profile_clearance",
    "profiles",
]

#: Mean Earth radius [m], as used for the effective radius a_e = 6371 k km (ITU-R P.452-16 eq. (6a)).
EARTH_RADIUS_M = 6_371_000.0
#: Speed of light in vacuum [m/s] (exact, SI definition).
SPEED_OF_LIGHT_M_S = 299_792_458.0
#: Default cap on the number of profile samples held in memory at once by the batch functions.
MAX_SAMPLES_PER_CHUNK = 1_000_000


# ---------------------------------------------------------------------------------------------
# Path geometry
# ---------------------------------------------------------------------------------------------


def earth_bulge_m(
    d1_m: ArrayLike, d2_m: ArrayLike, k_factor: float = 4.0 / 3.0
) -> NDArray[np.float64]:
    """Height of the effective earth's surface above the chord joining two points on it.

    ``b = d1 d2 / (2 k a)`` with ``a = 6 371 km``: the curvature term of ITU-R P.452-16 §4.2.1
    eq. (14) (``500 C_e d_i (d - d_i)`` with ``C_e = 1/a_e`` in 1/km, d in km, b in m), and the
    textbook form ``h = d1 d2 / (12.74 k)`` [m, with d in km].

    Parameters
    ----------
    d1_m, d2_m : array_like
        Distances from the point to the two ends of the path [m].
    k_factor : float
        Effective earth-radius factor k [-]; 4/3 for the median standard atmosphere,
        ``np.inf`` for a flat earth.

    Returns
    -------
    numpy.ndarray
        Earth bulge [m].
    """
    d1 = np.asarray(d1_m, dtype=float)
    d2 = np.asarray(d2_m, dtype=float)
    return d1 * d2 / (2.0 * k_factor * EARTH_RADIUS_M)


def fresnel_radius_m(
    d1_m: ArrayLike, d2_m: ArrayLike, frequency_mhz: ArrayLike, n: int = 1
) -> NDArray[np.float64]:
    """Radius of the n-th Fresnel zone at a point on a path.

    ``R_n = sqrt(n lambda d1 d2 / (d1 + d2))`` (ITU-R P.526-15 §3.1, Fresnel ellipsoids and
    Fresnel zones, eq. (2)); for n = 1 in practical units ``F1 = 17.3 sqrt(d1 d2 / (f d))`` m with
    f in GHz and d in km (ITU-R P.530-18 eq. (3)).

    Parameters
    ----------
    d1_m, d2_m : array_like
        Distances from the point to the two ends of the path [m].
    frequency_mhz : array_like
        Frequency [MHz].
    n : int
        Zone number (1 for the first Fresnel zone).

    Returns
    -------
    numpy.ndarray
        Radius [m]; 0 at the path ends.
    """
    d1 = np.asarray(d1_m, dtype=float)
    d2 = np.asarray(d2_m, dtype=float)
    wavelength = SPEED_OF_LIGHT_M_S / (np.asarray(frequency_mhz, dtype=float) * 1e6)
    total = d1 + d2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sqrt(n * wavelength * d1 * d2 / total)
    return np.where(total > 0, r, 0.0)


# ---------------------------------------------------------------------------------------------
# Profiles, clearance and line of sight
# ---------------------------------------------------------------------------------------------


class Profiles(NamedTuple):
    """Terrain profiles between many pairs of points, padded to a common length.

    Row ``p`` holds ``n_samples[p]`` samples evenly spaced from point A (column 0) to point B
    (column ``n_samples[p] - 1``), both ends included; later columns are padding (NaN).
    """

    distance_m: NDArray[np.float64]  #: (pairs, samples) distance from A [m], NaN in padding
    elevation_m: NDArray[np.float64]  #: (pairs, samples) bilinear elevation [m], NaN in padding
    x_m: NDArray[np.float64]  #: (pairs, samples) x of each sample [m]
    y_m: NDArray[np.float64]  #: (pairs, samples) y of each sample [m]
    n_samples: NDArray[np.int64]  #: (pairs,) number of real samples (>= 3, 2 for L = 0)
    length_m: NDArray[np.float64]  #: (pairs,) horizontal length A-B [m]

    @property
    def mask(self) -> NDArray[np.bool_]:
        """(pairs, samples) True for real samples, False for padding."""
        return np.arange(self.distance_m.shape[1]) < self.n_samples[:, None]


def _n_samples(length_m: np.ndarray, spacing_m: float) -> np.ndarray:
    """Samples per profile: spacing at most ``spacing_m``, and a midpoint on any non-zero path."""
    n = np.ceil(length_m / spacing_m - 1e-9).astype(np.int64) + 1
    return np.maximum(n, np.where(length_m > 0, 3, 2))


def _make_profiles(
    grid: terrain.Grid,
    xa: np.ndarray,
    ya: np.ndarray,
    xb: np.ndarray,
    yb: np.ndarray,
    n: np.ndarray,
) -> Profiles:
    length = np.hypot(xb - xa, yb - ya)
    m = int(n.max()) if n.size else 2
    j = np.arange(m)
    real = j < n[:, None]
    t = np.where(real, j / np.maximum(n - 1, 1)[:, None], np.nan)
    x = xa[:, None] + t * (xb - xa)[:, None]
    y = ya[:, None] + t * (yb - ya)[:, None]
    z = terrain.bilinear(grid, x, y)
    return Profiles(
        distance_m=t * length[:, None],
        elevation_m=z,
        x_m=x,
        y_m=y,
        n_samples=n.astype(np.int64),
        length_m=length,
    )


def _pair_arrays(*arrays: ArrayLike) -> list[np.ndarray]:
    return [np.ravel(a) for a in np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))]


def profiles(
    dem: xr.DataArray,
    xa: ArrayLike,
    ya: ArrayLike,
    xb: ArrayLike,
    yb: ArrayLike,
    *,
    spacing_m: float | None = None,
) -> Profiles:
    """Terrain profiles between many pairs of points at once.

    Each profile has ``ceil(L / spacing_m) + 1`` samples (at least 3 when L > 0, so that even a
    short path has a midpoint) evenly spaced over its length L: the actual spacing is at most
    ``spacing_m`` and both ends are sampled exactly.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    xa, ya, xb, yb : array_like
        Coordinates of the two ends of each pair [m]; broadcast and flattened.
    spacing_m : float, optional
        Maximum sample spacing [m]; by default the DEM resolution (the smaller cell side).

    Returns
    -------
    Profiles
        Padded arrays; see :class:`Profiles`. For very many long pairs prefer
        :func:`iter_profiles`, which bounds memory.
    """
    grid = terrain.dem_grid(dem)
    xa, ya, xb, yb = _pair_arrays(xa, ya, xb, yb)
    spacing = grid.resolution_m if spacing_m is None else float(spacing_m)
    if spacing <= 0:
        raise ValueError(f"spacing_m must be > 0 (got {spacing})")
    n = _n_samples(np.hypot(xb - xa, yb - ya), spacing)
    return _make_profiles(grid, xa, ya, xb, yb, n)


def iter_profiles(
    dem: xr.DataArray,
    xa: ArrayLike,
    ya: ArrayLike,
    xb: ArrayLike,
    yb: ArrayLike,
    *,
    spacing_m: float | None = None,
    max_samples: int = MAX_SAMPLES_PER_CHUNK,
) -> Iterator[tuple[NDArray[np.intp], Profiles]]:
    """Profiles for many pairs in memory-bounded chunks of similar length.

    Pairs are sorted by length so that padding stays small; each chunk holds at most
    ``max_samples`` samples (at least one pair).

    Parameters
    ----------
    dem, xa, ya, xb, yb, spacing_m
        As in :func:`profiles`.
    max_samples : int
        Upper bound on ``pairs x samples`` per chunk.

    Yields
    ------
    index : numpy.ndarray
        Positions of the chunk's pairs in the (flattened, broadcast) input.
    profiles : Profiles
        Their profiles.
    """
    grid = terrain.dem_grid(dem)
    xa, ya, xb, yb = _pair_arrays(xa, ya, xb, yb)
    spacing = grid.resolution_m if spacing_m is None else float(spacing_m)
    if spacing <= 0:
        raise ValueError(f"spacing_m must be > 0 (got {spacing})")
    n = _n_samples(np.hypot(xb - xa, yb - ya), spacing)
    order = np.argsort(n, kind="stable")
    n_sorted = n[order]
    start, total = 0, n.size
    while start < total:
        cost = (np.arange(1, total - start + 1)) * n_sorted[start:]
        stop = start + max(1, int(np.searchsorted(cost, max_samples, side="right")))
        idx = order[start:stop]
        yield idx, _make_profiles(grid, xa[idx], ya[idx], xb[idx], yb[idx], n[idx])
        start = stop


class Clearance(NamedTuple):
    """Minimum clearance of the path chord over the terrain, per pair."""

    min_clearance_m: NDArray[np.float64]  #: (pairs,) min of chord - (terrain + bulge) [m]
    min_fresnel_ratio: NDArray[np.float64]  #: (pairs,) min of clearance / F1 [-] (NaN w/o freq)


def profile_clearance(
    prof: Profiles,
    ha_m: ArrayLike,
    hb_m: ArrayLike,
    *,
    k_factor: float = 4.0 / 3.0,
    frequency_mhz: float | None = None,
) -> Clearance:
    """Clearance of the straight path between two antennas over sampled terrain.

    At each interior sample, at distances d1 and d2 from the ends, the clearance is the height of
    the chord joining the antennas minus the terrain raised by the earth bulge
    ``d1 d2 / (2 k a)`` (see :func:`earth_bulge_m`); the Fresnel ratio divides it by the first
    Fresnel radius (:func:`fresnel_radius_m`). This is the clearance used by ITU-R P.530-18
    §2.2.2 (antenna heights from F1 clearance at a given k) and the ``h`` of ITU-R P.526-15
    eq. (26) with its sign reversed.

    Parameters
    ----------
    prof : Profiles
        Terrain profiles (:func:`profiles` or :func:`iter_profiles`).
    ha_m, hb_m : array_like
        Antenna heights above ground at ends A and B [m], scalar or one per pair.
    k_factor : float
        Effective earth-radius factor [-].
    frequency_mhz : float, optional
        Frequency [MHz]; needed for the Fresnel ratio.

    Returns
    -------
    Clearance
        ``min_clearance_m`` and ``min_fresnel_ratio``: ``+inf`` for pairs without interior
        samples (adjacent points), NaN where an end is outside the DEM or at nodata. Interior
        nodata samples are skipped.
    """
    if not k_factor > 0:
        raise ValueError(f"k_factor must be > 0 (got {k_factor}); use np.inf for a flat earth")
    d = prof.distance_m
    z = prof.elevation_m
    k, m = d.shape
    rows = np.arange(k)
    n = prof.n_samples
    ha = np.broadcast_to(np.asarray(ha_m, dtype=float), (k,))
    hb = np.broadcast_to(np.asarray(hb_m, dtype=float), (k,))
    za = z[:, 0] + ha
    zb = z[rows, n - 1] + hb
    length = prof.length_m[:, None]
    j = np.arange(m)
    interior = (j >= 1) & (j < (n - 1)[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = length - d
        line = za[:, None] + (zb - za)[:, None] * (d / length)
        clear = line - z - d * d2 / (2.0 * k_factor * EARTH_RADIUS_M)
        ok = interior & np.isfinite(clear)
        min_clear = np.where(ok, clear, np.inf).min(axis=1, initial=np.inf)
        if frequency_mhz is not None:
            ratio = clear / fresnel_radius_m(d, d2, frequency_mhz)
            min_ratio = np.where(ok, ratio, np.inf).min(axis=1, initial=np.inf)
        else:
            min_ratio = np.full(k, np.nan)
    bad_end = ~(np.isfinite(za) & np.isfinite(zb))
    min_clear[bad_end] = np.nan
    min_ratio[bad_end] = np.nan
    return Clearance(min_clearance_m=min_clear, min_fresnel_ratio=min_ratio)


def _batch_clearance(
    dem: xr.DataArray,
    xa: ArrayLike,
    ya: ArrayLike,
    ha_m: ArrayLike,
    xb: ArrayLike,
    yb: ArrayLike,
    hb_m: ArrayLike,
    *,
    k_factor: float,
    frequency_mhz: float | None,
    spacing_m: float | None,
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    arrays = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (xa, ya, ha_m, xb, yb, hb_m))
    )
    shape = arrays[0].shape
    xa_, ya_, ha_, xb_, yb_, hb_ = (np.ravel(a) for a in arrays)
    min_clear = np.empty(xa_.size)
    min_ratio = np.empty(xa_.size)
    for idx, prof in iter_profiles(dem, xa_, ya_, xb_, yb_, spacing_m=spacing_m):
        c = profile_clearance(
            prof, ha_[idx], hb_[idx], k_factor=k_factor, frequency_mhz=frequency_mhz
        )
        min_clear[idx] = c.min_clearance_m
        min_ratio[idx] = c.min_fresnel_ratio
    return min_clear, min_ratio, shape


def line_of_sight(
    dem: xr.DataArray,
    xa: ArrayLike,
    ya: ArrayLike,
    ha_m: ArrayLike,
    xb: ArrayLike,
    yb: ArrayLike,
    hb_m: ArrayLike,
    *,
    k_factor: float = 4.0 / 3.0,
    frequency_mhz: float | None = None,
    fresnel_fraction: float = 0.0,
    spacing_m: float | None = None,
) -> NDArray[np.bool_]:
    """Line of sight between antennas at A and B, vectorised over pairs.

    The path is clear when, at every interior profile sample, the chord joining the antennas is
    at least ``fresnel_fraction`` first-Fresnel radii above the terrain raised by the earth bulge
    for the effective radius ``k * 6 371 km`` (see :func:`profile_clearance`). With
    ``fresnel_fraction = 0`` this is the geometric (optical at that k) line of sight.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    xa, ya, xb, yb : array_like
        End coordinates [m]; all inputs broadcast together.
    ha_m, hb_m : array_like
        Antenna heights above ground at A and B [m].
    k_factor : float
        Effective earth-radius factor [-]; 4/3 by default, ``np.inf`` for a flat earth.
    frequency_mhz : float, optional
        Frequency [MHz]; required when ``fresnel_fraction > 0``.
    fresnel_fraction : float
        Required clearance as a fraction of the first Fresnel radius [-] (0.6 is the usual
        "60 % of F1" criterion).
    spacing_m : float, optional
        Profile sample spacing [m]; the DEM resolution by default.

    Returns
    -------
    numpy.ndarray of bool
        True where the path is clear, in the broadcast shape of the inputs. False where an end is
        outside the DEM or at nodata.
    """
    if fresnel_fraction != 0 and frequency_mhz is None:
        raise ValueError("fresnel_fraction > 0 needs frequency_mhz")
    min_clear, min_ratio, shape = _batch_clearance(
        dem,
        xa,
        ya,
        ha_m,
        xb,
        yb,
        hb_m,
        k_factor=k_factor,
        frequency_mhz=frequency_mhz if fresnel_fraction else None,
        spacing_m=spacing_m,
    )
    ok = min_ratio >= fresnel_fraction if fresnel_fraction else min_clear >= 0.0
    return ok.reshape(shape)


def clearance_ratio(
    dem: xr.DataArray,
    xa: ArrayLike,
    ya: ArrayLike,
    ha_m: ArrayLike,
    xb: ArrayLike,
    yb: ArrayLike,
    hb_m: ArrayLike,
    *,
    frequency_mhz: float,
    k_factor: float = 4.0 / 3.0,
    spacing_m: float | None = None,
) -> NDArray[np.float64]:
    """Minimum ratio of clearance to first Fresnel radius along each path.

    Parameters
    ----------
    dem, xa, ya, ha_m, xb, yb, hb_m, k_factor, spacing_m
        As in :func:`line_of_sight`.
    frequency_mhz : float
        Frequency [MHz].

    Returns
    -------
    numpy.ndarray
        ``min(clearance / F1)`` [-] per pair: >= 1 full first-zone clearance, 0 grazing,
        negative obstructed; ``+inf`` without interior samples, NaN with an end off the DEM.
    """
    _, min_ratio, shape = _batch_clearance(
        dem,
        xa,
        ya,
        ha_m,
        xb,
        yb,
        hb_m,
        k_factor=k_factor,
        frequency_mhz=frequency_mhz,
        spacing_m=spacing_m,
    )
    return min_ratio.reshape(shape)
