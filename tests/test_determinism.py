"""Atomic outputs and determinism: nothing half-written, and the same inputs give the same bytes.

``report.write`` writes the whole output set through ``outputs.write_set`` (a staging folder
beside the output folder, swapped in whole after ``manifest.json`` is written). These tests break
the writers midway (after part of a file is on disk) or kill the writing process, and check that no
part of the failed run is shown, that an earlier complete set survives a failed re-run whole, and
that a re-run after the failure writes the same files.

``plan.nc`` carries the solver's wall-clock timings (``build_seconds``, ``solve_seconds``) as
model statistics, so plan files from two runs are compared without those attributes; everything
else, including ``summary.csv``, must match byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import pytest
import xarray as xr
from geopandas.testing import assert_geodataframe_equal

from universal_service import outputs, report, scenarios, synthetic

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
    report.write(result, out)
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


def staging(out: Path) -> list[str]:
    """Staging folders of runs into ``out`` (beside it)."""
    return sorted(p.name for p in out.parent.glob(f".{out.name}.staging-*"))


def test_interrupted_netcdf_leaves_nothing(result, reference, tmp_path):
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            xr.Dataset,
            "to_netcdf",
            _half_then_fail(xr.Dataset.to_netcdf, OSError(28, "No space left on device")),
        )
        with pytest.raises(OSError, match="No space left"):
            report.write(result, out)
    assert list(tmp_path.iterdir()) == []  # no output folder, no staging folder
    report.write(result, out)
    assert_same_outputs(out, reference)


def test_interrupted_geopackage_leaves_no_part_of_the_run(result, reference, tmp_path):
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            gpd.GeoDataFrame,
            "to_file",
            _half_then_fail(gpd.GeoDataFrame.to_file, KeyboardInterrupt()),
        )
        with pytest.raises(KeyboardInterrupt):
            report.write(result, out)
    # plan.nc was complete before the first GeoPackage started, but it is not shown alone
    assert list(tmp_path.iterdir()) == []
    report.write(result, out)
    assert_same_outputs(out, reference)
    assert leftovers(out) == [] and staging(out) == []


def test_failed_rerun_keeps_the_previous_complete_outputs(result, tmp_path, synth_region_dir):
    out = tmp_path / "out"
    report.write(result, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = scenarios.run(synth_scenario(synth_region_dir))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            gpd.GeoDataFrame,
            "to_file",
            _half_then_fail(gpd.GeoDataFrame.to_file, RuntimeError("x")),
        )
        with pytest.raises(RuntimeError):
            report.write(other, out)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # plan.nc too: the new one was written, but never swapped in
    assert outputs.read_manifest(out)["scenario"] == result.name
    assert leftovers(out) == [] and staging(out) == []


def test_rerun_after_failure_matches_a_clean_run(synth_region_dir, reference, tmp_path):
    """A whole new run (load, cost, solve, write) after a failed write gives the same files."""
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            xr.Dataset, "to_netcdf", _half_then_fail(xr.Dataset.to_netcdf, RuntimeError("killed"))
        )
        with pytest.raises(RuntimeError, match="killed"):
            report.write(scenarios.run(synth_scenario(synth_region_dir)), out)
    assert not out.exists()
    report.write(scenarios.run(synth_scenario(synth_region_dir)), out)
    assert_same_outputs(out, reference)


KILLED_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from universal_service import outputs, report, scenarios

    region, out, kill_at = sys.argv[1], sys.argv[2], sys.argv[3]
    sc = scenarios.load_scenario()
    sc.config = sc.config.model_copy(update={"region": region})
    result = scenarios.run(sc)

    def hook(step):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    outputs.STEP_HOOK = hook
    report.write(result, out)
    """
)


@pytest.mark.parametrize("step", ["after villages.gpkg", "after manifest.json", "after swap"])
def test_run_killed_while_writing_leaves_one_whole_set(step, synth_region_dir, reference, tmp_path):
    """The real writer killed with SIGKILL (a child process) between two files of a re-run into a
    folder holding another region's outputs: the folder holds that old set or the new one.
    tests/test_outputs.py kills a writer at every step."""
    out = tmp_path / "out"
    old_region = synthetic.write_region(tmp_path / "old", n_villages=12, seed=2)
    report.write(scenarios.run(synth_scenario(old_region)), out)
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(synth_region_dir), str(out), step],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    outputs.read_manifest(out)  # whichever set it is, it is whole
    if step == "after swap":
        assert_same_outputs(out, reference)
    else:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert len(staging(out)) == 1  # the killed run's, removed by the next run
    report.write(scenarios.run(synth_scenario(synth_region_dir)), out)
    assert_same_outputs(out, reference)
    assert staging(out) == []


# ------------------------------------------------------------------------------------- determinism


def test_same_inputs_same_bytes_in_process(synth_region_dir, reference, tmp_path):
    runs = [scenarios.run(synth_scenario(synth_region_dir)) for _ in range(2)]
    texts = [summary_lines(report.format_summary(r)) for r in runs]
    assert texts[0] == texts[1]
    for i, r in enumerate(runs):
        out = tmp_path / f"run{i}"
        report.write(r, out)
        assert_same_outputs(out, reference)


def test_different_seed_gives_a_different_summary(tmp_path, reference):
    """The byte comparisons above are not vacuous: another synthetic region changes them."""
    other = synthetic.write_region(tmp_path / "other", n_villages=40, seed=1)
    out = tmp_path / "out"
    report.write(scenarios.run(synth_scenario(other)), out)
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
    assert summary_lines(printed[1]) == summary_lines(report.format_summary(result))
