"""The national input pack (``data/china/``): China's rural villages, counties and relief.

Built by ``data/build_china.py``: every rural village with its township and county, county
boundaries and the 12 km relief.

Codes are the NBS 2016 statistical division codes: a village's 12-digit code starts with its
township's 9 digits, its county's 6 and its province's 2; counties and provinces are named by
6-digit adcodes (``520000`` is Guizhou). Coordinates are WGS84 (converted from Amap's GCJ-02 by
the build); most villages have no point (NaN) and are located by a county builder's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .errors import InputDataError

#: The pack shipped with the project.
DEFAULT_PACK = Path(__file__).resolve().parents[1] / "data" / "china"
#: The pack's files and the columns each must have.
FILES = {
    "villages.parquet": ("code", "name", "ur_code", "lon", "lat"),
    "townships.parquet": ("code", "name", "lon", "lat"),
    "counties.gpkg": ("adcode", "name", "province", "province_adcode"),
    "dem_12km.tif": (),
    "operators.csv": ("operator_id", "name", "revenue_cny"),
}
#: Digits of each level's code: province, county, township, village.
CODE_DIGITS = {"province": 2, "county": 6, "township": 9, "village": 12}


@dataclass
class NationalPack:
    """The loaded pack.

    Attributes
    ----------
    villages : pandas.DataFrame
        ``code``, ``name``, ``ur_code`` (210/220), ``lon``, ``lat`` [degrees, WGS84; NaN without
        a point], and the derived ``township``, ``county`` (6 digits) and ``province`` (6-digit
        adcode); sorted by ``code``.
    townships : pandas.DataFrame
        ``code`` (9 digits), ``name``, ``lon``, ``lat``.
    counties : geopandas.GeoDataFrame
        ``adcode``, ``name``, ``province``, ``province_adcode``; WGS84 boundaries.
    operators : pandas.DataFrame
        The operators (``operator_id``, ``name``, ``revenue_cny``, ...), as a region's
        ``operators.csv``.
    dem_path : pathlib.Path
        The 12 km relief GeoTIFF.
    path : pathlib.Path
    """

    villages: pd.DataFrame
    townships: pd.DataFrame
    counties: gpd.GeoDataFrame
    operators: pd.DataFrame
    dem_path: Path
    path: Path

    def county_codes(self, provinces: list[str] | None = None) -> list[str]:
        """The counties with rural villages, in code order, of some provinces (all by default).

        Parameters
        ----------
        provinces : list of str, optional
            6-digit province adcodes (``"520000"``) or their 2-digit prefixes.

        Raises
        ------
        InputDataError
            A province code is not of the pack.
        """
        counties = sorted(self.villages["county"].unique())
        if provinces is None:
            return counties
        known = set(self.villages["province"])
        wanted = {str(p).strip()[:2].ljust(6, "0") for p in provinces}
        unknown = sorted(wanted - known)
        if unknown:
            raise InputDataError(
                f"{self.path}: province code(s) {unknown} have no rural villages in the pack; "
                f"use 6-digit adcodes such as 520000 (Guizhou); known: {', '.join(sorted(known))}"
            )
        return [c for c in counties if c[:2] + "0000" in wanted]

    def provinces(self) -> pd.DataFrame:
        """Counties, rural villages and villages with a point, per province (6-digit adcode)."""
        g = self.villages.groupby("province")
        return pd.DataFrame(
            {
                "counties": g["county"].nunique(),
                "villages": g.size(),
                "villages_with_point": g["lon"].apply(lambda s: int(np.isfinite(s).sum())),
            }
        )


def load_pack(path: str | Path | None = None) -> NationalPack:
    """Read and check the national pack.

    Parameters
    ----------
    path : path-like, optional
        The pack folder (:data:`DEFAULT_PACK` by default).

    Returns
    -------
    NationalPack

    Raises
    ------
    InputDataError
        A file is missing or lacks a column, or a code is malformed (the message names the file,
        the rows and the fix).
    """
    root = Path(path) if path is not None else DEFAULT_PACK
    rebuild = "rebuild it with: python data/build_china.py --out " + str(root)
    for name in FILES:
        if not (root / name).is_file():
            raise InputDataError(f"{root / name}: missing from the national pack; {rebuild}")
    villages = pd.read_parquet(root / "villages.parquet")
    townships = pd.read_parquet(root / "townships.parquet")
    counties = gpd.read_file(root / "counties.gpkg", layer="counties")
    operators = pd.read_csv(root / "operators.csv")
    for name, frame in (
        ("villages.parquet", villages),
        ("townships.parquet", townships),
        ("counties.gpkg", counties),
        ("operators.csv", operators),
    ):
        missing = [c for c in FILES[name] if c not in frame.columns]
        if missing:
            raise InputDataError(f"{root / name}: missing column(s) {missing}; {rebuild}")
    code = villages["code"].astype(str)
    bad = ~code.str.fullmatch(r"\d{12}")
    if bad.any():
        rows = (np.flatnonzero(bad.to_numpy())[:5] + 1).tolist()
        raise InputDataError(
            f"{root / 'villages.parquet'}, rows {rows}: code must be 12 digits (NBS 2016 code); "
            f"got {code[bad].head(5).tolist()}; {rebuild}"
        )
    villages = villages.assign(
        code=code,
        township=code.str[:9],
        county=code.str[:6],
        province=code.str[:2] + "0000",
    ).sort_values("code", kind="stable", ignore_index=True)
    return NationalPack(
        villages, townships, counties.to_crs("EPSG:4326"), operators, root / "dem_12km.tif", root
    )
