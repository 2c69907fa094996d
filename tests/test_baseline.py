"""The existing network's service levels (``universal_service.baseline``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from universal_service import baseline, io, radio
from universal_service.catalog import load_catalog
from universal_service.schema import RadioConfig


@pytest.fixture(scope="module")
def region(synth_region_dir: Path) -> io.Region:
    return io.load_region(synth_region_dir)


def _with_towers(region: io.Region, rows: list[tuple[str, float, float, str]]) -> io.Region:
    """The region with its towers replaced by ``(tower_id, x, y, technology)`` rows (40 m)."""
    towers = gpd.GeoDataFrame(
        {
            "tower_id": [r[0] for r in rows],
            "operator_id": "op",
            "height_m": 40.0,
            "technology": [r[3] for r in rows],
            "source": "test",
        },
        geometry=[shapely.Point(r[1], r[2]) for r in rows],
        crs=region.crs,
    )
    return dataclasses.replace(region, towers=towers)


def test_tower_coverage_is_the_radio_test_of_the_plan(region: io.Region) -> None:
    """A second route to the same pairs: radio.coverage_matrix with the Fresnel filter."""
    v = region.villages
    x0, y0 = float(v.geometry.x.iloc[0]), float(v.geometry.y.iloc[0])
    r = _with_towers(region, [("a", x0 + 300.0, y0, "3g"), ("b", x0 + 9_000.0, y0 + 4_000.0, "2g")])
    got = baseline.tower_coverage(r)
    cfg = RadioConfig()
    budget = radio.LinkBudget.from_config(
        cfg, frequency_mhz=float(load_catalog()["lte"]["frequency_mhz"])
    )
    ref = radio.coverage_matrix(
        r.dem,
        [x0 + 300.0, x0 + 9_000.0],
        [y0, y0 + 4_000.0],
        [40.0, 40.0],
        v.geometry.x.to_numpy(),
        v.geometry.y.to_numpy(),
        site_ids=np.array(["a", "b"]),
        village_ids=v["village_id"].to_numpy(),
        budget=budget,
    )
    ref = ref[ref["covered"]]
    assert set(zip(got["site_id"], got["village_id"], strict=True)) == set(
        zip(ref["site_id"], ref["village_id"], strict=True)
    )
    assert v["village_id"].iloc[0] in set(got.loc[got["site_id"] == "a", "village_id"])


def test_mobile_level_is_the_best_covering_technology(region: io.Region) -> None:
    v = region.villages
    x0, y0 = float(v.geometry.x.iloc[0]), float(v.geometry.y.iloc[0])
    first = v["village_id"].iloc[0]
    one = baseline.mobile_levels(_with_towers(region, [("a", x0 + 200.0, y0, "2g")]))
    both = baseline.mobile_levels(
        _with_towers(region, [("a", x0 + 200.0, y0, "2g"), ("b", x0 - 200.0, y0, "4g")])
    )
    assert one[first] == "2g" and both[first] == "4g"
    assert (both.map(baseline.MOBILE_LEVELS.index) >= one.map(baseline.MOBILE_LEVELS.index)).all()
    far = _with_towers(region, [("z", x0 + 500_000.0, y0, "4g")])
    assert (baseline.mobile_levels(far) == "none").all()


def test_fiber_follows_the_route_and_the_reach(region: io.Region) -> None:
    route = baseline.fiber_route_km(region)
    assert (route.dropna() >= 0).all() and route.index.equals(
        pd.Index(region.villages["village_id"])
    )
    reach = baseline.calibrate_reach_km(route.to_numpy(), 0.5)
    levels = baseline.service_levels(region, reach_km=reach)
    assert levels["fiber"].mean() >= 0.5
    assert levels["fiber"].mean() <= 0.5 + 2 / len(route)
    assert (levels.loc[levels["fiber"], "provided"] == "fiber").all()
    assert (levels.loc[levels["fiber"], "fiber_route_km"] <= reach).all()
    assert not baseline.service_levels(region, reach_km=-1.0)["fiber"].any()
    assert baseline.calibrate_reach_km(route.to_numpy(), 0.0) == 0.0
    with pytest.raises(ValueError, match="share"):
        baseline.calibrate_reach_km(route.to_numpy(), 1.5)


def test_unsupported_names_the_villages_the_network_does_not_serve(region: io.Region) -> None:
    v = region.villages.copy()
    x0, y0 = float(v.geometry.x.iloc[0]), float(v.geometry.y.iloc[0])
    r = _with_towers(region, [("a", x0 + 200.0, y0, "3g")])
    levels = baseline.service_levels(r, reach_km=-1.0)
    v["existing_service"] = levels["provided"].reindex(v["village_id"]).to_numpy()
    ok = dataclasses.replace(r, villages=v)
    assert baseline.unsupported(ok, reach_km=-1.0).empty
    worse = v.copy()
    none_ids = worse.loc[worse["existing_service"] == "none", "village_id"].iloc[:2].tolist()
    worse.loc[worse["village_id"].isin(none_ids), "existing_service"] = "4g"
    worse.loc[worse.index[0], "existing_service"] = "fiber"
    bad = baseline.unsupported(dataclasses.replace(r, villages=worse), reach_km=-1.0)
    assert set(bad["village_id"]) == {*none_ids, v["village_id"].iloc[0]}
    assert set(bad.loc[bad["village_id"].isin(none_ids), "provided"]) == {"none"}
    # no reach known: a fiber label is not judged, a mobile one still is
    meta = {k: val for k, val in r.meta.items() if k != "fiber_reach_km"}
    unknown = dataclasses.replace(r, villages=worse, meta=meta)
    assert set(baseline.unsupported(unknown)["village_id"]) == set(none_ids)
    # labelling below what the network provides is not flagged
    lower = v.copy()
    lower["existing_service"] = "none"
    assert baseline.unsupported(dataclasses.replace(r, villages=lower), reach_km=-1.0).empty


def test_validate_names_labels_the_network_does_not_support(region_copy: Path) -> None:
    from typer.testing import CliRunner

    from universal_service.cli import app

    clean = CliRunner().invoke(app, ["validate", str(region_copy)])
    assert clean.exit_code == 0 and "warnings" not in clean.output  # synthetic labels follow it
    path = region_copy / "villages.gpkg"
    v = gpd.read_file(path, layer="villages")
    vid = v.loc[v["existing_service"] == "none", "village_id"].iloc[0]
    v.loc[v["village_id"] == vid, "existing_service"] = "4g"
    v.to_file(path, layer="villages", driver="GPKG")
    res = CliRunner().invoke(app, ["validate", str(region_copy)])
    assert res.exit_code == 0, res.output
    assert "with 1 warnings" in res.output
    assert f"{vid} '4g' (network: 'none')" in res.output
    assert "towers.technology" in res.output  # the fix
