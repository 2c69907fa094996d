"""A region folder from a user's plain files: CSV with lon/lat, GCJ-02 conversion, all or nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

from universal_service import gcj02, io, newregion
from universal_service.cli import app
from universal_service.errors import InputDataError
from universal_service.schema import LAYERS

ROOT = Path(__file__).resolve().parents[1]


def _plain_files(src: Path, dst: Path, *, shift_gcj02: bool = False) -> dict[str, Path]:
    """The synthetic region's layers as a user would have them: CSVs with lon/lat and a GeoTIFF."""
    dst.mkdir()
    out = {}
    for layer in ("villages", "pops", "towers"):
        g = gpd.read_file(src / f"{layer}.gpkg").to_crs("EPSG:4326")
        lon, lat = g.geometry.x.to_numpy(), g.geometry.y.to_numpy()
        if shift_gcj02 and layer == "villages":
            lon, lat = gcj02.wgs84_to_gcj02(lon, lat)
        df = g.drop(columns="geometry").assign(lon=lon, lat=lat)
        out[layer] = dst / f"my_{layer}.csv"
        df.to_csv(out[layer], index=False)
    out["districts"] = dst / "counties.gpkg"
    gpd.read_file(src / "districts.gpkg").to_file(out["districts"], driver="GPKG")
    out["dem"] = dst / "elevation.tif"
    shutil.copy(src / "dem.tif", out["dem"])
    out["operators"] = dst / "operators.csv"
    shutil.copy(src / "operators.csv", out["operators"])
    return out


def test_region_from_plain_files(synth_region_dir: Path, tmp_path: Path) -> None:
    files = _plain_files(synth_region_dir, tmp_path / "mine")
    region = newregion.region_from_files(tmp_path / "r", files, name="Mine")
    ref = io.load_region(synth_region_dir)
    assert region.name == "Mine" and len(region.villages) == len(ref.villages)
    assert region.crs == ref.crs  # the UTM zone guessed from the villages
    np.testing.assert_allclose(
        np.sort(region.villages.geometry.x), np.sort(ref.villages.geometry.x), atol=1e-3
    )
    assert (tmp_path / "r" / "my_villages.csv").is_file()


def test_gcj02_layers_are_converted(synth_region_dir: Path, tmp_path: Path) -> None:
    files = _plain_files(synth_region_dir, tmp_path / "mine", shift_gcj02=True)
    ref = io.load_region(synth_region_dir)
    shifted = io.load_region(newregion.region_from_files(tmp_path / "a", files).path)
    fixed = newregion.region_from_files(tmp_path / "b", files, gcj02_layers=["villages"])
    offset = np.hypot(
        np.sort(shifted.villages.geometry.x) - np.sort(ref.villages.geometry.x),
        np.sort(shifted.villages.geometry.y) - np.sort(ref.villages.geometry.y),
    )
    assert offset.max() > 50  # GCJ-02 is off by a few hundred metres
    by_id = fixed.villages.set_index("village_id").geometry
    ref_id = ref.villages.set_index("village_id").geometry
    err = np.hypot(by_id.x - ref_id.x.reindex(by_id.index), by_id.y - ref_id.y.reindex(by_id.index))
    assert err.max() < 0.5  # back to WGS84 within half a metre
    assert 'gcj02_converted = "villages"' in (tmp_path / "b" / "region.toml").read_text()


def test_a_bad_region_leaves_nothing_behind(synth_region_dir: Path, tmp_path: Path) -> None:
    files = _plain_files(synth_region_dir, tmp_path / "mine")
    text = files["villages"].read_text().replace("population", "people", 1)
    files["villages"].write_text(text)
    with pytest.raises(InputDataError, match="population"):
        newregion.region_from_files(tmp_path / "r", files)
    assert not (tmp_path / "r").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.")]
    with pytest.raises(InputDataError, match="missing required layers"):
        newregion.region_from_files(tmp_path / "r", {"villages": files["villages"]})


def test_new_region_command(synth_region_dir: Path, tmp_path: Path) -> None:
    files = _plain_files(synth_region_dir, tmp_path / "mine")
    args = ["new-region", str(tmp_path / "r")]
    for layer, f in files.items():
        args += [f"--{layer}", str(f)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "next: universal-service plan" in res.output
    res = CliRunner().invoke(app, args)  # the folder exists now
    assert res.exit_code == 2 and "not an empty folder" in res.output


def test_the_walkthrough_lists_every_required_column() -> None:
    doc = (ROOT / "docs" / "new-region.md").read_text(encoding="utf-8")
    for name, spec in LAYERS.items():
        assert f"| {name} |" in doc, name
        for col in spec.columns:
            if col.required:
                assert re.search(rf"\*\*{col.name}\*\*", doc), (name, col.name)
