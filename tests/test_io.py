"""Tests for universal_service.io: reading, reprojection, normalisation and validation."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from universal_service import io, outputs
from universal_service.errors import InputDataError


def test_load_synthetic_region(synth_region_dir):
    r = io.load_region(synth_region_dir)
    assert r.crs.to_epsg() == 32648
    assert len(r.villages) == 40
    assert r.villages["village_id"].is_monotonic_increasing
    # stored in WGS84, reprojected to metres on load
    assert r.villages.crs == r.crs and r.villages.geometry.x.min() > 1e5
    assert r.dem.dims == ("y", "x") and r.dem.dtype == np.float32
    assert set(r.operators["operator_id"]) == {"cmcc", "ct", "cu"}
    assert r.villages["population"].dtype == float
    assert r.meta["synthetic"] is True


def test_region_subset(synth_region_dir):
    r = io.load_region(synth_region_dir)
    s = r.subset(["D01"])
    assert set(s.villages["district_id"]) == {"D01"}
    assert len(s.pops) == len(r.pops)


def test_column_aliases_are_normalised(region_copy):
    v = gpd.read_file(region_copy / "villages.gpkg")
    v = v.rename(columns={"village_id": "ID", "population": "Pop", "income_monthly": "income"})
    v.to_file(region_copy / "villages.gpkg", layer="villages", driver="GPKG")
    r = io.load_region(region_copy)
    assert {"village_id", "population", "income_monthly"} <= set(r.villages.columns)


def test_csv_villages_with_lon_lat(region_copy):
    v = gpd.read_file(region_copy / "villages.gpkg")
    df = pd.DataFrame(v.drop(columns="geometry"))
    df["lon"], df["lat"] = v.geometry.x, v.geometry.y
    df.to_csv(region_copy / "villages.csv", index=False)
    toml = (region_copy / "region.toml").read_text().replace("villages.gpkg", "villages.csv")
    (region_copy / "region.toml").write_text(toml)
    r = io.load_region(region_copy)
    assert len(r.villages) == 40 and r.villages.crs.to_epsg() == 32648


@pytest.mark.parametrize("suffix", [".geojson", ".parquet"])
def test_other_vector_formats(region_copy, suffix):
    v = gpd.read_file(region_copy / "districts.gpkg")
    target = region_copy / f"districts{suffix}"
    if suffix == ".parquet":
        v.to_parquet(target)
    else:
        v.to_file(target, driver="GeoJSON")
    toml = (region_copy / "region.toml").read_text().replace("districts.gpkg", target.name)
    (region_copy / "region.toml").write_text(toml)
    assert len(io.load_region(region_copy).districts) == 2


def test_netcdf_dem(region_copy):
    dem = io.read_dem(region_copy / "dem.tif")
    ds = dem.to_dataset(name="elevation")
    ds["elevation"].attrs["crs"] = "EPSG:32648"
    ds.to_netcdf(region_copy / "dem.nc")
    toml = (region_copy / "region.toml").read_text().replace("dem.tif", "dem.nc")
    (region_copy / "region.toml").write_text(toml)
    r = io.load_region(region_copy)
    xr.testing.assert_allclose(
        r.dem.drop_vars("spatial_ref", errors="ignore"),
        dem.drop_vars("spatial_ref", errors="ignore"),
    )


def _break_villages(region_copy, fn):
    v = gpd.read_file(region_copy / "villages.gpkg")
    v = fn(v)
    v.to_file(region_copy / "villages.gpkg", layer="villages", driver="GPKG")


def test_errors_are_collected_and_name_file_rows_fix(region_copy):
    def breaker(v):
        v.loc[3, "population"] = -5
        v.loc[7, "village_id"] = v.loc[8, "village_id"]
        return v.drop(columns="income_monthly")

    _break_villages(region_copy, breaker)
    with pytest.raises(InputDataError) as ei:
        io.load_region(region_copy)
    msg = str(ei.value)
    assert len(ei.value.problems) == 3
    assert "villages.gpkg, feature 4: column 'population'" in msg and "got -5.0" in msg
    assert "-5" in msg and ">= 0" in msg
    assert "features 8, 9: column 'village_id' must be unique" in msg
    assert "missing column 'income_monthly'" in msg and "Rename" in msg


def test_village_outside_districts(region_copy):
    def breaker(v):
        v.loc[[2, 5], "geometry"] = gpd.points_from_xy([150.0, 150.0], [10.0, 10.5])
        return v

    _break_villages(region_copy, breaker)
    with pytest.raises(InputDataError) as ei:
        io.load_region(region_copy)
    msg = str(ei.value)
    assert "features 3, 6: village lies outside every district" in msg
    assert "off the DEM" in msg


def test_dem_all_nan(region_copy):
    dem = io.read_dem(region_copy / "dem.tif")
    (dem * np.nan).rio.write_crs("EPSG:32648").rio.to_raster(region_copy / "dem.tif")
    with pytest.raises(InputDataError, match="dem.tif: every DEM cell is nodata"):
        io.load_region(region_copy)


def test_geographic_crs_with_metre_coordinates(region_copy):
    v = gpd.read_file(region_copy / "villages.gpkg").to_crs("EPSG:32648")
    v = v.set_crs("EPSG:4326", allow_override=True)
    v.to_file(region_copy / "villages.gpkg", layer="villages", driver="GPKG")
    with pytest.raises(InputDataError, match="look like metres"):
        io.load_region(region_copy)


def test_missing_layer_entry(region_copy):
    toml = (region_copy / "region.toml").read_text().replace('pops = "pops.gpkg"\n', "")
    (region_copy / "region.toml").write_text(toml)
    with pytest.raises(InputDataError, match=r"\[layers\] has no 'pops' entry"):
        io.load_region(region_copy)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nc"

    def bad_writer(p):
        p.write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        outputs.write_atomic(target, bad_writer)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    outputs.write_atomic(target, lambda p: p.write_text("whole"))
    assert target.read_text() == "whole"
