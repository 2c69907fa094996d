"""The technology catalog: load it from TOML or CSV and check every key, unit and source."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputDataError, clip, short_repr
from .io import read_toml
from .schema import PLAUSIBLE, plausible_problem

#: Largest catalog file read [bytes]; the bundled one is about 5 kB. Checked before parsing.
MAX_CATALOG_BYTES = 1_000_000

#: The bundled catalog, package data of ``universal_service`` (the repository's
#: ``data/technologies.toml`` is a link to it).
DEFAULT_CATALOG = resources.files("universal_service") / "data" / "technologies.toml"

_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "fiber": (
        "quality",
        "lifetime_years",
        "capex_cny_per_km",
        "capex_cny",
        "opex_cny_per_year",
        "opex_cny_per_km_year",
        "max_route_km",
        "source",
    ),
    "microwave": (
        "quality",
        "lifetime_years",
        "capex_cny",
        "opex_cny_per_year",
        "frequency_mhz",
        "max_hop_km",
        "hop_class_max_km",
        "hop_capex_cny",
        "solar_capex_cny",
        "source",
    ),
    "lte": (
        "quality",
        "lifetime_years",
        "capex_cny",
        "opex_cny_per_year",
        "frequency_mhz",
        "site_new_capex_cny",
        "site_upgrade_capex_cny",
        "site_opex_cny_per_year",
        "site_solar_capex_cny",
        "site_backhaul_max_km",
        "source",
    ),
    "satellite": (
        "quality",
        "lifetime_years",
        "capex_cny",
        "opex_cny_per_year",
        "capacity_mbps",
        "capacity_cny_per_mbps_month",
        "solar_capex_cny",
        "source",
    ),
}


@dataclass(frozen=True)
class Catalog:
    """Technology catalog: one dict of parameters per technology, plus metadata."""

    technologies: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, tech: str) -> dict[str, Any]:
        return self.technologies[tech]


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a technology catalog (TOML, or CSV with one row per technology).

    Parameters
    ----------
    path : path-like, optional
        Defaults to the bundled catalog, :data:`DEFAULT_CATALOG`.

    Returns
    -------
    Catalog

    Raises
    ------
    InputDataError
        A technology, a key or a source is missing, or a number is negative.
    """
    if path is None:
        with resources.as_file(DEFAULT_CATALOG) as bundled:
            return _load(bundled)
    return _load(Path(path))


def _load(path: Path) -> Catalog:
    """Read the catalog at ``path``, check it, and fill the metadata defaults."""
    if not path.exists():
        raise InputDataError(f"{path}: technology catalog not found.")
    if not path.is_file():
        raise InputDataError(f"{path}: is a folder; name the catalog file (technologies.toml).")
    n_bytes = path.stat().st_size
    if n_bytes > MAX_CATALOG_BYTES:
        raise InputDataError(
            f"{path}: {n_bytes:,} bytes; a technology catalog is at most {MAX_CATALOG_BYTES:,} "
            "bytes (catalog.MAX_CATALOG_BYTES). Check that this is the catalog file."
        )
    techs, meta = _read(path)
    problems = [
        f"{path}: technology '{tech}' is a value ({short_repr(entry)}); it must be a table "
        f"[technology.{tech}] of keys with units."
        for tech, entry in techs.items()
        if not isinstance(entry, dict)
    ]
    techs = {tech: entry for tech, entry in techs.items() if isinstance(entry, dict)}
    problems += _problems(techs, meta, path)
    if problems:
        raise InputDataError(problems)
    meta.setdefault("list_tariff_cny_per_month", 50.0)
    meta.setdefault("household_size_default", 3.3)
    return Catalog(techs, meta, path)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The technology tables and the metadata of a TOML or CSV catalog (CSV has no metadata)."""
    if path.suffix.lower() != ".csv":
        cfg = read_toml(path)
        return cfg.get("technology", {}), cfg.get("meta", {})
    try:
        df = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8.") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"{path}: could not be read as CSV ({exc}).") from exc
    if "technology" not in df.columns:
        raise InputDataError(f"{path}: a CSV catalog needs a 'technology' column.")
    techs = {
        str(r["technology"]): {k: _parse_cell(v) for k, v in r.items() if k != "technology"}
        for _, r in df.iterrows()
    }
    return techs, {}


def _problems(techs: dict[str, Any], meta: dict[str, Any], path: Path) -> list[str]:
    """Every problem of a catalog's technology tables and metadata, one message each."""
    problems: list[str] = []
    unknown = [t for t in techs if t not in _REQUIRED_KEYS]
    if unknown:
        problems.append(
            f"{path}: unknown technolog{'ies' if len(unknown) > 1 else 'y'} "
            f"{[clip(t, 40) for t in unknown[:10]]}{' ...' if len(unknown) > 10 else ''}; the "
            f"model knows {list(_REQUIRED_KEYS)}. Rename the table or remove it (a new "
            "technology needs code in universal_service.costs)."
        )
    for tech, keys in _REQUIRED_KEYS.items():
        if tech not in techs:
            problems.append(
                f"{path}: technology '{tech}' missing; add a [technology.{tech}] table."
            )
            continue
        missing = [k for k in keys if k not in techs[tech] or techs[tech][k] in ("", None)]
        if missing:
            problems.append(
                f"{path}, technology '{tech}': missing {missing}. Every cost needs a value with "
                "its unit in the key name (e.g. capex_cny, opex_cny_per_year) and a source."
            )
        for k, v in techs[tech].items():
            if k in _TEXT_KEYS:
                continue
            if k.startswith("needs_"):
                if not isinstance(v, bool):
                    problems.append(
                        f"{path}, technology '{tech}': {k} must be true or false; got {v!r}."
                    )
                continue
            problems += _number_problems(f"{path}, technology '{tech}': {k}", v)
        for key in ("lifetime_years", "site_structure_lifetime_years", "site_power_lifetime_years"):
            life = techs[tech].get(key)
            if _is_number(life) and float(life) <= 0:
                problems.append(
                    f"{path}, technology '{tech}': {key} must be > 0 (got {life}); an "
                    "asset lasts at least a year."
                )
        share = techs[tech].get("site_structure_share")
        if _is_number(share) and float(share) > 1:
            problems.append(
                f"{path}, technology '{tech}': site_structure_share must be a share of the "
                f"site's capex in [0, 1] (got {share})."
            )
    problems += _terrain_class_problems(techs.get("fiber", {}), path)
    for k in ("currency", "list_tariff_cny_per_month"):
        if k not in meta and path.suffix.lower() != ".csv":
            problems.append(f"{path}: [meta] needs '{k}'.")
    if meta.get("currency", "CNY") != "CNY":
        problems.append(
            f"{path}: [meta] currency must be CNY (got {short_repr(meta['currency'])})."
        )
    for k in ("list_tariff_cny_per_month", "household_size_default"):
        if k in meta:
            problems += _number_problems(f"{path}: [meta] {k}", meta[k])
    return problems


def _terrain_class_problems(fib: dict[str, Any], path: Path) -> list[str]:
    """Fiber's terrain classes: increasing slope bounds and one multiplier > 0 per class."""
    keys = ("terrain_class_max_slope_deg", "buried_multiplier", "aerial_multiplier")
    if not any(k in fib for k in keys):
        return []
    where = f"{path}, technology 'fiber'"
    if "terrain_class_max_slope_deg" not in fib or "buried_multiplier" not in fib:
        return [
            f"{where}: terrain classes need both terrain_class_max_slope_deg and "
            "buried_multiplier (aerial_multiplier is optional); add the missing one or remove "
            "all three to use the OnSSET trench multiplier."
        ]
    bounds = fib["terrain_class_max_slope_deg"]
    if not isinstance(bounds, list) or not all(_is_number(b) for b in bounds):
        return [f"{where}: terrain_class_max_slope_deg must be a list of slopes [degrees]."]
    problems = []
    if any(b1 <= b0 for b0, b1 in zip(bounds, bounds[1:], strict=False)):
        problems.append(f"{where}: terrain_class_max_slope_deg must increase (got {bounds}).")
    for k in keys[1:]:
        if k not in fib:
            continue
        m = fib[k]
        if not isinstance(m, list) or len(m) != len(bounds) + 1:
            problems.append(
                f"{where}: {k} needs {len(bounds) + 1} values, one per slope class "
                f"(terrain_class_max_slope_deg has {len(bounds)} bounds); got {short_repr(m)}."
            )
        elif not all(_is_number(x) and x > 0 for x in m):
            problems.append(f"{where}: every {k} must be a number > 0 (got {m}).")
    return problems


def _number_problems(where: str, v: Any) -> list[str]:
    """What is wrong with a catalog number (or list of numbers) ``v``: text, inf, < 0, absurd."""
    vals = v if isinstance(v, list) else [v]
    bad = [x for x in vals if isinstance(x, bool) or not isinstance(x, _NUMBER)]
    if bad:
        return [
            f"{where} must be a number; got {short_repr(bad[0])}. Write the value in the unit "
            "its key names, without text."
        ]
    if any(np.isnan(x) for x in vals):
        return [f"{where} must be a number; got an empty value (NaN). Fill it in."]
    inf = [x for x in vals if not np.isfinite(x)]
    if inf:
        return [
            f"{where} must be a finite number; got {inf[0]} (a number beyond about 1.8e308, "
            "such as 1e400, overflows to inf). Write the value in the unit its key names."
        ]
    if any(float(x) < 0 for x in vals):
        return [f"{where} must be >= 0 (got {short_repr(v)})."]
    problem = next(
        (plausible_problem("catalog.value", float(x), where) for x in vals if x > _HIGH), None
    )
    return [problem] if problem else []


_TEXT_KEYS = frozenset({"label", "source"})


_NUMBER = (int, float, np.integer, np.floating)
_HIGH = PLAUSIBLE["catalog.value"].high


def _is_number(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, _NUMBER):
        return bool(np.isfinite(x))
    return False


def _parse_cell(v: Any) -> Any:
    """A CSV cell as a number, a list of numbers (``[1, 2]``) or the text it holds."""
    if isinstance(v, str):
        t = v.strip()
        try:
            if t.startswith("[") and t.endswith("]"):
                return [float(x) for x in t.strip("[]").split(",") if x.strip()]
            return float(t)
        except ValueError:
            return v
    if isinstance(v, bool | np.bool_):
        return bool(v)
    return v
