"""A county's region built from the national pack by documented, seeded rules.

Every value the pack lacks is derived by one rule, stated beside its constant:

- **Metric CRS**: the UTM zone (north) of the county's centroid.
- **DEM**: the pack's 12 km relief, interpolated bilinearly at :data:`CELL_M` cells over the
  county grown by :data:`DEM_BUFFER_M`, plus seeded detail (smoothed white noise scaled by the
  12 km grid's local roughness, :data:`DETAIL_SHARE`); sea and nodata are 0 m. Flagged as
  synthetic detail in the region's metadata.
- **Townships and villages**: the Amap point where the pack has one; otherwise a seeded point
  within a disc around the township's point (radius: the county's area shared among its
  townships), inside the county, as :data:`LOCATION_RULE` says.
- **Population, households, income**: China's 2016 rural residents spread evenly over its
  rural administrative villages with a seeded log-normal spread; the province's rural income
  where :data:`RURAL_INCOME_YEAR` has it, else China's.
- **Network (end-2015)**: PoPs of every operator at the county seat and at township seats by
  :data:`POP_TOWNSHIP_PROBABILITY`; a 4G tower per operator at the county seat and one at every
  other township seat more than 2 km from it (4G to "townships and above"); then 2G/3G village masts added greedily until at
  most :data:`NO_SERVICE_SHARE` of the villages are uncovered under the plan's radio test; each
  village's existing service from :func:`universal_service.baseline.service_levels` with the
  bundled region's calibrated fiber reach (:data:`FIBER_REACH_KM`).

The bundled Qiannan region is built by the richer rules of ``data/build_region.py`` (GPWv4
population weights, expressway corridors, a 90 m DEM calibrated to karst relief); where its
rules carry over, both read them from :mod:`universal_service.buildrules`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
import shapely.ops
from pyproj import CRS, Transformer
from rasterio.transform import from_origin
from scipy import ndimage

from . import baseline, io
from .buildrules import (
    BASELINE_YEAR,
    INCOME_SIGMA,
    NO_SERVICE_SHARE,
    POP_TOWNSHIP_PROBABILITY,
    SEAT_TECHNOLOGY,
    TOWER_HEIGHT_SEAT_M,
    VILLAGE_TOWER_3G_PROBABILITY,
    VILLAGE_TOWER_HEIGHT_M,
)
from .catalog import Catalog, load_catalog
from .errors import InputDataError
from .io.memory import dem_from_grid, region_from_layers
from .nationalpack import NationalPack
from .schema import RadioConfig

#: Base seed; each rule draws from its own stream ``default_rng([seed, county, stream])``.
SEED = 2016
STREAM_LOCATION, STREAM_POPULATION, STREAM_INCOME, STREAM_DEM, STREAM_NETWORK = 1, 2, 3, 4, 5
#: DEM cell [m] (assumption: coarse enough that a county of median size costs in seconds; the
#: bundled region uses 90 m) and the margin around the county [m] (PoPs and towers of the rule
#: all lie inside the county).
CELL_M = 300.0
DEM_BUFFER_M = 10_000.0
#: Detail amplitude as a share of the 12 km grid's local relief (max - min in its 3 x 3
#: window), smoothed over :data:`DETAIL_SMOOTH_CELLS` cells (assumption, range 0.1-0.4).
DETAIL_SHARE = 0.2
DETAIL_SMOOTH_CELLS = 3.0
#: China's rural residents at end-2016 [persons]: 589.73 million (NBS, Statistical Communique
#: on the 2016 National Economic and Social Development, 2017-02-28), spread over the pack's
#: 460,022 rural administrative villages (an upper bound per village: some rural residents live
#: in township seats coded urban).
RURAL_RESIDENTS = 589.73e6
RURAL_VILLAGES = 460_022
#: Log-standard deviation of village population (assumption, mean preserved; range 0.3-0.8).
POPULATION_SIGMA = 0.6
#: Family-household size, China, 2010 census: 3.10 persons (NBS, 2010 census communique No. 1);
#: the bundled region uses Guizhou's 3.24.
HOUSEHOLD_SIZE = 3.10
#: Rural per-capita disposable income, 2016 [CNY a year]: Guizhou 8,090 (approximate, as the
#: bundled region); China 12,363 for every other province (NBS 2016 communique; an assumption
#: there: provincial figures are not in the pack).
RURAL_INCOME_YEAR = {"520000": 8_090.0}
RURAL_INCOME_YEAR_CHINA = 12_363.0
#: Fiber reach of the end-2015 network [km]: the bundled region's calibration (33.8% of
#: Guizhou's rural villages fibered; data/README.md), applied everywhere (assumption).
FIBER_REACH_KM = 6.31
#: China reached universal household electricity access at end-2015 (National Energy
#: Administration, 2015-12-23: the last 398,000 people without power connected): every village
#: is on the grid.
ELECTRIFIED = True
#: An Amap point outside its county's simplified boundary (about 1 km of simplification, or an
#: Amap error) moves to the nearest point this far inside it [m].
SNAP_INSIDE_M = 100.0
LOCATION_RULE = (
    "Amap point (WGS84) where the pack has one, moved 100 m inside the county when it falls "
    "outside (amap_snapped); else uniform in a disc around the township's point of radius "
    "sqrt(county area / (pi x townships)), inside the county (30 tries; else moved 100 m "
    "inside, derived_snapped), seeded"
)
#: The highest ground on Earth [m]: Qomolangma (Everest), 8,848.86 m (China-Nepal joint
#: announcement, 2020-12-08). The seeded detail can lift Himalayan cells above it; they are
#: clipped there.
HIGHEST_GROUND_M = 8_848.86


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone of a point (north or south)."""
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _county_shape(
    pack: NationalPack, adcode: str, pts: gpd.GeoSeries
) -> tuple[shapely.Geometry, str]:
    """The county polygon (WGS84) and how it was found: its boundary; else the 5 km-buffered
    hull of its points; else (no point either) a disc of its prefecture's median county area
    at the centre of the prefecture's counties (or the province's)."""
    row = pack.counties[pack.counties["adcode"] == adcode]
    if len(row):
        return row.geometry.iloc[0], "boundary (counties.gpkg)"
    if len(pts):
        crs = utm_crs(float(pts.x.mean()), float(pts.y.mean()))
        hull = gpd.GeoSeries([pts.to_crs(crs).union_all().convex_hull.buffer(5_000.0)], crs=crs)
        return hull.to_crs("EPSG:4326").iloc[0], "derived: 5 km around its points' hull"
    for prefix, what in ((adcode[:4], "prefecture"), (adcode[:2], "province")):
        kin = pack.counties[pack.counties["adcode"].astype(str).str.startswith(prefix)]
        if len(kin):
            c = kin.union_all().centroid
            crs = utm_crs(c.x, c.y)
            m = kin.to_crs(crs)
            area = float(m.geometry.area.median())
            centre = m.union_all().centroid
            disc = gpd.GeoSeries([centre.buffer(math.sqrt(area / math.pi))], crs=crs)
            how = f"derived: a disc of the {what}'s median county area at its counties' centre"
            return disc.to_crs("EPSG:4326").iloc[0], how
    raise InputDataError(
        f"{pack.path}: county {adcode} has no boundary in counties.gpkg, none of its villages "
        "or townships has a point and no county of its province has a boundary; it cannot be "
        "placed (give it a boundary)"
    )


def _place(
    anchor_xy: np.ndarray, radius_m: float, county: shapely.Geometry, rng: np.random.Generator
) -> np.ndarray:
    """Seeded points in a disc around each anchor, inside the county (else the anchor)."""
    out = anchor_xy.copy()
    shapely.prepare(county)  # many point-in-polygon tests
    for i, (ax, ay) in enumerate(anchor_xy):
        for _ in range(30):
            r = radius_m * math.sqrt(rng.uniform())
            t = rng.uniform(0.0, 2.0 * math.pi)
            p = shapely.Point(ax + r * math.cos(t), ay + r * math.sin(t))
            if county.contains(p):
                out[i] = (p.x, p.y)
                break
    return out


def _dem(pack: NationalPack, county_m: shapely.Geometry, crs: CRS, rng: np.random.Generator):
    """The DEM grid [m] over the county and its margin, as (array, transform)."""
    x0, y0, x1, y1 = county_m.bounds
    x0, y0 = math.floor((x0 - DEM_BUFFER_M) / CELL_M) * CELL_M, y0 - DEM_BUFFER_M
    x1, y1 = x1 + DEM_BUFFER_M, math.ceil((y1 + DEM_BUFFER_M) / CELL_M) * CELL_M
    nx, ny = int(math.ceil((x1 - x0) / CELL_M)), int(math.ceil((y1 - y0) / CELL_M))
    transform = from_origin(x0, y1, CELL_M, CELL_M)
    xs = x0 + (np.arange(nx) + 0.5) * CELL_M
    ys = y1 - (np.arange(ny) + 0.5) * CELL_M
    xx, yy = np.meshgrid(xs, ys)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    with rasterio.open(pack.dem_path) as src:
        z12 = src.read(1).astype(float)
        nodata = src.nodata
        inv = ~src.transform
    if nodata is not None:
        z12[z12 == nodata] = 0.0
    z12 = np.maximum(z12, 0.0)
    col, row = inv * (lon, lat)
    coords = np.array([row - 0.5, col - 0.5])
    trend = ndimage.map_coordinates(z12, coords, order=1, mode="nearest")
    rough12 = ndimage.maximum_filter(z12, 3) - ndimage.minimum_filter(z12, 3)
    rough = ndimage.map_coordinates(rough12, coords, order=1, mode="nearest")
    noise = ndimage.gaussian_filter(rng.standard_normal((ny, nx)), DETAIL_SMOOTH_CELLS)
    noise /= max(float(noise.std()), 1e-12)
    z = np.clip(trend + DETAIL_SHARE * rough * noise, 0.0, HIGHEST_GROUND_M)
    return z.astype(np.float32), transform


def county_region(
    pack: NationalPack,
    adcode: str,
    *,
    seed: int = SEED,
    workdir: str | Path | None = None,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
) -> io.Region:
    """Build one county's region (one district: the county) from the national pack.

    The layers are built in memory and checked as a region folder's are
    (:func:`universal_service.io.memory.region_from_layers`, the checks of
    :func:`universal_service.io.load_region`); the village masts and the villages' existing
    service are then added by this module's rules. With ``workdir`` the region is also written
    there as a region folder (``<workdir>/<adcode>``) that loads as the region returned.

    Parameters
    ----------
    pack : NationalPack
    adcode : str
        The county's 6-digit code.
    seed : int
        Base seed of every draw.
    workdir : path-like, optional
        Also write the region folder there (``<workdir>/<adcode>``).
    radio_cfg : RadioConfig, optional
        The radio test the mast rule and the existing service are judged by.
    catalog : Catalog, optional
        The 4G carrier and fiber prices of those tests; default the bundled catalog (read once
        here, not once per test).

    Returns
    -------
    Region

    Raises
    ------
    InputDataError
        The county has no rural villages in the pack, or can be placed nowhere.
    """
    adcode = str(adcode)
    catalog = catalog or load_catalog()
    v = pack.villages[pack.villages["county"] == adcode].reset_index(drop=True)
    if v.empty:
        raise InputDataError(
            f"{pack.path}: county {adcode} has no rural villages in the pack; "
            "choose one of NationalPack.county_codes()"
        )
    n = int(adcode)
    rng = {s: np.random.default_rng([seed, n, s]) for s in range(1, 6)}
    towns = pack.townships[pack.townships["code"].isin(set(v["township"]))]
    towns = towns.sort_values("code").reset_index(drop=True)
    with_pt = np.isfinite(v["lon"].to_numpy(float))
    pts = gpd.GeoSeries(
        gpd.points_from_xy(
            np.r_[v["lon"].to_numpy(float)[with_pt], towns["lon"].dropna().to_numpy(float)],
            np.r_[v["lat"].to_numpy(float)[with_pt], towns["lat"].dropna().to_numpy(float)],
        ),
        crs="EPSG:4326",
    )
    shape, shape_rule = _county_shape(pack, adcode, pts)
    c = shape.centroid
    crs = utm_crs(c.x, c.y)
    to_m = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    county_m = shapely.transform(shape, lambda xy: np.column_stack(to_m.transform(*xy.T)))
    area = county_m.area
    radius = math.sqrt(area / (math.pi * max(len(towns), 1)))
    seat = np.array(county_m.representative_point().coords[0])
    # townships: Amap point, else placed around the county's representative point
    txy = np.tile(seat, (len(towns), 1))
    t_ok = np.isfinite(towns["lon"].to_numpy(float))
    if t_ok.any():
        txy[t_ok] = np.column_stack(to_m.transform(towns["lon"][t_ok], towns["lat"][t_ok]))
    txy[~t_ok] = _place(txy[~t_ok], 2 * radius, county_m, rng[STREAM_LOCATION])
    town_xy = pd.DataFrame(txy, index=towns["code"].to_numpy(), columns=["x", "y"])
    # villages: Amap point, else around their township's point
    vxy = town_xy.reindex(v["township"]).to_numpy(float).copy()
    vxy[np.isnan(vxy[:, 0])] = seat
    if with_pt.any():
        vxy[with_pt] = np.column_stack(to_m.transform(v["lon"][with_pt], v["lat"][with_pt]))
    vxy[~with_pt] = _place(vxy[~with_pt], radius, county_m, rng[STREAM_LOCATION])
    # an Amap point outside the (simplified) county boundary moves to the nearest point inside
    inner = county_m.buffer(-SNAP_INSIDE_M)
    inner = inner if not inner.is_empty else county_m
    source = np.where(with_pt, "amap", "derived").astype(object)
    shapely.prepare(county_m)
    for i in range(len(vxy)):  # placed ones too: a disc's anchor can lie outside
        pt = shapely.Point(vxy[i])
        if not county_m.contains(pt):
            near = shapely.ops.nearest_points(inner, pt)[0]
            vxy[i] = (near.x, near.y)
            source[i] = source[i] + "_snapped"
    mean_pop = RURAL_RESIDENTS / RURAL_VILLAGES
    s = POPULATION_SIGMA
    pop = np.maximum(
        np.rint(mean_pop * np.exp(s * rng[STREAM_POPULATION].standard_normal(len(v)) - s * s / 2)),
        20,
    )
    income_year = RURAL_INCOME_YEAR.get(adcode[:2] + "0000", RURAL_INCOME_YEAR_CHINA)
    g = INCOME_SIGMA
    income = income_year / 12.0 * np.exp(g * rng[STREAM_INCOME].standard_normal(len(v)) - g * g / 2)
    villages = gpd.GeoDataFrame(
        {
            "village_id": v["code"].to_numpy(str),
            "name": v["name"].to_numpy(str),
            "district_id": adcode,
            "town_id": v["township"].to_numpy(str),
            "ur_code": v["ur_code"].to_numpy(int),
            "population": pop.astype(int),
            "households": np.maximum(np.rint(pop / HOUSEHOLD_SIZE), 1).astype(int),
            "income_monthly": np.round(income, 2),
            "existing_service": "none",
            "electrified": ELECTRIFIED,
            "location_source": source,
        },
        geometry=gpd.points_from_xy(vxy[:, 0], vxy[:, 1]),
        crs=crs,
    )
    name = pack.counties.set_index("adcode")["name"].get(adcode, adcode)
    districts = gpd.GeoDataFrame(
        {"district_id": [adcode], "name": [name]}, geometry=[county_m], crs=crs
    )
    pops, towers = _seat_network(pack, seat, town_xy, adcode, rng[STREAM_NETWORK], crs)
    z, transform = _dem(pack, county_m, crs, rng[STREAM_DEM])
    meta = {
        "synthetic": True,
        "dem_synthetic_detail": True,
        "dem_method": f"12 km relief (pack dem_12km.tif) bilinear at {CELL_M:.0f} m plus seeded "
        f"detail ({DETAIL_SHARE} x local 12 km relief); universal_service.countybuild",
        "location_rule": LOCATION_RULE,
        "county_shape": shape_rule,
        "population_source": "derived: China's 2016 rural residents per rural village, log-normal",
        "baseline_year": BASELINE_YEAR,
        "fiber_reach_km": FIBER_REACH_KM,
        "county": adcode,
        "seed": seed,
    }
    region = region_from_layers(
        f"{name} ({adcode})",
        crs,
        {
            "villages": villages,
            "districts": districts,
            "pops": pops,
            "towers": towers,
            "operators": pack.operators,
        },
        dem_from_grid(z, transform, crs),
        meta=meta,
        where=f"{pack.path}/county {adcode}",
    )
    masts, coverage = _village_masts(region, rng[STREAM_NETWORK], radio_cfg, catalog)
    towers = gpd.GeoDataFrame(
        pd.concat([region.towers, masts[list(region.towers.columns)]], ignore_index=True),
        geometry="geometry",
        crs=region.crs,
    )
    region = dataclasses.replace(region, towers=towers)
    levels = baseline.service_levels(region, FIBER_REACH_KM, radio_cfg, catalog, coverage)
    v = region.villages.copy()
    v["existing_service"] = levels["provided"].reindex(v["village_id"]).to_numpy(str)
    done = dataclasses.replace(region, villages=v)
    done.memo.update(region.memo)  # same villages, PoPs and DEM: the route graph carries over
    if workdir is not None:  # a region folder holding the region returned
        layers = v.drop(columns=["weight"], errors="ignore")
        root = Path(workdir) / adcode
        _write(
            root,
            f"{name} ({adcode})",
            crs,
            layers,
            districts,
            pops,
            towers,
            pack,
            z,
            transform,
            meta,
        )
    return done


def _seat_network(
    pack: NationalPack,
    seat: np.ndarray,
    town_xy: pd.DataFrame,
    adcode: str,
    rng: np.random.Generator,
    crs: CRS,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """PoPs and 4G seat towers at the county seat and the township seats."""
    ops = pack.operators["operator_id"].astype(str).tolist()
    share = pack.operators.set_index("operator_id")["market_share"].astype(float)
    pops, towers = [], []
    for op in ops:
        pops.append((f"{op}-{adcode}", op, "county_seat", seat))
        towers.append((f"t-{adcode}-{op}", op, TOWER_HEIGHT_SEAT_M, SEAT_TECHNOLOGY, seat))
    for code, (x, y) in town_xy.iterrows():
        if math.hypot(x - seat[0], y - seat[1]) < 2_000.0:
            continue  # the county seat's town
        for op in ops:
            if rng.uniform() < POP_TOWNSHIP_PROBABILITY.get(op, 0.5):
                pops.append((f"{op}-{code}", op, "township_seat", (x, y)))
        op = str(rng.choice(share.index.to_numpy(), p=share.to_numpy() / share.sum()))
        towers.append((f"t-{code}", op, TOWER_HEIGHT_SEAT_M, SEAT_TECHNOLOGY, (x, y)))
    p = gpd.GeoDataFrame(
        [{"pop_id": a, "operator_id": b, "kind": k} for a, b, k, _ in pops],
        geometry=[shapely.Point(xy) for *_, xy in pops],
        crs=crs,
    )
    t = gpd.GeoDataFrame(
        [
            {"tower_id": a, "operator_id": b, "height_m": h, "technology": te}
            for a, b, h, te, _ in towers
        ],
        geometry=[shapely.Point(xy) for *_, xy in towers],
        crs=crs,
    )
    return p, t


def _village_masts(
    region: io.Region, rng: np.random.Generator, radio_cfg: RadioConfig | None, catalog: Catalog
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """2G/3G masts at villages, greedily, until at most NO_SERVICE_SHARE are uncovered; and the
    coverage pairs (``site_id`` = ``tower_id``) of the region's towers and the chosen masts."""
    v = region.villages
    ids = v["village_id"].to_numpy()
    cand = pd.DataFrame(
        {
            "site_id": "m-" + v["village_id"].to_numpy(str),
            "x": v.geometry.x.to_numpy(),
            "y": v.geometry.y.to_numpy(),
            "height_m": VILLAGE_TOWER_HEIGHT_M,
        }
    )
    seats = baseline.tower_coverage(region, radio_cfg=radio_cfg, catalog=catalog)
    covered = set(seats["village_id"])
    cov = baseline.tower_coverage(region, cand, radio_cfg=radio_cfg, catalog=catalog)
    reach = cov.groupby("site_id")["village_id"].apply(set).to_dict()
    chosen = []
    allowed = int(math.floor(NO_SERVICE_SHARE * len(ids)))
    while len(ids) - len(covered) > allowed and reach:
        best = max(sorted(reach), key=lambda s: len(reach[s] - covered))
        gain = reach.pop(best) - covered
        if not gain:
            break
        chosen.append(best)
        covered |= gain
    c = cand.set_index("site_id").loc[chosen]
    tech = np.where(rng.uniform(size=len(c)) < VILLAGE_TOWER_3G_PROBABILITY, "3g", "2g")
    ops = region.operators["operator_id"].astype(str).to_numpy()
    pairs = pd.concat([seats, cov[cov["site_id"].isin(set(chosen))]], ignore_index=True)
    masts = gpd.GeoDataFrame(
        {
            "tower_id": c.index.to_numpy(str),
            "operator_id": rng.choice(ops, size=len(c)) if len(c) else [],
            "height_m": VILLAGE_TOWER_HEIGHT_M,
            "technology": tech,
        },
        geometry=gpd.points_from_xy(c["x"], c["y"]),
        crs=region.crs,
    )
    return masts, pairs


def _write_layer(root: Path, layer: str, gdf: gpd.GeoDataFrame) -> Path:
    gdf.to_crs("EPSG:4326").to_file(root / f"{layer}.gpkg", layer=layer, driver="GPKG")
    return root


def _write(root, name, crs, villages, districts, pops, towers, pack, z, transform, meta) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for layer, gdf in (
        ("villages", villages),
        ("districts", districts),
        ("pops", pops),
        ("towers", towers),
    ):
        _write_layer(root, layer, gdf)
    pack.operators.to_csv(root / "operators.csv", index=False)
    with rasterio.open(
        root / "dem.tif",
        "w",
        driver="GTiff",
        height=z.shape[0],
        width=z.shape[1],
        count=1,
        dtype="float32",
        crs=crs.to_wkt(),
        transform=transform,
        nodata=np.nan,
    ) as dst:
        dst.write(z, 1)
    lines = [
        f'name = "{name}"',
        f'crs = "EPSG:{crs.to_epsg()}"',
        'currency = "CNY"',
        "",
        "[layers]",
    ]
    lines += [f'{k} = "{k}.gpkg"' for k in ("villages", "districts", "pops", "towers")]
    lines += ['dem = "dem.tif"', 'operators = "operators.csv"', "", "[meta]"]
    for k, val in meta.items():
        lines.append(
            f"{k} = "
            + (
                str(val).lower()
                if isinstance(val, bool)
                else f'"{val}"'
                if isinstance(val, str)
                else str(val)
            )
        )
    (root / "region.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
