"""The plausibility table: each model figure recomputed independently on a synthetic region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from universal_service import appraisal, io, report, scenarios


@pytest.fixture(scope="module")
def result(synth_region_dir: Path) -> scenarios.ScenarioResult:
    sc = scenarios.load_scenario(set_values={"region": str(synth_region_dir)})
    return scenarios.run(sc, with_baseline=False)


def test_plausibility_figures(result: scenarios.ScenarioResult, synth_region_dir: Path) -> None:
    table = report.plausibility(result).set_index("metric")
    region = io.load_region(synth_region_dir)
    area_km2 = sum(g.area for g in region.districts.geometry) / 1e6
    assert table.loc["towers per km2", "model"] == pytest.approx(len(region.towers) / area_km2)
    people = region.villages["population"].sum()
    assert table.loc["towers per 1,000 people", "model"] == pytest.approx(
        1000 * len(region.towers) / people
    )
    shares = table[table.index.str.startswith("rural villages with existing service")]["model"]
    assert shares.sum() == pytest.approx(1.0)
    broadband = table.loc["rural villages with broadband (4g or fiber)", "model"]
    v = region.villages
    rural = v["ur_code"].astype(str).str.startswith("2") if "ur_code" in v else v.index == v.index
    by_hand = v.loc[rural, "existing_service"].isin(["4g", "fiber"]).mean()
    assert broadband == pytest.approx(by_hand)
    labels = {v: k for k, v in report.money_labels(result).items()}
    summ = report.summary(result).rename(columns=labels).loc[report.SERVED_BY_PLAN]
    n = summ["villages"]
    assert table.loc["capex per newly served village [CNY]", "model"] == pytest.approx(
        summ["capex"] / n
    )
    rate = result.scenario.config.policy.discount_rate
    by_hand = (0.3 * summ["capex"] + summ["opex_per_year"] * sum(1.08**-t for t in range(1, 7))) / n
    assert rate == 0.08
    assert table.loc["pilots' rule subsidy per newly served village [CNY, NPV]", "model"] == (
        pytest.approx(by_hand)
    )
    mix = table[table.index.str.startswith("newly served by")]["model"]
    assert mix.sum() == pytest.approx(1.0)
    ratio = table.loc["routed / straight-line fiber length (median)", "model"]
    assert ratio >= 1.0 - 1e-9  # a route is never shorter than the straight line
    assert table.loc["capex per newly served village [CNY]", "anchor"] == pytest.approx(
        15.9e9 / 52_800
    )
    assert np.isfinite(appraisal.pilot_subsidy(1.0, 1.0, rate))


def test_a_plan_stopped_at_its_time_limit_says_so(result: scenarios.ScenarioResult) -> None:
    import dataclasses

    assert report.time_limit_notice(result) == ""  # solved to its gap
    plan = result.plan.copy()
    plan.attrs.update(status="time_limit", gap=0.0123, time_limit_s=60.0)
    stopped = dataclasses.replace(result, plan=plan)
    notice = report.time_limit_notice(stopped)
    assert "time limit (60 s" in notice and "1.23e-02" in notice
    assert f"note: {notice}" in report.format_summary(stopped)
