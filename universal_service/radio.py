"""Radio: propagation formulas, a rural macro-cell link budget, site-village coverage, microwave hops.

Units: distances and heights in metres, frequencies in MHz, losses in dB, powers in dBm, gains in
dBi. Terrain profiles and clearances come from :mod:`universal_service.terrain`; the earth-bulge and
Fresnel-radius formulas live there (``terrain`` needs them for line of sight) and are re-exported
here.

The path loss of a site-village pair in :func:`coverage_matrix` is

    L = L_RMa,LOS(d) + max(L_b(terrain) - L_b(smooth), 0)

the 3GPP TR 38.901 rural-macro line-of-sight loss, which already holds the smooth-ground effects
(the two-ray breakpoint and the ground within the Fresnel zone near a low handset), plus the
terrain's excess diffraction loss: the Bullington loss of the real profile (ITU-R P.452-16
§4.2.1) less that of a smooth profile, the straight ground line between the two ends. This is the
delta-Bullington idea of P.452-16 §4.2.3 (actual-terrain Bullington loss corrected by a
smooth-earth term), with RMa standing in for the smooth-earth loss. A deterministic terrain term,
rather than the statistical RMa NLOS formula, keeps a village behind a 500 m mountain apart from
one behind a low ridge, which matters in karst terrain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from universal_service import terrain
from universal_service.terrain import (
    EARTH_RADIUS_M,
    SPEED_OF_LIGHT_M_S,
    Profiles,
    earth_bulge_m,
    fresnel_radius_m,
)

__all__ = [
    "LinkBudget",
    "bullington_loss_db",
    "coverage_matrix",
    "diffraction_parameter",
    "earth_bulge_m",
    "free_space_loss_db",
    "fresnel_radius_m",
    "hata_path_loss_db",
    "knife_edge_loss_db",
    "length_class",
    "microwave_hop",
    "rma_path_loss_db",
    "terrain_excess_loss_db",
    "wavelength_m",
]

#: Upper bounds [m] of the microwave hop length classes "short" and "medium" (project definition).
HOP_CLASS_LIMITS_M = (10_000.0, 30_000.0)


# ---------------------------------------------------------------------------------------------
# Basic formulas
# ---------------------------------------------------------------------------------------------


def wavelength_m(frequency_mhz: ArrayLike) -> NDArray[np.float64]:
    """Free-space wavelength ``lambda = c / f`` [m] for a frequency [MHz]."""
    return SPEED_OF_LIGHT_M_S / (np.asarray(frequency_mhz, dtype=float) * 1e6)


def free_space_loss_db(distance_m: ArrayLike, frequency_mhz: ArrayLike) -> NDArray[np.float64]:
    """Free-space basic transmission loss between isotropic antennas.

    ``L_bf = 20 log10(4 pi d / lambda)`` (ITU-R P.525-4 §2.2, point-to-point links), which in
    practical units is ``32.45 + 20 log10(f [MHz]) + 20 log10(d [km])``; P.525 rounds the
    constant to 32.4.

    Parameters
    ----------
    distance_m : array_like
        Path length [m], > 0.
    frequency_mhz : array_like
        Frequency [MHz].

    Returns
    -------
    numpy.ndarray
        Loss [dB].
    """
    d = np.asarray(distance_m, dtype=float)
    return 20.0 * np.log10(4.0 * np.pi * d / wavelength_m(frequency_mhz))


def diffraction_parameter(
    h_m: ArrayLike, d1_m: ArrayLike, d2_m: ArrayLike, frequency_mhz: ArrayLike
) -> NDArray[np.float64]:
    """Fresnel-Kirchhoff diffraction parameter of a knife edge.

    ``v = h sqrt((2 / lambda) (1/d1 + 1/d2))`` (ITU-R P.526-15 §4.1, eq. (26)), with h the height
    of the edge above the straight line joining the ends (negative when below).

    Parameters
    ----------
    h_m : array_like
        Height of the edge above the line of sight [m].
    d1_m, d2_m : array_like
        Distances from the edge to the two ends [m].
    frequency_mhz : array_like
        Frequency [MHz].

    Returns
    -------
    numpy.ndarray
        v [-].
    """
    h = np.asarray(h_m, dtype=float)
    d1 = np.asarray(d1_m, dtype=float)
    d2 = np.asarray(d2_m, dtype=float)
    return h * np.sqrt(2.0 / wavelength_m(frequency_mhz) * (1.0 / d1 + 1.0 / d2))


def knife_edge_loss_db(v: ArrayLike) -> NDArray[np.float64]:
    """Single knife-edge diffraction loss J(v).

    ``J(v) = 6.9 + 20 log10(sqrt((v - 0.1)^2 + 1) + v - 0.1)`` for ``v > -0.78`` and 0 dB
    otherwise (ITU-R P.526-15 §4.1, eq. (31); the same as P.452-16 eq. (13)). J(0) = 6.0 dB.

    Parameters
    ----------
    v : array_like
        Diffraction parameter [-] (:func:`diffraction_parameter`).

    Returns
    -------
    numpy.ndarray
        Loss [dB], >= 0; NaN where v is NaN.
    """
    v = np.asarray(v, dtype=float)
    with np.errstate(invalid="ignore"):
        w = v - 0.1
        loss = 6.9 + 20.0 * np.log10(np.sqrt(w * w + 1.0) + w)
        return np.where(v > -0.78, loss, np.where(np.isnan(v), np.nan, 0.0))


def bullington_loss_db(
    prof: Profiles,
    ha_m: ArrayLike,
    hb_m: ArrayLike,
    *,
    frequency_mhz: float,
    k_factor: float = 4.0 / 3.0,
) -> NDArray[np.float64]:
    """Diffraction loss over terrain profiles by the Bullington construction.

    ITU-R P.452-16 §4.2.1, eqs. (14)-(22) (the "Bullington part" of the delta-Bullington model,
    also used by P.526-15 and P.1812): with terrain heights ``h_i`` raised by the earth bulge,

    - ``S_tim = max (h_i - h_ts) / d_i`` (14), ``S_tr = (h_rs - h_ts) / d`` (15);
    - line of sight (``S_tim < S_tr``): ``v_max = max (h_i - (h_ts (d - d_i) + h_rs d_i) / d)
      sqrt(2 d / (lambda d_i (d - d_i)))`` (16), ``L_uc = J(v_max)`` (17);
    - otherwise ``S_rim = max (h_i - h_rs) / (d - d_i)`` (18), the Bullington point
      ``d_bp = (h_rs - h_ts + S_rim d) / (S_tim + S_rim)`` (19), its ``v_b`` (20), ``L_uc = J(v_b)``
      (21);
    - ``L_b = L_uc + (1 - exp(-L_uc / 6)) (10 + 0.02 d [km])`` (22).

    The spherical-earth part of delta-Bullington (P.452 §4.2.2-4.2.3) is not included.

    Parameters
    ----------
    prof : Profiles
        Terrain profiles (:func:`universal_service.terrain.profiles`).
    ha_m, hb_m : array_like
        Antenna heights above ground at ends A (transmitter) and B (receiver) [m].
    frequency_mhz : float
        Frequency [MHz].
    k_factor : float
        Effective earth-radius factor [-].

    Returns
    -------
    numpy.ndarray
        Loss [dB] per profile: 0 for profiles without interior samples, NaN if an end is off the
        DEM or at nodata.
    """
    d = prof.distance_m
    z = prof.elevation_m
    k, m = d.shape
    rows = np.arange(k)
    n = prof.n_samples
    length = prof.length_m[:, None]
    hts = z[:, 0] + np.broadcast_to(np.asarray(ha_m, dtype=float), (k,))
    hrs = z[rows, n - 1] + np.broadcast_to(np.asarray(hb_m, dtype=float), (k,))
    lam = float(wavelength_m(frequency_mhz))
    j = np.arange(m)
    interior = (j >= 1) & (j < (n - 1)[:, None]) & np.isfinite(z)
    has_interior = interior.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = length - d
        h = z + d * d2 / (2.0 * k_factor * EARTH_RADIUS_M)
        s_tim = np.where(interior, (h - hts[:, None]) / d, -np.inf).max(axis=1, initial=-np.inf)
        s_tr = (hrs - hts) / prof.length_m
        line = (hts[:, None] * d2 + hrs[:, None] * d) / length
        scale = np.sqrt(2.0 * length / (lam * d * d2))
        v_max = np.where(interior, (h - line) * scale, -np.inf).max(axis=1, initial=-np.inf)
        s_rim = np.where(interior, (h - hrs[:, None]) / d2, -np.inf).max(axis=1, initial=-np.inf)
        total = prof.length_m
        d_bp = (hrs - hts + s_rim * total) / (s_tim + s_rim)
        v_b = (hts + s_tim * d_bp - (hts * (total - d_bp) + hrs * d_bp) / total) * np.sqrt(
            2.0 * total / (lam * d_bp * (total - d_bp))
        )
        v = np.where(s_tim < s_tr, v_max, v_b)
        l_uc = knife_edge_loss_db(np.where(has_interior, v, -np.inf))
        loss = l_uc + (1.0 - np.exp(-l_uc / 6.0)) * (10.0 + 0.02 * total / 1000.0)
    loss = np.where(has_interior, loss, 0.0)
    loss[~(np.isfinite(hts) & np.isfinite(hrs))] = np.nan
    return loss


def terrain_excess_loss_db(
    prof: Profiles,
    ha_m: ArrayLike,
    hb_m: ArrayLike,
    *,
    frequency_mhz: float,
    k_factor: float = 4.0 / 3.0,
) -> NDArray[np.float64]:
    """Diffraction loss of the terrain in excess of a smooth path between the same ends.

    ``max(L_b(profile) - L_b(smooth), 0)`` with :func:`bullington_loss_db` for both; the smooth
    profile is the straight ground line joining the two ends, so the antennas keep their heights
    above ground and the earth bulge is the same. The difference keeps what the terrain adds
    over flat ground (ridges, hills between the ends), the role of the actual-terrain term in the
    delta-Bullington model of ITU-R P.452-16 §4.2.3; the smooth-ground part is left to the basic
    loss model (here TR 38.901 RMa).

    Parameters
    ----------
    prof : Profiles
        Terrain profiles.
    ha_m, hb_m : array_like
        Antenna heights above ground at the two ends [m].
    frequency_mhz : float
        Frequency [MHz].
    k_factor : float
        Effective earth-radius factor [-].

    Returns
    -------
    numpy.ndarray
        Excess loss [dB] >= 0, NaN where an end is off the DEM or at nodata.
    """
    z = prof.elevation_m
    rows = np.arange(z.shape[0])
    za = z[:, 0:1]
    zb = z[rows, prof.n_samples - 1][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(prof.length_m[:, None] > 0, prof.distance_m / prof.length_m[:, None], 0.0)
    smooth = prof._replace(elevation_m=np.where(prof.mask, za + (zb - za) * frac, np.nan))
    actual = bullington_loss_db(prof, ha_m, hb_m, frequency_mhz=frequency_mhz, k_factor=k_factor)
    flat = bullington_loss_db(smooth, ha_m, hb_m, frequency_mhz=frequency_mhz, k_factor=k_factor)
    return np.maximum(actual - flat, 0.0)


# ---------------------------------------------------------------------------------------------
# Empirical rural macro-cell models
# ---------------------------------------------------------------------------------------------


def rma_path_loss_db(
    distance_m: ArrayLike,
    frequency_mhz: float,
    *,
    bs_height_m: ArrayLike = 35.0,
    ut_height_m: ArrayLike = 1.5,
    los: ArrayLike = True,
    height_difference_m: ArrayLike | None = None,
    building_height_m: float = 5.0,
    street_width_m: float = 20.0,
) -> NDArray[np.float64]:
    """3GPP TR 38.901 rural macro (RMa) path loss, LOS or NLOS.

    3GPP TR 38.901 V17.0.0, Table 7.4.1-1 (RMa), with ``f_c`` in GHz and distances in m:

    - ``PL1(d) = 20 log10(40 pi d f_c / 3) + min(0.03 h^1.72, 10) log10(d)
      - min(0.044 h^1.72, 14.77) + 0.002 log10(h) d``;
    - LOS: ``PL1(d_3D)`` up to the breakpoint ``d_BP = 2 pi h_BS h_UT f_c / c`` (f_c in Hz),
      then ``PL1(d_BP) + 40 log10(d_3D / d_BP)``;
    - NLOS: ``max(PL_LOS, PL'_NLOS)`` with ``PL'_NLOS = 161.04 - 7.1 log10(W) + 7.5 log10(h)
      - (24.37 - 3.7 (h / h_BS)^2) log10(h_BS) + (43.42 - 3.1 log10(h_BS)) (log10(d_3D) - 3)
      + 20 log10(f_c) - (3.2 (log10(11.75 h_UT))^2 - 4.97)``.

    Stated validity: 10 m <= d_2D <= 10 km (LOS) or 5 km (NLOS), 10 m <= h_BS <= 150 m,
    1 m <= h_UT <= 10 m, defaults h = 5 m, W = 20 m. Shorter distances are clamped to 10 m;
    longer ones are extrapolated with the same formulas (planners use RMa out to 15 km or so).
    Shadow-fading sigma (same table): 4 dB before and 6 dB after the breakpoint (LOS), 8 dB NLOS.

    Parameters
    ----------
    distance_m : array_like
        Horizontal distance d_2D [m].
    frequency_mhz : float
        Carrier frequency [MHz].
    bs_height_m, ut_height_m : array_like
        Base-station and user antenna heights above ground [m].
    los : array_like of bool
        True for the LOS formula, False for NLOS.
    height_difference_m : array_like, optional
        Vertical separation of the antennas for d_3D [m]; by default ``h_BS - h_UT`` (flat
        terrain, as in TR 38.901). Pass the altitude difference over real terrain.
    building_height_m, street_width_m : float
        Average building height h and street width W [m].

    Returns
    -------
    numpy.ndarray
        Path loss [dB].
    """
    fc_ghz = frequency_mhz / 1000.0
    d2d = np.maximum(np.asarray(distance_m, dtype=float), 10.0)
    h_bs = np.asarray(bs_height_m, dtype=float)
    h_ut = np.asarray(ut_height_m, dtype=float)
    dh = h_bs - h_ut if height_difference_m is None else np.asarray(height_difference_m, float)
    d3d = np.hypot(d2d, dh)
    h = building_height_m

    def pl1(d: NDArray[np.float64]) -> NDArray[np.float64]:
        return (
            20.0 * np.log10(40.0 * np.pi * d * fc_ghz / 3.0)
            + min(0.03 * h**1.72, 10.0) * np.log10(d)
            - min(0.044 * h**1.72, 14.77)
            + 0.002 * np.log10(h) * d
        )

    d_bp = 2.0 * np.pi * h_bs * h_ut * frequency_mhz * 1e6 / SPEED_OF_LIGHT_M_S
    pl_los = np.where(d2d <= d_bp, pl1(d3d), pl1(d_bp) + 40.0 * np.log10(d3d / d_bp))
    pl_nlos_prime = (
        161.04
        - 7.1 * np.log10(street_width_m)
        + 7.5 * np.log10(h)
        - (24.37 - 3.7 * (h / h_bs) ** 2) * np.log10(h_bs)
        + (43.42 - 3.1 * np.log10(h_bs)) * (np.log10(d3d) - 3.0)
        + 20.0 * np.log10(fc_ghz)
        - (3.2 * np.log10(11.75 * h_ut) ** 2 - 4.97)
    )
    return np.where(np.asarray(los, dtype=bool), pl_los, np.maximum(pl_los, pl_nlos_prime))


def hata_path_loss_db(
    distance_m: ArrayLike,
    frequency_mhz: float,
    *,
    bs_height_m: ArrayLike = 30.0,
    ms_height_m: float = 1.5,
    environment: Literal["urban", "suburban", "open"] = "open",
) -> NDArray[np.float64]:
    """Okumura-Hata path loss (COST-231 Hata above 1500 MHz).

    Hata, M. (1980), "Empirical formula for propagation loss in land mobile radio services",
    IEEE Trans. Veh. Technol. VT-29(3), 317-325: urban
    ``69.55 + 26.16 log f - 13.82 log h_b - a(h_m) + (44.9 - 6.55 log h_b) log d`` with the
    small/medium-city ``a(h_m) = (1.1 log f - 0.7) h_m - (1.56 log f - 0.8)``; suburban
    ``- 2 (log(f/28))^2 - 5.4``; open (rural) ``- 4.78 (log f)^2 + 18.33 log f - 40.94``
    (f in MHz, d in km, heights in m). Above 1500 MHz the urban formula is COST-231 Hata
    (COST Action 231 final report, 1999, §4.4.1): ``46.3 + 33.9 log f - 13.82 log h_b - a(h_m)
    + (44.9 - 6.55 log h_b) log d`` (C_m = 0), with the same suburban/open corrections
    (an extrapolation). Validity: 150-2000 MHz, h_b 30-200 m, h_m 1-10 m, d 1-20 km.

    Parameters
    ----------
    distance_m : array_like
        Distance [m].
    frequency_mhz : float
        Frequency [MHz].
    bs_height_m : array_like
        Base-station antenna height h_b [m].
    ms_height_m : float
        Mobile antenna height h_m [m].
    environment : {"urban", "suburban", "open"}
        Hata area correction.

    Returns
    -------
    numpy.ndarray
        Path loss [dB].
    """
    f = float(frequency_mhz)
    lf = np.log10(f)
    lhb = np.log10(np.asarray(bs_height_m, dtype=float))
    ld = np.log10(np.asarray(distance_m, dtype=float) / 1000.0)
    a_hm = (1.1 * lf - 0.7) * ms_height_m - (1.56 * lf - 0.8)
    if f <= 1500.0:
        urban = 69.55 + 26.16 * lf - 13.82 * lhb - a_hm + (44.9 - 6.55 * lhb) * ld
    else:
        urban = 46.3 + 33.9 * lf - 13.82 * lhb - a_hm + (44.9 - 6.55 * lhb) * ld
    if environment == "urban":
        return urban
    if environment == "suburban":
        return urban - 2.0 * np.log10(f / 28.0) ** 2 - 5.4
    if environment == "open":
        return urban - 4.78 * lf**2 + 18.33 * lf - 40.94
    raise ValueError(f"environment must be 'urban', 'suburban' or 'open' (got {environment!r})")


# ---------------------------------------------------------------------------------------------
# Link budget and coverage
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkBudget:
    """Downlink budget of a rural 4G macro cell to a handset at a village.

    Defaults describe an LTE band 8 (900 MHz) rural macro site; each value's source:

    - ``frequency_mhz = 900``: E-UTRA band 8 (downlink 925-960 MHz, 3GPP TS 36.101 Table 5.5-1),
      the band Chinese operators use for rural LTE coverage; the nominal 900 MHz is used.
    - ``tx_power_dbm = 46``: 40 W per sector, the macro BS power for a 10 MHz carrier in
      3GPP TR 36.814 Table A.2.1.1-2.
    - ``tx_antenna_gain_dbi = 15``, ``tx_loss_db = 2``: a typical 65-degree sector panel at
      900 MHz (vendor data 15-17 dBi) and jumper/feeder loss (assumption).
    - ``rx_antenna_gain_dbi = 0``, ``rx_loss_db = 0``: handset antenna (TR 36.814 Table
      A.2.1.1-2 uses 0 dBi); no body or building-entry loss (outdoor coverage at the village).
    - ``threshold_dbm = -94``: UE reference sensitivity for band 8 with a 10 MHz channel
      (3GPP TS 36.101 Table 7.3.1-1), total received power.
    - ``fade_margin_db = 10``: log-normal shadowing with sigma = 8 dB (TR 38.901 Table 7.4.1-1,
      RMa NLOS) at 90 % location probability (1.28 sigma = 10.2 dB).
    - ``site_height_m = 35``, ``village_height_m = 1.5``: TR 38.901 RMa defaults h_BS, h_UT.
    - ``max_range_m = 15 000``: upper end of 900 MHz rural macro-cell radii; RMa (valid to
      10 km LOS) is extrapolated beyond 10 km.
    - ``k_factor = 4/3``: median effective earth-radius factor of a standard atmosphere
      (ITU-R P.453 / P.530 use it when no local data exist).

    Attributes
    ----------
    frequency_mhz : float
        Carrier frequency [MHz].
    tx_power_dbm : float
        Transmitter output power [dBm].
    tx_antenna_gain_dbi, rx_antenna_gain_dbi : float
        Antenna gains [dBi].
    tx_loss_db, rx_loss_db : float
        Feeder, jumper, body losses [dB].
    threshold_dbm : float
        Minimum received power [dBm].
    fade_margin_db : float
        Margin above the threshold for shadowing/fading [dB].
    site_height_m, village_height_m : float
        Antenna heights above ground at the site and at the village [m].
    max_range_m : float
        Pairs farther apart are not evaluated [m].
    k_factor : float
        Effective earth-radius factor for clearance and diffraction [-].
    """

    frequency_mhz: float = 900.0
    tx_power_dbm: float = 46.0
    tx_antenna_gain_dbi: float = 15.0
    tx_loss_db: float = 2.0
    rx_antenna_gain_dbi: float = 0.0
    rx_loss_db: float = 0.0
    threshold_dbm: float = -94.0
    fade_margin_db: float = 10.0
    site_height_m: float = 35.0
    village_height_m: float = 1.5
    max_range_m: float = 15_000.0
    k_factor: float = 4.0 / 3.0

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "frequency_mhz",
            "site_height_m",
            "village_height_m",
            "max_range_m",
            "k_factor",
        ):
            if not getattr(self, name) > 0:
                problems.append(f"LinkBudget.{name} must be > 0 (got {getattr(self, name)})")
        if self.fade_margin_db < 0:
            problems.append(f"LinkBudget.fade_margin_db must be >= 0 (got {self.fade_margin_db})")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def eirp_dbm(self) -> float:
        """Effective isotropic radiated power [dBm]."""
        return self.tx_power_dbm + self.tx_antenna_gain_dbi - self.tx_loss_db

    @property
    def max_path_loss_db(self) -> float:
        """Largest path loss that still leaves the fade margin above the threshold [dB]."""
        return (
            self.eirp_dbm
            + self.rx_antenna_gain_dbi
            - self.rx_loss_db
            - self.threshold_dbm
            - self.fade_margin_db
        )

    def rx_dbm(self, path_loss_db: ArrayLike) -> NDArray[np.float64]:
        """Received power [dBm] for a path loss [dB]."""
        return (
            self.eirp_dbm
            - np.asarray(path_loss_db, dtype=float)
            + self.rx_antenna_gain_dbi
            - self.rx_loss_db
        )


_COVERAGE_COLUMNS = (
    "site_id",
    "village_id",
    "distance_m",
    "los",
    "clearance_ratio",
    "path_loss_db",
    "rx_dbm",
    "covered",
)


def coverage_matrix(
    dem: xr.DataArray,
    site_x_m: ArrayLike,
    site_y_m: ArrayLike,
    site_height_m: ArrayLike | None,
    village_x_m: ArrayLike,
    village_y_m: ArrayLike,
    *,
    site_ids: ArrayLike | None = None,
    village_ids: ArrayLike | None = None,
    budget: LinkBudget | None = None,
) -> pd.DataFrame:
    """Which candidate sites cover which villages, as a sparse long table.

    Pairs within ``budget.max_range_m`` are found with a KD-tree; for each, the terrain profile
    (DEM-resolution spacing) gives the Fresnel clearance at ``budget.k_factor`` and the terrain's
    excess diffraction loss (:func:`terrain_excess_loss_db`); the path loss is the TR 38.901 RMa
    LOS loss plus that excess (see the module docstring), and the village is covered when the
    received power clears ``threshold_dbm + fade_margin_db``.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    site_x_m, site_y_m : array_like
        Candidate site coordinates in the DEM CRS [m].
    site_height_m : array_like or None
        Antenna height above ground per site (or one for all) [m]; None: ``budget.site_height_m``.
    village_x_m, village_y_m : array_like
        Village coordinates in the DEM CRS [m].
    site_ids, village_ids : array_like, optional
        Labels; positions 0..n-1 by default.
    budget : LinkBudget, optional
        Link budget; ``LinkBudget()`` by default.

    Returns
    -------
    pandas.DataFrame
        One row per (site, village) pair within range, in input order of sites then villages,
        with ``site_id``, ``village_id``, ``distance_m`` [m], ``los`` (bool: the chord clears the
        terrain at ``k_factor``), ``clearance_ratio`` (min clearance / F1 [-]; +inf for a site
        at the village itself), ``path_loss_db`` [dB], ``rx_dbm`` [dBm], ``covered`` (bool).
        Pairs with an end off the DEM or at nodata have NaN losses, ``los`` and ``covered``
        False.
    """
    budget = LinkBudget() if budget is None else budget
    sx = np.ravel(np.asarray(site_x_m, dtype=float))
    sy = np.ravel(np.asarray(site_y_m, dtype=float))
    vx = np.ravel(np.asarray(village_x_m, dtype=float))
    vy = np.ravel(np.asarray(village_y_m, dtype=float))
    if sx.shape != sy.shape or vx.shape != vy.shape:
        raise ValueError("site_x_m/site_y_m and village_x_m/village_y_m must have equal lengths")
    heights = budget.site_height_m if site_height_m is None else site_height_m
    sh = np.broadcast_to(np.asarray(heights, dtype=float), sx.shape)
    sid = np.arange(sx.size) if site_ids is None else np.asarray(site_ids)
    vid = np.arange(vx.size) if village_ids is None else np.asarray(village_ids)
    if sid.shape != sx.shape or vid.shape != vx.shape:
        raise ValueError("site_ids and village_ids must match the number of sites and villages")

    if sx.size == 0 or vx.size == 0:
        pairs_s = pairs_v = np.empty(0, dtype=np.intp)
        dist = np.empty(0)
    else:
        st = cKDTree(np.column_stack([sx, sy]))
        vt = cKDTree(np.column_stack([vx, vy]))
        sdm = st.sparse_distance_matrix(vt, budget.max_range_m, output_type="ndarray")
        order = np.lexsort((sdm["j"], sdm["i"]))
        pairs_s = sdm["i"][order].astype(np.intp)
        pairs_v = sdm["j"][order].astype(np.intp)
        dist = sdm["v"][order].astype(float)

    npairs = pairs_s.size
    clearance = np.empty(npairs)
    min_clear = np.empty(npairs)
    diffraction = np.empty(npairs)
    dz = np.empty(npairs)
    hb = budget.village_height_m
    for idx, prof in terrain.iter_profiles(dem, sx[pairs_s], sy[pairs_s], vx[pairs_v], vy[pairs_v]):
        ha = sh[pairs_s[idx]]
        c = terrain.profile_clearance(
            prof, ha, hb, k_factor=budget.k_factor, frequency_mhz=budget.frequency_mhz
        )
        clearance[idx] = c.min_fresnel_ratio
        min_clear[idx] = c.min_clearance_m
        diffraction[idx] = terrain_excess_loss_db(
            prof, ha, hb, frequency_mhz=budget.frequency_mhz, k_factor=budget.k_factor
        )
        z = prof.elevation_m
        dz[idx] = (z[:, 0] + ha) - (z[np.arange(len(idx)), prof.n_samples - 1] + hb)

    basic = rma_path_loss_db(
        dist,
        budget.frequency_mhz,
        bs_height_m=sh[pairs_s],
        ut_height_m=hb,
        los=True,
        height_difference_m=np.nan_to_num(dz, nan=0.0),
    )
    path_loss = basic + diffraction
    rx = budget.rx_dbm(path_loss)
    with np.errstate(invalid="ignore"):
        los = min_clear >= 0.0
        covered = rx >= budget.threshold_dbm + budget.fade_margin_db
    return pd.DataFrame(
        {
            "site_id": sid[pairs_s],
            "village_id": vid[pairs_v],
            "distance_m": dist,
            "los": los,
            "clearance_ratio": clearance,
            "path_loss_db": path_loss,
            "rx_dbm": rx,
            "covered": covered,
        },
        columns=list(_COVERAGE_COLUMNS),
    )


# ---------------------------------------------------------------------------------------------
# Microwave backhaul hops
# ---------------------------------------------------------------------------------------------


def length_class(distance_m: ArrayLike) -> NDArray[np.object_]:
    """Microwave hop length class: "short" (< 10 km), "medium" (10-30 km), "long" (>= 30 km).

    A project convention (not an ITU-R category) used to pick a band and a cost: short hops
    suit 15-23 GHz radios, long ones 6-8 GHz with larger dishes, where P.530 multipath and
    k-factor fading dominate.

    Parameters
    ----------
    distance_m : array_like
        Hop length [m].

    Returns
    -------
    numpy.ndarray of str
    """
    d = np.asarray(distance_m, dtype=float)
    short, medium = HOP_CLASS_LIMITS_M
    return np.where(d < short, "short", np.where(d < medium, "medium", "long")).astype(object)


def microwave_hop(
    dem: xr.DataArray,
    xa: ArrayLike,
    ya: ArrayLike,
    ha_m: ArrayLike,
    xb: ArrayLike,
    yb: ArrayLike,
    hb_m: ArrayLike,
    *,
    frequency_mhz: float,
    median_k: float = 4.0 / 3.0,
    median_fraction: float = 1.0,
    low_k: float = 2.0 / 3.0,
    low_fraction: float = 0.6,
    spacing_m: float | None = None,
) -> pd.DataFrame:
    """Feasibility of point-to-point microwave hops from terrain clearance.

    ITU-R P.530-18 §2.2.2.1 sets antenna heights for non-diversity hops in two steps: at least
    1.0 F1 clearance over the highest obstacle at the median k (4/3 without local data), then a
    smaller fraction at the low k_e exceeded 99.9 % of the time (0.0 F1 for a single isolated
    obstacle to 0.3 F1 for an extended one in temperate climates, 0.6 F1 in the tropics for
    paths over about 30 km). This function checks the common conservative variant of those
    rules: ``>= median_fraction F1 at median_k`` (1.0 at 4/3) **and** ``>= low_fraction F1 at
    low_k`` (0.6 at 2/3). Rain, multipath and gas attenuation are not assessed.

    Parameters
    ----------
    dem : xarray.DataArray
        DEM [m].
    xa, ya, xb, yb : array_like
        Hop ends [m]; inputs broadcast together.
    ha_m, hb_m : array_like
        Antenna heights above ground [m].
    frequency_mhz : float
        Radio frequency [MHz] (e.g. 7 000-23 000).
    median_k, median_fraction, low_k, low_fraction : float
        The two clearance criteria: k factor [-] and required fraction of F1 [-].
    spacing_m : float, optional
        Profile spacing [m]; the DEM resolution by default.

    Returns
    -------
    pandas.DataFrame
        One row per hop: ``distance_m`` [m], ``length_class``, ``clearance_ratio_median_k`` and
        ``clearance_ratio_low_k`` (min clearance / F1 at each k [-]), ``meets_median_k``,
        ``meets_low_k``, ``feasible`` (both), ``free_space_loss_db`` [dB].
    """
    xa_, ya_, ha_, xb_, yb_, hb_ = (
        np.ravel(a)
        for a in np.broadcast_arrays(
            *(np.asarray(a, dtype=float) for a in (xa, ya, ha_m, xb, yb, hb_m))
        )
    )
    ratio_med = terrain.clearance_ratio(
        dem,
        xa_,
        ya_,
        ha_,
        xb_,
        yb_,
        hb_,
        frequency_mhz=frequency_mhz,
        k_factor=median_k,
        spacing_m=spacing_m,
    )
    ratio_low = terrain.clearance_ratio(
        dem,
        xa_,
        ya_,
        ha_,
        xb_,
        yb_,
        hb_,
        frequency_mhz=frequency_mhz,
        k_factor=low_k,
        spacing_m=spacing_m,
    )
    dist = np.hypot(xb_ - xa_, yb_ - ya_)
    with np.errstate(invalid="ignore", divide="ignore"):
        meets_med = ratio_med >= median_fraction
        meets_low = ratio_low >= low_fraction
        fsl = free_space_loss_db(dist, frequency_mhz)
    return pd.DataFrame(
        {
            "distance_m": dist,
            "length_class": length_class(dist),
            "clearance_ratio_median_k": ratio_med,
            "clearance_ratio_low_k": ratio_low,
            "meets_median_k": meets_med,
            "meets_low_k": meets_low,
            "feasible": meets_med & meets_low,
            "free_space_loss_db": fsl,
        }
    )
