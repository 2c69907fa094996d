"""Radio: the 4G link budget, site-village coverage over terrain, and microwave hop feasibility.

Units: distances and heights in metres, frequencies in MHz, losses in dB, powers in dBm, gains in
dBi. Profiles and clearances come from :mod:`universal_service.los`, the loss models from
:mod:`universal_service.pathloss`, the link-budget values from the scenario's ``radio`` section
(:class:`universal_service.schema.RadioConfig`).

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

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from universal_service import los, pathloss
from universal_service.schema import RadioConfig

__all__ = [
    "HOP_CLASS_LIMITS_M",
    "LinkBudget",
    "coverage_matrix",
    "length_class",
    "microwave_hop",
]

#: Upper bounds [m] of the microwave hop length classes "short" and "medium" (project definition).
HOP_CLASS_LIMITS_M = (10_000.0, 30_000.0)

#: The scenario's radio fields; their defaults are the one documented set of link-budget values.
_CONFIG = RadioConfig.model_fields


# ---------------------------------------------------------------------------------------------
# Link budget and coverage
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkBudget:
    """Downlink budget of a rural 4G macro cell to a receiver at a village.

    A plain holder: build it with :meth:`from_config` from the scenario's ``radio`` section,
    :class:`universal_service.schema.RadioConfig`, which documents every value and its source.
    The carrier frequency has no default (it comes from the technology catalog); the other
    fields fall back to ``RadioConfig``'s defaults so that keyword construction gives the same
    values.

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

    frequency_mhz: float
    tx_power_dbm: float = _CONFIG["tx_power_dbm"].default
    tx_antenna_gain_dbi: float = _CONFIG["tx_antenna_gain_dbi"].default
    tx_loss_db: float = _CONFIG["tx_loss_db"].default
    rx_antenna_gain_dbi: float = _CONFIG["rx_antenna_gain_dbi"].default
    rx_loss_db: float = _CONFIG["rx_loss_db"].default
    threshold_dbm: float = _CONFIG["threshold_dbm"].default
    fade_margin_db: float = _CONFIG["fade_margin_db"].default
    site_height_m: float = _CONFIG["site_height_m"].default
    village_height_m: float = _CONFIG["village_height_m"].default
    max_range_m: float = _CONFIG["max_range_m"].default
    k_factor: float = _CONFIG["k_factor"].default

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

    @classmethod
    def from_config(cls, radio: RadioConfig, *, frequency_mhz: float) -> LinkBudget:
        """The link budget of a scenario's ``radio`` section at a carrier frequency.

        Parameters
        ----------
        radio : universal_service.schema.RadioConfig
            Heights, range, k factor, powers, gains, losses, threshold and margin.
        frequency_mhz : float
            Carrier frequency [MHz] (the catalog's ``lte.frequency_mhz``).

        Returns
        -------
        LinkBudget
        """
        return cls(
            frequency_mhz=float(frequency_mhz),
            **{name: getattr(radio, name) for name in _BUDGET_FIELDS},
        )

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


#: The LinkBudget fields read from RadioConfig (all but the frequency).
_BUDGET_FIELDS = tuple(f for f in LinkBudget.__dataclass_fields__ if f != "frequency_mhz")


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
    budget: LinkBudget,
) -> pd.DataFrame:
    """Which candidate sites cover which villages, as a sparse long table.

    Pairs within ``budget.max_range_m`` are found with a KD-tree; for each, the terrain profile
    (DEM-resolution spacing) gives the Fresnel clearance at ``budget.k_factor`` and the terrain's
    excess diffraction loss (:func:`pathloss.terrain_excess_loss_db`); the path loss is the TR 38.901 RMa
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
    budget : LinkBudget
        Link budget (:meth:`LinkBudget.from_config`).

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
    for idx, prof in los.iter_profiles(dem, sx[pairs_s], sy[pairs_s], vx[pairs_v], vy[pairs_v]):
        ha = sh[pairs_s[idx]]
        c = los.profile_clearance(
            prof, ha, hb, k_factor=budget.k_factor, frequency_mhz=budget.frequency_mhz
        )
        clearance[idx] = c.min_fresnel_ratio
        min_clear[idx] = c.min_clearance_m
        diffraction[idx] = pathloss.terrain_excess_loss_db(
            prof, ha, hb, frequency_mhz=budget.frequency_mhz, k_factor=budget.k_factor
        )
        z = prof.elevation_m
        dz[idx] = (z[:, 0] + ha) - (z[np.arange(len(idx)), prof.n_samples - 1] + hb)

    basic = pathloss.rma_path_loss_db(
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
        in_sight = min_clear >= 0.0
        covered = rx >= budget.threshold_dbm + budget.fade_margin_db
    return pd.DataFrame(
        {
            "site_id": sid[pairs_s],
            "village_id": vid[pairs_v],
            "distance_m": dist,
            "los": in_sight,
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
    ratio_med = los.clearance_ratio(
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
    ratio_low = los.clearance_ratio(
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
        fsl = pathloss.free_space_loss_db(dist, frequency_mhz)
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
