"""Who lives there: county and village population, households, income, electrification."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.features import rasterize
from rasterio.transform import Affine
from scipy import ndimage

from universal_service.buildrules import INCOME_SIGMA

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
#: Electrification rule (assumption): among rural villages without mobile service, the most remote
#: decile (distance to the nearest township seat) is off-grid with this probability.
OFFGRID_PROBABILITY = 0.3
OFFGRID_QUANTILE = 0.9


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
        Output of :func:`infrastructure.existing_service`.
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


def households(population: pd.Series) -> pd.Series:
    """Households per unit: population over HOUSEHOLD_SIZE, rounded, at least 1.

    Parameters
    ----------
    population : pandas.Series
        Persons per unit.

    Returns
    -------
    pandas.Series
        int64 households per unit (same index).
    """
    return np.maximum(np.rint(population / HOUSEHOLD_SIZE), 1).astype(np.int64)
