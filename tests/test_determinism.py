"""Atomic outputs and determinism: nothing half-written, and the same inputs give the same bytes.

``scenarios.write`` writes every file through ``outputs.write_atomic`` (a temporary name beside the
target, renamed on success). These tests break the writers midway (after part of the file is on
disk) and check that no partial target and no temporary file is left, that an earlier complete
output survives a failed re-run, and that a re-run after the failure writes the same files.

``plan.nc`` carries the solver's wall-clock timings (``build_seconds``, ``solve_seconds``) as
model statistics, so plan files from two runs are compared without those attributes; everything
else, including ``summary.csv``, must match byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import pytest
import xarray as xr
from geopandas.testing import assert_geodataframe_equal

from universal_service import scenarios, synthetic

TIMING_ATTRS = ("build_seconds", "solve_seconds")


def synth_scenario(region: Path) -> scenarios.Scenario:
    """The bundled baseline scenario pointed at a synthetic region folder."""
    sc = scenarios.load_scenario()
    sc.config = sc.config.model_copy(update={"region": str(region)})
    return sc


def read_plan(path: Path) -> xr.Dataset:
    """A written plan.nc, loaded and closed, without its wall-clock timing attributes."""
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    for name in TIMING_ATTRS:
        ds.attrs.pop(name, None)
    return ds


def summary_lines(text: str) -> list[str]:
    """The summary the CLI prints, from its 'Scenario' line, without the timings line."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Scenario '"))
    return [
        ln
        for ln in lines[start:]
        if not ln.startswith("  timings:") and not ln.startswith("wrote:")
    ]


def leftovers(folder: Path) -> list[str]:
    """Temporary or journal files a writer may leave behind."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.startswith(".") or ".part" in p.name or p.name.endswith(("-journal", "-wal"))
    )


@pytest.fixture(scope="module")
def result(synth_region_dir: Path) -> scenarios.ScenarioResult:
    return scenarios.run(synth_scenario(synth_region_dir))


@pytest.fixture(scope="module")
def reference(result: scenarios.ScenarioResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean, complete write of the synthetic baseline result."""
    out = tmp_path_factory.mktemp("reference")
    scenarios.write(result, out)
    return out


def assert_same_outputs(out: Path, reference: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    xr.testing.assert_identical(read_plan(out / "plan.nc"), read_plan(reference / "plan.nc"))
    assert (out / "summary.csv").read_bytes() == (reference / "summary.csv").read_bytes()
    for name in ("villages", "sites"):
        got = gpd.read_file(out / f"{name}.gpkg")
        want = gpd.read_file(reference / f"{name}.gpkg")
        assert_geodataframe_equal(got, want)


def _half_then_fail(real, exc: BaseException):
    """A writer that really writes, truncates the file to half (a crash mid-write), then raises."""

    def writer(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:
            fh.truncate(size // 2)
        raise exc

    return writer


# ----------------------------------------------------------------------------------- atomic writes


def test_interrupted_netcdf_leaves_nothing(result, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        xr.Dataset,
        "to_netcdf",
        _half_then_fail(xr.Dataset.to_netcdf, OSError(28, "No space left on device")),
    )
    with pytest.raises(OSError, match="No space left"):
        scenarios.write(result, out)
    assert list(out.iterdir()) == []  # plan.nc is the first file: nothing at all is left
    monkeypatch.undo()
    scenarios.write(result, out)
    assert_same_outputs(out, reference)


def test_interrupted_geopackage_leaves_no_partial_file(result, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        gpd.GeoDataFrame, "to_file", _half_then_fail(gpd.GeoDataFrame.to_file, KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        scenarios.write(result, out)
    # plan.nc was complete before the first GeoPackage started; no GeoPackage is half there
    names = sorted(p.name for p in out.iterdir())
    assert "plan.nc" in names and not [n for n in names if n.endswith(".gpkg")], names
    xr.testing.assert_identical(read_plan(out / "plan.nc"), read_plan(reference / "plan.nc"))
    assert leftovers(out) == []
    monkeypatch.undo()
    scenarios.write(result, out)
    assert_same_outputs(out, reference)
    assert leftovers(out) == []


def test_failed_rerun_keeps_the_previous_complete_outputs(result, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    scenarios.write(result, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(
        gpd.GeoDataFrame, "to_file", _half_then_fail(gpd.GeoDataFrame.to_file, RuntimeError("x"))
    )
    with pytest.raises(RuntimeError):
        scenarios.write(result, out)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after.keys() == before.keys()
    # no GeoPackage was replaced by a half-written one; plan.nc was replaced whole
    for name in before:
        if name.endswith((".gpkg", ".csv")):
            assert after[name] == before[name], name
    xr.testing.assert_identical(read_plan(out / "plan.nc"), read_plan(reference / "plan.nc"))
    assert leftovers(out) == []


def test_rerun_after_failure_matches_a_clean_run(
    synth_region_dir, reference, tmp_path, monkeypatch
):
    """A whole new run (load, cost, solve, write) after a failed write gives the same files."""
    out = tmp_path / "out"
    monkeypatch.setattr(
        xr.Dataset, "to_netcdf", _half_then_fail(xr.Dataset.to_netcdf, RuntimeError("killed"))
    )
    with pytest.raises(RuntimeError, match="killed"):
        scenarios.write(scenarios.run(synth_scenario(synth_region_dir)), out)
    monkeypatch.undo()
    assert list(out.iterdir()) == []
    scenarios.write(scenarios.run(synth_scenario(synth_region_dir)), out)
    assert_same_outputs(out, reference)


# ------------------------------------------------------------------------------------- determinism


def test_same_inputs_same_bytes_in_process(synth_region_dir, reference, tmp_path):
    runs = [scenarios.run(synth_scenario(synth_region_dir)) for _ in range(2)]
    texts = [summary_lines(scenarios.format_summary(r)) for r in runs]
    assert texts[0] == texts[1]
    for i, r in enumerate(runs):
        out = tmp_path / f"run{i}"
        scenarios.write(r, out)
        assert_same_outputs(out, reference)


def test_different_seed_gives_a_different_summary(tmp_path, reference):
    """The byte comparisons above are not vacuous: another synthetic region changes them."""
    other = synthetic.write_region(tmp_path / "other", n_villages=40, seed=1)
    out = tmp_path / "out"
    scenarios.write(scenarios.run(synth_scenario(other)), out)
    assert (out / "summary.csv").read_bytes() != (reference / "summary.csv").read_bytes()


CLI_TWICE = textwrap.dedent(
    """
    import sys
    import typer.main
    from universal_service.cli import app

    command = typer.main.get_command(app)
    region, out = sys.argv[1], sys.argv[2]
    for run in ("a", "b"):
        print(f"=== run {run}", flush=True)
        command(["plan", region, "--out", f"{out}/{run}"], standalone_mode=False)
        sys.stdout.flush()
    """
)


def test_same_bytes_in_a_fresh_process(synth_region_dir, reference, result, tmp_path):
    """The CLI run twice in a new interpreter (another hash seed) writes identical summaries."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run(
        [sys.executable, "-c", CLI_TWICE, str(synth_region_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (tmp_path / "a" / "summary.csv"), (tmp_path / "b" / "summary.csv")
    assert a.read_bytes() == b.read_bytes() == (reference / "summary.csv").read_bytes()
    for run in ("a", "b"):
        got = read_plan(tmp_path / run / "plan.nc")
        xr.testing.assert_identical(got, read_plan(reference / "plan.nc"))
    printed = proc.stdout.split("=== run b")
    assert summary_lines(printed[0]) == summary_lines(printed[1])
    assert summary_lines(printed[1]) == summary_lines(scenarios.format_summary(result))
