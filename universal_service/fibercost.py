"""What a metre of fiber costs by terrain: OnSSET's multiplier, or slope classes by laying method.

Two rules: :func:`trench_multiplier` (OnSSET's grid penalty of slope and elevation, used when the
catalog states no terrain classes) and :func:`fiber_multiplier` with :class:`TerrainCosts` (the
catalog's slope classes, each with a per-km multiplier for buried and for aerial cable; the
cheaper applies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ELEVATION_CLASS_BOUNDS_M",
    "SLOPE_CLASS_BOUNDS_DEG",
    "TerrainCosts",
    "fiber_multiplier",
    "terrain_costs",
    "trench_multiplier",
]

#: Upper bounds of the OnSSET slope classes [degrees]: class 5 (best) up to 10, then 20, 30, 40,
#: class 1 (worst) above 40. Source: OnSSET ``SettlementProcessor.classify_slope``
#: (github.com/OnSSET/onsset, ``onsset/onsset.py``; Mentis et al. 2017, Environ. Res. Lett. 12
#: 085003, doi:10.1088/1748-9326/aa7b29).
SLOPE_CLASS_BOUNDS_DEG = (10.0, 20.0, 30.0, 40.0)
#: Upper bounds of the OnSSET elevation classes [m above sea level]: 500, 1000, 2000, 3000.
#: Source: OnSSET ``SettlementProcessor.classify_elevation`` (same file).
ELEVATION_CLASS_BOUNDS_M = (500.0, 1000.0, 2000.0, 3000.0)
#: OnSSET weights of the slope and elevation classes in its combined grid-penalty classification
#: (0.30 and 0.15 of a total of 1 that also counts road distance 0.15, substation distance 0.20
#: and land cover 0.20; OnSSET ``SettlementProcessor.grid_penalties``). Here they are renormalised
#: to sum to 1 over slope and elevation only: an assumption of this module.
SLOPE_WEIGHT = 0.30 / 0.45
ELEVATION_WEIGHT = 0.15 / 0.45
#: Exponent rate of the OnSSET penalty curve ``1 + (exp(0.85 d) - 1) / 100`` (``grid_penalties``).
PENALTY_RATE = 0.85


def trench_multiplier(
    slope_deg: np.ndarray | float,
    elevation_m: np.ndarray | float,
    *,
    slope_weight: float = SLOPE_WEIGHT,
    elevation_weight: float = ELEVATION_WEIGHT,
    rate: float = PENALTY_RATE,
) -> np.ndarray:
    """Trench cost multiplier (>= 1) by slope and elevation class, after the OnSSET grid penalty.

    Each input is put in one of five classes with the OnSSET class bounds (slope: 10, 20, 30,
    40 degrees; elevation: 500, 1000, 2000, 3000 m). The class difficulty ``d`` counts the
    bounds exceeded (0 on flat lowland, 4 above 40 degrees or 3000 m), and

    ``d_comb = slope_weight * d_slope + elevation_weight * d_elev``  (0 <= d_comb <= 4),
    ``multiplier = 1 + (exp(rate * d_comb) - 1) / 100``,

    which runs from 1 (flat, below 500 m) to 1 + (e^3.4 - 1) / 100 = 1.29.

    Source: the penalty curve and the class bounds are those of OnSSET's
    ``SettlementProcessor.grid_penalties`` (Open Source Spatial Electrification Tool,
    github.com/OnSSET/onsset, ``onsset/onsset.py``; Mentis et al. 2017,
    doi:10.1088/1748-9326/aa7b29), which applies it to grid-line cost. Two adaptations are this
    module's assumptions: (1) only the slope and elevation terms are kept, with OnSSET's weights
    (0.30, 0.15) renormalised to (2/3, 1/3); (2) the curve is applied to the difficulty ``d``
    (0 = best class), so the penalty grows with slope and elevation as OnSSET's docstring
    states. (OnSSET's code applies it to ``|1 - c|`` with ``c`` the combined class where 5 is
    the *best* class, which gives the largest penalty on flat ground.)

    Parameters
    ----------
    slope_deg : array_like
        Terrain slope [degrees]; the absolute value is used.
    elevation_m : array_like
        Elevation above sea level [m]. Broadcast against ``slope_deg``.
    slope_weight, elevation_weight : float
        Weights of the two class difficulties [-].
    rate : float
        Exponent rate of the penalty curve [-].

    Returns
    -------
    numpy.ndarray
        Multiplier [-], >= 1; NaN where either input is NaN.
    """
    slope = np.abs(np.asarray(slope_deg, dtype=float))
    elev = np.asarray(elevation_m, dtype=float)
    slope, elev = np.broadcast_arrays(slope, elev)
    d_slope = np.searchsorted(np.asarray(SLOPE_CLASS_BOUNDS_DEG), slope, side="left")
    d_elev = np.searchsorted(np.asarray(ELEVATION_CLASS_BOUNDS_M), elev, side="left")
    d = slope_weight * d_slope + elevation_weight * d_elev
    out = 1.0 + np.expm1(rate * d) / 100.0
    return np.where(np.isnan(slope) | np.isnan(elev), np.nan, out)


@dataclass(frozen=True)
class TerrainCosts:
    """Fiber's cost per km by terrain slope class and laying method, relative to the catalog's
    ``capex_cny_per_km`` (buried on flat ground).

    Attributes
    ----------
    slope_bounds_deg : tuple of float
        Upper slope bounds of all classes but the last [degrees], increasing.
    buried : tuple of float
        Multiplier of buried cable (trench or plough) in each class [-].
    aerial : tuple of float or None
        Multiplier of aerial cable on poles in each class [-]; None: aerial not allowed.
    """

    slope_bounds_deg: tuple[float, ...]
    buried: tuple[float, ...]
    aerial: tuple[float, ...] | None = None

    @property
    def flat(self) -> float:
        """The cheaper method's multiplier on the flattest class [-]."""
        return min(self.buried[0], self.aerial[0]) if self.aerial else self.buried[0]


def terrain_costs(fib: dict) -> TerrainCosts | None:
    """The catalog fiber entry's terrain classes, or None if it states none.

    Keys ``terrain_class_max_slope_deg``, ``buried_multiplier`` and (optional)
    ``aerial_multiplier``; the catalog checks their lengths and order.

    Parameters
    ----------
    fib : dict
        The catalog's ``fiber`` table.

    Returns
    -------
    TerrainCosts or None
    """
    if "buried_multiplier" not in fib:
        return None
    aerial = fib.get("aerial_multiplier")
    return TerrainCosts(
        tuple(float(x) for x in fib["terrain_class_max_slope_deg"]),
        tuple(float(x) for x in fib["buried_multiplier"]),
        None if aerial is None else tuple(float(x) for x in aerial),
    )


def fiber_multiplier(
    slope_deg: np.ndarray | float,
    elevation_m: np.ndarray | float,
    costs: TerrainCosts | None = None,
) -> np.ndarray:
    """Cost of a metre of fiber at a point relative to buried cable on flat ground [-].

    With terrain classes (``costs``), the cheaper of buried and aerial cable in the point's
    slope class; without, the OnSSET-style :func:`trench_multiplier` of slope and elevation.

    Parameters
    ----------
    slope_deg, elevation_m : array_like
        Terrain slope [degrees] and elevation [m].
    costs : TerrainCosts, optional

    Returns
    -------
    numpy.ndarray
        Multiplier [-]; NaN where an input is NaN.
    """
    if costs is None:
        return trench_multiplier(slope_deg, elevation_m)
    slope = np.abs(np.asarray(slope_deg))
    if not np.issubdtype(slope.dtype, np.floating):
        slope = slope.astype(float)
    elev = np.broadcast_to(np.asarray(elevation_m), slope.shape)
    # the class is the number of bounds below the slope (searchsorted, side="left"), counted
    # bound by bound in the slope's own dtype: a whole DEM holds a few bounds and many cells
    cls = np.zeros(slope.shape, dtype=np.intp)
    for bound in np.asarray(costs.slope_bounds_deg, dtype=float):
        cls += slope > bound
    per_class = np.asarray(costs.buried, dtype=float)
    if costs.aerial is not None:
        per_class = np.minimum(per_class, np.asarray(costs.aerial, dtype=float))
    m = per_class[np.minimum(cls, len(per_class) - 1)]
    return np.where(np.isnan(slope) | np.isnan(elev), np.nan, m)
