"""Tests for runs kept on disk (universal_service.runcache)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import runcache, scenarios
from universal_service.cli import app


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(runcache.CACHE_ENV, str(folder))
    return folder


def _scenario(region: Path, **values) -> scenarios.Scenario:
    sc = scenarios.load_scenario(set_values={f"policy.{k}": v for k, v in values.items()})
    sc.config = sc.config.model_copy(update={"region": str(region)})
    return sc


def test_a_run_is_found_again_and_equals_the_solved_one(cache, synth_region_dir):
    sc = _scenario(synth_region_dir)
    first, hit1 = runcache.cached_run(sc, synth_region_dir)
    second, hit2 = runcache.cached_run(sc, synth_region_dir)
    assert (hit1, hit2) == (False, True)
    assert len(list(cache.glob("*.pkl"))) == 1 and not list(cache.glob("*.part"))
    assert second.plan.identical(first.plan)
    assert second.region is not None and second.options is None


def test_the_key_changes_with_any_input(cache, synth_region_dir, tmp_path):
    sc = _scenario(synth_region_dir)
    key = runcache.run_key(sc, synth_region_dir)
    assert runcache.run_key(_scenario(synth_region_dir), synth_region_dir) == key
    assert runcache.run_key(_scenario(synth_region_dir, take_up=0.5), synth_region_dir) != key
    assert runcache.run_key(sc, synth_region_dir, what="allocation") != key
    copy = tmp_path / "region"
    shutil.copytree(synth_region_dir, copy)
    assert runcache.run_key(sc, copy) == key  # the files, not the folder's name
    ops = copy / "operators.csv"
    ops.write_text(ops.read_text() + "\n", encoding="utf-8")
    assert runcache.run_key(sc, copy) != key


def test_a_damaged_entry_is_recomputed_with_a_warning(cache, synth_region_dir, caplog):
    sc = _scenario(synth_region_dir)
    runcache.cached_run(sc, synth_region_dir)
    (entry,) = cache.glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING, logger="universal_service.runcache"):
        result, hit = runcache.cached_run(sc, synth_region_dir)
    assert not hit and "unreadable" in caplog.text
    assert result.plan.attrs["status"] in {"optimal", "feasible"}
    assert runcache.cached_run(sc, synth_region_dir)[1]


def test_the_plan_command_leaves_the_dashboards_first_plan(cache, synth_region_dir, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["plan", str(synth_region_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    # the dashboard loads the baseline file with its sidebar's values set explicitly
    sc = scenarios.load_scenario(set_values={"policy.coverage_target": 0.98, "policy.take_up": 0.4})
    result, hit = runcache.cached_run(sc, synth_region_dir)
    assert hit
    assert result.plan.attrs["total_npv_cost"] == pytest.approx(
        float(xr.open_dataset(out / "plan.nc").attrs["total_npv_cost"])
    )


def test_only_the_newest_entries_are_kept(cache, synth_region_dir, monkeypatch):
    monkeypatch.setattr(runcache, "KEEP", 2)
    for take_up in (0.3, 0.4, 0.5):
        runcache.cached_run(_scenario(synth_region_dir, take_up=take_up), synth_region_dir)
    assert len(list(cache.glob("*.pkl"))) == 2
    assert runcache.cached_run(_scenario(synth_region_dir, take_up=0.5), synth_region_dir)[1]
