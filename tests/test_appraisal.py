"""Money from policy to Plan: each policy parameter walked through to the Plan of a 3-village
region against hand computation, and the Plan's money invariants on a synthetic region."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr

from universal_service import appraisal, costs, io, optimize, report, scenarios, synthetic
from universal_service.schema import PolicyConfig

RATE, HORIZON, MARGIN = 0.08, 15, 0.35
INCOME = np.array([500.0, 800.0, 2000.0])  # CNY per person per month
HOUSEHOLDS = np.array([100.0, 50.0, 200.0])
SIZE = 3.0  # persons per household
SERVICE = np.array(["none", "2g", "3g"])
SPEND = np.array([0.0, 5.0, 10.0])  # the default existing_spend_monthly of those levels


@pytest.fixture(scope="module")
def region3(tmp_path_factory: pytest.TempPathFactory) -> io.Region:
    """A 3-village region with hand-set income, households and existing service."""
    root = synthetic.write_region(tmp_path_factory.mktemp("three") / "r", n_villages=3, seed=3)
    region = io.load_region(root)
    v = region.villages.sort_values("village_id").reset_index(drop=True)
    v["income_monthly"] = INCOME
    v["households"] = HOUSEHOLDS
    v["population"] = HOUSEHOLDS * SIZE
    v["existing_service"] = SERVICE
    return dataclasses.replace(region, villages=v)


def plan_for(region: io.Region, **policy: object) -> xr.Dataset:
    """The Plan serving every village of ``region`` under the policy settings given."""
    cfg = PolicyConfig(**policy)
    opts = costs.build_options(region, cfg)
    sites = opts.sites[["site_id", "cost", "capex", "capacity_mbps"]]
    plan = optimize.plan(opts.table, sites, optimize.Policy(coverage_target=1.0))
    assert plan["served"].values.all()
    return plan


def subscriber_years(ceiling: float, ramp: float, shape: str = "linear") -> float:
    """Hand-computed sum over years 1..15 of take-up x (1.08)^-t."""
    total = 0.0
    for t in range(1, HORIZON + 1):
        if ramp == 0:
            share = ceiling
        elif shape == "linear":
            share = ceiling * min(1.0, t / ramp)
        else:
            x = min(1.0, t / ramp)
            s = [1 / (1 + np.exp(-10 * (u - 0.5))) for u in (x, 0.0, 1.0)]
            share = ceiling * (s[0] - s[1]) / (s[2] - s[1])
        total += share / (1 + RATE) ** t
    return total


def revenue(tariff: np.ndarray, years: float) -> np.ndarray:
    return np.maximum(tariff - SPEND, 0.0) * 12 * HOUSEHOLDS * years * MARGIN


def test_default_policy_by_hand(region3):
    """Uniform tariff at the 90% village share of per-capita caps, linear 5-year ramp to 40%."""
    plan = plan_for(region3)
    caps = 0.02 * INCOME  # 10, 16, 40 CNY/month: 2% of income per person
    # ceil(0.9 x 3) = 3: the price is the third-highest cap, affordable everywhere
    np.testing.assert_allclose(plan["affordable_monthly"], caps)
    np.testing.assert_allclose(plan["tariff_monthly"], [10.0, 10.0, 10.0])
    years = subscriber_years(0.4, 5.0)
    np.testing.assert_allclose(plan["revenue_npv"], revenue(np.full(3, 10.0), years), rtol=1e-12)
    assert plan["revenue_npv"].values[2] == 0.0  # the 3g village already pays CNY 10
    expected = np.maximum(
        plan["npv_cost"].values + plan["site_share"].values - plan["revenue_npv"].values, 0.0
    )
    np.testing.assert_allclose(plan["subsidy"], expected)
    assert plan.attrs["total_subsidy"] == pytest.approx(expected.sum())
    assert not plan["above_cap"].values.any() and plan.attrs["total_demand_subsidy"] == 0.0
    assert list(plan["existing_service"].values) == list(SERVICE)
    np.testing.assert_allclose(plan["households"], HOUSEHOLDS)


def test_affordability_share_raises_tariff_and_revenue_lowers_subsidy(region3):
    low, high = plan_for(region3), plan_for(region3, affordability_share=0.04)
    np.testing.assert_allclose(high["tariff_monthly"], 20.0)
    years = subscriber_years(0.4, 5.0)
    np.testing.assert_allclose(high["revenue_npv"], revenue(np.full(3, 20.0), years), rtol=1e-12)
    assert (high["revenue_npv"].values > low["revenue_npv"].values).all()
    assert high.attrs["total_subsidy"] < low.attrs["total_subsidy"]


def test_household_basis_is_looser_than_per_capita(region3):
    per_capita = plan_for(region3, tariff_rule="income_capped")
    household = plan_for(region3, tariff_rule="income_capped", affordability_basis="household")
    list_tariff = 50.0  # the catalog's list price caps the household basis
    np.testing.assert_allclose(per_capita["tariff_monthly"], 0.02 * INCOME)
    np.testing.assert_allclose(
        household["tariff_monthly"], np.minimum(0.02 * INCOME * SIZE, list_tariff)
    )
    assert (household["revenue_npv"].values > per_capita["revenue_npv"].values).all()
    assert household.attrs["total_subsidy"] < per_capita.attrs["total_subsidy"]


def test_income_capped_tariff_is_each_villages_cap(region3):
    plan = plan_for(region3, tariff_rule="income_capped")
    years = subscriber_years(0.4, 5.0)
    np.testing.assert_allclose(plan["revenue_npv"], revenue(0.02 * INCOME, years), rtol=1e-12)
    assert plan.attrs["n_above_cap"] == 0 and plan.attrs["total_demand_subsidy"] == 0.0


def test_uniform_tariff_above_a_cap_is_flagged_with_its_demand_subsidy(region3):
    given = plan_for(region3, uniform_tariff_monthly=16.0)
    by_share = plan_for(region3, uniform_affordable_share=0.6)  # ceil(1.8) = 2nd cap: 16
    years = subscriber_years(0.4, 5.0)
    for plan in (given, by_share):
        np.testing.assert_allclose(plan["tariff_monthly"], 16.0)
        assert list(plan["above_cap"].values) == [True, False, False]
        assert plan.attrs["n_above_cap"] == 1
        # (16 - 10) CNY a month for each of village 0's subscribers
        np.testing.assert_allclose(
            plan["demand_subsidy_npv"], [6.0 * 12 * 100 * years, 0.0, 0.0], rtol=1e-12
        )


def test_take_up_scales_revenue_and_customer_equipment(region3):
    """More subscribers bring more revenue and need more customer equipment (the last mile):
    whether the subsidy falls depends on which is larger."""
    base, more = plan_for(region3), plan_for(region3, take_up=0.6)
    np.testing.assert_allclose(more["revenue_npv"], 1.5 * base["revenue_npv"].values, rtol=1e-12)
    same = base["technology"].values == more["technology"].values
    assert same.any()
    assert (more["capex"].values[same] >= base["capex"].values[same] - 1e-9).all()


def test_a_longer_ramp_earns_less(region3):
    plans = [plan_for(region3, take_up_ramp_years=n) for n in (0.0, 5.0, 10.0)]
    first = plans[0]["revenue_npv"].values
    np.testing.assert_allclose(first, revenue(np.full(3, 10.0), subscriber_years(0.4, 0.0)))
    rev = [p["revenue_npv"].values[0] for p in plans]
    assert rev[0] > rev[1] > rev[2]
    subsidy = [p.attrs["total_subsidy"] for p in plans]
    assert subsidy[0] < subsidy[1] < subsidy[2]
    logistic = plan_for(region3, take_up_ramp="logistic", take_up_ramp_years=8.0)
    np.testing.assert_allclose(
        logistic["revenue_npv"],
        revenue(np.full(3, 10.0), subscriber_years(0.4, 8.0, "logistic")),
        rtol=1e-12,
    )


def test_existing_broadband_pays_nothing_and_earns_nothing(region3):
    v = region3.villages.copy()
    v["existing_service"] = ["none", "2g", "fiber"]
    plan = plan_for(dataclasses.replace(region3, villages=v))
    assert plan["option_id"].values[2] == "existing"
    assert plan["npv_cost"].values[2] == plan["revenue_npv"].values[2] == 0.0
    assert plan["subsidy"].values[2] == 0.0 and plan["served"].values[2]


def test_site_shares_split_by_population_and_sum_to_the_site_cost():
    got = appraisal.site_shares(
        np.array(["a", "a", "", "b", "c", "c"]),
        np.array([100.0, 300.0, 50.0, 10.0, 0.0, 0.0]),
        {"a": 40.0, "b": 7.0, "c": 9.0},
    )
    np.testing.assert_allclose(got, [10.0, 30.0, 0.0, 7.0, 4.5, 4.5])


def test_uniform_tariff_is_affordable_in_the_share_asked():
    caps = np.array([30.0, 10.0, 20.0, 40.0])
    assert appraisal.uniform_tariff(caps, 1.0) == 10.0
    assert appraisal.uniform_tariff(caps, 0.75) == 20.0
    assert appraisal.uniform_tariff(caps, 0.5) == 30.0
    assert appraisal.uniform_tariff(caps, 0.01) == 40.0


def test_take_up_paths_reach_the_ceiling_at_the_end_of_the_ramp():
    lin = appraisal.take_up_path(0.4, 4.0, 6)
    np.testing.assert_allclose(lin, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    s = appraisal.take_up_path(0.4, 4.0, 6, "logistic")
    assert (np.diff(s) >= 0).all() and s[3] == pytest.approx(0.4) and s[0] < lin[0]


@pytest.fixture(scope="module")
def synthetic_result(synth_region_dir) -> scenarios.ScenarioResult:
    sc = scenarios.load_scenario()
    sc.config = sc.config.model_copy(update={"region": str(synth_region_dir)})
    return scenarios.run(sc, with_baseline=False)


def test_plan_money_invariants_from_plan_nc(synthetic_result, tmp_path):
    """From the written plan.nc alone: totals, site shares and the subsidy rule hold."""
    paths = report.write(synthetic_result, tmp_path)
    with xr.open_dataset(paths["plan"]) as plan:
        plan = plan.load()
    a = plan.attrs
    built = plan["site_cost"].where(plan["site_built"], 0.0)
    assert a["total_subsidy"] == pytest.approx(float(plan["subsidy"].sum()), rel=1e-12)
    assert float(plan["site_share"].sum()) == pytest.approx(float(built.sum()), rel=1e-12)
    assert a["total_npv_cost"] == pytest.approx(
        float(plan["npv_cost"].sum() + built.sum()), rel=1e-12
    )
    assert (plan["site_share"] > 0).sum() > 0  # the region has shared 4G sites in the plan
    served = plan["served"].values
    assert (plan["subsidy"].values[~served] == 0).all()
    np.testing.assert_allclose(
        plan["subsidy"],
        np.maximum(plan["npv_cost"] + plan["site_share"] - plan["revenue_npv"], 0.0),
    )
    for var in ("district_id", "population", "households", "existing_service", "technology"):
        assert var in plan
    assert (plan["covered"].values >= served).all()


def test_summary_rows_separate_existing_plan_and_unserved(synthetic_result):
    s = report.summary(synthetic_result)
    plan = synthetic_result.plan
    npv = next(c for c in s.columns if c.startswith("NPV cost"))
    subsidy = next(c for c in s.columns if c.startswith("NPV subsidy"))
    assert "NPV at 8% over 15 years" in npv and "2016 prices" in npv
    assert s.loc["total", "villages"] == plan.sizes["village"]
    parts = s.loc[[report.ALREADY_SERVED, report.SERVED_BY_PLAN, report.LEFT_UNSERVED]]
    assert parts["villages"].sum() == s.loc["total", "villages"]
    existing = (plan["technology"].values == "existing").sum()
    assert s.loc[report.ALREADY_SERVED, "villages"] == existing
    assert s.loc["total", npv] == pytest.approx(plan.attrs["total_npv_cost"], rel=1e-12)
    assert s.loc["total", subsidy] == pytest.approx(plan.attrs["total_subsidy"], rel=1e-12)
    text = report.format_summary(synthetic_result)
    assert "of population" in text and "of administrative villages" in text


def test_pilot_subsidy_by_hand() -> None:
    """30% of capex plus 6 years of opex at 8%: (P/A, 8%, 6) = 4.6229 (compound-interest tables)."""
    got = appraisal.pilot_subsidy(100_000.0, 10_000.0, 0.08)
    assert got == pytest.approx(30_000.0 + 10_000.0 * 4.62288, rel=1e-5)
    cash = sum(10_000.0 / 1.08**t for t in range(1, 7))  # explicit cash flows
    assert got == pytest.approx(30_000.0 + cash, rel=1e-12)
    border = appraisal.pilot_subsidy(np.array([1.0, 2.0]), 0.0, 0.08, opex_years=10)
    np.testing.assert_allclose(border, [0.3, 0.6])
