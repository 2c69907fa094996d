"""Tests of the bundled Qiannan region (``data/qiannan``) and of its builder ``data/build/``."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine

ROOT = Path(__file__).parents[1]
REGION = ROOT / "data" / "qiannan"
METRIC_CRS = "EPSG:32648"

VILLAGE_COLUMNS = {
    "village_id": "str",
    "name": "str",
    "district_id": "str",
    "town_id": "str",
    "town_name": "str",
    "ur_code": "int",
    "population": "int",
    "households": "int",
    "income_monthly": "float",
    "existing_service": "str",
    "electrified": "bool",
    "weight": "float",
    "location_source": "str",
    "population_source": "str",
    "income_source": "str",
}
SERVICES = {"none", "2g", "3g", "4g", "fiber"}
OPERATOR_IDS = {"cmcc", "ct", "cu"}


def _dtype_ok(series: pd.Series, kind: str) -> bool:
    """Whether a column has the expected kind of dtype."""
    if kind == "str":
        return bool(series.map(lambda v: isinstance(v, str)).all())
    if kind == "int":
        return pd.api.types.is_integer_dtype(series)
    if kind == "float":
        return pd.api.types.is_float_dtype(series)
    return pd.api.types.is_bool_dtype(series)


@pytest.fixture(scope="module")
def build() -> ModuleType:
    """The builder package ``data/build``, loaded with its entry point ``data/build_region.py``.

    ``data/`` is not a package and not on ``sys.path``: the script finds ``build`` next to itself,
    so the package is registered by path first, then the script is imported as a module.
    """
    init = ROOT / "data" / "build" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "build", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["build"] = package
    spec.loader.exec_module(package)
    entry = importlib.util.spec_from_file_location(
        "build_region", ROOT / "data" / "build_region.py"
    )
    assert entry is not None and entry.loader is not None
    script = importlib.util.module_from_spec(entry)
    sys.modules["build_region"] = script
    entry.loader.exec_module(script)
    assert callable(script.main)
    for name in ("dem", "places", "demography", "infrastructure"):
        importlib.import_module(f"build.{name}")
    return package


@pytest.fixture(scope="module")
def meta() -> dict:
    """The parsed ``region.toml``."""
    with open(REGION / "region.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def villages() -> gpd.GeoDataFrame:
    """The villages layer."""
    return gpd.read_file(REGION / "villages.gpkg", layer="villages")


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    """The districts layer."""
    return gpd.read_file(REGION / "districts.gpkg", layer="districts")


@pytest.fixture(scope="module")
def dem() -> tuple[np.ndarray, dict, dict]:
    """The DEM array, its profile and its dataset tags."""
    with rasterio.open(REGION / "dem.tif") as src:
        return src.read(1), dict(src.profile), src.tags()


# --- the region folder -------------------------------------------------------------------------


def test_region_toml_names_every_layer(meta: dict) -> None:
    assert meta["name"].startswith("Qiannan Buyei and Miao Autonomous Prefecture")
    assert meta["crs"] == METRIC_CRS
    assert meta["currency"] == "CNY"
    expected = {"villages", "districts", "dem", "pops", "towers", "roads", "operators"}
    assert set(meta["layers"]) == expected
    for name in meta["layers"].values():
        assert (REGION / name).is_file(), name
    assert meta["meta"]["dem_synthetic_detail"] is True
    assert isinstance(meta["meta"]["seed"], int)


def test_region_is_small_enough_to_ship() -> None:
    size = sum(p.stat().st_size for p in REGION.iterdir())
    assert size < 30e6


# --- villages ----------------------------------------------------------------------------------


def test_villages_are_all_1519_units_with_unique_ids(villages: gpd.GeoDataFrame) -> None:
    assert len(villages) == 1519
    assert villages["village_id"].is_unique
    assert villages["village_id"].str.fullmatch(r"5227\d{8}").all()
    assert (villages["district_id"] == villages["village_id"].str[:6]).all()
    assert (villages["town_id"] == villages["village_id"].str[:9] + "000").all()
    assert villages["district_id"].nunique() == 12
    assert villages["ur_code"].isin([210, 220]).sum() == 1142
    assert villages.crs.to_epsg() == 4326
    assert (villages.geom_type == "Point").all()


def test_village_columns_have_contract_types_and_values(villages: gpd.GeoDataFrame) -> None:
    for column, kind in VILLAGE_COLUMNS.items():
        assert column in villages.columns, column
        assert _dtype_ok(villages[column], kind), (column, villages[column].dtype)
    assert (villages["population"] > 0).all()
    assert (villages["households"] > 0).all()
    assert (villages["income_monthly"] > 0).all()
    assert set(villages["existing_service"]) <= SERVICES
    assert villages["ur_code"].isin([111, 112, 121, 122, 123, 210, 220]).all()
    assert (villages["weight"] == 1.0).all()
    assert set(villages["location_source"]) == {"amap", "derived"}
    assert (villages["location_source"] == "amap").sum() == 151
    assert (villages["population_source"] == "derived").all()
    assert (villages["income_source"] == "derived").all()
    assert villages["electrified"].mean() > 0.95


@pytest.fixture(scope="module")
def loaded() -> object:
    from universal_service import io

    return io.load_region(REGION)


@pytest.fixture(scope="module")
def levels(loaded: object) -> pd.DataFrame:
    from universal_service import baseline

    return baseline.service_levels(loaded)


def test_every_existing_service_is_provided_by_the_network(
    loaded: object, levels: pd.DataFrame
) -> None:
    """No village is labelled with a level that no existing site or route provides under the
    plan's own radio and route tests (and, the other way, none is labelled below it)."""
    from universal_service import baseline

    assert baseline.unsupported(loaded, levels).empty
    labels = loaded.villages.set_index("village_id")["existing_service"]
    assert (labels == levels["provided"].reindex(labels.index)).all()


def test_baseline_shares_match_the_published_2015_figures(
    loaded: object, meta: dict, build: ModuleType
) -> None:
    v = loaded.villages
    rural = v["ur_code"].isin((210, 220))
    share = v.loc[rural, "existing_service"].value_counts(normalize=True)
    assert meta["meta"]["baseline_year"] == 2015
    # Guizhou: ~8,900 of 13,438 rural units fibered by the 2016-2017 pilots
    assert share["fiber"] == pytest.approx(1 - 8_900 / 13_438, abs=0.005)
    assert share.get("none", 0.0) <= build.infrastructure.NO_SERVICE_SHARE
    assert share.get("none", 0.0) >= build.infrastructure.NO_SERVICE_SHARE - 0.01
    assert (v.loc[~rural, "existing_service"] != "none").all()
    towers = gpd.read_file(REGION / "towers.gpkg", layer="towers")
    assert meta["meta"]["towers"] == len(towers)
    seat = towers["tower_id"].str.startswith("t-v")
    assert (towers.loc[~seat, "technology"] == "4g").all()
    assert set(towers.loc[seat, "technology"]) == {"2g", "3g"}


def test_population_sums_to_the_rescaled_total(
    villages: gpd.GeoDataFrame, meta: dict, build: ModuleType
) -> None:
    total = villages["population"].sum()
    assert total == pytest.approx(build.demography.POPULATION_TOTAL, rel=0.01)
    assert total == meta["meta"]["population_total"]
    size = villages["population"] / villages["households"]
    assert size.between(3.0, 3.5).all()
    urban = villages.loc[villages["ur_code"] < 200, "population"].sum() / total
    assert urban == pytest.approx(build.demography.URBAN_POPULATION_SHARE, abs=0.005)


def test_urban_income_is_higher(villages: gpd.GeoDataFrame, build: ModuleType) -> None:
    rural = villages.loc[villages["ur_code"] >= 200, "income_monthly"].mean()
    urban = villages.loc[villages["ur_code"] < 200, "income_monthly"].mean()
    assert rural == pytest.approx(build.demography.RURAL_INCOME_YEAR / 12.0, rel=0.05)
    assert urban > 2.0 * rural


def test_every_village_lies_in_its_district(
    villages: gpd.GeoDataFrame, districts: gpd.GeoDataFrame
) -> None:
    polys = districts.set_index("district_id").geometry
    for district_id, group in villages.groupby("district_id"):
        inside = shapely.contains(polys[district_id], group.geometry.to_numpy())
        assert inside.all(), group.loc[~inside, "village_id"].tolist()


def test_every_village_lies_on_valid_dem(villages: gpd.GeoDataFrame, dem: tuple) -> None:
    z, profile, _ = dem
    pts = villages.to_crs(METRIC_CRS).geometry
    rows, cols = rasterio.transform.rowcol(profile["transform"], pts.x, pts.y)
    rows, cols = np.asarray(rows), np.asarray(cols)
    assert ((rows >= 0) & (rows < z.shape[0]) & (cols >= 0) & (cols < z.shape[1])).all()
    assert (z[rows, cols] != profile["nodata"]).all()


# --- districts, DEM --------------------------------------------------------------------------


def test_districts_are_the_12_counties(districts: gpd.GeoDataFrame) -> None:
    assert len(districts) == 12
    assert districts["district_id"].is_unique
    assert districts["district_id"].str.fullmatch(r"5227\d\d").all()
    assert (districts["parent_id"] == "522700").all()
    assert districts.crs.to_epsg() == 4326
    assert districts.is_valid.all()
    area_km2 = districts.to_crs(METRIC_CRS).area.sum() / 1e6
    assert area_km2 == pytest.approx(26_200, rel=0.02)  # Qiannan: about 26,197 km2


def test_dem_is_utm_90m_int16_and_flagged_synthetic(dem: tuple) -> None:
    z, profile, tags = dem
    assert rasterio.crs.CRS.from_user_input(profile["crs"]).to_epsg() == 32648
    assert profile["transform"].a == 90.0 and profile["transform"].e == -90.0
    assert profile["dtype"] == "int16"
    assert profile["nodata"] == -32768
    assert profile["tiled"] is True
    assert profile["compress"] == "deflate"
    assert tags["synthetic_detail"] == "true"
    assert "seed" in tags and "method" in tags


def test_dem_has_no_nodata_over_the_counties(dem: tuple, districts: gpd.GeoDataFrame) -> None:
    z, profile, _ = dem
    shapes = [(g, 1) for g in districts.to_crs(METRIC_CRS).geometry]
    mask = rasterize(shapes, out_shape=z.shape, transform=profile["transform"], fill=0)
    inside = z[mask.astype(bool)]
    assert inside.size > 3_000_000
    assert (inside != profile["nodata"]).all()
    assert 200 <= inside.min() and inside.max() <= 2_100


# --- operators, PoPs, towers, roads -----------------------------------------------------------


def test_operators_shares_sum_to_one() -> None:
    ops = pd.read_csv(REGION / "operators.csv", dtype={"operator_id": str})
    assert set(ops["operator_id"]) == OPERATOR_IDS
    assert ops["market_share"].sum() == pytest.approx(1.0, abs=1e-9)
    assert (ops["revenue_cny"] > ops["profit_cny"]).all()
    assert (ops["profit_cny"] > 0).all()
    allowed = {"fiber", "microwave", "4g", "satellite"}
    for tech in ops["technologies"]:
        assert set(tech.split(";")) <= allowed


def test_pops_cover_every_county_seat_for_every_operator() -> None:
    pops = gpd.read_file(REGION / "pops.gpkg", layer="pops")
    assert {"pop_id", "operator_id", "kind", "name", "source"} <= set(pops.columns)
    assert pops["pop_id"].is_unique
    assert set(pops["kind"]) == {"county_seat", "township_seat"}
    assert set(pops["operator_id"]) == OPERATOR_IDS
    seats = pops[pops["kind"] == "county_seat"]
    assert seats.groupby("operator_id").size().to_dict() == {"cmcc": 12, "ct": 12, "cu": 12}
    assert (pops["source"] == "derived").all()
    assert pops.crs.to_epsg() == 4326


def test_towers_have_operator_height_and_technology() -> None:
    towers = gpd.read_file(REGION / "towers.gpkg", layer="towers")
    assert {"tower_id", "operator_id", "height_m", "technology", "source"} <= set(towers.columns)
    assert towers["tower_id"].is_unique
    assert set(towers["operator_id"]) <= OPERATOR_IDS
    assert pd.api.types.is_float_dtype(towers["height_m"])
    assert (towers["height_m"] > 0).all()
    assert set(towers["technology"]) <= {"2g", "3g", "4g"}
    assert (towers["source"] == "derived").all()


def test_roads_are_expressways_inside_the_counties(districts: gpd.GeoDataFrame) -> None:
    roads = gpd.read_file(REGION / "roads.gpkg", layer="roads")
    assert {"road_id", "name", "ref", "highway"} <= set(roads.columns)
    assert roads["road_id"].is_unique
    assert (roads["highway"] == "motorway").all()
    assert (roads.geom_type == "LineString").all()
    region = shapely.union_all(districts.to_crs(METRIC_CRS).geometry.to_numpy()).buffer(10.0)
    assert shapely.within(roads.to_crs(METRIC_CRS).geometry.to_numpy(), region).all()
    km = roads.to_crs(METRIC_CRS).length.sum() / 1e3
    assert km == pytest.approx(3_139, rel=0.03)  # shared README: 3,139 km inside the counties


# --- the build script --------------------------------------------------------------------------


def test_gcj02_round_trip() -> None:
    from universal_service import gcj02

    lon = np.array([106.3, 107.5, 108.2])
    lat = np.array([25.1, 26.2, 27.2])
    g_lon, g_lat = gcj02.wgs84_to_gcj02(lon, lat)
    offset_m = np.hypot((g_lon - lon) * 100_000.0, (g_lat - lat) * 111_000.0)
    assert ((offset_m > 100.0) & (offset_m < 1_000.0)).all()
    w_lon, w_lat = gcj02.gcj02_to_wgs84(g_lon, g_lat)
    np.testing.assert_allclose(w_lon, lon, atol=1e-8)
    np.testing.assert_allclose(w_lat, lat, atol=1e-8)


def test_spectral_detail_is_seeded(build: ModuleType) -> None:
    a = build.dem.spectral_detail((64, 80), 90.0, np.random.default_rng(7))
    b = build.dem.spectral_detail((64, 80), 90.0, np.random.default_rng(7))
    c = build.dem.spectral_detail((64, 80), 90.0, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() == pytest.approx(1.0)


def _toy_county(build: ModuleType) -> tuple:
    """A 20 km square county with 3 townships, 30 villages and a random slope grid."""
    transform = Affine(90.0, 0.0, 500_000.0, 0.0, -90.0, 2_900_000.0)
    field = build.dem.spectral_detail((250, 250), 90.0, np.random.default_rng(1))
    grid = build.places.Grid(transform, np.abs(field).astype(np.float32) * 10.0)
    county = shapely.box(501_000.0, 2_878_500.0, 521_000.0, 2_898_500.0)
    towns = ["522799101000", "522799102000", "522799201000"]
    seats = gpd.GeoDataFrame(
        {"town_id": towns},
        geometry=gpd.points_from_xy([505_000, 516_000, 510_000], [2_894_000, 2_893_000, 2_883_000]),
        crs=METRIC_CRS,
    )
    codes = [f"{towns[i % 3][:9]}{200 + i:03d}" for i in range(30)]
    villages = pd.DataFrame(
        {
            "code": codes,
            "parent": [towns[i % 3] for i in range(30)],
            "ur_code": [210, 121, 220] + [220] * 27,
            "x": [np.nan] * 29 + [512_345.0],
            "y": [np.nan] * 29 + [2_884_321.0],
        }
    )
    return villages, seats, county, grid


def test_village_placement_is_deterministic_and_inside(build: ModuleType) -> None:
    villages, seats, county, grid = _toy_county(build)
    args = (villages, seats, county, grid, "522799")
    a = build.places.locate_county_villages(*args, seed=11)
    b = build.places.locate_county_villages(*args, seed=11)
    c = build.places.locate_county_villages(*args, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a[["x", "y"]], c[["x", "y"]])
    assert a["x"].notna().all() and a["y"].notna().all()
    assert shapely.contains(county, gpd.points_from_xy(a["x"], a["y"])).all()
    assert a["location_source"].tolist() == ["derived"] * 29 + ["amap"]
    assert a.iloc[29][["x", "y"]].tolist() == [512_345.0, 2_884_321.0]
    xy = a[["x", "y"]].to_numpy()
    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(xy), 1)].min() > 100.0  # spread apart, not stacked


def test_township_areas_tile_the_county(build: ModuleType) -> None:
    _, seats, county, _ = _toy_county(build)
    areas = build.places.township_areas(seats, county)
    assert list(areas.index) == list(seats["town_id"])
    assert areas.area.sum() == pytest.approx(county.area)
    for town_id, point in zip(seats["town_id"], seats.geometry, strict=True):
        assert areas[town_id].contains(point)


@pytest.fixture(scope="module")
def synth_with_codes(synth_region_dir: Path) -> object:
    """The synthetic region with NBS urban-rural codes: 4 urban units, the rest rural."""
    import dataclasses

    from universal_service import io

    r = io.load_region(synth_region_dir)
    v = r.villages.copy()
    v["ur_code"] = np.where(np.arange(len(v)) < 4, 111, 220)
    return dataclasses.replace(r, villages=v, towers=r.towers.iloc[:0])


def test_village_towers_stop_at_the_target(synth_with_codes: object, build: ModuleType) -> None:
    import dataclasses

    from universal_service import baseline

    infra = build.infrastructure
    towers = infra.village_towers(synth_with_codes, seed=3)
    again = infra.village_towers(synth_with_codes, seed=3)
    assert towers.drop(columns="geometry").equals(again.drop(columns="geometry"))
    assert set(towers["technology"]) <= {"2g", "3g"} and len(towers) > 0
    v = synth_with_codes.villages
    rural = (v["ur_code"] == 220).to_numpy()

    def uncovered(t: gpd.GeoDataFrame) -> np.ndarray:
        r = dataclasses.replace(synth_with_codes, towers=t)
        return (baseline.mobile_levels(r) == "none").to_numpy()

    gap = uncovered(towers)
    assert not gap[~rural].any()
    assert gap[rural].sum() <= infra.NO_SERVICE_SHARE * rural.sum()

    # the greedy stops as soon as the target holds: without the mast it added last (one of
    # them), the target fails
    def short(g: np.ndarray) -> bool:
        return g[rural].sum() > infra.NO_SERVICE_SHARE * rural.sum() or g[~rural].any()

    assert any(short(uncovered(towers.drop(index=i))) for i in towers.index)


def test_existing_service_labels_are_the_network_levels(
    synth_with_codes: object, build: ModuleType
) -> None:
    import dataclasses

    from universal_service import baseline

    infra = build.infrastructure
    towers = infra.village_towers(synth_with_codes, seed=3)
    r = dataclasses.replace(synth_with_codes, towers=towers)
    labels, reach = infra.existing_service(r)
    rural = (r.villages["ur_code"] == 220).to_numpy()
    assert (labels[rural] == "fiber").mean() >= infra.FIBER_SHARE_RURAL
    assert (labels[rural] == "fiber").mean() <= infra.FIBER_SHARE_RURAL + 1.5 / rural.sum()
    provided = baseline.service_levels(r, reach_km=reach)["provided"].to_numpy()
    assert labels.tolist() == provided.tolist()


def test_largest_remainder_keeps_the_total(build: ModuleType) -> None:
    values = pd.Series([0.4, 1.4, 2.2, 5.9999, 10.0001])
    rounded = build.demography.largest_remainder(values)
    assert rounded.sum() == round(values.sum())
    assert (np.abs(rounded - values) < 1.0).all()


def test_data_readme_baseline_table_is_the_bundled_region(loaded: object) -> None:
    """data/README.md's baseline table shows the figures of the shipped layers."""
    text = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    start = text.index("### The baseline beside published figures")
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in text[start : text.index("### Caveats")].splitlines()
        if line.startswith("| ") and not line.startswith("| figure")
    }
    v = loaded.villages
    share = v.loc[v["ur_code"].isin((210, 220)), "existing_service"].value_counts(normalize=True)
    people = v["population"].sum()
    area_km2 = loaded.districts.geometry.area.sum() / 1e6
    n = len(loaded.towers)
    assert rows["rural villages with fiber"] == f"{share['fiber']:.1%}"
    assert rows["rural villages with no mobile service"] == f"{share.get('none', 0):.1%}"
    broadband = share.get("4g", 0) + share["fiber"]
    assert rows["rural villages with broadband (4G or fiber)"] == f"{broadband:.1%}"
    assert rows["rural villages with 4G (no fiber)"] == f"{share['4g']:.1%}"
    assert rows["rural villages with 3G / 2G (best)"] == f"{share['3g']:.1%} / {share['2g']:.1%}"
    assert rows["towers per 1,000 people"] == f"{1000 * n / people:.3f}"
    assert rows["towers per km²"] == f"{n / area_km2:.3f}"
