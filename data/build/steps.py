"""The build, one function per step: sources, DEM, seats, villages, attributes, layers, metadata."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer
from rasterio.transform import Affine

from universal_service import io, terrain

from . import dem, demography, infrastructure, places, region, sources, write

#: The GPW 2020 population density grid inside the shared data folder.
GPW_PATH = Path("osm-qiannan") / "gpw_popdens_2020_decoded.tif"


def dem_layer(
    shared: Path, counties: gpd.GeoDataFrame, out: Path, seed: int
) -> tuple[np.ndarray, Affine, dict]:
    """Build the DEM, write ``dem.tif`` and return it.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder.
    counties : geopandas.GeoDataFrame
        County polygons in WGS84.
    out : pathlib.Path
        Output folder.
    seed : int
        Base seed.

    Returns
    -------
    tuple
        int16 elevation grid [m], its transform (EPSG:32648) and the DEM build facts.
    """
    z, transform, facts = dem.build_dem(shared, counties, seed)
    dem.write_dem(out / "dem.tif", z, transform, dem.geotiff_tags(seed, facts))
    return z, transform, facts


def slope_grid(z: np.ndarray, transform: Affine) -> places.Grid:
    """The placement grid: the DEM's transform with the slope of every cell.

    The slope is the project's one slope, Horn's method (:func:`terrain.horn_slope_deg`), the
    same as :func:`terrain.slope_deg` gives for the written ``dem.tif``.

    Parameters
    ----------
    z : numpy.ndarray
        Elevation on a north-up metric grid. [m]
    transform : affine.Affine
        Its transform.

    Returns
    -------
    places.Grid
        Grid with float32 slope. [degrees]
    """
    slope = terrain.horn_slope_deg(z, transform.a, transform.e)
    return places.Grid(transform, slope.astype(np.float32))


def locate_villages(
    divisions: pd.DataFrame,
    seats: gpd.GeoDataFrame,
    counties: gpd.GeoDataFrame,
    grid: places.Grid,
    seed: int,
) -> pd.DataFrame:
    """Locate every village, county by county, and check each lies inside its county.

    Parameters
    ----------
    divisions : pandas.DataFrame
        Output of :func:`sources.read_divisions`.
    seats : geopandas.GeoDataFrame
        Township seats (:func:`places.township_seats`), metric points.
    counties : geopandas.GeoDataFrame
        County polygons in WGS84.
    grid : places.Grid
        DEM grid with slope.
    seed : int
        Base seed.

    Returns
    -------
    pandas.DataFrame
        The village rows of ``divisions`` sorted by code, with ``district_id``, metric ``x``, ``y``,
        WGS84 ``lon``, ``lat`` [degrees] and ``location_source``.

    Raises
    ------
    ValueError
        If a village falls outside its county.
    """
    to_utm = Transformer.from_crs(region.GEO_CRS, region.METRIC_CRS, always_xy=True)
    vil = divisions[divisions["level"] == "village"].copy()
    vil["district_id"] = vil["code"].str[:6]
    vil["x"], vil["y"] = to_utm.transform(vil["lon"].to_numpy(), vil["lat"].to_numpy())
    polys_utm = counties.to_crs(region.METRIC_CRS).set_index("district_id").geometry
    placed = []
    for district_id, group in vil.groupby("district_id", sort=True):
        s = seats[seats["district_id"] == district_id]
        placed.append(
            places.locate_county_villages(group, s, polys_utm[district_id], grid, district_id, seed)
        )
    vil = pd.concat(placed).sort_values("code").reset_index(drop=True)
    to_geo = Transformer.from_crs(region.METRIC_CRS, region.GEO_CRS, always_xy=True)
    vil["lon"], vil["lat"] = to_geo.transform(vil["x"].to_numpy(), vil["y"].to_numpy())
    points = gpd.points_from_xy(vil["lon"], vil["lat"])
    polys = counties.set_index("district_id").geometry
    outside = [not polys[d].contains(p) for d, p in zip(vil["district_id"], points, strict=True)]
    if any(outside):
        raise ValueError(f"villages outside their county: {vil.loc[outside, 'code'].tolist()}")
    return vil


def _nearest_distance_m(xy: np.ndarray, points: gpd.GeoSeries) -> np.ndarray:
    """Distance from each row of ``xy`` to the nearest of ``points`` (same metric CRS). [m]"""
    pxy = shapely.get_coordinates(points.to_numpy())
    return np.min(np.hypot(xy[:, None, 0] - pxy[:, 0], xy[:, None, 1] - pxy[:, 1]), axis=1)


def village_layer(
    shared: Path,
    vil: pd.DataFrame,
    counties: gpd.GeoDataFrame,
    seats: gpd.GeoDataFrame,
    seed: int,
) -> gpd.GeoDataFrame:
    """The villages layer: located villages with population, households and income.

    ``existing_service`` and ``electrified`` are placeholders (``none``, True) until
    :func:`baseline_network` sets them from the built network.

    Parameters
    ----------
    shared : pathlib.Path
        The shared data folder (for the GPW density grid).
    vil : pandas.DataFrame
        Output of :func:`locate_villages`.
    counties : geopandas.GeoDataFrame
        County polygons in WGS84.
    seats : geopandas.GeoDataFrame
        Township seats, metric points.
    seed : int
        Base seed.

    Returns
    -------
    geopandas.GeoDataFrame
        The columns of ``villages.gpkg`` (see ``data/README.md``), points in WGS84.
    """
    totals = demography.county_population(shared / GPW_PATH, counties, demography.POPULATION_TOTAL)
    population = demography.village_population(vil, totals, shared / GPW_PATH)
    households = demography.households(population)
    ur = vil["ur_code"].to_numpy(dtype=int)
    income = demography.village_income(ur, np.random.default_rng([seed, region.STREAM_INCOME]))
    service = np.full(len(vil), "none", dtype=object)
    power = np.ones(len(vil), dtype=bool)
    return gpd.GeoDataFrame(
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
        geometry=gpd.points_from_xy(vil["lon"], vil["lat"]),
        crs=region.GEO_CRS,
    )


def baseline_network(
    out: Path,
    layers: dict[str, gpd.GeoDataFrame],
    seats: gpd.GeoDataFrame,
    seed: int,
) -> float:
    """Village towers, existing service and power, from the region as the package loads it.

    The layers written so far are loaded with :func:`universal_service.io.load_region` so that
    the plan's own radio and route tests (:mod:`universal_service.baseline`) decide what the
    network covers: :func:`infrastructure.village_towers` adds the village masts,
    :func:`infrastructure.existing_service` labels every village, and
    :func:`demography.electrified` follows from the labels. ``layers`` is updated in place
    (``towers``, ``villages``).

    Parameters
    ----------
    out : pathlib.Path
        The output folder holding the layers and a provisional ``region.toml``.
    layers : dict of geopandas.GeoDataFrame
        The built layers (``villages`` in WGS84, ``towers`` metric).
    seats : geopandas.GeoDataFrame
        Township seats, metric points.
    seed : int
        Base seed.

    Returns
    -------
    float
        The calibrated fiber reach [km].
    """
    the_region = io.load_region(out)
    extra = infrastructure.village_towers(the_region, seed=seed)
    towers = pd.concat([layers["towers"], extra.to_crs(layers["towers"].crs)], ignore_index=True)
    towers = gpd.GeoDataFrame(towers, geometry="geometry", crs=layers["towers"].crs)
    the_region = dataclasses.replace(
        the_region,
        towers=pd.concat([the_region.towers, extra], ignore_index=True).pipe(
            gpd.GeoDataFrame, geometry="geometry", crs=the_region.crs
        ),
    )
    service, reach = infrastructure.existing_service(the_region)
    villages = layers["villages"].copy()
    ur = villages["ur_code"].to_numpy(int)
    vxy = shapely.get_coordinates(the_region.villages.geometry.to_numpy())
    villages["existing_service"] = service.astype(str)
    villages["electrified"] = demography.electrified(
        ur,
        service,
        _nearest_distance_m(vxy, seats.geometry),
        np.random.default_rng([seed, region.STREAM_POWER]),
    ).astype(bool)
    layers["towers"] = towers
    layers["villages"] = villages
    return reach


def summarise(
    villages: gpd.GeoDataFrame,
    towers: gpd.GeoDataFrame,
    pops: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    z: np.ndarray,
    dem_facts: dict,
) -> dict[str, object]:
    """Summary figures of the build: counts, totals, DEM facts and service counts.

    Parameters
    ----------
    villages, towers, pops, roads : geopandas.GeoDataFrame
        The built layers.
    z : numpy.ndarray
        The int16 DEM. [m]
    dem_facts : dict
        Build facts of the DEM.

    Returns
    -------
    dict
        Figures in the order they are printed and written to ``region.toml``.
    """
    summary: dict[str, object] = {
        "villages": len(villages),
        "villages_rural": int(villages["ur_code"].isin((210, 220)).sum()),
        "villages_location_amap": int((villages["location_source"] == "amap").sum()),
        "population_total": int(villages["population"].sum()),
        "towers": len(towers),
        "pops": len(pops),
        "roads": len(roads),
        "not_electrified": int((~villages["electrified"]).sum()),
        "dem_shape": f"{z.shape[0]}x{z.shape[1]}",
        "dem_min_m": int(z.min()),
        "dem_max_m": int(z.max()),
        **dem_facts,
    }
    for label in ("none", "2g", "3g", "4g", "fiber"):
        summary[f"service_{label}"] = int((villages["existing_service"] == label).sum())
    return summary


def build(shared: Path, out: Path, seed: int = region.SEED) -> dict[str, object]:
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
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": write.GPKG_TIMESTAMP})
    out.mkdir(parents=True, exist_ok=True)
    divisions = sources.read_divisions(shared)
    counties = sources.read_counties(shared)
    counties_utm = counties.to_crs(region.METRIC_CRS)

    z, transform, dem_facts = dem_layer(shared, counties, out, seed)
    grid = slope_grid(z, transform)
    county_seats = places.county_seats(divisions, counties_utm)
    seats = places.township_seats(divisions, counties_utm, grid, seed)
    vil = locate_villages(divisions, seats, counties, grid, seed)

    roads = infrastructure.read_roads(shared, counties)
    towers = infrastructure.derive_towers(
        county_seats, seats, roads.to_crs(region.METRIC_CRS), seed
    )
    pops = infrastructure.derive_pops(county_seats, seats, seed)
    villages = village_layer(shared, vil, counties, seats, seed)

    layers = {
        "villages": villages,
        "districts": counties,
        "pops": pops,
        "towers": towers,
        "roads": roads,
    }
    write.write_layers(out, layers, infrastructure.operators_table())
    provisional = summarise(villages, towers, pops, roads, z, dem_facts)
    write.write_region_toml(out / "region.toml", write.region_meta(seed, seats, provisional, 0.0))
    reach = baseline_network(out, layers, seats, seed)
    write.write_layers(out, layers, infrastructure.operators_table())
    summary = summarise(layers["villages"], layers["towers"], pops, roads, z, dem_facts)
    write.write_region_toml(out / "region.toml", write.region_meta(seed, seats, summary, reach))
    return summary
