"""The national runner: every county of the chosen provinces built, costed and planned.

Each county's region is built from the national pack (:func:`universal_service.countybuild.
county_region`) and costed on its own, in parallel on a Dask client when one is given; a
county that fails is retried once and then reported by name with its error, never dropped
silently. The counties are coupled by the scenario's coverage target through one price on
coverage (:func:`universal_service.districts.couple`), so the target holds over all the chosen
counties together, with the gap to a valid bound of that decomposed problem reported.
"""

from __future__ import annotations

import functools
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from . import costs, countybuild, districts, outputs, scenarios
from .catalog import Catalog, load_catalog
from .nationalpack import NationalPack, load_pack

#: Attempts per county (the first and one retry).
ATTEMPTS = 2
#: The area a scenario's ``radio.hilltops`` is for [km2]: the bundled region's 12 districts
#: (26,170 km2 by their polygons; 26,197 km2 officially). A county searches
#: ``hilltops x its area / this`` candidates (:func:`universal_service.districts.
#: scaled_hilltops`), so the bundled baseline's 300 keep their density (about 11 per 1,000 km2).
HILLTOP_REFERENCE_AREA_KM2 = 26_170.0
#: Files of :func:`write`.
OUTPUT_FILES = ("villages.parquet", "plan.nc", "counties.csv", "provinces.csv", "map.png")


@dataclass
class NationalResult:
    """What :func:`run` produces.

    Attributes
    ----------
    plan : DistrictPlan
        The coupled plan (one "district" per county).
    villages : geopandas.GeoDataFrame
        Every planned village (WGS84 points): ``county``, ``province``, ``option_id``,
        ``technology``, ``covered``, ``npv_cost`` and ``subsidy`` [CNY].
    counties : pandas.DataFrame
        :attr:`DistrictPlan.districts` with ``name`` and ``province``.
    failed : pandas.DataFrame
        ``county``, ``name``, ``error`` of every county that failed both attempts.
    provinces : pandas.DataFrame
        Per province: counties, villages, covered share, NPV cost and subsidy [CNY].
    """

    plan: districts.DistrictPlan
    villages: gpd.GeoDataFrame
    counties: pd.DataFrame
    failed: pd.DataFrame
    provinces: pd.DataFrame


@functools.lru_cache(maxsize=2)
def _pack(path: str) -> NationalPack:
    """The pack, read once per process (each Dask worker reads its own)."""
    return load_pack(path)


def county_options(
    pack_path: str, adcode: str, scenario: scenarios.Scenario, catalog: Catalog
) -> tuple[districts.DistrictOptions | None, pd.DataFrame | None, str]:
    """Build and cost one county, twice at most.

    Returns
    -------
    (DistrictOptions or None, points or None, error)
        The costed county and its villages' WGS84 points (``village_id``, ``lon``, ``lat``), or
        None and the last error ("" on success).
    """
    error = ""
    for _ in range(ATTEMPTS):
        try:
            t0 = time.perf_counter()
            cfg = scenario.config
            region = countybuild.county_region(
                _pack(pack_path), adcode, radio_cfg=cfg.radio, catalog=catalog
            )
            area = float(region.districts.geometry.area.sum()) / 1e6
            radio = cfg.radio.model_copy(
                update={
                    "hilltops": districts.scaled_hilltops(
                        cfg.radio.hilltops, area / HILLTOP_REFERENCE_AREA_KM2
                    )
                }
            )
            opts = costs.build_options(region, cfg.policy, radio, catalog)
            sites = opts.sites[["site_id", "cost", "kind", "capex", "capacity_mbps"]]
            v = region.villages.to_crs("EPSG:4326")
            points = pd.DataFrame(
                {
                    "village_id": v["village_id"].to_numpy(str),
                    "lon": v.geometry.x.to_numpy(),
                    "lat": v.geometry.y.to_numpy(),
                }
            )
            done = districts.DistrictOptions(adcode, opts.table, sites, time.perf_counter() - t0)
            return done, points, ""
        except Exception as exc:  # reported by name below, never dropped
            error = f"{type(exc).__name__}: {exc}"
            last = traceback.format_exc(limit=3)
    return None, None, error + (" | " + last.strip().splitlines()[-1] if last else "")


def _first(item: tuple) -> Any:
    return item[0]


def run(
    scenario: scenarios.Scenario,
    provinces: list[str] | None = None,
    *,
    pack: NationalPack | None = None,
    client: Any | None = None,
    counties: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    gap_tol: float = 0.005,
) -> NationalResult:
    """Plan the rural villages of some provinces (or all) under one coverage target.

    Parameters
    ----------
    scenario : Scenario
        Policy (a coverage target, least cost), radio and catalog; :func:`districts.
        check_policy` says which policies couple.
    provinces : list of str, optional
        6-digit province adcodes (``520000``); all when omitted.
    pack : NationalPack, optional
        Default :func:`universal_service.nationalpack.load_pack`.
    client : distributed.Client, optional
        Serial without.
    counties : list of str, optional
        Only these county codes (of the provinces); for tests and benchmarks.
    progress : callable, optional
        Called with each county's code as it is costed.
    gap_tol : float, default 0.005

    Returns
    -------
    NationalResult
    """
    t0 = time.perf_counter()
    pack = pack or load_pack()
    policy = scenarios.policy_for(scenario.config)
    districts.check_policy(policy, scenario.name)
    catalog = load_catalog(scenario.catalog_path())
    codes = pack.county_codes(provinces)
    if counties is not None:
        wanted = set(map(str, counties))
        codes = [c for c in codes if c in wanted]
    path = str(pack.path)
    if client is not None:  # one copy of the scenario and catalog on each worker
        scenario_f, catalog_f = client.scatter([scenario, catalog], broadcast=True)
    else:
        scenario_f, catalog_f = scenario, catalog
    args = ([path] * len(codes), codes, [scenario_f] * len(codes), [catalog_f] * len(codes))
    remote = None
    if client is None:
        results = []
        for code in codes:
            results.append(county_options(path, code, scenario, catalog))
            if progress:
                progress(code)
    else:
        from distributed import as_completed

        futures = client.map(county_options, *args, pure=False)
        order = {f.key: i for i, f in enumerate(futures)}
        results = [None] * len(futures)
        for fut in as_completed(futures):
            results[order[fut.key]] = fut.result()
            if progress:
                progress(codes[order[fut.key]])
        # the costed counties stay where they were built: the price search uses them there
        remote = client.map(_first, futures, pure=False)
        del futures
    names = pack.counties.set_index("adcode")["name"]
    failed = pd.DataFrame(
        [
            {"county": c, "name": names.get(c, ""), "error": r[2]}
            for c, r in zip(codes, results, strict=True)
            if r[0] is None
        ],
        columns=["county", "name", "error"],
    )
    costed = time.perf_counter() - t0
    ok = [i for i, r in enumerate(results) if r[0] is not None]
    good = [results[i] for i in ok]
    plan = districts.couple(
        [r[0] for r in good],
        policy,
        client=client,
        gap_tol=gap_tol,
        t0=t0,
        remote=None if remote is None else [remote[i] for i in ok],
    )
    plan.attrs["costing_seconds"] = costed
    points = pd.concat([r[1] for r in good], ignore_index=True) if good else pd.DataFrame()
    return _assemble(plan, points, failed, names)


def _assemble(
    plan: districts.DistrictPlan, points: pd.DataFrame, failed: pd.DataFrame, names: pd.Series
) -> NationalResult:
    v = plan.villages().reset_index()
    v = v.rename(columns={"district_id": "county"})
    v["province"] = v["county"].str[:2] + "0000"
    if len(points):
        xy = points.set_index("village_id").reindex(v["village_id"])
        geom = gpd.points_from_xy(xy["lon"], xy["lat"])
    else:
        geom = gpd.points_from_xy([], [])
    villages = gpd.GeoDataFrame(v, geometry=geom, crs="EPSG:4326")
    c = plan.districts.copy()
    c.insert(0, "name", [names.get(i, "") for i in c.index])
    c.insert(1, "province", [i[:2] + "0000" for i in c.index])
    c.index.name = "county"
    g = c.groupby("province")
    provinces = pd.DataFrame(
        {
            "counties": g.size(),
            "villages": g["villages"].sum(),
            "coverage_share": g["covered_weight"].sum() / g["weight"].sum(),
            "npv_cost": g["npv_cost"].sum(),
            "subsidy": g["subsidy"].sum(),
        }
    )
    provinces.index.name = "province"
    return NationalResult(plan, villages, c, failed, provinces)


def to_dataset(result: NationalResult) -> xr.Dataset:
    """The national plan as an ``xarray.Dataset``: per village and per county, with the run's
    status, objective, bound, gap and price in ``attrs``."""
    v = result.villages.drop(columns="geometry").set_index("village_id")
    v = v.rename(columns={"county": "village_county", "province": "village_province"})
    ds = xr.Dataset.from_dataframe(v.rename_axis("village"))
    ds["lon"] = ("village", result.villages.geometry.x.to_numpy())
    ds["lat"] = ("village", result.villages.geometry.y.to_numpy())
    c = result.counties.rename_axis("county")
    for col in (name for name in districts.DISTRICT_COLUMNS if name != "status"):
        ds[f"county_{col}"] = ("county", c[col].to_numpy(float))
    ds = ds.assign_coords(county=c.index.to_numpy(str))
    ds["county_status"] = ("county", c["status"].to_numpy(str))
    ds.attrs.update(
        {k: (v if isinstance(v, str) else float(v)) for k, v in result.plan.attrs.items()}
    )
    ds.attrs["failed_counties"] = json.dumps(
        result.failed.to_dict(orient="records"), ensure_ascii=False
    )
    return ds


def coverage_map_png(
    result: NationalResult, pack: NationalPack, path: Path, width: int = 900
) -> None:
    """A PNG map of the counties: the share of their weight the plan leaves uncovered (white:
    none, dark red: a quarter or more), grey where a county was not planned."""
    from PIL import Image
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds

    counties = pack.counties[
        pack.counties["adcode"].isin(set(result.counties.index) | set(result.failed["county"]))
    ]
    if counties.empty:
        counties = pack.counties
    x0, y0, x1, y1 = counties.total_bounds
    height = max(1, int(width * (y1 - y0) / max(x1 - x0, 1e-9)))
    transform = from_bounds(x0, y0, x1, y1, width, height)
    gap = 1.0 - result.counties["coverage_share"].reindex(counties["adcode"]).to_numpy(float)
    shapes = [
        (geom, float(np.clip(g, 0.0, 0.25) / 0.25 * 254 + 1) if np.isfinite(g) else 0.0)
        for geom, g in zip(counties.geometry, gap, strict=True)
    ]
    band = rasterize(
        shapes, out_shape=(height, width), transform=transform, fill=-1.0, dtype="float32"
    )
    rgb = np.full((height, width, 3), 255, np.uint8)
    planned = band >= 1
    t = np.where(planned, (band - 1) / 254, 0.0)
    rgb[planned] = np.stack([255 - 95 * t, 255 - 255 * t, 255 - 255 * t], axis=-1)[planned].astype(
        np.uint8
    )
    rgb[band == 0] = (190, 190, 190)
    edges = rasterize(
        [(g.boundary, 1) for g in counties.geometry],
        out_shape=(height, width),
        transform=transform,
        fill=0,
    ).astype(bool)
    rgb[edges] = (90, 90, 90)
    Image.fromarray(rgb).save(path)


def write(
    result: NationalResult, pack: NationalPack, out: str | Path, meta: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write :data:`OUTPUT_FILES` (and ``failed.csv`` when a county failed) into ``out`` as one
    output set (:func:`universal_service.outputs.write_set`: a run replaces the last one whole).

    Returns
    -------
    dict
        File name -> path.
    """
    writers: dict[str, Callable[[Path], None]] = {
        "villages.parquet": lambda p: result.villages.to_parquet(p, index=False),
        "plan.nc": lambda p: to_dataset(result).to_netcdf(p),
        "counties.csv": lambda p: result.counties.to_csv(p),
        "provinces.csv": lambda p: result.provinces.to_csv(p),
        "map.png": lambda p: coverage_map_png(result, pack, p),
    }
    if len(result.failed):
        writers["failed.csv"] = lambda p: result.failed.to_csv(p, index=False)
    return outputs.write_set(
        Path(out), writers, owned=(*OUTPUT_FILES, "failed.csv"), meta=meta or {}
    )


def format_summary(result: NationalResult) -> str:
    """The run in a few lines: counties, coverage against the target, money, the proof, and
    every failed county by name."""
    a = result.plan.attrs
    c = result.counties
    bound = a["bound"] if abs(a["bound"]) >= 0.5 else 0.0  # no "-0" for a bound of -0.002
    lines = [
        f"National plan: {len(c)} counties planned, {len(result.failed)} failed; "
        f"{int(c['villages'].sum()):,} rural villages",
        f"  coverage {a['coverage_share']:.4f} of the weight (target {a['coverage_target']:.4f}); "
        f"NPV cost CNY {a['objective']:,.0f}, subsidy CNY {c['subsidy'].sum():,.0f}",
        f"  status {a['status']} ({a['status_method']}): bound CNY {bound:,.0f}, gap "
        f"{a['gap']:.2e}, price CNY {a['price']:,.1f} per unit of weight, "
        f"{len(result.plan.prices)} prices tried; counties not optimal: "
        f"{int((c['status'] != 'optimal').sum())}; {a['seconds']:.1f} s",
        "  province   counties  villages  coverage        NPV cost [CNY]         subsidy [CNY]",
    ]
    for p, r in result.provinces.iterrows():
        lines.append(
            f"  {p}   {int(r['counties']):>8} {int(r['villages']):>9} {r['coverage_share']:>9.4f}"
            f" {r['npv_cost']:>21,.0f} {r['subsidy']:>21,.0f}"
        )
    for _, f in result.failed.iterrows():
        lines.append(f"  failed: {f['county']} {f['name']}: {f['error']}")
    return "\n".join(lines)
