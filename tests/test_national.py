"""Tests for the county builder (countybuild) and the national runner (national, the CLI)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import (
    baseline,
    countybuild,
    io,
    national,
    nationalpack,
    scenarios,
    uncertainty,
)
from universal_service.cli import app
from universal_service.errors import InputDataError
from universal_service.io import memory

#: Sandu Shui Autonomous County (Guizhou): 208 rural villages, 4 of them with an Amap point.
SANDU = "522732"
#: Three small Guizhou counties, one of which must build to reach the target.
SMALL = ["520102", "520113", "522726"]


@pytest.fixture(scope="module")
def pack():
    return nationalpack.load_pack()


@pytest.fixture(scope="module")
def sandu(pack):
    return countybuild.county_region(pack, SANDU)


def test_county_region_holds_the_packs_villages_inside_the_county(pack, sandu) -> None:
    v = sandu.villages
    assert sorted(v["village_id"]) == sorted(
        pack.villages.loc[pack.villages["county"] == SANDU, "code"]
    )
    assert sandu.crs.to_epsg() == 32648  # UTM 48N at 107.9 E
    county = pack.counties.set_index("adcode").loc[SANDU, "geometry"]
    county_m = gpd.GeoSeries([county], crs="EPSG:4326").to_crs(sandu.crs).iloc[0]
    assert v.geometry.within(county_m.buffer(100.0)).all()
    # the DEM covers every village, with no gaps
    xs, ys = sandu.dem["x"].values, sandu.dem["y"].values
    assert xs.min() < v.geometry.x.min() and xs.max() > v.geometry.x.max()
    assert ys.min() < v.geometry.y.min() and ys.max() > v.geometry.y.max()
    assert np.isfinite(sandu.dem.values).all()
    # population around China's 2016 rural residents per village
    mean = countybuild.RURAL_RESIDENTS / countybuild.RURAL_VILLAGES
    assert v["population"].mean() == pytest.approx(mean, rel=0.25)
    assert sandu.meta["dem_synthetic_detail"] is True


def test_county_baseline_follows_the_rules(sandu) -> None:
    v = sandu.villages
    # the labels are what the network provides under the plan's own tests
    assert baseline.unsupported(sandu).empty
    # ... exactly: the builder reuses its mast rule's coverage tests, the same as testing anew
    fresh = baseline.service_levels(sandu, countybuild.FIBER_REACH_KM)["provided"]
    assert (fresh.reindex(v["village_id"]).to_numpy() == v["existing_service"].to_numpy()).all()
    assert (v["existing_service"] == "none").mean() <= countybuild.NO_SERVICE_SHARE + 1e-9
    t = sandu.towers
    assert set(t["technology"]) <= {"2g", "3g", "4g"}
    assert (t.loc[t["tower_id"].str.startswith("t-"), "technology"] == "4g").all()
    assert set(sandu.pops["operator_id"]) == {"cmcc", "ct", "cu"}


def test_county_region_is_reproducible(pack, sandu) -> None:
    again = countybuild.county_region(pack, SANDU)
    pd.testing.assert_frame_equal(
        again.villages.drop(columns="geometry"), sandu.villages.drop(columns="geometry")
    )
    assert np.array_equal(again.villages.geometry.x, sandu.villages.geometry.x)
    other = countybuild.county_region(pack, SANDU, seed=7)
    assert not np.array_equal(other.villages.geometry.x, sandu.villages.geometry.x)


def test_county_built_in_memory_equals_its_region_folder_loaded(pack, tmp_path) -> None:
    """A second path: the folder the builder writes, read by load_region, is the same region
    (to the float noise of the GeoPackage's WGS84 round trip)."""
    made = countybuild.county_region(pack, SANDU, workdir=tmp_path)
    read = io.load_region(tmp_path / SANDU)
    assert made.name == read.name and made.crs == read.crs and made.meta == read.meta
    for layer in ("villages", "districts", "pops", "towers", "operators"):
        a, b = getattr(made, layer), getattr(read, layer)
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.drop(columns="geometry", errors="ignore")),
            pd.DataFrame(b.drop(columns="geometry", errors="ignore")),
        )
        if "geometry" in a:
            assert a.geometry.geom_equals_exact(b.geometry, tolerance=1e-3).all(), layer
    xr.testing.assert_allclose(made.dem.reset_coords(drop=True), read.dem.reset_coords(drop=True))


def test_a_broken_layer_in_memory_is_named_like_a_files(pack, sandu) -> None:
    bad = sandu.villages.drop(columns="weight", errors="ignore").copy()
    bad.loc[0, "population"] = -5
    layers = {
        "villages": bad,
        "districts": sandu.districts,
        "pops": sandu.pops,
        "towers": sandu.towers,
        "operators": sandu.operators,
    }
    with pytest.raises(
        InputDataError, match=r"county 522732: villages, row 0: column 'population'"
    ):
        memory.region_from_layers("x", sandu.crs, layers, sandu.dem, where="county 522732")


def test_an_unknown_county_is_named(pack) -> None:
    with pytest.raises(InputDataError, match="999999"):
        countybuild.county_region(pack, "999999")


@pytest.fixture(scope="module")
def serial(pack):
    return national.run(scenarios.load_scenario(), ["520000"], pack=pack, counties=SMALL)


def test_national_run_meets_the_target_over_the_counties(serial) -> None:
    a = serial.plan.attrs
    assert a["coverage_share"] >= a["coverage_target"] - 1e-9
    assert a["bound"] <= a["objective"] + 1e-6
    c = serial.counties
    assert list(c.index) == sorted(SMALL) and serial.failed.empty
    assert c["npv_cost"].sum() == pytest.approx(a["objective"])
    assert serial.provinces.loc["520000", "villages"] == c["villages"].sum() == len(serial.villages)
    assert serial.villages.crs.to_epsg() == 4326
    assert serial.villages.geometry.x.between(103, 110).all()


def test_national_on_dask_equals_the_serial_run(pack, serial) -> None:
    with uncertainty.dask_client(workers=2) as client:
        par = national.run(
            scenarios.load_scenario(), ["520000"], pack=pack, counties=SMALL, client=client
        )
    pd.testing.assert_frame_equal(
        par.villages.drop(columns="geometry"), serial.villages.drop(columns="geometry")
    )
    assert par.plan.attrs["objective"] == pytest.approx(serial.plan.attrs["objective"], rel=1e-12)


def test_a_failing_county_is_retried_then_named(pack, monkeypatch) -> None:
    calls = []
    real = countybuild.county_region

    def flaky(p, code, **kw):
        calls.append(code)
        if code == "520113":
            raise RuntimeError("disk on fire")
        return real(p, code, **kw)

    monkeypatch.setattr(countybuild, "county_region", flaky)
    res = national.run(scenarios.load_scenario(), ["520000"], pack=pack, counties=SMALL[:2])
    assert calls.count("520113") == national.ATTEMPTS
    assert list(res.failed["county"]) == ["520113"]
    assert "disk on fire" in res.failed.iloc[0]["error"] and res.failed.iloc[0]["name"] == "白云区"
    assert list(res.counties.index) == ["520102"]
    assert "failed: 520113" in national.format_summary(res)


def test_national_command_writes_one_output_set(tmp_path) -> None:
    out = tmp_path / "nat"
    r = CliRunner().invoke(
        app,
        [
            "national",
            "--provinces",
            "520000",
            "--counties",
            "2",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "National plan: 2 counties planned, 0 failed" in r.output
    for name in national.OUTPUT_FILES:
        assert (out / name).is_file(), name
    ds = xr.load_dataset(out / "plan.nc")
    assert ds.sizes["county"] == 2 and ds.attrs["status"] in ("optimal", "feasible")
    v = gpd.read_parquet(out / "villages.parquet")
    assert len(v) == ds.sizes["village"] and v.crs.to_epsg() == 4326
    prov = pd.read_csv(out / "provinces.csv", dtype={"province": str})
    assert list(prov["province"]) == ["520000"]
    assert (out / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(
        app, ["national", "--provinces", "990000", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "990000" in bad.output


def test_an_amap_point_outside_its_county_is_moved_inside_and_flagged(pack) -> None:
    """Xingren (522322): one Amap village point lies outside the simplified county boundary
    (found by the Guizhou run, where the county failed to load)."""
    r = countybuild.county_region(pack, "522322")
    v = r.villages.set_index("village_id")
    assert v.at["522322107201", "location_source"] == "amap_snapped"
    assert (v["location_source"] == "amap_snapped").sum() == 1
    county = r.districts.geometry.iloc[0]
    assert v.geometry.within(county).all()


def test_county_fiber_reach_is_the_bundled_regions_calibration() -> None:
    """countybuild applies the reach calibrated on the bundled region (data/README.md): the two
    must not drift apart when the bundled region is rebuilt."""
    import tomllib

    from .conftest import BUNDLED

    meta = tomllib.loads((BUNDLED / "region.toml").read_text(encoding="utf-8"))["meta"]
    assert countybuild.FIBER_REACH_KM == meta["fiber_reach_km"]


def test_hilltop_reference_area_is_the_bundled_regions() -> None:
    from universal_service import districts, io

    from .conftest import BUNDLED

    r = io.load_region(BUNDLED)
    area = float(r.districts.geometry.area.sum()) / 1e6
    assert national.HILLTOP_REFERENCE_AREA_KM2 == pytest.approx(area, rel=1e-3)
    assert districts.scaled_hilltops(300, 2_397 / area) == 27
    assert districts.scaled_hilltops(300, 1e-4) == districts.MIN_HILLTOPS
    assert districts.scaled_hilltops(0, 0.5) == 0


@pytest.mark.parametrize(
    ("code", "what"),
    [
        ("130421", "no boundary and no point: a disc of its prefecture's median county area"),
        ("540230", "Himalayan relief: the seeded detail would rise above Everest"),
        ("330212", "township anchors outside the boundary: placed villages moved inside"),
    ],
)
def test_counties_the_whole_country_run_found_failing_now_build(pack, code, what) -> None:
    """Three classes of county failed the first whole-country run (40 of 2,705); each builds."""
    r = countybuild.county_region(pack, code)
    county = r.districts.geometry.iloc[0]
    assert r.villages.geometry.within(county).all(), what
    assert float(r.dem.max()) <= countybuild.HIGHEST_GROUND_M + 0.01  # float32
    if code == "130421":
        assert r.meta["county_shape"].startswith("derived: a disc")
    if code == "330212":
        assert (r.villages["location_source"] == "derived_snapped").any()
