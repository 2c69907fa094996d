"""Make a region folder from a user's plain files (CSV with lon/lat, a GeoTIFF, polygons)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import gcj02, io
from .errors import InputDataError

#: Layers a region needs, and the optional ones (see docs/new-region.md for their columns).
REQUIRED = ("villages", "districts", "dem", "pops", "operators")
OPTIONAL = ("towers", "roads")
#: Point or line layers whose coordinates may be given in GCJ-02 (Chinese web maps).
CONVERTIBLE = ("villages", "districts", "pops", "towers", "roads")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def region_from_files(
    out: str | Path,
    files: Mapping[str, str | Path],
    *,
    name: str | None = None,
    crs: str | None = None,
    gcj02_layers: Iterable[str] = (),
) -> io.Region:
    """Copy a user's files into a new region folder, write its ``region.toml`` and validate it.

    Parameters
    ----------
    out : path-like
        The region folder to create; it must not exist yet (or be an empty folder).
    files : mapping of str to path
        Layer name -> file: ``villages``, ``districts``, ``dem``, ``pops``, ``operators``
        (required), ``towers``, ``roads`` (optional). Point layers may be CSV with longitude and
        latitude columns (WGS84); vectors any format GDAL reads; the DEM a GeoTIFF.
    name : str, optional
        The region's name (default: the folder's name).
    crs : str, optional
        The metric CRS to plan in (e.g. "EPSG:32648"); by default the UTM zone of the villages.
    gcj02_layers : iterable of str
        Layers whose coordinates are GCJ-02 (Amap, Tencent and other Chinese web maps): they are
        converted to WGS84 (:func:`universal_service.gcj02.geometries_gcj02_to_wgs84`) and written
        as GeoPackages.

    Returns
    -------
    Region
        The validated region, loaded from ``out``.

    Raises
    ------
    InputDataError
        A required layer is missing, a file does not exist, ``out`` is not empty, or the region
        does not validate (every problem listed, naming the file); nothing is left at ``out``.
    """
    out = Path(out)
    unknown = sorted(set(files) - set(REQUIRED) - set(OPTIONAL))
    missing = [k for k in REQUIRED if k not in files]
    gcj = sorted(set(gcj02_layers))
    problems = []
    if unknown:
        problems.append(f"unknown layers {unknown}; a region has {list(REQUIRED + OPTIONAL)}")
    if missing:
        problems.append(f"missing required layers {missing} (give a file for each)")
    bad_gcj = [k for k in gcj if k not in CONVERTIBLE or k not in files]
    if bad_gcj:
        problems.append(f"--gcj02 {bad_gcj}: only given vector layers {list(CONVERTIBLE)} convert")
    for layer, f in files.items():
        if not Path(f).is_file():
            problems.append(f"{layer}: file {f} not found")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        problems.append(f"{out}: already exists and is not an empty folder; choose a new folder")
    if problems:
        raise InputDataError(problems)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        layers = {}
        for layer, f in sorted(files.items()):
            src = Path(f)
            if layer in gcj:
                gdf = io.read_vector(src)
                if gdf.crs is None or gdf.crs.to_epsg() != 4326:
                    raise InputDataError(
                        f"{src}: GCJ-02 coordinates must be longitude/latitude degrees (EPSG:4326 "
                        f"axes); this file is in {gdf.crs}."
                    )
                gdf = gdf.set_geometry(
                    gcj02.geometries_gcj02_to_wgs84(gdf.geometry.to_numpy()), crs="EPSG:4326"
                )
                dst = stage / f"{src.stem}.gpkg"
                gdf.to_file(dst, layer=layer, driver="GPKG")
            else:
                dst = stage / src.name
                if dst.exists():
                    dst = stage / f"{layer}_{src.name}"
                shutil.copy2(src, dst)
                if src.suffix.lower() == ".shp":  # a shapefile is several files
                    for side in src.parent.glob(src.stem + ".*"):
                        shutil.copy2(side, stage / (dst.stem + side.suffix))
            layers[layer] = dst.name
        lines = [
            "# Region folder written by universal_service.newregion.region_from_files.",
            f"name = {_toml_str(name or out.name)}",
        ]
        if crs:
            lines.append(f"crs = {_toml_str(crs)}")
        lines += ["", "[layers]"] + [f"{k} = {_toml_str(v)}" for k, v in layers.items()]
        lines += ["", "[meta]", 'created_by = "universal-service new-region"']
        lines.append(
            "sources = "
            + _toml_str("; ".join(f"{k}: {Path(f).name}" for k, f in sorted(files.items())))
        )
        lines.append("gcj02_converted = " + _toml_str(",".join(gcj)))
        (stage / "region.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        io.load_region(stage)  # every problem, naming the file, before anything is at ``out``
        if out.exists():
            out.rmdir()
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return io.load_region(out)
