"""Tests for what the dashboard draws and downloads (universal_service.views)."""

from __future__ import annotations

import base64
import io as _io
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from universal_service import io, report, scenarios, views

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(synth_region_dir):
    """The baseline on the synthetic region, and the same at a 60% target."""
    sc = scenarios.load_scenario()
    sc.config = sc.config.model_copy(update={"region": str(synth_region_dir)})
    low = scenarios.load_scenario(set_values={"policy.coverage_target": 0.6})
    low.config = low.config.model_copy(update={"region": str(synth_region_dir)})
    return scenarios.run(sc), scenarios.run(low)


def _png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(_io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _dem(z: np.ndarray, cell: float = 100.0) -> xr.DataArray:
    ny, nx = z.shape
    return xr.DataArray(
        z,
        dims=("y", "x"),
        coords={"y": 3_000_000.0 - cell * np.arange(ny), "x": 500_000.0 + cell * np.arange(nx)},
    )


def test_hillshade_lights_slopes_facing_the_north_west():
    """A plane rising to the south-east faces the light (north-west): brighter than flat
    ground, and flat ground brighter than a plane rising to the north-west."""
    yy, xx = np.mgrid[0:50, 0:60].astype(float)
    flat = _dem(np.full((50, 60), 500.0))
    toward = _dem(500.0 + 30.0 * (xx + yy))  # rises east and south: faces north-west
    away = _dem(500.0 - 30.0 * (xx + yy))
    shade = {
        k: float(_png(views.hillshade(d, "EPSG:32648")["image"])[10:40, 10:50, 0].mean())
        for k, d in (("flat", flat), ("toward", toward), ("away", away))
    }
    assert shade["toward"] > shade["flat"] > shade["away"]
    # flat ground under a 45-degree sun: sin(45 deg) of the range 40..240
    assert shade["flat"] == pytest.approx(40 + 200 * math.sin(math.radians(45)), abs=1.0)


def test_hillshade_bounds_hold_every_village_and_nodata_is_transparent(synth_region_dir):
    region = io.load_region(synth_region_dir)
    dem = region.dem.copy()
    dem.values[:5, :5] = np.nan
    h = views.hillshade(dem, region.crs, max_px=120)
    img = _png(h["image"])
    assert max(img.shape[:2]) <= 120 and img.shape[2] == 4
    assert img[0, 0, 3] == 0 and img[img.shape[0] // 2, img.shape[1] // 2, 3] == 255
    ll = region.villages.to_crs("EPSG:4326")
    lon0, lat0, lon1, lat1 = h["bbox"]
    assert (ll.geometry.x.between(lon0, lon1) & ll.geometry.y.between(lat0, lat1)).all()


def test_scale_bar_length_matches_its_label():
    bbox = (106.5, 25.0, 108.5, 27.0)
    path, label = views.scale_bar(bbox)
    (a, b) = path["path"].iloc[0]
    km = float(label["text"].iloc[0].split()[0])
    # haversine along the parallel
    lat = math.radians(a[1])
    d = 2 * 6371.0 * math.asin(abs(math.cos(lat) * math.sin(math.radians(b[0] - a[0]) / 2)))
    assert d == pytest.approx(km, rel=0.01)
    assert km in (20, 25, 50)  # about a fifth of 200 km, rounded


def test_view_fits_the_box():
    bbox = (106.5, 25.0, 108.5, 27.0)
    v = views.view(bbox, width_px=1000, height_px=600)
    scale = 512 * 2 ** v["zoom"]  # pixels per world

    def px(lon, lat):
        y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        return lon / 360 * scale, y / (2 * math.pi) * scale

    x0, y0 = px(bbox[0], bbox[1])
    x1, y1 = px(bbox[2], bbox[3])
    assert x1 - x0 <= 1000 and y1 - y0 <= 600
    assert max((x1 - x0) / 1000, (y1 - y0) / 600) > 0.85  # and fills it


def test_district_table_adds_up_to_the_summary(runs):
    result, _ = runs
    t = views.district_table(result)
    s = report.summary(result)
    for st in views.STATUSES:
        assert t[f"villages {st}"].sum() == s.loc[st, "villages"]
        assert t[f"population {st}"].sum() == pytest.approx(s.loc[st, "population"])
    served_cost = (result.plan["npv_cost"] + result.plan["site_share"]).sum()
    assert t["NPV cost [CNY]"].sum() == pytest.approx(float(served_cost))
    assert t["subsidy [CNY]"].sum() == pytest.approx(float(result.plan["subsidy"].sum()))
    names = set(result.region.districts["name"].astype(str))
    assert set(t.index) == names  # by name, not code
    left = t[f"population {views.STATUSES[2]}"].to_numpy()
    assert (np.diff(left) <= 0).all()


def test_village_tooltips_are_formatted_with_units(runs):
    result, _ = runs
    df = views.village_points(result)
    assert len(df) == len(result.region.villages)
    tip = df["tooltip"].iloc[0]
    assert "population" in tip and "NPV cost CNY " in tip and "subsidy CNY " in tip
    assert all(not re.findall(r"\d+\.\d{3,}", t) for t in df["tooltip"])  # no raw floats
    assert re.search(r"NPV cost CNY \d{1,3}(,\d{3})*<", tip)
    name = result.region.districts["name"].astype(str)
    assert df["district_name"].isin(set(name)).all()


def test_technology_changes_between_two_plans(runs):
    a, b = runs
    assert views.technology_changes(a, a).empty
    ch = views.technology_changes(a, b)
    ta = pd.Series(a.plan["technology"].values, index=a.plan["village"].values)
    tb = pd.Series(b.plan["technology"].values, index=b.plan["village"].values)
    assert len(ch) == int((ta != tb.reindex(ta.index)).sum()) > 0
    assert (ch["technology_a"] != ch["technology_b"]).all()


def test_kpi_table_difference_is_b_minus_a(runs):
    a, b = runs
    k = views.kpi_table({"A": a, "B": b})
    row = "NPV cost [CNY]"
    assert k.loc[row, "A"] == pytest.approx(a.plan.attrs["total_npv_cost"])
    assert k.loc[row, "difference"] == pytest.approx(k.loc[row, "B"] - k.loc[row, "A"])
    assert k.loc[row, "B"] < k.loc[row, "A"]  # the 60% target costs less


def test_downloads_read_back(runs, tmp_path):
    result, _ = runs
    csv = pd.read_csv(_io.BytesIO(views.villages_csv(result)))
    assert len(csv) == len(result.region.villages) and {"lon", "lat", "technology"} <= set(csv)
    (tmp_path / "v.gpkg").write_bytes(views.villages_gpkg(result))
    g = gpd.read_file(tmp_path / "v.gpkg")
    assert len(g) == len(csv) and g["subsidy_cny"].sum() == pytest.approx(csv["subsidy_cny"].sum())
    (tmp_path / "p.nc").write_bytes(views.netcdf_bytes(result.plan))
    with xr.open_dataset(tmp_path / "p.nc") as ds:
        assert float(ds.attrs["total_npv_cost"]) == pytest.approx(
            result.plan.attrs["total_npv_cost"]
        )


def test_built_sites_and_one_sites_viewshed(runs):
    result, _ = runs
    sites = views.built_sites(result)
    assert len(sites) == int(result.plan["site_built"].sum()) > 0
    vs = views.site_viewshed(result, sites["site_id"].iloc[0])
    img = _png(vs["image"])
    assert img[..., 3].max() > 0  # some cells are seen
    r = result.scenario.config.radio.max_range_m / 1000
    assert 0 < vs["visible_km2"] <= math.pi * r * r * 1.05


def test_provenance_notice_lists_the_bundled_regions_derived_layers():
    region = io.load_region(ROOT / "data" / "qiannan")
    notes = views.provenance_notice(region)
    text = "\n".join(notes)
    assert "Terrain:" in text and "Towers (existing network)" in text
    assert "Population" in text and "placed by rule" in text


def test_status_words_say_what_was_proved():
    assert views.status_words({"status": "optimal", "gap": 1e-5}).startswith("optimal")
    h = views.status_words({"status": "feasible", "status_method": "heuristic", "gap": 0.194})
    assert h.startswith("heuristic plan") and "19.40%" in h
    assert views.cny(1234567.8) == "CNY 1,234,568" and views.cny(float("nan")) == "-"
    assert views.cny(169_879_088, "M") == "CNY 169.9 M" and views.share(0.98) == "98.0%"


def test_curve_points_mark_the_current_plan(runs):
    result, low = runs
    sweep = pd.DataFrame(
        {
            "coverage_population": [0.6, 0.98],
            "npv_cost": [low.plan.attrs["total_npv_cost"], result.plan.attrs["total_npv_cost"]],
        }
    )
    pts = views.curve_points(sweep, result)
    here = pts[pts["series"] == "this plan"].iloc[0]
    assert here["NPV cost [CNY million]"] == pytest.approx(
        result.plan.attrs["total_npv_cost"] / 1e6
    )
    assert here["coverage of population"] == pytest.approx(report.coverage_shares(result.plan)[0])
    assert (pts["series"] != "this plan").sum() == 2


def test_formatted_kpis_carry_units(runs):
    a, b = runs
    t = views.formatted_kpis(views.kpi_table({"A": a, "B": b}))
    assert t.loc["NPV cost [CNY]", "A"] == views.cny(a.plan.attrs["total_npv_cost"])
    assert t.loc["coverage, share of population", "B"].endswith("%")
    assert "." not in t.loc["villages newly served", "A"]


def test_a_district_alone_beside_its_part_of_the_plan(runs):
    result, _ = runs
    d = sorted(result.region.districts["district_id"])[0]
    t = views.district_alone(result, result.scenario, d, 0.9)
    whole, alone = t.columns
    assert "District 1" in whole and "90%" in alone
    assert float(t.loc["coverage of population", alone].rstrip("%")) >= 90.0 - 0.05
    mine = result.plan.where(result.plan["district_id"] == d, drop=True)
    assert t.loc["NPV cost", whole] == views.cny(
        float((mine["npv_cost"] + mine["site_share"]).sum())
    )
