"""Tests for the national input pack (data/china, universal_service.nationalpack)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from universal_service import nationalpack
from universal_service.errors import InputDataError


@pytest.fixture(scope="module")
def pack():
    return nationalpack.load_pack()


def test_pack_holds_every_rural_village_of_china(pack) -> None:
    """Counts of the NBS 2016 division codes (Vonng/adcode) that the issue states: 460,022
    rural administrative villages in 2,705 county-level units (median 132, largest 1,451);
    Guizhou 13,438 in 87 counties."""
    v = pack.villages
    assert len(v) == 460_022 and v["code"].is_unique
    assert set(v["ur_code"]) == {210, 220}
    per_county = v.groupby("county").size()
    assert len(per_county) == 2_705
    assert per_county.median() == 132 and per_county.max() == 1_451
    gz = pack.provinces().loc["520000"]
    assert gz["villages"] == 13_438 and gz["counties"] == 87
    assert len(pack.county_codes(["520000"])) == 87 == len(pack.county_codes(["52"]))
    assert pack.provinces()["villages"].sum() == len(v)


def test_points_are_in_china_and_in_wgs84(pack) -> None:
    v = pack.villages[np.isfinite(pack.villages["lon"])]
    assert len(v) > 25_000
    assert v["lon"].between(73, 136).all() and v["lat"].between(3, 54).all()
    # a village with a point lies inside (or within 2 km of) its county's simplified boundary
    c = pack.counties.set_index("adcode")
    sample = v.sample(300, random_state=0)
    sample = sample[sample["county"].isin(c.index)]
    import geopandas as gpd

    pts = gpd.GeoSeries(gpd.points_from_xy(sample["lon"], sample["lat"]), crs="EPSG:4326")
    poly = gpd.GeoSeries(c.geometry.reindex(sample["county"]).to_numpy(), crs="EPSG:4326")
    d = pts.to_crs("EPSG:3857").distance(poly.to_crs("EPSG:3857"), align=False)
    assert (d.to_numpy() < 2_000).mean() > 0.97


def test_counties_layer_covers_all_but_the_named_codes(pack) -> None:
    have = set(pack.counties["adcode"])
    missing = sorted(set(pack.villages["county"]) - have)
    # 26 post-2016 or renamed county codes have no boundary in the source (data/README.md)
    assert len(missing) == 26 and "130421" in missing
    assert len(have) == 2_705 - 26
    assert pack.counties["province_adcode"].str.fullmatch(r"\d{2}0000").all()


def test_an_unknown_province_is_named(pack) -> None:
    with pytest.raises(InputDataError, match="990000"):
        pack.county_codes(["990000"])


def test_a_broken_pack_names_the_file_and_the_fix(tmp_path) -> None:
    dst = tmp_path / "china"
    shutil.copytree(nationalpack.DEFAULT_PACK, dst)
    (dst / "townships.parquet").unlink()
    with pytest.raises(InputDataError, match=r"townships.parquet: missing.*build_china.py"):
        nationalpack.load_pack(dst)
    shutil.copy(nationalpack.DEFAULT_PACK / "townships.parquet", dst)
    v = pd.read_parquet(dst / "villages.parquet")
    v.loc[4, "code"] = "52270"
    v.to_parquet(dst / "villages.parquet")
    with pytest.raises(InputDataError, match=r"rows \[5\]: code must be 12 digits"):
        nationalpack.load_pack(dst)
