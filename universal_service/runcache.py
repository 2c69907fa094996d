"""Scenario runs kept on disk, keyed by everything they depend on.

A run is found again only when the merged scenario, every input file of the region and the
catalog (:func:`universal_service.scenarios.input_hashes`) and the package's code are the
same; change any of them and the key changes, so a stale result is never served. The
dashboard reads its first plan from here instead of solving it again (the bundled region's
first map: about 9 s with the run kept, about 79 s without; benchmarks/RESULTS.md), and
``universal-service plan`` stores what it solved, so the dashboard opened after it starts from
that plan.

The cache folder is ``$UNIVERSAL_SERVICE_CACHE``, else ``$XDG_CACHE_HOME/universal-service``,
else ``~/.cache/universal-service``; :data:`KEEP` entries at most (the oldest go first). An
entry is written to a temporary file and renamed into place, so a killed run never leaves a
half-written one; an entry that cannot be read is removed and recomputed (with a warning).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from . import allocate, io, scenarios, studies
from .catalog import load_catalog

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder.
CACHE_ENV = "UNIVERSAL_SERVICE_CACHE"
#: Entries kept (most recently used first).
KEEP = 32
#: Bumped when the stored form changes.
FORMAT = 1


def cache_dir() -> Path:
    """The cache folder (see the module docstring); created on first use."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "universal-service"


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """sha256 of the package's Python files and bundled data, in path order."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in {".py", ".toml", ".yaml", ".csv"}:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def run_key(scenario: scenarios.Scenario, region_dir: str | Path, what: str = "plan") -> str:
    """The key of a run: sha256 of ``what``, the merged scenario, the input files' hashes,
    :data:`FORMAT` and :func:`code_hash`."""
    doc = {
        "what": what,
        "format": FORMAT,
        # the region and catalog by their files' hashes, not their paths
        "scenario": scenario.config.model_dump(mode="json", exclude={"region", "catalog"}),
        "inputs": scenarios.input_hashes(region_dir, scenario.catalog_path()),
        "code": code_hash(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _path(key: str) -> Path:
    return cache_dir() / f"{key}.pkl"


def _read(key: str) -> Any | None:
    path = _path(key)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            value = pickle.load(f)
        os.utime(path)  # most recently used
        return value
    except Exception as exc:  # a damaged entry: recompute it
        log.warning("run cache: %s unreadable (%s); recomputing it", path, exc)
        path.unlink(missing_ok=True)
        return None


def _write(key: str, value: Any) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, _path(key))
    except OSError as exc:  # a read-only home: run without the cache
        log.warning("run cache: cannot write into %s (%s); results are not kept", folder, exc)
        return
    entries = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)


def store(result: scenarios.ScenarioResult, region_dir: str | Path) -> None:
    """Keep a run (its Plan, baseline, fiber design and allocation; not its region, which is
    read again from ``region_dir``, nor its costed options)."""
    slim = dataclasses.replace(result, region=None, options=None)
    try:
        _write(run_key(result.scenario, region_dir), slim)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # pragma: no cover
        log.warning("run cache: this run cannot be kept (%s)", exc)


def cached_run(
    scenario: scenarios.Scenario,
    region_dir: str | Path,
    *,
    region: io.Region | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[scenarios.ScenarioResult, bool]:
    """The scenario's run on the region, from the cache or computed (and then stored).

    Parameters
    ----------
    scenario : Scenario
    region_dir : path-like
        The region folder (its files are part of the key).
    region : Region, optional
        That region already loaded.
    progress : callable, optional
        :func:`universal_service.scenarios.run`'s stage callback (not called on a hit).

    Returns
    -------
    (ScenarioResult, bool)
        The run (``options`` is None when it came from the cache) and whether it did.
    """
    region = region or io.load_region(region_dir)
    hit = _read(run_key(scenario, region_dir))
    if isinstance(hit, scenarios.ScenarioResult):
        return dataclasses.replace(hit, region=region), True
    result = scenarios.run(scenario, region=region, progress=progress)
    store(result, region_dir)
    return result, False


def cached_allocation(
    scenario: scenarios.Scenario, region_dir: str | Path, *, region: io.Region | None = None
) -> tuple[xr.Dataset, bool]:
    """The scenario's allocation among operators (:func:`universal_service.allocate.
    allocate`, every regime of ``allocation.regimes``), from the cache or computed.

    Returns
    -------
    (xarray.Dataset, bool)
        The allocation and whether it came from the cache.
    """
    key = run_key(scenario, region_dir, what="allocation")
    hit = _read(key)
    if isinstance(hit, xr.Dataset):
        return hit, True
    region = region or io.load_region(region_dir)
    cfg = scenario.config
    ds = allocate.allocate(
        region, cfg, scenarios.policy_for(cfg), load_catalog(scenario.catalog_path())
    )
    _write(key, ds)
    return ds, False


def cached_sweep(
    scenario: scenarios.Scenario,
    region_dir: str | Path,
    coverage: list[float],
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, bool]:
    """The least-cost plan's cost at each coverage target (:func:`universal_service.studies.
    sweep`, own fiber routes) on the region in ``region_dir``, from the cache or computed.

    Returns
    -------
    (pandas.DataFrame, bool)
        The sweep's table and whether it came from the cache.
    """
    points = ",".join(f"{c:.6f}" for c in coverage)
    key = run_key(scenario, region_dir, what=f"sweep:{points}")
    hit = _read(key)
    if isinstance(hit, pd.DataFrame):
        return hit, True
    here = dataclasses.replace(
        scenario, config=scenario.config.model_copy(update={"region": str(region_dir)})
    )
    table = studies.sweep(here, coverage=coverage, progress=progress)
    _write(key, table)
    return table, False
