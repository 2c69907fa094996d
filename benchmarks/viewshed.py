"""Time ``viewshed.viewshed`` against GDAL's ``gdal_viewshed`` on the same observers.

Uses the bundled region DEM (``data/qiannan/dem.tif``) when present, else the SRTM test DEM
(``tests/data/dem/shenzhen_hk_srtm3.tif``) reprojected to UTM 49N at 90 m. Observers: the most
prominent hilltops plus seeded random cells. For each range (15 km and the whole DEM) it prints
our time, GDAL's wall time (a subprocess: start-up, GeoTIFF read and write included), GDAL's time
less its start-up overhead (measured with a one-cell range), the ratios, and the share of
in-range cells on which the two agree.

Run from the repository root::

    python benchmarks/viewshed.py [--dem PATH] [--observers 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr
from rasterio.enums import Resampling

from universal_service import terrain, viewshed

BUNDLED = Path("data/qiannan/dem.tif")
SRTM = Path("tests/data/dem/shenzhen_hk_srtm3.tif")
OBSERVER_HEIGHT_M = 35.0
TARGET_HEIGHT_M = 1.5
K_FACTOR = 4.0 / 3.0


def prepare_dem(path: Path | None, workdir: Path) -> Path:
    """A metric GeoTIFF without nodata for both tools; returns its path."""
    if path is None:
        path = BUNDLED if BUNDLED.exists() else SRTM
    da = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    if da.rio.crs.is_geographic:
        da = da.rio.reproject("EPSG:32649", resolution=90.0, resampling=Resampling.bilinear)
    # Sea and voids to 0 m: GDAL does not treat nodata specially, so both tools see one surface.
    da = da.fillna(0.0).astype("float32").rio.write_nodata(None)
    out = workdir / "dem.tif"
    da.rio.to_raster(out)
    print(f"DEM: {path} -> {da.sizes['y']} x {da.sizes['x']} cells, {da.rio.crs}")
    return out


def run_gdal(dem_path: Path, x: float, y: float, max_distance_m: float, out: Path) -> float:
    options = {
        "-ox": float(x),
        "-oy": float(y),
        "-oz": OBSERVER_HEIGHT_M,
        "-tz": TARGET_HEIGHT_M,
        "-md": max_distance_m,
        "-cc": 1.0 / K_FACTOR,  # curvature coefficient = 1 - refraction coefficient = 1/k
        "-vv": 1,
        "-iv": 0,
        "-ov": 255,
    }
    cmd = ["gdal_viewshed", "-q"]
    for flag, value in options.items():
        cmd += [flag, repr(value)]
    cmd += [str(dem_path), str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def agreement(ours: xr.DataArray, gdal_path: Path) -> float:
    g = rioxarray.open_rasterio(gdal_path).squeeze("band", drop=True)
    o = ours.sel(x=g["x"], y=g["y"], method="nearest").to_numpy()
    gv = g.to_numpy()
    in_range = gv != 255
    return float((o[in_range] == (gv[in_range] == 1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dem", type=Path, default=None)
    parser.add_argument("--observers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--seed", type=int, default=2016)
    args = parser.parse_args()
    if shutil.which("gdal_viewshed") is None:
        sys.exit("gdal_viewshed not installed: apt-get install gdal-bin")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        dem_path = prepare_dem(args.dem, workdir)
        dem = terrain.load_dem(dem_path)
        tops = terrain.hilltops(dem, window_m=5_000.0, min_prominence_m=50.0)
        rng = np.random.default_rng(args.seed)
        n_tops = min(len(tops), args.observers // 2)
        rows = rng.integers(0, dem.sizes["y"], args.observers - n_tops)
        cols = rng.integers(0, dem.sizes["x"], args.observers - n_tops)
        xs = np.concatenate([tops["x"].to_numpy()[:n_tops], dem["x"].to_numpy()[cols]])
        ys = np.concatenate([tops["y"].to_numpy()[:n_tops], dem["y"].to_numpy()[rows]])
        out = workdir / "gdal.tif"
        cell = float(abs(dem["x"][1] - dem["x"][0]))

        # Warm-up and GDAL start-up overhead (one-cell range).
        viewshed.viewshed(
            dem,
            xs[0],
            ys[0],
            observer_height_m=OBSERVER_HEIGHT_M,
            target_height_m=TARGET_HEIGHT_M,
            max_distance_m=15_000.0,
            k_factor=K_FACTOR,
        )
        overhead = min(run_gdal(dem_path, xs[0], ys[0], cell, out) for _ in range(args.repeat))
        print(f"gdal_viewshed start-up + I/O overhead (1-cell range): {overhead * 1000:.0f} ms")

        for max_distance_m in (15_000.0, 0.0):
            label = f"{max_distance_m / 1000:.0f} km" if max_distance_m else "whole DEM"
            t_ours, t_gdal, agree = [], [], []
            for x, y in zip(xs, ys, strict=True):
                best = np.inf
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    v = viewshed.viewshed(
                        dem,
                        x,
                        y,
                        observer_height_m=OBSERVER_HEIGHT_M,
                        target_height_m=TARGET_HEIGHT_M,
                        max_distance_m=max_distance_m or None,
                        k_factor=K_FACTOR,
                    )
                    best = min(best, time.perf_counter() - t0)
                t_ours.append(best)
                t_gdal.append(
                    min(run_gdal(dem_path, x, y, max_distance_m, out) for _ in range(args.repeat))
                )
                agree.append(agreement(v, out))
            t_ours_a, t_gdal_a = np.array(t_ours), np.array(t_gdal)
            print(f"\nrange {label}: {len(xs)} observers, best of {args.repeat}")
            print("  observer (x, y)            ours ms  gdal ms  gdal-startup ms  agreement")
            for x, y, a, b, g in zip(xs, ys, t_ours_a, t_gdal_a, agree, strict=True):
                print(
                    f"  ({x:10.0f}, {y:10.0f})  {a * 1000:8.1f} {b * 1000:8.1f}"
                    f" {max(b - overhead, 0) * 1000:16.1f}  {g:9.4%}"
                )
            print(
                f"  total: ours {t_ours_a.sum():.3f} s, gdal {t_gdal_a.sum():.3f} s "
                f"(ratio gdal/ours {t_gdal_a.sum() / t_ours_a.sum():.2f}); "
                f"gdal without start-up {max(t_gdal_a.sum() - overhead * len(xs), 0):.3f} s "
                f"(ratio {max(t_gdal_a.sum() - overhead * len(xs), 0) / t_ours_a.sum():.2f}); "
                f"agreement min {min(agree):.4%}"
            )


if __name__ == "__main__":
    main()
