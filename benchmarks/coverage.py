"""Time ``radio.coverage_matrix`` on the whole bundled region (data/qiannan).

Candidate sites: every village, the DEM hilltops, and the existing towers (``towers.gpkg``) or,
without a towers file, a few hundred seeded random points. Villages and towers are read with
geopandas and reprojected to the DEM's CRS; the DEM is read with ``terrain.load_dem``.

Run from the repository root::

    python benchmarks/coverage.py [--region data/qiannan] [--random-sites 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np

from universal_service import radio, terrain
from universal_service.schema import RadioConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", type=Path, default=Path("data/qiannan"))
    parser.add_argument("--random-sites", type=int, default=300, help="used without towers.gpkg")
    parser.add_argument("--seed", type=int, default=2016)
    args = parser.parse_args()

    t0 = time.perf_counter()
    dem = terrain.load_dem(args.region / "dem.tif")
    villages = gpd.read_file(args.region / "villages.gpkg").to_crs(dem.rio.crs)
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    tops = terrain.hilltops(dem, window_m=2_000.0, min_prominence_m=50.0)
    t_hill = time.perf_counter() - t0

    vx, vy = villages.geometry.x.to_numpy(), villages.geometry.y.to_numpy()
    towers_path = args.region / "towers.gpkg"
    if towers_path.exists():
        towers = gpd.read_file(towers_path).to_crs(dem.rio.crs)
        ox, oy = towers.geometry.x.to_numpy(), towers.geometry.y.to_numpy()
        other = f"{len(towers)} towers"
    else:
        rng = np.random.default_rng(args.seed)
        x, y = dem["x"].to_numpy(), dem["y"].to_numpy()
        ox = rng.uniform(x.min(), x.max(), args.random_sites)
        oy = rng.uniform(y.min(), y.max(), args.random_sites)
        other = f"{args.random_sites} random points"
    sx = np.concatenate([vx, tops["x"].to_numpy(), ox])
    sy = np.concatenate([vy, tops["y"].to_numpy(), oy])
    # the scenario's radio defaults with a 1.5 m handset and a 15 km range, at 900 MHz
    radio_cfg = RadioConfig(village_height_m=1.5, max_range_m=15_000.0)
    budget = radio.LinkBudget.from_config(radio_cfg, frequency_mhz=900.0)

    t0 = time.perf_counter()
    cm = radio.coverage_matrix(dem, sx, sy, None, vx, vy, budget=budget)
    t_cov = time.perf_counter() - t0

    covered = cm.loc[cm["covered"], "village_id"].nunique()
    print(f"DEM {dem.sizes['y']} x {dem.sizes['x']} cells, {villages.shape[0]} villages")
    print(
        f"sites: {sx.size} = {vx.size} villages + {len(tops)} hilltops + {other}; "
        f"max range {budget.max_range_m / 1000:.0f} km"
    )
    print(f"load {t_load:.2f} s, hilltops {t_hill:.2f} s")
    print(
        f"coverage_matrix: {len(cm):,} pairs in {t_cov:.2f} s "
        f"({len(cm) / t_cov:,.0f} pairs/s); los {cm['los'].mean():.1%}, "
        f"covered {cm['covered'].mean():.1%} of pairs, {covered} villages coverable"
    )


if __name__ == "__main__":
    main()
