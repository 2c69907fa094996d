"""Path loss: free space, knife-edge and Bullington diffraction, 3GPP RMa and Okumura-Hata.

Units: distances and heights in metres, frequencies in MHz, losses in dB. Terrain profiles come from
:mod:`universal_service.los`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from universal_service import los

__all__ = [
    "bullington_loss_db",
    "diffraction_parameter",
    "free_space_loss_db",
    "hata_path_loss_db",
    "knife_edge_loss_db",
    "rma_path_loss_db",
    "terrain_excess_loss_db",
]

#: Speed of light [m/s]; a name the ``los`` flag of :func:`rma_path_loss_db` does not shadow.
_C_M_S = los.SPEED_OF_LIGHT_M_S


# ---------------------------------------------------------------------------------------------
# Free space and diffraction
# ---------------------------------------------------------------------------------------------


def _wavelength_m(frequency_mhz: ArrayLike) -> NDArray[np.float64]:
    """Free-space wavelength ``lambda = c / f`` [m] for a frequency [MHz]."""
    return los.SPEED_OF_LIGHT_M_S / (np.asarray(frequency_mhz, dtype=float) * 1e6)


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
    return 20.0 * np.log10(4.0 * np.pi * d / _wavelength_m(frequency_mhz))


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
    return h * np.sqrt(2.0 / _wavelength_m(frequency_mhz) * (1.0 / d1 + 1.0 / d2))


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
    prof: los.Profiles,
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
        Terrain profiles (:func:`universal_service.los.profiles`).
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
    lam = float(_wavelength_m(frequency_mhz))
    j = np.arange(m)
    interior = (j >= 1) & (j < (n - 1)[:, None]) & np.isfinite(z)
    has_interior = interior.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = length - d
        h = z + d * d2 / (2.0 * k_factor * los.EARTH_RADIUS_M)
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
    prof: los.Profiles,
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

    d_bp = 2.0 * np.pi * h_bs * h_ut * frequency_mhz * 1e6 / _C_M_S
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
