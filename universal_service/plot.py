"""Map and chart data for the dashboard and notebooks (no UI code: plain frames and colours)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

TECH_COLORS: dict[str, tuple[int, int, int]] = {
    "existing": (120, 120, 120),
    "fiber": (31, 119, 180),
    "microwave": (255, 127, 14),
    "lte": (44, 160, 44),
    "satellite": (148, 103, 189),
    "none": (214, 39, 40),
}
"""RGB colour per technology (``none`` = left unserved)."""

SERVICE_COLORS: dict[str, tuple[int, int, int]] = {
    "none": (214, 39, 40),
    "2g": (255, 127, 14),
    "3g": (255, 200, 40),
    "4g": (44, 160, 44),
    "fiber": (31, 119, 180),
}
"""RGB colour per existing service level (the coverage-gap map)."""


def to_lonlat(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """Points of ``gdf`` as a plain frame with ``lon``/``lat`` [degrees, WGS84] columns added."""
    ll = gdf.to_crs("EPSG:4326")
    out = pd.DataFrame(gdf.drop(columns="geometry"))
    out["lon"], out["lat"] = ll.geometry.x.to_numpy(), ll.geometry.y.to_numpy()
    return out


def _radius(pop: pd.Series) -> np.ndarray:
    """Marker radius [m] growing with the square root of population."""
    return 150.0 + 12.0 * np.sqrt(pop.clip(lower=0).to_numpy(float))


def coverage_gap_frame(villages: gpd.GeoDataFrame) -> pd.DataFrame:
    """Villages coloured by existing service, for the coverage-gap map.

    Returns
    -------
    pandas.DataFrame
        ``lon``, ``lat``, ``r``, ``g``, ``b``, ``radius_m``, plus the village columns.
    """
    df = to_lonlat(villages)
    rgb = np.array([SERVICE_COLORS.get(s, (0, 0, 0)) for s in df["existing_service"]])
    df["r"], df["g"], df["b"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    df["radius_m"] = _radius(df["population"])
    return df


def technology_frame(village_layer: gpd.GeoDataFrame) -> pd.DataFrame:
    """Villages coloured by the technology the plan chose (``report.village_layer``)."""
    df = to_lonlat(village_layer)
    key = np.where(df["option_id"] == "existing", "existing", df["technology"])
    rgb = np.array([TECH_COLORS.get(t, (0, 0, 0)) for t in key])
    df["r"], df["g"], df["b"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    df["radius_m"] = _radius(df["population"])
    return df


def legend(colors: dict[str, tuple[int, int, int]]) -> str:
    """An HTML legend (coloured squares and labels) for a colour map."""
    items = [
        f'<span style="display:inline-block;width:12px;height:12px;background:rgb{c};'
        f'margin:0 4px 0 12px"></span>{name}'
        for name, c in colors.items()
    ]
    return "".join(items)


def line_frame(lines: gpd.GeoDataFrame) -> pd.DataFrame:
    """Lines (e.g. the fiber network's trench edges, each following its route) as a ``path``
    column of [lon, lat] vertices for a path layer, with the other columns kept."""
    if len(lines) == 0:
        return pd.DataFrame(columns=["path"])
    import shapely

    ll = lines.to_crs("EPSG:4326")
    out = pd.DataFrame(lines.drop(columns="geometry"))
    out["path"] = [
        [[float(x), float(y)] for x, y in shapely.get_coordinates(g)] for g in ll.geometry
    ]
    return out
