"""The four regimes on the bundled region: the README's table is what the command prints."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from universal_service import allocate
from universal_service.cli import app

from .conftest import BUNDLED, ROOT


@pytest.fixture(scope="module")
def printed_and_ds(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, xr.Dataset]:
    out = tmp_path_factory.mktemp("alloc") / "out"
    res = CliRunner().invoke(app, ["allocate", str(BUNDLED), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return res.output, xr.load_dataset(out / "allocation.nc")


@pytest.mark.slow
def test_readme_shows_what_the_allocate_command_prints(printed_and_ds) -> None:
    printed, ds = printed_and_ds
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = "## Allocating the obligation among operators\n"
    start = readme.index("```\n", readme.index(head)) + 4
    shown = readme[start : readme.index("\n```", start)]
    assert shown == allocate.format_table(ds), "update README.md's allocation table"
    assert shown in printed
    # the prose under the table reads the same figures
    lots, fund = ds.sel(regime="lots"), ds.sel(regime="fund")
    fair = float(lots["cost_of_fairness"])
    shared_saving = -float(ds.sel(regime="shared")["cost_of_fairness"])
    for phrase in (
        f"CNY {fair / 1e6:.1f} M ({fair / ds.attrs['least_cost_total']:.1%})",
        f"levy of {float(fund['levy_rate']):.2%}",
        f"CNY {shared_saving / 1e6:.1f} M cheaper",
    ):
        assert phrase in " ".join(readme.split()), phrase
    assert str(ds["sharing"].sel(rule="shapley").idxmax().values) == "cu"  # "China Unicom"
    auction_subsidy = float(ds.sel(regime="auction")["total_subsidy"])
    assert auction_subsidy > float(fund["total_subsidy"])  # "more than the fund"


@pytest.mark.slow
def test_bundled_allocation_invariants(printed_and_ds) -> None:
    _, ds = printed_and_ds
    assert list(ds["regime"].values) == ["lots", "auction", "fund", "shared"]
    assert ds.sizes["district"] == 12 and list(ds["operator"].values) == ["cmcc", "ct", "cu"]
    lots = ds.sel(regime="lots")
    assert str(lots["status"].values) == "optimal"
    np.testing.assert_array_equal(lots["assigned"].sum("operator").values, 1.0)
    gap = np.abs(lots["burden_share"].values - ds["reference_share"].values)
    assert np.all(gap <= 0.1 + 1e-9)
    assert float(lots["cost_of_fairness"]) >= 0
    fund = ds.sel(regime="fund")
    assert float(fund["levy"].sum()) == pytest.approx(float(fund["total_subsidy"]))
    # the levy rate is the fund's payments over the regional revenue base (order 1%)
    assert 0.001 < float(fund["levy_rate"]) < 0.05
    auction = ds.sel(regime="auction")
    assert float(auction["total_subsidy"]) <= ds.attrs["auction_budget"] + 1e-6
    shared = ds.sel(regime="shared")
    for rule in ds["rule"].values:
        assert float(ds["sharing"].sel(rule=rule).sum()) == pytest.approx(
            float(shared["need"].sum()), rel=1e-9
        )
    # every regime meets the same obligation (98% of each district's population, at least)
    assert np.all(ds["coverage"].values >= 0.98 - 1e-9)
