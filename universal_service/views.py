"""What the dashboard shows, as plain frames, images and bytes (no UI code here).

``app.py`` wires widgets to these functions; notebooks can call them too. Maps are drawn
offline: the base layer is a hillshade of the region's own DEM (:func:`hillshade`), with the
district outlines and names (:func:`district_outlines`, :func:`district_labels`) and a scale
bar (:func:`scale_bar`); nothing is fetched from the network. Every figure is read from a
:class:`~universal_service.scenarios.ScenarioResult` (its Plan, its allocation) or the region;
nothing is recomputed here but the drawing.
"""

from __future__ import annotations

import base64
import io as _io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import Transformer

from . import allocate, districts, plot, report, studies, viewshed
from .io import Region
from .scenarios import ScenarioResult

#: Light for the hillshade: from the north-west (azimuth clockwise from north [degrees]),
#: 45 degrees above the horizon, relief exaggerated 2x so that hills show at region scale.
LIGHT_AZIMUTH_DEG, LIGHT_ALTITUDE_DEG, Z_FACTOR = 315.0, 45.0, 2.0
#: Status words of :func:`district_table` (the summary's rows, :func:`report.village_status`).
STATUSES = (report.ALREADY_SERVED, report.SERVED_BY_PLAN, report.LEFT_UNSERVED)
#: RGB per operator on the allocation map (others grey).
OPERATOR_COLORS: dict[str, tuple[int, int, int]] = {
    "cmcc": (31, 119, 180),
    "ct": (214, 39, 40),
    "cu": (255, 127, 14),
    "cbn": (44, 160, 44),
    "shared": (148, 103, 189),
    "unassigned": (150, 150, 150),
}


#: A map style that needs nothing from the network (a plain background under the hillshade):
#: a MapLibre style with no sources, as a ``data:`` URL, so the map library fetches no tiles,
#: glyphs or sprites and the dashboard's default web basemap is not used.
OFFLINE_STYLE = (
    "data:application/json;base64,"
    + base64.b64encode(
        json.dumps(
            {
                "version": 8,
                "sources": {},
                "layers": [
                    {
                        "id": "background",
                        "type": "background",
                        "paint": {"background-color": "#f2efe9"},
                    }
                ],
            }
        ).encode()
    ).decode()
)


# ----------------------------------------------------------------------------------- formatting


def cny(x: float, unit: str = "") -> str:
    """Money with thousands separators: ``cny(1234567.8)`` -> ``"CNY 1,234,568"``; ``unit="M"``
    gives millions with one decimal (``"CNY 1.2 M"``). NaN gives ``"-"``."""
    if x is None or not math.isfinite(float(x)):
        return "-"
    if unit == "M":
        return f"CNY {float(x) / 1e6:,.1f} M"
    return f"CNY {float(x):,.0f}"


def count(x: float) -> str:
    """A count with thousands separators (``"1,519"``); NaN gives ``"-"``."""
    return "-" if x is None or not math.isfinite(float(x)) else f"{float(x):,.0f}"


def share(x: float) -> str:
    """A share as a percentage with one decimal (``"98.0%"``); NaN gives ``"-"``."""
    return "-" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f}%"


def money_basis(result: ScenarioResult) -> str:
    """The money's basis in plain words: ``"CNY, 2016 prices, NPV at 8% over 15 years"``."""
    return report.money_labels(result)["total_cost"].split("[", 1)[1].rstrip("]")


def status_words(attrs: dict[str, Any]) -> str:
    """A plan's status as a sentence: what was proved, with the gap to its bound in percent."""
    status = str(attrs.get("status", ""))
    gap = attrs.get("gap", math.nan)
    method = str(attrs.get("status_method", ""))
    gap_txt = (
        f"within {100 * gap:.2f}% of a proved lower bound"
        if isinstance(gap, float) and math.isfinite(gap)
        else "no bound"
    )
    if status == "optimal":
        return f"optimal ({gap_txt})"
    if status == "feasible" and method == "heuristic":
        return f"heuristic plan, {gap_txt}"
    if status == "infeasible":
        return "infeasible: " + str(attrs.get("infeasible_reason", "no plan meets the policy"))
    return f"{status} ({gap_txt})"


# ------------------------------------------------------------------------------------- the map


def _to_lonlat(crs: Any) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def hillshade(dem: xr.DataArray, crs: Any, max_px: int = 900) -> dict[str, Any]:
    """A shaded-relief image of the DEM for a bitmap layer.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation [m] on dims ``(y, x)`` in the metric ``crs``.
    crs : pyproj.CRS or str
    max_px : int
        The longer side of the image is at most this many pixels (the DEM is decimated).

    Returns
    -------
    dict
        ``image`` (a ``data:image/png;base64`` URL: grey shade, transparent where the DEM has
        no value), ``bounds`` (the four corners [[lon, lat], ...]: left-bottom, left-top,
        right-top, right-bottom) and ``bbox`` (lon0, lat0, lon1, lat1).
    """
    from PIL import Image

    step = max(1, math.ceil(max(dem.shape) / max_px))
    z = np.asarray(dem.values[::step, ::step], dtype=float)
    xs, ys = dem["x"].values[::step], dem["y"].values[::step]
    dx = abs(float(xs[1] - xs[0])) if len(xs) > 1 else 1.0
    dy = abs(float(ys[1] - ys[0])) if len(ys) > 1 else 1.0
    ok = np.isfinite(z)
    zf = np.where(ok, z, np.nanmean(z) if ok.any() else 0.0) * Z_FACTOR
    d_row, d_col = np.gradient(zf, dy, dx)
    north_up = len(ys) < 2 or ys[0] > ys[-1]
    dz_north = -d_row if north_up else d_row
    az, alt = math.radians(LIGHT_AZIMUTH_DEG), math.radians(LIGHT_ALTITUDE_DEG)
    light = np.array([math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt), math.sin(alt)])
    norm = np.sqrt(d_col**2 + dz_north**2 + 1.0)
    shade = (-d_col * light[0] - dz_north * light[1] + light[2]) / norm
    grey = (np.clip(shade, 0.0, 1.0) * 200 + 40).astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, np.where(ok, 255, 0).astype(np.uint8)])
    if not north_up:
        rgba = rgba[::-1]
    buf = _io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", optimize=True)
    half_x, half_y = dx * step / 2, dy * step / 2
    x0, x1 = float(xs.min()) - half_x, float(xs.max()) + half_x
    y0, y1 = float(ys.min()) - half_y, float(ys.max()) + half_y
    tr = _to_lonlat(crs)
    corners = [tr.transform(x, y) for x, y in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))]
    lons, lats = [c[0] for c in corners], [c[1] for c in corners]
    return {
        "image": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "bounds": [[float(a), float(b)] for a, b in corners],
        "bbox": (min(lons), min(lats), max(lons), max(lats)),
    }


def district_outlines(region: Region) -> pd.DataFrame:
    """Each district's outline as a ``path`` of [lon, lat] (one row per polygon part), with
    ``district_id`` and ``name``."""
    d = region.districts.to_crs("EPSG:4326")
    rows = []
    for did, name, geom in zip(d["district_id"], d["name"], d.geometry, strict=True):
        parts = getattr(geom, "geoms", [geom])
        for part in parts:
            ring = shapely.get_coordinates(part.exterior)
            rows.append(
                {
                    "district_id": str(did),
                    "name": str(name),
                    "path": [[float(x), float(y)] for x, y in ring],
                }
            )
    return pd.DataFrame(rows, columns=["district_id", "name", "path"])


def district_labels(region: Region) -> pd.DataFrame:
    """``district_id``, ``name``, ``lon``, ``lat`` of a point inside each district."""
    pts = region.districts.geometry.representative_point().to_crs("EPSG:4326")
    return pd.DataFrame(
        {
            "district_id": region.districts["district_id"].astype(str).to_numpy(),
            "name": region.districts["name"].astype(str).to_numpy(),
            "lon": pts.x.to_numpy(),
            "lat": pts.y.to_numpy(),
        }
    )


def characters(texts: pd.Series) -> str:
    """Every character of ``texts`` plus printable ASCII, sorted, as one string: a text
    layer's glyph set (district names are often not ASCII)."""
    import string

    return "".join(sorted(set("".join(map(str, texts))) | set(string.printable.strip()) | {" "}))


def scale_bar(bbox: tuple[float, float, float, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A scale bar near the lower-left corner of ``bbox`` (lon0, lat0, lon1, lat1 [degrees]):
    a round length of about a fifth of the width.

    Returns
    -------
    (path, label)
        One-row frames: ``path`` ([[lon, lat], [lon, lat]]) and ``text``, ``lon``, ``lat``.
    """
    lon0, lat0, lon1, lat1 = bbox
    lat = lat0 + 0.06 * (lat1 - lat0)
    km_per_deg = 111.32 * math.cos(math.radians(lat))
    width_km = (lon1 - lon0) * km_per_deg
    nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000]
    km = max([n for n in nice if n <= width_km / 5] or [1])
    start = lon0 + 0.04 * (lon1 - lon0)
    end = start + km / km_per_deg
    path = pd.DataFrame({"path": [[[start, lat], [end, lat]]]})
    label = pd.DataFrame(
        {"text": [f"{km:g} km"], "lon": [(start + end) / 2], "lat": [lat + 0.02 * (lat1 - lat0)]}
    )
    return path, label


def view(
    bbox: tuple[float, float, float, float], width_px: int = 1100, height_px: int = 600
) -> dict[str, float]:
    """``longitude``, ``latitude`` and ``zoom`` (Web Mercator, 512-pixel tiles) that fit
    ``bbox`` in a map of that size."""
    lon0, lat0, lon1, lat1 = bbox

    def merc(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    span_x = max(lon1 - lon0, 1e-6) / 360.0
    span_y = max(merc(lat1) - merc(lat0), 1e-6) / (2 * math.pi)
    zoom = math.log2(min(width_px / (512 * span_x), height_px / (512 * span_y)))
    return {
        "longitude": (lon0 + lon1) / 2,
        "latitude": (lat0 + lat1) / 2,
        "zoom": round(zoom - 0.1, 2),
    }


def village_points(result: ScenarioResult, colour_by: str = "technology") -> pd.DataFrame:
    """Villages for a point layer: ``lon``, ``lat``, ``r``, ``g``, ``b``, ``radius_m`` and a
    ``tooltip`` (HTML: name, district, population, service today, the plan's technology, NPV
    cost and subsidy with units).

    Parameters
    ----------
    colour_by : {"technology", "existing_service"}
        The plan's choice (:data:`universal_service.plot.TECH_COLORS`) or today's service
        (:data:`universal_service.plot.SERVICE_COLORS`).
    """
    layer = report.village_layer(result)
    df = (
        plot.technology_frame(layer)
        if colour_by == "technology"
        else plot.coverage_gap_frame(layer)
    )
    names = result.region.districts.set_index("district_id")["name"].astype(str)
    district = df["district_id"].astype(str).map(names).fillna(df["district_id"].astype(str))
    tech = np.where(df["option_id"] == "existing", "keeps today's service", df["technology"])
    df["district_name"] = district.to_numpy()
    df["tooltip"] = [
        f"<b>{n}</b><br/>{d}<br/>population {count(p)}<br/>service today: {e}<br/>"
        f"plan: {t}<br/>NPV cost {cny(c)}<br/>subsidy {cny(s)}"
        for n, d, p, e, t, c, s in zip(
            df["name"],
            df["district_name"],
            df["population"],
            df["existing_service"],
            tech,
            df["total_cost_cny"],
            df["subsidy_cny"],
            strict=True,
        )
    ]
    return df


def built_sites(result: ScenarioResult) -> pd.DataFrame:
    """The sites the plan builds: ``site_id``, ``kind``, ``height_m``, ``lon``, ``lat``,
    ``cost_cny`` (NPV paid in the plan), ``villages`` (served from it) and a ``tooltip``."""
    plan = result.plan
    if "site" not in plan.dims or "site_x" not in plan:
        return pd.DataFrame(columns=["site_id", "kind", "lon", "lat", "tooltip"])
    built = plan["site_built"].values.astype(bool)
    ids = plan["site"].values.astype(str)[built]
    x, y = plan["site_x"].values[built], plan["site_y"].values[built]
    lon, lat = _to_lonlat(result.region.crs).transform(x, y)
    uses = pd.Series(plan["site_id"].values.astype(str)).value_counts()
    df = pd.DataFrame(
        {
            "site_id": ids,
            "kind": plan["site_kind"].values.astype(str)[built],
            "height_m": plan["site_height_m"].values.astype(float)[built],
            "lon": np.asarray(lon),
            "lat": np.asarray(lat),
            "cost_cny": plan["site_cost"].values.astype(float)[built],
            "villages": uses.reindex(ids).fillna(0).astype(int).to_numpy(),
        }
    )
    df["tooltip"] = [
        f"<b>site {s}</b><br/>{k}, mast {h:.0f} m<br/>serves {n} villages<br/>NPV cost {cny(c)}"
        for s, k, h, n, c in zip(
            df["site_id"], df["kind"], df["height_m"], df["villages"], df["cost_cny"], strict=True
        )
    ]
    return df.sort_values("site_id").reset_index(drop=True)


def site_viewshed(result: ScenarioResult, site_id: str, max_px: int = 500) -> dict[str, Any]:
    """Where a built site's antenna sees a receiver, within the radio range, as an image.

    The scenario's radio settings (``max_range_m``, ``village_height_m``, ``k_factor``) and the
    site's mast height; :func:`universal_service.viewshed.viewshed` on the region's DEM.

    Returns
    -------
    dict
        ``image`` (green, transparent where not visible), ``bounds`` as :func:`hillshade`,
        ``visible_km2`` [km2].
    """
    from PIL import Image

    plan = result.plan
    i = int(np.flatnonzero(plan["site"].values.astype(str) == str(site_id))[0])
    x, y = float(plan["site_x"].values[i]), float(plan["site_y"].values[i])
    radio = result.scenario.config.radio
    r = float(radio.max_range_m)
    vis = viewshed.viewshed(
        result.region.dem,
        x,
        y,
        observer_height_m=float(plan["site_height_m"].values[i]),
        target_height_m=float(radio.village_height_m),
        max_distance_m=r,
        k_factor=float(radio.k_factor),
    )
    win = vis.sel(x=slice(x - r, x + r))
    ys = win["y"].values
    win = win.sel(y=slice(y + r, y - r) if ys[0] > ys[-1] else slice(y - r, y + r))
    step = max(1, math.ceil(max(win.shape) / max_px))
    seen = np.asarray(win.values[::step, ::step], dtype=bool)
    xs, ys = win["x"].values[::step], win["y"].values[::step]
    if ys[0] < ys[-1]:
        seen = seen[::-1]
    rgba = np.zeros((*seen.shape, 4), np.uint8)
    rgba[seen] = (20, 170, 60, 150)
    buf = _io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    dx = abs(float(win["x"].values[1] - win["x"].values[0])) if win.sizes["x"] > 1 else 0.0
    dy = abs(float(win["y"].values[1] - win["y"].values[0])) if win.sizes["y"] > 1 else 0.0
    x0, x1 = float(xs.min()) - dx / 2, float(xs.max()) + dx * (step - 0.5)
    y0, y1 = float(ys.min()) - dy * (step - 0.5), float(ys.max()) + dy / 2
    tr = _to_lonlat(result.region.crs)
    corners = [tr.transform(a, b) for a, b in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))]
    return {
        "image": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "bounds": [[float(a), float(b)] for a, b in corners],
        "visible_km2": float(np.asarray(vis.values, bool).sum()) * dx * dy / 1e6,
    }


# ------------------------------------------------------------------------------------ tables


def district_table(
    result: ScenarioResult, allocation: xr.Dataset | None = None, regime: str | None = None
) -> pd.DataFrame:
    """Per district (by name): villages and population already served, served by the plan and
    left unserved; the plan's NPV cost and subsidy [CNY], per person newly served [CNY per
    person]; and, with an allocation, the operator each district is assigned to under
    ``regime``.

    Returns
    -------
    pandas.DataFrame
        Indexed by district name, sorted by population left unserved (most first).
    """
    plan = result.plan
    status = report.village_status(plan)
    grouped = np.where(np.char.startswith(status.astype(str), "plan: "), STATUSES[1], status)
    names = result.region.districts.set_index("district_id")["name"].astype(str)
    df = pd.DataFrame(
        {
            "district_id": plan["district_id"].values.astype(str),
            "status": grouped,
            "population": plan["population"].values.astype(float),
            "npv_cost": plan["npv_cost"].values + plan["site_share"].values,
            "subsidy": plan["subsidy"].values,
        }
    )
    out = pd.DataFrame(index=pd.Index(sorted(df["district_id"].unique()), name="district_id"))
    for st in STATUSES:
        part = df[df["status"] == st].groupby("district_id")
        out[f"villages {st}"] = part.size().reindex(out.index).fillna(0).astype(int)
        out[f"population {st}"] = part["population"].sum().reindex(out.index).fillna(0.0)
    money = df.groupby("district_id")[["npv_cost", "subsidy"]].sum().reindex(out.index)
    out["NPV cost [CNY]"] = money["npv_cost"]
    out["subsidy [CNY]"] = money["subsidy"]
    new = out[f"population {STATUSES[1]}"].replace(0.0, np.nan)
    out["NPV cost per person newly served [CNY]"] = out["NPV cost [CNY]"] / new
    out["subsidy per person newly served [CNY]"] = out["subsidy [CNY]"] / new
    if allocation is not None and regime is not None:
        out["operator"] = assigned_operator(allocation, regime).reindex(out.index).to_numpy()
    money = [c for c in out.columns if "[CNY]" in c]
    out[money] = out[money].round(0)  # whole yuan: a display table
    out.insert(0, "district", names.reindex(out.index).fillna(pd.Series(out.index)).to_numpy())
    out = out.reset_index().set_index("district")
    return out.sort_values(f"population {STATUSES[2]}", ascending=False, kind="stable")


def district_alone(
    result: ScenarioResult, scenario: Any, district: str, coverage_target: float
) -> pd.DataFrame:
    """One district planned on its own (:func:`universal_service.districts.plan_one_district`)
    beside its part of the region's plan: coverage of population, NPV cost and subsidy [CNY],
    villages newly served, status and seconds."""
    alone = districts.plan_one_district(
        result.region, scenario, district, coverage_target=coverage_target
    )
    whole = result.plan.where(result.plan["district_id"] == district, drop=True)

    def row(p: xr.Dataset, attrs: dict[str, Any]) -> dict[str, str]:
        pop = p["population"].values.astype(float)
        cov = p["covered"].values.astype(bool)
        new = p["served"].values.astype(bool) & (p["technology"].values.astype(str) != "existing")
        money = float((p["npv_cost"] + p["site_share"]).sum())
        return {
            "coverage of population": share(pop[cov].sum() / max(pop.sum(), 1e-9)),
            "NPV cost": cny(money),
            "subsidy": cny(float(p["subsidy"].sum())),
            "villages newly served": count(new.sum()),
            "plan status": str(attrs.get("status", "")),
        }

    name = result.region.districts.set_index("district_id")["name"].astype(str).get(district)
    out = pd.DataFrame(
        {
            f"in the region's plan ({name})": row(whole, result.plan.attrs),
            f"alone, target {coverage_target:.0%}": {
                **row(alone, alone.attrs),
                "plan status": f"{alone.attrs['status']} ({alone.attrs['seconds']:.1f} s)",
            },
        }
    )
    return out


def assigned_operator(allocation: xr.Dataset, regime: str) -> pd.Series:
    """The operator each district is assigned to under ``regime`` (its largest ``assigned``
    share; ``shared`` for the shared network, ``unassigned`` where none), by district id."""
    a = allocation["assigned"].sel(regime=regime).fillna(0.0)
    ops = np.asarray(allocation["operator"].values, dtype=str)
    dist = np.asarray(allocation["district"].values, dtype=str)
    if regime == "shared":
        return pd.Series("shared", index=dist)
    vals = a.transpose("district", "operator").values
    pick = np.where(vals.max(axis=1) > 0, ops[np.argmax(vals, axis=1)], "unassigned")
    return pd.Series(pick, index=dist)


def regime_note(allocation: xr.Dataset, regime: str) -> str:
    """Why a regime has no allocation ("" when it has one): its status and stated reason."""
    status = str(allocation["status"].sel(regime=regime).values)
    if status != "infeasible":
        return ""
    reason = allocation.attrs.get(f"{regime}_infeasible_reason", "no allocation meets its rules")
    return f"{regime}: infeasible. {reason}"


def allocation_districts(region: Region, allocation: xr.Dataset, regime: str) -> pd.DataFrame:
    """District polygons for a filled layer coloured by the operator assigned under ``regime``:
    ``polygon`` ([[lon, lat], ...] outer ring), ``name``, ``operator``, ``r``, ``g``, ``b``."""
    outl = district_outlines(region)
    op = assigned_operator(allocation, regime)
    outl["operator"] = outl["district_id"].map(op).fillna("unassigned").to_numpy()
    rgb = np.array([OPERATOR_COLORS.get(o, (120, 120, 120)) for o in outl["operator"]])
    outl["r"], outl["g"], outl["b"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    outl["tooltip"] = [
        f"<b>{n}</b><br/>{o}" for n, o in zip(outl["name"], outl["operator"], strict=True)
    ]
    return outl.rename(columns={"path": "polygon"})


def burden_table(allocation: xr.Dataset, regime: str) -> pd.DataFrame:
    """Per operator under ``regime``: districts held, net burden [CNY], its share of the total
    burden against the operator's reference share (revenue or profit), and the difference."""
    t = allocate.operator_table(allocation)
    t = t[t["regime"] == regime].set_index("operator")
    out = pd.DataFrame(
        {
            "districts held": t["districts"].round(2),
            "net burden [CNY]": t["net_burden"],
            "burden share": t["burden_share"],
            "reference share": t["reference_share"],
        }
    )
    out["share minus reference"] = out["burden share"] - out["reference share"]
    return out


def kpi_table(results: dict[str, ScenarioResult]) -> pd.DataFrame:
    """Side-by-side KPIs (:func:`universal_service.studies.kpis`) of named runs, with plain
    labels and units, one column per run and, for two runs, a ``difference`` column (second
    minus first)."""
    runs = list(results.values())
    k = studies.kpis(runs)
    k.index = list(results)
    labels = {
        "coverage_population": "coverage, share of population",
        "coverage_villages": "coverage, share of administrative villages",
        "capex": "capex of new builds [CNY]",
        "npv_cost": "NPV cost [CNY]",
        "npv_subsidy": "NPV subsidy [CNY]",
        "new_villages": "villages newly served",
        "cost_per_new_village": "NPV cost per village newly served [CNY]",
        "cost_per_new_person": "NPV cost per person newly served [CNY]",
        "villages_unserved": "villages left unserved",
    }
    t = k[list(labels)].rename(columns=labels).T
    if len(results) == 2:
        a, b = list(results)
        t["difference"] = t[b] - t[a]
    return t


#: Coverage targets of the dashboard's least-cost curve (:func:`curve_points`).
CURVE_TARGETS = [0.90, 0.925, 0.95, 0.975, 1.0]


def curve_points(sweep: pd.DataFrame, result: ScenarioResult) -> pd.DataFrame:
    """The least-cost curve (:func:`universal_service.studies.sweep`'s table) and the current
    plan as one point: ``coverage of population``, ``NPV cost [CNY million]``, ``series``."""
    curve = pd.DataFrame(
        {
            "coverage of population": sweep["coverage_population"].to_numpy(float),
            "NPV cost [CNY million]": sweep["npv_cost"].to_numpy(float) / 1e6,
            "series": "least-cost plans, own fiber routes",
        }
    )
    by_pop, _ = report.coverage_shares(result.plan)
    here = pd.DataFrame(
        {
            "coverage of population": [by_pop],
            "NPV cost [CNY million]": [float(result.plan.attrs["total_npv_cost"]) / 1e6],
            "series": ["this plan"],
        }
    )
    return pd.concat([curve, here], ignore_index=True)


def formatted_kpis(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`kpi_table` as text: shares in percent, money as ``CNY 1,234,567``, counts with
    thousands separators (a display table; download the numbers with :func:`csv_bytes`)."""

    def fmt(row: str, x: float) -> str:
        if row.startswith("coverage"):
            return share(x)
        if "[CNY]" in row:
            return cny(x)
        return count(x)

    return pd.DataFrame(
        {c: [fmt(r, v) for r, v in table[c].items()] for c in table.columns}, index=table.index
    )


def chart_by_status(table: pd.DataFrame) -> pd.DataFrame:
    """People by status per district (:func:`district_table`) for a stacked bar chart, columns
    in :data:`STATUSES` order (colour them with :data:`STATUS_COLORS`)."""
    return table[[f"population {s}" for s in STATUSES]].rename(
        columns={f"population {s}": s for s in STATUSES}
    )


#: Colours of :func:`chart_by_status`'s columns: served today grey, by the plan green, left
#: unserved red.
STATUS_COLORS = ["#8c8c8c", "#2ca02c", "#d62728"]


def technology_changes(a: ScenarioResult, b: ScenarioResult) -> pd.DataFrame:
    """Villages whose technology differs between two runs (same region): ``village_id``,
    ``name``, ``lon``, ``lat``, ``technology_a``, ``technology_b`` and a ``tooltip``."""
    pa, pb = a.plan, b.plan
    ta = pd.Series(pa["technology"].values.astype(str), index=pa["village"].values.astype(str))
    tb = pd.Series(pb["technology"].values.astype(str), index=pb["village"].values.astype(str))
    tb = tb.reindex(ta.index).fillna("none")
    changed = ta.index[ta.to_numpy() != tb.to_numpy()]
    v = a.region.villages.set_index("village_id").reindex(changed)
    ll = gpd.GeoSeries(v.geometry, crs=a.region.crs).to_crs("EPSG:4326")
    df = pd.DataFrame(
        {
            "village_id": changed.to_numpy(),
            "name": v["name"].astype(str).to_numpy(),
            "lon": ll.x.to_numpy(),
            "lat": ll.y.to_numpy(),
            "technology_a": ta.reindex(changed).to_numpy(),
            "technology_b": tb.reindex(changed).to_numpy(),
        }
    )
    df["tooltip"] = [
        f"<b>{n}</b><br/>A: {x}<br/>B: {y}"
        for n, x, y in zip(df["name"], df["technology_a"], df["technology_b"], strict=True)
    ]
    return df


def provenance_notice(region: Region) -> list[str]:
    """Every derived or synthetic layer of a region, in plain sentences, from its metadata
    (``region.toml`` ``[meta]``) and the villages' ``*_source`` columns."""
    m = region.meta
    lines = []
    if m.get("synthetic"):
        lines.append("The whole region is synthetic (generated by rules, not observed).")
    if m.get("dem_synthetic_detail"):
        lines.append(
            "Terrain: " + str(m.get("dem_method", "coarse relief with seeded synthetic detail"))
        )
    for key, what in (
        ("population_source", "Population"),
        ("towers_rule", "Towers (existing network)"),
        ("pops_rule", "Fiber points of presence"),
        ("existing_service_rule", "Service today"),
        ("location_rule", "Village locations"),
    ):
        if key in m:
            lines.append(f"{what}: {m[key]}")
    v = region.villages
    if "location_source" in v:
        n = int((v["location_source"].astype(str) != "amap").sum())
        if n:
            lines.append(f"Locations: {n:,} of {len(v):,} villages placed by rule, not surveyed.")
    for col, what in (("income_source", "Income"),):
        if col in v:
            kinds = v[col].astype(str).value_counts()
            lines.append(f"{what}: " + ", ".join(f"{k} ({c:,} villages)" for k, c in kinds.items()))
    return lines


# --------------------------------------------------------------------------------- downloads


def villages_csv(result: ScenarioResult) -> bytes:
    """The villages with the plan's per-village figures (:func:`report.village_layer`, money
    in CNY with the unit in each column name) as CSV with lon/lat [degrees, WGS84]."""
    return plot.to_lonlat(report.village_layer(result)).to_csv(index=False).encode("utf-8")


def villages_gpkg(result: ScenarioResult) -> bytes:
    """The same villages as a GeoPackage (layer ``villages``, the region's CRS)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "villages.gpkg"
        report.village_layer(result).to_file(path, layer="villages", driver="GPKG")
        return path.read_bytes()


def netcdf_bytes(ds: xr.Dataset) -> bytes:
    """A Dataset (the Plan, the allocation) as netCDF bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.nc"
        ds.to_netcdf(path)
        return path.read_bytes()


def csv_bytes(table: pd.DataFrame) -> bytes:
    """A table as CSV bytes (index kept)."""
    return table.to_csv().encode("utf-8")
