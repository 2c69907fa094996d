"""Property-based tests (Hypothesis, derandomized): invariants over many small random inputs.

- any small seeded synthetic region loads and plans without a crash, meeting its target;
- :func:`optimize.plan` never spends more than the budget;
- under ``max_coverage`` the coverage never falls when the budget rises (same instance).

Examples are few and the search is derandomized, so the file is quick and gives the same
examples on every run (the example database is off: nothing found is replayed from disk).
Explicit ``@example`` edge cases (one village, districts without villages) always run.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from universal_service import io, optimize, report, scenarios, synthetic

SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "print_blob": True,
}
#: Relative slack on "budget respected" (the solver's feasibility tolerance on the budget row).
BUDGET_RTOL = 1e-6


def _baseline_for(region: Path) -> scenarios.Scenario:
    sc = scenarios.load_scenario()
    sc.config = sc.config.model_copy(update={"region": str(region)})
    return sc


@settings(max_examples=12, **SETTINGS)
@example(n_villages=1, n_districts=3, seed=0, dem_shape=(100, 120))
@example(n_villages=2, n_districts=1, seed=7, dem_shape=(200, 240))
@given(
    n_villages=st.integers(min_value=1, max_value=30),
    n_districts=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=2**16),
    dem_shape=st.tuples(st.integers(100, 200), st.integers(120, 240)),
)
def test_random_regions_load_and_plan(n_villages, n_districts, seed, dem_shape):
    # districts are vertical strips >= 40 cells (3.6 km) wide, villages 900 m inside them
    with tempfile.TemporaryDirectory() as tmp:
        root = synthetic.write_region(
            Path(tmp) / "region",
            n_villages=n_villages,
            n_districts=n_districts,
            seed=seed,
            dem_shape=dem_shape,
        )
        region = io.load_region(root)
        assert len(region.villages) == n_villages
        assert region.villages["village_id"].is_unique
        result = scenarios.run(_baseline_for(root), region=region)
        plan, a = result.plan, result.plan.attrs
        # satellite reaches every village: always feasible (the shared-trench plan is a heuristic
        # result, "optimal" only when its gap to the bound closes)
        assert a["status"] in {"optimal", "feasible"}
        assert sorted(plan["village"].values) == sorted(region.villages["village_id"])
        assert a["coverage_share"] >= a["coverage_target"] - 1e-9
        s = report.summary(result)
        assert s.loc["total", "villages"] == n_villages
        npv = next(c for c in s.columns if c.startswith("NPV cost ["))
        assert s.loc["total", npv] == pytest.approx(a["total_npv_cost"], rel=1e-9, abs=1e-6)
        assert "timings:" in report.format_summary(result)


instances = st.fixed_dictionaries(
    {
        "n_villages": st.integers(min_value=1, max_value=40),
        "n_sites": st.integers(min_value=1, max_value=8),
        "k": st.integers(min_value=1, max_value=3),
        "seed": st.integers(min_value=0, max_value=2**16),
    }
)


def _instance(p: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic.facility_instance(p["n_villages"], p["n_sites"], p["k"], seed=p["seed"])


def _spent(plan) -> float:
    """Total NPV cost recomputed from the plan's arrays [CNY]."""
    return float(plan["npv_cost"].sum() + plan["site_cost"].where(plan["site_built"], 0.0).sum())


@settings(max_examples=100, **SETTINGS)
@example(
    inst={"n_villages": 1, "n_sites": 1, "k": 1, "seed": 0},
    share=0.0,
    objective="max_coverage",
    target=None,
)
@given(
    inst=instances,
    share=st.floats(min_value=0.0, max_value=1.2),
    objective=st.sampled_from(["max_coverage", "min_cost"]),
    target=st.sampled_from([None, 0.3, 0.9]),
)
def test_plan_never_exceeds_budget(inst, share, objective, target):
    options, sites = _instance(inst)
    # the budget scale: every village on its stand-alone option
    budget = share * float(options.loc[options["site_id"] == "", "cost"].sum())
    policy = optimize.Policy(
        objective=objective,
        budget=budget,
        coverage_target=None if objective == "max_coverage" else target,
        mip_gap=0.0,
    )
    plan = optimize.plan(options, sites, policy)
    a = plan.attrs
    assert a["status"] in {"optimal", "infeasible"}
    if a["status"] == "infeasible":
        assert a["infeasible_reason"]  # always explained
        assert not plan["served"].any()
        return
    spent = _spent(plan)
    assert spent == pytest.approx(a["total_cost"], rel=1e-9, abs=1e-9)
    assert spent <= budget * (1 + BUDGET_RTOL) + 1e-9
    if objective == "max_coverage":
        assert a["status"] == "optimal"  # spending nothing is always feasible


@settings(max_examples=40, **SETTINGS)
@given(
    inst=instances,
    shares=st.lists(st.floats(min_value=0.0, max_value=1.2), min_size=2, max_size=5),
    basis=st.sampled_from(["population", "villages"]),
)
def test_coverage_never_falls_when_budget_rises(inst, shares, basis):
    options, sites = _instance(inst)
    scale = float(options.loc[options["site_id"] == "", "cost"].sum())
    coverage = []
    for share in sorted(shares):
        policy = optimize.Policy(
            objective="max_coverage", budget=share * scale, coverage_basis=basis, mip_gap=0.0
        )
        plan = optimize.plan(options, sites, policy)
        assert plan.attrs["status"] == "optimal"
        coverage.append(plan.attrs["coverage_share"])
    assert all(math.isfinite(c) for c in coverage)
    assert np.all(np.diff(coverage) >= -1e-9), coverage
