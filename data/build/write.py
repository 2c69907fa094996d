"""Write the region: the GeoPackage layers, operators.csv and region.toml."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from universal_service import buildrules

from . import dem, demography, infrastructure, region

#: A fixed timestamp for GeoPackage metadata so that rebuilds give the same bytes.
GPKG_TIMESTAMP = "2016-12-31T00:00:00.000Z"


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
        f"name = {_toml_value(region.REGION_NAME)}",
        f'crs = "{region.METRIC_CRS}"'
        "  # the metric CRS every layer is reprojected to on load (UTM 48N)",
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
    pyogrio.write_dataframe(gdf.to_crs(region.GEO_CRS), path, layer=layer, driver="GPKG")


def write_layers(out: Path, layers: dict[str, gpd.GeoDataFrame], operators: pd.DataFrame) -> None:
    """Write each layer to ``<name>.gpkg`` (layer ``<name>``, WGS84) and ``operators.csv``.

    Parameters
    ----------
    out : pathlib.Path
        Output folder (existing).
    layers : dict of geopandas.GeoDataFrame
        Layers by name, written in this order.
    operators : pandas.DataFrame
        Output of :func:`infrastructure.operators_table`.
    """
    for name, gdf in layers.items():
        _write_gpkg(gdf, out / f"{name}.gpkg", name)
    operators.to_csv(out / "operators.csv", index=False, lineterminator="\n")


def region_meta(
    seed: int, seats: gpd.GeoDataFrame, summary: dict[str, object], fiber_reach_km: float
) -> dict[str, object]:
    """The ``[meta]`` table of ``region.toml``: build command, sources, rules and summary figures.

    Parameters
    ----------
    seed : int
        Base seed of the build.
    seats : geopandas.GeoDataFrame
        Township seats (``town_id``, ``seat_source``); the derived ones are listed.
    summary : dict
        Summary figures of the build, appended last.
    fiber_reach_km : float
        The calibrated fiber reach [km] (``universal_service.baseline`` reads it).

    Returns
    -------
    dict
        Flat entries (str, bool, int or float values), in the order they are written.
    """
    derived_seats = seats[~seats["seat_source"].eq("amap")]
    probability = infrastructure.POP_TOWNSHIP_PROBABILITY
    return {
        "build_command": "python data/build_region.py --shared ../shared/data --out data/qiannan",
        "seed": seed,
        "dem_synthetic_detail": True,
        "dem_method": dem.METHOD,
        "dem_trend_source": "zengxing358/webgis data/dem.tif (12 km, origin not stated)",
        "divisions_source": "Vonng/adcode (CC BY 4.0), after NBS 2016 statistical division codes "
        "and Amap district boundaries; GCJ-02 converted to WGS84",
        "roads_source": "(c) OpenStreetMap contributors, ODbL 1.0 (highway=motorway)",
        "population_source": "GPWv4.11 2020 density (CIESIN, CC BY 4.0) as relative weight, "
        f"rescaled to the 2010 census total {demography.POPULATION_TOTAL}",
        "household_size": demography.HOUSEHOLD_SIZE,
        "income_rural_cny_per_year": demography.RURAL_INCOME_YEAR,
        "income_urban_ratio": round(demography.URBAN_INCOME_RATIO, 4),
        "income_sigma": demography.INCOME_SIGMA,
        "baseline_year": buildrules.BASELINE_YEAR,
        "fiber_reach_km": fiber_reach_km,
        "towers_rule": "derived: 4g at county seats (one per operator), township seats (one, "
        "operator by share) and expressways every >= "
        f"{infrastructure.EXPRESSWAY_TOWER_SPACING_M:.0f} m; 2g/3g village masts "
        f"({infrastructure.VILLAGE_TOWER_HEIGHT_M:.0f} m on the highest cell within "
        f"{infrastructure.VILLAGE_TOWER_SEARCH_M:.0f} m of a rural village) added greedily until at "
        f"most {infrastructure.NO_SERVICE_SHARE:.0%} of rural villages are uncovered under the "
        f"plan's radio test; 3g with probability {infrastructure.VILLAGE_TOWER_3G_PROBABILITY}",
        "pops_rule": "derived: every operator at county seats; township seats with probability "
        + ", ".join(f"{k} {v}" for k, v in probability.items()),
        "existing_service_rule": "universal_service.baseline.service_levels: fiber where the "
        "routed distance to the nearest PoP is within fiber_reach_km (calibrated so that "
        f"{infrastructure.FIBER_SHARE_RURAL:.4f} of rural villages are fibered), else the best "
        "technology of a tower covering the village under the plan's radio test, else none",
        "derived_township_seats": ";".join(
            f"{t}:{s}"
            for t, s in zip(derived_seats["town_id"], derived_seats["seat_source"], strict=True)
        ),
        **summary,
    }
