"""The built wheel runs anywhere: its catalog and baseline scenario are package data, and it plans
a region from a folder that is not the source checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from universal_service import synthetic

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_wheel_plans_outside_the_checkout(tmp_path):
    pytest.importorskip("setuptools", minversion="77", reason="pip install -e '.[test]'")
    # build from a copy of the sources, so the checkout gets no build/ or egg-info folder
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "universal_service",
        src / "universal_service",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist, site = tmp_path / "dist", tmp_path / "site"
    pip = ["-m", "pip", "--disable-pip-version-check", "-q"]
    build = _run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(src),
        ],
        tmp_path,
        dict(os.environ),
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("universal_service-*.whl")
    install = _run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        tmp_path,
        dict(os.environ),
    )
    assert install.returncode == 0, install.stderr

    region = synthetic.write_region(tmp_path / "region", n_villages=20)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = _run(["-c", "import universal_service; print(universal_service.__file__)"], work, env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout

    out = work / "out"
    plan = _run(["-m", "universal_service", "plan", str(region), "--out", str(out)], work, env)
    assert plan.returncode == 0, plan.stderr
    for name in ("plan.nc", "villages.gpkg", "summary.csv"):
        assert (out / name).stat().st_size > 0

    # the bundled region is not package data: without a region the error says what to pass
    bare = _run(["-m", "universal_service", "plan", "--out", str(work / "o2")], work, env)
    assert bare.returncode == 2
    assert "pass a region path" in bare.stderr
    # nor is the dashboard (app.py): outside a checkout the command says so
    dash = _run(["-m", "universal_service", "dashboard"], work, env)
    assert dash.returncode == 2
    assert "app.py not found" in dash.stderr
