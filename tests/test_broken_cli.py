"""Broken command lines and output paths: exit status 2, no traceback, the message names where.

Cases of the broken-input catalog (``tests/data/broken/README.md``, section "Command line, output
folders and uploads"): an ``--out`` that is a file, lies below a file, cannot be written or holds
folders, all refused before the plan is computed; ``--set key=`` with an empty value; an upload
whose destination is a file, and many small zip members adding up to a bomb. A minimum quality
tier that no technology reaches is a plan status (``infeasible``, exit 1), not an error.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_broken_inputs import Case, _check_message, _params
from universal_service import report, scenarios, uploads
from universal_service.cli import app
from universal_service.errors import InputDataError, ScenarioError


def _out_file(tmp: Path) -> list[str]:
    (tmp / "results").write_text("an earlier report, not a folder")
    return ["--out", str(tmp / "results")]


def _out_below_file(tmp: Path) -> list[str]:
    (tmp / "runs").write_text("a file where a folder is expected")
    return ["--out", str(tmp / "runs" / "today")]


def _out_not_writable(tmp: Path) -> list[str]:
    return ["--out", "/sys/universal-service-out"]  # sysfs refuses mkdir, even to root


def _out_holds_folders(tmp: Path) -> list[str]:
    (tmp / "out" / "2025").mkdir(parents=True)
    return ["--out", str(tmp / "out")]


def _empty_set(key: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["--set", f"{key}=", "--out", str(tmp / "o")]


#: ``plan`` command lines: ``make(tmp_dir)`` returns the arguments after the region.
CLI_CASES: dict[str, Case] = {
    "out_is_a_file": Case(
        _out_file,
        ("--out ", "/results", "is an existing file", "give a folder path", "results_out"),
    ),
    "out_below_a_file": Case(
        _out_below_file,
        ("/runs/today", "its parent", "/runs is a file", "move that file away"),
    ),
    "out_not_writable": Case(
        _out_not_writable,
        ("--out /sys/universal-service-out", "/sys is not writable", "writable place"),
    ),
    "out_holds_folders": Case(
        _out_holds_folders,
        ("/out", "holds the folders '2025'", "new or empty output folder"),
    ),
    "set_empty_value": Case(
        _empty_set("policy.coverage_target"),
        ("--set policy.coverage_target=", "empty value", "not read as null", "=null"),
        ScenarioError,
    ),
    "set_empty_value_blank": Case(
        lambda tmp: ["--set", "policy.budget_cny=  ", "--out", str(tmp / "o")],
        ("policy.budget_cny", "empty value", "--set policy.budget_cny=null"),
        ScenarioError,
    ),
}


@pytest.mark.parametrize("name", _params(CLI_CASES))
def test_broken_command_line(name, tmp_path, synth_region_dir, monkeypatch):
    case = CLI_CASES[name]

    def no_plan(*args, **kwargs):
        raise AssertionError("the plan was computed before the command line was checked")

    monkeypatch.setattr(scenarios, "run", no_plan)
    res = CliRunner().invoke(app, ["plan", str(synth_region_dir), *case.make(tmp_path)])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    _check_message(Exception(res.output), case, name)
    assert not (tmp_path / "o").exists()


def test_explicit_null_is_still_accepted(tmp_path, synth_region_dir):
    """``key=null`` is the explicit way to unset a value (here: no coverage target)."""
    res = CliRunner().invoke(
        app,
        [
            "plan",
            str(synth_region_dir),
            "--set",
            "policy.coverage_target=null",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "(target none)" in res.output.split("coverage:")[1].splitlines()[0]


def test_unreachable_min_quality_is_an_infeasible_status(tmp_path, synth_region_dir):
    """No technology reaches quality tier 9: a plan with status infeasible naming min_quality,
    exit status 1 like any infeasible plan (it was an IndexError in the greedy baseline)."""
    res = CliRunner().invoke(
        app,
        [
            "plan",
            str(synth_region_dir),
            "--set",
            "policy.min_quality=9",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "plan status: infeasible" in res.output
    assert "infeasible: coverage: at most 0 of population is reachable" in res.output
    assert "policy.min_quality=9 removed every option" in res.output
    assert (tmp_path / "o" / "plan.nc").exists()


def test_output_error_after_the_plan_is_exit_2(tmp_path, synth_region_dir, monkeypatch):
    """A disk that fills up while writing: exit 2, a message naming --out, no traceback."""

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write", full)
    res = CliRunner().invoke(app, ["plan", str(synth_region_dir), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "--out " in res.output and "No space left on device" in res.output
    assert "previous output set" in res.output and "Traceback" not in res.output


# ------------------------------------------------------------------------------------- uploads


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, content in entries:
            zf.writestr(name, content)
    return buf.getvalue()


def _upload_to_file(tmp: Path, region: Path) -> object:
    (tmp / "dest").write_text("a file")
    return uploads.extract_region_zip(_zip([("r/region.toml", b"")]), tmp / "dest")


def _many_small_members(tmp: Path, region: Path) -> object:
    members = [(f"r/layer{i:03d}.gpkg", bytes(1 << 20)) for i in range(120)]
    return uploads.extract_region_zip(_zip([("r/region.toml", b""), *members]), tmp / "dest")


#: Upload calls: ``make(tmp_dir, region_dir)`` performs the failing call.
UPLOAD_CASES: dict[str, Case] = {
    "upload_destination_is_a_file": Case(
        _upload_to_file, ("upload: ", "/dest is an existing file", "new or empty folder")
    ),
    "upload_many_small_members_bomb": Case(
        _many_small_members,
        ("upload: ", "121 files", "max_total_ratio=100", "zip bomb", "125,829,120 bytes"),
    ),
}


@pytest.mark.parametrize("name", _params(UPLOAD_CASES))
def test_broken_upload(name, tmp_path, synth_region_dir):
    case = UPLOAD_CASES[name]
    with pytest.raises(InputDataError) as ei:
        case.make(tmp_path, synth_region_dir)
    _check_message(ei.value, case, name)
