"""Seeded synthetic regions and instances for tests, benchmarks and demos (same seed, same files)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from shapely.geometry import box

from . import baseline, io

CRS = "EPSG:32648"
ORIGIN_X_M = 600_000.0
ORIGIN_Y_M = 2_900_000.0


def synthetic_dem(
    nx: int = 240, ny: int = 200, cell_m: float = 90.0, *, seed: int = 0, relief_m: float = 400.0
) -> xr.DataArray:
    """A smooth random terrain: a sum of a few Gaussian hills over a gentle slope.

    Parameters
    ----------
    nx, ny : int
        Grid size [cells].
    cell_m : float
        Cell size [m].
    seed : int
        Random seed.
    relief_m : float
        Typical hill height [m].

    Returns
    -------
    xarray.DataArray
        Elevation [m], dims ``(y, x)`` (y descending), CRS ``EPSG:32648``.
    """
    import rioxarray  # noqa: F401

    rng = np.random.default_rng(seed)
    x = ORIGIN_X_M + (np.arange(nx) + 0.5) * cell_m
    y = ORIGIN_Y_M + (ny - np.arange(ny) - 0.5) * cell_m
    xx, yy = np.meshgrid(x, y)
    z = 600.0 + 0.002 * (xx - x[0])
    for _ in range(12):
        cx, cy = rng.uniform(x[0], x[-1]), rng.uniform(y[-1], y[0])
        s = rng.uniform(1_500, 5_000)
        z += (
            rng.uniform(0.3, 1.0)
            * relief_m
            * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s**2))
        )
    da = xr.DataArray(
        z.astype("float32"),
        coords={"y": y, "x": x},
        dims=("y", "x"),
        name="elevation",
        attrs={"units": "m"},
    )
    return da.rio.write_crs(CRS)


def write_region(
    path: str | Path,
    *,
    n_villages: int = 40,
    n_districts: int = 2,
    seed: int = 0,
    dem_shape: tuple[int, int] = (200, 240),
) -> Path:
    """Write a small synthetic region folder (``region.toml`` and layers) for tests.

    Districts are vertical strips of the DEM's extent; villages are random points inside them
    (WGS84 GeoPackage, so loading exercises reprojection); two PoPs per district, one tower per
    district (the first ``4g``, the others ``3g``), three operators. Each village's
    ``existing_service`` is what those towers provide under the plan's radio test
    (:func:`universal_service.baseline.mobile_levels`; no village has fiber), so the region passes
    ``universal-service validate`` without warnings.

    Parameters
    ----------
    path : path-like
        Folder to create.
    n_villages : int
        Number of villages.
    n_districts : int
        Number of districts.
    seed : int
        Random seed.
    dem_shape : (int, int)
        DEM size (ny, nx) in 90 m cells.

    Returns
    -------
    pathlib.Path
        The region folder.
    """
    rng = np.random.default_rng(seed)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    ny, nx = dem_shape
    dem = synthetic_dem(nx, ny, seed=seed)
    dem.rio.to_raster(root / "dem.tif")
    x0, x1 = ORIGIN_X_M, ORIGIN_X_M + nx * 90.0
    y0, y1 = ORIGIN_Y_M, ORIGIN_Y_M + ny * 90.0
    edges = np.linspace(x0, x1, n_districts + 1)
    dids = [f"D{i + 1:02d}" for i in range(n_districts)]
    districts = gpd.GeoDataFrame(
        {
            "district_id": dids,
            "name": [f"District {i + 1}" for i in range(n_districts)],
            "parent_id": "P1",
        },
        geometry=[box(edges[i], y0, edges[i + 1], y1) for i in range(n_districts)],
        crs=CRS,
    )
    villages = _villages(rng, n_villages, edges, y0, y1, dids)
    villages.to_file(root / "villages.gpkg", layer="villages", driver="GPKG")
    districts.to_crs("EPSG:4326").to_file(root / "districts.gpkg", layer="districts", driver="GPKG")
    _write_networks(root, edges, y0, y1)
    (root / "region.toml").write_text(
        f'name = "Synthetic region (seed {seed})"\ncrs = "{CRS}"\n\n[layers]\n'
        'villages = "villages.gpkg"\ndistricts = "districts.gpkg"\ndem = "dem.tif"\n'
        'pops = "pops.gpkg"\ntowers = "towers.gpkg"\noperators = "operators.csv"\n\n'
        f"[meta]\nsynthetic = true\nseed = {seed}\n",
        encoding="utf-8",
    )
    # the labels follow the network, by the plan's own test
    levels = baseline.mobile_levels(io.load_region(root))
    villages["existing_service"] = levels.reindex(villages["village_id"]).to_numpy(str)
    villages.to_file(root / "villages.gpkg", layer="villages", driver="GPKG")
    return root


def _villages(
    rng: np.random.Generator,
    n_villages: int,
    edges: np.ndarray,
    y0: float,
    y1: float,
    dids: list[str],
) -> gpd.GeoDataFrame:
    """Random villages inside the district strips ``edges`` [m], 900 m from their borders, in WGS84."""
    margin = 900.0
    n_districts = len(dids)
    di = np.sort(rng.integers(0, n_districts, n_villages))
    vx = rng.uniform(edges[di] + margin, edges[di + 1] - margin)
    vy = rng.uniform(y0 + margin, y1 - margin, n_villages)
    pop = rng.integers(300, 3000, n_villages).astype(float)
    return gpd.GeoDataFrame(
        {
            "village_id": [f"V{i:04d}" for i in range(n_villages)],
            "name": [f"Village {i}" for i in range(n_villages)],
            "district_id": [dids[i] for i in di],
            "population": pop,
            "households": np.round(pop / 3.3),
            "income_monthly": np.round(rng.lognormal(np.log(650), 0.3, n_villages), 1),
            "existing_service": rng.choice(
                ["none", "2g", "3g", "4g"], n_villages, p=[0.4, 0.3, 0.2, 0.1]
            ),
            "electrified": rng.random(n_villages) > 0.05,
        },
        geometry=gpd.points_from_xy(vx, vy),
        crs=CRS,
    ).to_crs("EPSG:4326")


def _write_networks(root: Path, edges: np.ndarray, y0: float, y1: float) -> None:
    """Two PoPs and one tower per district strip ``edges`` [m], and the three operators."""
    n_districts = len(edges) - 1
    centres = (edges[:-1] + edges[1:]) / 2
    px = np.concatenate([centres, centres + 1500])
    py = np.concatenate([np.full(n_districts, (y0 + y1) / 2), np.full(n_districts, y0 + 3000)])
    pops = gpd.GeoDataFrame(
        {
            "pop_id": [f"P{i:02d}" for i in range(px.size)],
            "operator_id": [["ct", "cmcc", "cu"][i % 3] for i in range(px.size)],
        },
        geometry=gpd.points_from_xy(px, py),
        crs=CRS,
    )
    pops.to_file(root / "pops.gpkg", layer="pops", driver="GPKG")
    towers = gpd.GeoDataFrame(
        {
            "tower_id": [f"T{i:02d}" for i in range(n_districts)],
            "operator_id": [["cmcc", "cu", "ct"][i % 3] for i in range(n_districts)],
            "height_m": 30.0,
            "technology": ["4g" if i == 0 else "3g" for i in range(n_districts)],
        },
        geometry=gpd.points_from_xy(centres - 2000, np.full(n_districts, y1 - 4000)),
        crs=CRS,
    )
    towers.to_file(root / "towers.gpkg", layer="towers", driver="GPKG")
    pd.DataFrame(
        {
            "operator_id": ["cmcc", "ct", "cu"],
            "name": ["China Mobile", "China Telecom", "China Unicom"],
            "revenue_cny": [708e9, 352e9, 274e9],
            "profit_cny": [109e9, 18e9, 0.6e9],
            "market_share": [0.64, 0.18, 0.18],
            "technologies": ["fiber;microwave;lte;satellite"] * 3,
        }
    ).to_csv(root / "operators.csv", index=False)


def facility_instance(
    n_villages: int, n_sites: int, options_per_village: int, *, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random shared-site instance: each village may join any of its nearest sites or go alone.

    Parameters
    ----------
    n_villages, n_sites : int
        Instance size.
    options_per_village : int
        Site options per village (nearest sites), plus one stand-alone option.
    seed : int
        Random seed.

    Returns
    -------
    (options, sites) : (pandas.DataFrame, pandas.DataFrame)
        In the long format :func:`universal_service.optimize.plan` reads.
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    vxy = rng.uniform(0, 100, (n_villages, 2))
    sxy = rng.uniform(0, 100, (n_sites, 2))
    k = min(options_per_village, n_sites)
    d, j = cKDTree(sxy).query(vxy, k=k)
    d, j = d.reshape(n_villages, k), j.reshape(n_villages, k)
    vid = np.array([f"v{i:07d}" for i in range(n_villages)])
    sid = np.array([f"s{i:05d}" for i in range(n_sites)])
    shared = pd.DataFrame(
        {
            "village_id": np.repeat(vid, k),
            "option_id": "at_" + sid[j.ravel()],
            "technology": "lte",
            "site_id": sid[j.ravel()],
            "cost": 10.0 + 5.0 * d.ravel(),
        }
    )
    alone = pd.DataFrame(
        {
            "village_id": vid,
            "option_id": "alone",
            "technology": "satellite",
            "site_id": "",
            "cost": rng.uniform(150, 400, n_villages),
        }
    )
    options = pd.concat([shared, alone], ignore_index=True)
    options["weight"] = np.repeat(rng.integers(100, 2000, n_villages), 1)[
        pd.Index(vid).get_indexer(options["village_id"])
    ].astype(float)
    sites = pd.DataFrame({"site_id": sid, "cost": rng.uniform(200, 600, n_sites)})
    return options, sites
