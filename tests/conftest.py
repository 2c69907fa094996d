"""Shared fixtures: repository paths and a small synthetic region written once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from universal_service import synthetic

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BUNDLED = DATA / "qiannan"


@pytest.fixture(scope="session")
def synth_region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-village, 2-district synthetic region (read-only: copy it before mutating)."""
    return synthetic.write_region(tmp_path_factory.mktemp("synth") / "region", n_villages=40)


@pytest.fixture
def region_copy(synth_region_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the synthetic region, for tests that break a file."""
    dst = tmp_path / "region"
    shutil.copytree(synth_region_dir, dst)
    return dst
