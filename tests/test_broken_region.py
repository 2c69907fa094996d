"""Broken region data of issue 16: implausible values, a CRS far from the data, mixed districts.

Cases follow the catalog of ``tests/test_broken_inputs.py`` (same :class:`Case` and verdict
rule): each is a named mutation of the seeded synthetic region, or a literal file in
``tests/data/broken/`` (listed in its ``README.md``). Errors come from ``io.load_region`` and,
through the CLI, ``universal-service validate`` exits 2 without a traceback. Odd but possible
data loads, with a warning logged and kept on ``Region.warnings``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from shapely.geometry import Polygon
from typer.testing import CliRunner

from tests.test_broken_inputs import (
    BROKEN,
    METRIC,
    Case,
    _check_message,
    _copy_literal,
    _edit_districts,
    _edit_layer,
    _edit_operators,
    _edit_text,
    _edit_villages,
    _set,
)
from universal_service import io
from universal_service.cli import app
from universal_service.io import checks
from universal_service.schema import PLAUSIBLE, TYPICAL


def _metric(fn):
    """Apply ``fn`` to a layer in the synthetic region's metric CRS, write it back in WGS84."""
    return lambda g: fn(g.to_crs(METRIC)).to_crs("EPSG:4326")


def _write_dem(fn, **attrs) -> object:
    """Rewrite dem.tif with values ``fn(values)``, no declared nodata, and band attributes."""

    def make(root: Path) -> None:
        dem = io.read_dem(root / "dem.tif")
        out = xr.DataArray(
            fn(dem.values.astype(np.float32)),
            coords={"y": dem.y.values, "x": dem.x.values},
            dims=("y", "x"),
            attrs=attrs,
        ).rio.write_crs(METRIC)
        out.rio.to_raster(root / "dem.tif")

    return make


def _cells(value: float, n: int = 5):
    def fn(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        v[0, :n] = value
        return v

    return fn


def _swap_districts(v: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    v["district_id"] = v["district_id"].map({"D01": "D02", "D02": "D01"})
    return v


def _overlap(share: float):
    """Grow district D02 westwards over D01 by ``share`` of D01's width."""

    def fn(d: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        x0, y0, x1, y1 = d.geometry.iloc[0].bounds
        grow = Polygon.from_bounds(x1 - share * (x1 - x0), y0, x1 + 10, y1)
        d.loc[1, "geometry"] = d.geometry.iloc[1].union(grow)
        return d

    return _metric(fn)


def _bow_tie(d: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    x0, y0, x1, y1 = d.geometry.iloc[1].bounds
    d.loc[1, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    return d


def _shares(*values: float):
    return _edit_operators(lambda o: o.assign(market_share=[str(v) for v in values]))


def _villages_csv(src: str):
    return _copy_literal(src, "villages.csv", "villages.gpkg", "villages.csv")


# ----------------------------------------------------------------------------------------- errors

ERROR_CASES: dict[str, Case] = {
    # --- populations
    "villages_all_population_zero": Case(
        _edit_villages(lambda v: v.assign(population=0.0, households=0.0)),
        ("villages.gpkg", "'population' is 0 in every row", "> 0", "Fill in the populations"),
    ),
    "villages_absurd_population": Case(
        _edit_villages(_set("population", [3], 5.0e7)),
        ("villages.gpkg, feature 4", "'population'", "5e+07", "at most 2,000,000", "unit"),
    ),
    "villages_households_above_population": Case(
        _edit_villages(_set("households", [5], 1.0e5)),
        ("villages.gpkg, feature 6", "'households' exceeds 'population'", "100000 >", "swapped"),
    ),
    # --- the region's CRS
    "region_crs_other_side_of_world": Case(
        _edit_text("region.toml", 'crs = "EPSG:32648"', 'crs = "EPSG:32618"'),
        (
            "region.toml",
            "crs = 'EPSG:32618'",
            "is made for lon -78..-72",
            "176 degrees away",
            'Set crs = "EPSG:32648"',
        ),
    ),
    "region_crs_web_mercator": Case(
        _edit_text("region.toml", 'crs = "EPSG:32648"', 'crs = "EPSG:3857"'),
        ("region.toml", "crs = 'EPSG:3857'", "% off", "within 2%", 'Set crs = "EPSG:32648"'),
    ),
    # --- districts
    "villages_district_ids_swapped": Case(
        _edit_villages(_swap_districts),
        (
            "villages.gpkg, features 1, 2, 3",
            "in another district's polygon of districts.gpkg than its district_id",
            "V0000: D02 -> D01",
            "expected at most 10%",
            "same codes",
        ),
    ),
    "districts_overlapping": Case(
        _edit_districts(_overlap(0.5)),
        (
            "districts.gpkg, features 1, 2",
            "D01 and D02 overlap by",
            "at most 10%",
            "Fix the polygons",
        ),
    ),
    "districts_self_intersecting": Case(
        _edit_districts(_metric(_bow_tie)),
        ("districts.gpkg, feature 2", "invalid polygon (Self-intersection", "ogr2ogr -makevalid"),
    ),
    # --- DEM values
    "dem_undeclared_nodata": Case(
        _write_dem(_cells(-32768.0)),
        ("dem.tif", "5 DEM cells hold -32768", "declares nodata = None", "gdal_edit.py -a_nodata"),
    ),
    "dem_undeclared_nodata_9999": Case(
        _write_dem(_cells(-9999.0, 3)),
        ("dem.tif", "3 DEM cells hold -9999", "-450 to 8900 m", "-a_nodata -9999"),
    ),
    "dem_in_feet": Case(
        _write_dem(lambda v: v / 0.3048, units="ft"),
        ("dem.tif", "elevations are in 'ft'; expected metres", "0.3048"),
    ),
    "dem_infinite_cells": Case(
        _write_dem(_cells(np.inf, 2)),
        ("dem.tif", "2 DEM cells are infinite", "expected finite elevations", "nodata"),
    ),
    "dem_centimetres": Case(
        _write_dem(lambda v: v * 100.0),
        ("dem.tif", "DEM elevations reach", "expected -450 to 8900 m", "Check the unit"),
    ),
    # --- infrastructure and operators
    "pops_unknown_operator": Case(
        lambda root: _edit_layer(root, "pops", _set("operator_id", [1], "chinanet")),
        ("pops.gpkg, feature 2", "operator_id ['chinanet'] not found in operators.csv", "add the"),
    ),
    "towers_unknown_operator": Case(
        lambda root: _edit_layer(root, "towers", _set("operator_id", [0], "unicom")),
        ("towers.gpkg, feature 1", "operator_id ['unicom'] not found in operators.csv", "known: ["),
    ),
    "operators_share_percent": Case(
        _copy_literal("operators_share_percent.csv", "operators.csv"),
        ("operators.csv", "'market_share' sums to 100", "0.9 to 1.1", "divide by 100"),
    ),
    "operators_share_sum_low": Case(
        _shares(0.3, 0.1, 0.1),
        ("operators.csv", "'market_share' sums to 0.5", "expected 0.9 to 1.1", "Rescale"),
    ),
    "operators_share_partly_empty": Case(
        _shares(0.6, 0.4, float("nan")),
        ("operators.csv, line 4", "'market_share'", "must be a number", "Fill in the missing"),
    ),
    "towers_absurd_height": Case(
        lambda root: _edit_layer(root, "towers", _set("height_m", [1], 1200.0)),
        ("towers.gpkg, feature 2", "'height_m' = ['1200']", "at most 300 m", "feet?"),
    ),
    # --- errors that used to name the wrong cause
    "villages_csv_swapped_lon_lat": Case(
        _villages_csv("villages_swapped_lon_lat.csv"),
        ("villages.csv", "longitude and latitude look swapped", "exchange the lon and lat"),
    ),
    "toml_layers_as_string": Case(
        _copy_literal("region_layers_string/region.toml", "region.toml"),
        ("region.toml", "'layers' must be a table", "got str 'villages.gpkg'", "[layers] table"),
    ),
    "toml_layer_entry_as_list": Case(
        _edit_text("region.toml", 'pops = "pops.gpkg"', 'pops = ["pops.gpkg"]'),
        ("region.toml", "[layers] pops must be a path", "\"['pops.gpkg']\"", 'pops = "FILE"'),
    ),
    "pops_empty_layer": Case(
        lambda root: _edit_layer(root, "pops", lambda g: g.iloc[:0]),
        ("pops.gpkg", "the layer is empty (no pops)", "at least one row"),
    ),
}

#: Wrong causes the old messages gave, which must not come back.
NOT_SAID = {
    "villages_csv_swapped_lon_lat": "look like metres",
    "districts_self_intersecting": "Check the coordinates and CRS",
    "toml_layers_as_string": "has no 'villages' entry",
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_broken_region_data(name, region_copy):
    case = ERROR_CASES[name]
    case.make(region_copy)
    with pytest.raises(case.error) as ei:
        io.load_region(region_copy)
    _check_message(ei.value, case, name)
    for problem in ei.value.problems:
        assert re.search(r"\.(gpkg|csv|tif|toml)\b", problem), problem
    if name in NOT_SAID:
        assert NOT_SAID[name] not in str(ei.value)


@pytest.mark.parametrize(
    "name", ["villages_all_population_zero", "region_crs_web_mercator", "dem_in_feet"]
)
def test_validate_exits_2_naming_the_problem(name, region_copy):
    ERROR_CASES[name].make(region_copy)
    res = CliRunner().invoke(app, ["validate", str(region_copy)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert all(s in res.output for s in ERROR_CASES[name].expected), res.output


# --------------------------------------------------------------------------------------- warnings

WARNING_CASES: dict[str, tuple[object, tuple[str, ...]]] = {
    "villages_town_population": (
        _edit_villages(_set("population", [2], 250_000.0)),
        ("villages.gpkg, feature 3", "population above 100,000", "V0002", "planned as given"),
    ),
    "region_crs_neighbouring_zone": (
        _edit_text("region.toml", 'crs = "EPSG:32648"', 'crs = "EPSG:32647"'),
        ("region.toml", "crs = 'EPSG:32647'", "% off", 'crs = "EPSG:32648" would be exact'),
    ),
    "village_in_another_district": (
        _edit_villages(_set("district_id", [0], "D02")),
        ("villages.gpkg, feature 1", "another district's polygon", "V0000: D02 -> D01", "boundary"),
    ),
    "districts_sliver_overlap": (
        _edit_districts(_overlap(0.05)),
        ("districts.gpkg, features 1, 2", "D01 and D02 overlap by", "their district_id"),
    ),
    "towers_low": (
        lambda root: _edit_layer(root, "towers", _set("height_m", [0], 4.0)),
        ("towers.gpkg, feature 1", "tower height ['4'] m is unusual", "10 to 150 m"),
    ),
}


@pytest.mark.parametrize("name", list(WARNING_CASES))
def test_odd_region_data_loads_with_a_warning(name, region_copy, caplog):
    make, expected = WARNING_CASES[name]
    make(region_copy)
    with caplog.at_level(logging.WARNING, logger="universal_service.io"):
        region = io.load_region(region_copy)
    found = [w for w in region.warnings if all(s in w for s in expected)]
    assert len(found) == 1, region.warnings
    assert found[0] in [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert region.subset(["D01"]).warnings == region.warnings


def test_the_synthetic_region_loads_without_warnings(synth_region_dir):
    assert io.load_region(synth_region_dir).warnings == []


def test_a_polygon_touching_itself_is_repaired_with_a_warning(region_copy):
    """A ring that touches itself at one vertex is invalid but unambiguous: repaired, not refused."""

    def pinch(d: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        # the boundary runs down from the top edge into a small triangle and back through the
        # same vertex: a "ring self-intersection" whose repair keeps the area
        x0, y0, x1, y1 = d.geometry.iloc[1].bounds
        mx = (x0 + x1) / 2
        ring = [(x0, y0), (x1, y0), (x1, y1), (mx, y1), (mx + 150, y1 - 300)]
        ring += [(mx - 150, y1 - 300), (mx, y1), (x0, y1)]
        d.loc[1, "geometry"] = Polygon(ring)
        return d

    _edit_districts(_metric(pinch))(region_copy)
    raw = gpd.read_file(region_copy / "districts.gpkg")
    assert not raw.geometry.iloc[1].is_valid
    region = io.load_region(region_copy)
    assert region.districts.geometry.is_valid.all()
    assert any("districts.gpkg, feature 2: invalid polygon" in w for w in region.warnings)


def test_limits_are_documented_in_one_place():
    """The checks read their limits from schema.PLAUSIBLE / TYPICAL, each with unit and reason."""
    for key in (
        "villages.population",
        "towers.height_m",
        "operators.market_share_sum",
        "dem.elevation_m",
        "region.crs_scale_error",
        "region.crs_area_distance_deg",
        "villages.other_district_share",
        "districts.overlap_share",
    ):
        lim = PLAUSIBLE[key]
        assert lim.low <= lim.high and lim.reason
        if key in TYPICAL:
            assert lim.low <= TYPICAL[key][0] <= TYPICAL[key][1] <= lim.high


def test_cases_and_literal_files_are_listed_in_the_readme():
    readme = (BROKEN / "README.md").read_text(encoding="utf-8")
    names = [*ERROR_CASES, *WARNING_CASES]
    assert not [n for n in names if f"`{n}`" not in readme]
    for path in ("villages_swapped_lon_lat.csv", "operators_share_percent.csv"):
        assert f"`{path}`" in readme
    assert "`region_layers_string/region.toml`" in readme


def test_crs_scale_error_measures_length_distortion(synth_region_dir):
    v = gpd.read_file(synth_region_dir / "villages.gpkg")
    assert checks.crs_scale_error(pyproj.CRS("EPSG:32648"), v) < 1e-3
    lat = float(np.radians(v.geometry.y.median()))
    web = checks.crs_scale_error(pyproj.CRS("EPSG:3857"), v)
    assert web == pytest.approx(1 / np.cos(lat) - 1, rel=0.01)
    # true to scale on its antipodal meridian, but 180 degrees from its area of use
    assert checks.area_distance_deg(pyproj.CRS("EPSG:32618"), v) > 170
    assert checks.area_distance_deg(pyproj.CRS("EPSG:32648"), v) == 0.0


def test_bundled_region_loads_without_warnings():
    root = Path(__file__).resolve().parents[1] / "data" / "qiannan"
    assert io.load_region(root).warnings == []


def test_warnings_reach_validate_and_the_plan_summary(region_copy, tmp_path):
    """Odd data is planned as given, and the user sees the warning where the plan is reported."""
    make, expected = WARNING_CASES["villages_town_population"]
    make(region_copy)
    res = CliRunner().invoke(app, ["validate", str(region_copy)])
    assert res.exit_code == 0, res.output
    assert "with 1 warnings:" in res.output and all(s in res.output for s in expected)
    res = CliRunner().invoke(app, ["plan", str(region_copy), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "input warnings (1):" in res.output and all(s in res.output for s in expected)
