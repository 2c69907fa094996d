"""Tests for appraisal (against compound-interest tables), the catalog, sites' hop pricing, and
the options table of universal_service.costs on a synthetic region."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter

import numpy as np
import pytest

from universal_service import appraisal, catalog, costs, io, network, sites, terrain
from universal_service.errors import InputDataError

# Compound interest factor tables (Newnan, Eschenbach & Lavelle, Engineering Economic Analysis,
# Appendix C; the same values appear in every engineering-economics text):
#   (P/A, 10%, 10) = 6.1446, (P/A, 8%, 15) = 8.5595, (A/P, 8%, 20) = 0.10185, (P/A, 5%, 20) = 12.4622


@pytest.mark.parametrize(
    ("rate", "years", "factor"),
    [(0.10, 10, 6.1446), (0.08, 15, 8.5595), (0.05, 20, 12.4622), (0.0, 7, 7.0)],
)
def test_annuity_factor_tables(rate, years, factor):
    assert appraisal.annuity_factor(rate, years) == pytest.approx(factor, abs=5e-5)


def test_capital_recovery_factor_table():
    assert appraisal.capital_recovery_factor(0.08, 20) == pytest.approx(0.10185, abs=5e-6)


def _npv_by_cash_flows(capex, opex, rate, horizon, life):
    """Year-by-year cash flows, discounted one by one (an independent second method)."""
    flows = np.zeros(horizon + 1)
    t = 0
    while t < horizon:
        flows[t] += capex
        last = t
        t += life
    flows[1:] += opex
    flows[horizon] -= capex * (1 - (horizon - last) / life)
    return sum(f / (1 + rate) ** k for k, f in enumerate(flows))


@pytest.mark.parametrize(("horizon", "life"), [(15, 10), (15, 15), (15, 25), (20, 7), (10, 3)])
def test_npv_matches_cash_flows(horizon, life):
    got = appraisal.npv(1000.0, 50.0, rate=0.08, horizon_years=horizon, lifetime_years=life)
    assert got == pytest.approx(_npv_by_cash_flows(1000.0, 50.0, 0.08, horizon, life), rel=1e-12)


def test_npv_equal_life_and_horizon_is_capex_plus_annuity():
    got = appraisal.npv(1000.0, 100.0, rate=0.10, horizon_years=10, lifetime_years=10)
    assert got == pytest.approx(1000.0 + 100.0 * 6.1446, abs=0.01)


def test_affordable_tariff_caps_at_share_and_list():
    income, size = np.array([600.0, 5000.0]), np.array([3.0, 3.0])
    t = appraisal.affordable_tariff(income, size, share=0.02, basis="household", list_tariff=50.0)
    np.testing.assert_allclose(t, [36.0, 50.0])
    # the A4AI / Broadband Commission basis: 2% of income per person
    t = appraisal.affordable_tariff(income, size, share=0.02, basis="per_capita", list_tariff=50.0)
    np.testing.assert_allclose(t, [12.0, 50.0])
    with pytest.raises(ValueError, match="per_capita"):
        appraisal.affordable_tariff(income, size, share=0.02, basis="family", list_tariff=50.0)


def test_household_size_defaults_where_no_households():
    got = appraisal.household_size(np.array([300.0, 50.0]), np.array([100.0, 0.0]), 3.3)
    np.testing.assert_allclose(got, [3.0, 3.3])


def test_revenue_npv_without_ramp_is_an_annuity_of_monthly_revenue():
    # 25 households, 40% take-up from year 1: 10 subscribers at CNY 36/month, 50% margin,
    # over (P/A, 10%, 10) = 6.1446
    path = appraisal.take_up_path(0.4, 0.0, 10)
    got = appraisal.revenue_npv(
        np.array([36.0]), np.array([0.0]), np.array([25.0]), path, margin=0.5, rate=0.10
    )
    assert got[0] == pytest.approx(36.0 * 12 * 10 * 0.5 * 6.1446, rel=1e-5)


def test_revenue_is_incremental_over_todays_spend():
    path = appraisal.take_up_path(1.0, 0.0, 10)
    got = appraisal.revenue_npv(
        np.array([36.0, 36.0, 36.0]),
        np.array([0.0, 6.0, 40.0]),
        np.array([1.0, 1.0, 1.0]),
        path,
        margin=1.0,
        rate=0.10,
    )
    np.testing.assert_allclose(got, np.array([36.0, 30.0, 0.0]) * 12 * 6.1446, rtol=1e-5)


def test_discount_factors_sum_to_the_annuity_factor():
    assert appraisal.discount_factors(0.08, 15).sum() == pytest.approx(8.5595, abs=5e-5)


def test_subsidy_floors_at_zero_and_adds_the_site_share():
    got = appraisal.subsidy(
        np.array([100.0, 100.0, 100.0]), np.array([0.0, 0.0, 30.0]), np.array([40.0, 150.0, 40.0])
    )
    np.testing.assert_allclose(got, [60.0, 0.0, 90.0])


def test_hop_capex_by_length_class():
    mw = {"hop_class_max_km": [5.0, 15.0], "hop_capex_cny": [100.0, 200.0]}
    got = sites.hop_capex(np.array([0.0, 5.0, 5.01, 15.0, 15.5]), mw)
    np.testing.assert_array_equal(got, [100.0, 100.0, 200.0, 200.0, np.inf])


def test_catalog_loads_with_sources():
    cat = catalog.load_catalog()
    assert cat.meta["currency"] == "CNY"
    for tech in ("fiber", "microwave", "lte", "satellite"):
        assert cat[tech]["source"].strip()


def test_catalog_missing_unit_key(tmp_path):
    text = catalog.DEFAULT_CATALOG.read_text().replace("capex_cny_per_km = 60000.0\n", "")
    p = tmp_path / "cat.toml"
    p.write_text(text)
    with pytest.raises(InputDataError, match=r"technology 'fiber': missing \['capex_cny_per_km'\]"):
        catalog.load_catalog(p)


def test_build_options_on_synthetic_region(synth_region_dir):
    region = io.load_region(synth_region_dir)
    opts = costs.build_options(region)
    t = opts.table
    # every village not yet on broadband has satellite; existing broadband has the free option
    bb = region.villages["existing_service"].isin(["4g", "fiber"])
    todo = set(region.villages.loc[~bb, "village_id"])
    assert todo == set(t.loc[t.technology == "satellite", "village_id"])
    assert set(t.loc[t.option_id == "existing", "village_id"]) == set(
        region.villages.loc[bb, "village_id"]
    )
    assert (t.loc[t.option_id == "existing", "cost"] == 0).all()
    assert (t["cost"] >= 0).all() and np.isfinite(t["cost"]).all()
    assert not t.duplicated(["village_id", "option_id"]).any()
    lte = t[t.technology == "lte"]
    assert len(lte) > 0 and set(lte["site_id"]) <= set(opts.sites["site_id"])
    np.testing.assert_allclose(t["net_cost"], t["cost"] - t["revenue_npv"])
    np.testing.assert_allclose(t["subsidy"], np.maximum(t["net_cost"], 0))
    existing = t.option_id == "existing"
    assert (t.loc[existing, "revenue_npv"] == 0).all()
    assert t.loc[existing, "tariff_monthly"].isna().all()
    assert (t.loc[~existing, "tariff_monthly"] > 0).all()
    assert (t["opex_per_year"] >= 0).all() and (t["capex"] >= 0).all()
    # capex and opex per year give the NPV cost (one appraisal convention); the last mile is
    # cpe_cny per subscriber (households x take-up), on its own life
    fib = catalog.load_catalog()["fiber"]
    f = t[t.technology == "fiber"]
    hh = region.villages.set_index("village_id")["households"].reindex(f["village_id"])
    take_up = scenarios_policy_take_up()
    np.testing.assert_allclose(f["last_mile_capex"], fib["cpe_cny"] * hh.to_numpy() * take_up)
    np.testing.assert_allclose(
        f["last_mile_npv"],
        appraisal.npv(
            f["last_mile_capex"],
            0.0,
            rate=0.08,
            horizon_years=15,
            lifetime_years=fib["cpe_lifetime_years"],
        ),
    )
    np.testing.assert_allclose(
        f["cost"] - f["last_mile_npv"],
        appraisal.npv(
            f["capex"] - f["last_mile_capex"],
            f["opex_per_year"],
            rate=0.08,
            horizon_years=15,
            lifetime_years=fib["lifetime_years"],
        ),
        rtol=1e-12,
    )
    assert (t.loc[t.technology == "lte", "last_mile_capex"] == 0).all()  # own phones
    assert (t.loc[existing, "last_mile_capex"] == 0).all()
    sat = t[t.technology == "satellite"]
    cat = catalog.load_catalog()
    hh_s = region.villages.set_index("village_id")["households"].reindex(sat["village_id"])
    mbps = np.maximum(
        hh_s.to_numpy() * take_up * cat.meta["busy_hour_mbps_per_subscriber"],
        cat["satellite"]["min_capacity_mbps"],
    )
    expected = (
        cat["satellite"]["opex_cny_per_year"]
        + 12 * mbps * cat["satellite"]["capacity_cny_per_mbps_month"]
    )
    np.testing.assert_allclose(sat["opex_per_year"], expected)
    # 4G: busy-hour demand on the site, and capacity bought at the extra-carrier rate per Mbps
    lte_rows = t[t.technology == "lte"]
    lte_cat = cat["lte"]
    hh_l = region.villages.set_index("village_id")["households"].reindex(lte_rows["village_id"])
    demand = hh_l.to_numpy() * take_up * cat.meta["busy_hour_mbps_per_subscriber"]
    np.testing.assert_allclose(lte_rows["demand_mbps"], demand)
    carrier = (
        lte_cat["spectral_efficiency_bps_per_hz"]
        * lte_cat["carrier_bandwidth_mhz"]
        * lte_cat["sectors"]
    )
    assert carrier == pytest.approx(33.0)
    np.testing.assert_allclose(
        lte_rows["capex"], lte_cat["capex_cny"] + demand * lte_cat["carrier_capex_cny"] / carrier
    )
    assert (t.loc[t.technology != "lte", "demand_mbps"] == 0).all()
    np.testing.assert_allclose(opts.sites["capacity_mbps"], carrier * lte_cat["max_carriers"])
    assert np.isfinite(opts.sites["cost"]).all()
    # deterministic
    again = costs.build_options(region).table
    assert again.equals(t)


def test_build_options_computes_slope_and_routes_once(synth_region_dir, monkeypatch):
    """The options builder computes the slope grid and the PoP routes once and passes them on."""
    calls: Counter[str] = Counter()

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller in {"universal_service.costs", "universal_service.sites"}:
                calls[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counting(terrain, "slope_deg")
    counting(network, "nearest_pop_routes")
    costs.build_options(io.load_region(synth_region_dir))
    assert calls == {"slope_deg": 1, "nearest_pop_routes": 1}


def test_site_components_are_rebought_at_the_end_of_their_own_lives() -> None:
    """A 4G site's NPV from explicit cash flows: structure, equipment and solar power each
    re-bought at the end of its life, the unused share credited at the horizon."""
    lte = catalog.load_catalog()["lte"]
    rate, horizon = 0.08, 15
    new, solar = lte["site_new_capex_cny"], lte["site_solar_capex_cny"]

    def pv(amount: float, life: float) -> float:
        total, t = 0.0, 0.0
        while t < horizon:
            total += amount * (1 + rate) ** -t
            last, t = t, t + life
        return total - amount * (1 - (horizon - last) / life) * (1 + rate) ** -horizon

    share = lte["site_structure_share"]
    opex = sum(lte["site_opex_cny_per_year"] * (1 + rate) ** -t for t in range(1, horizon + 1))
    expected_new = (
        pv(share * new, lte["site_structure_lifetime_years"])
        + pv((1 - share) * new, lte["lifetime_years"])
        + pv(solar, lte["site_power_lifetime_years"])
        + opex
    )
    upgrade = lte["site_upgrade_capex_cny"]
    expected_tower = pv(upgrade, lte["lifetime_years"]) + opex
    got = sites.site_npv_by_component(
        np.array(["hilltop", "tower"]),
        np.array([new, upgrade]),
        np.array([solar, 0.0]),
        lte,
        rate,
        horizon,
    )
    np.testing.assert_allclose(got, [expected_new, expected_tower], rtol=1e-12)
    # one life for the whole site when the catalog has no component keys
    plain = {k: v for k, v in lte.items() if not k.startswith(("site_structure", "site_power"))}
    one = sites.site_npv_by_component(
        np.array(["hilltop"]), np.array([new]), np.array([solar]), plain, rate, horizon
    )
    np.testing.assert_allclose(one, pv(new + solar, lte["lifetime_years"]) + opex, rtol=1e-12)
    # a grid connection lasts as long as the structure
    grid = lte["site_grid_capex_cny"]
    with_grid = sites.site_npv_by_component(
        np.array(["village"]),
        np.array([new]),
        np.array([0.0]),
        lte,
        rate,
        horizon,
        np.array([grid]),
    )
    expected = (
        pv(share * new, lte["site_structure_lifetime_years"])
        + pv((1 - share) * new, lte["lifetime_years"])
        + pv(grid, lte["site_structure_lifetime_years"])
        + opex
    )
    np.testing.assert_allclose(with_grid, expected, rtol=1e-12)


def test_site_capex_by_kind_and_power(synth_region_dir) -> None:
    """Towers pay the upgrade; new masts the new price plus the grid where electrified, else
    solar."""
    opts = costs.build_options(io.load_region(synth_region_dir))
    lte = catalog.load_catalog()["lte"]
    s = opts.sites
    tower = s["kind"] == "tower"
    on = s["electrified"].astype(bool)
    np.testing.assert_allclose(s.loc[tower, "capex"], lte["site_upgrade_capex_cny"])
    np.testing.assert_allclose(
        s.loc[~tower & on, "capex"], lte["site_new_capex_cny"] + lte["site_grid_capex_cny"]
    )
    np.testing.assert_allclose(
        s.loc[~tower & ~on, "capex"], lte["site_new_capex_cny"] + lte["site_solar_capex_cny"]
    )
    assert (~tower & on).any() and (~tower & ~on).any()


def scenarios_policy_take_up() -> float:
    """The default policy's final take-up [-]."""
    from universal_service.schema import PolicyConfig

    return PolicyConfig().take_up


def test_every_microwave_hop_pays_for_its_hubs_backhaul(synth_region_dir) -> None:
    """PoPs and 4G towers feed a hop as they stand; a 2G/3G mast feeds one only through its
    candidate 4G site, whose cost carries the broadband backhaul and is paid once in the plan."""
    region = io.load_region(synth_region_dir)
    h = sites.hubs(region).set_index("hub_id")
    tech = region.towers.set_index("tower_id")["technology"]
    for tower_id, t in tech.items():
        assert h.at[f"t:{tower_id}", "site_id"] == ("" if t == "4g" else f"t:{tower_id}")
    assert (h.loc[h.index.str.startswith("p:"), "site_id"] == "").all()
    opts = costs.build_options(region)
    mw = opts.table[opts.table.technology == "microwave"]
    free = mw[mw.site_id == ""]
    assert (free.option_id == "microwave").all() and free.village_id.is_unique
    narrow = {f"t:{t}" for t in tech[tech != "4g"].index}
    assert not any(any(f"from {n}" in d for n in narrow) for d in free["detail"])
    linked = mw[mw.site_id != ""]
    assert len(linked) and set(linked.site_id) <= narrow & set(opts.sites.site_id)
    assert (linked.option_id == "microwave@" + linked.site_id).all()
    assert all(f"from {s}" in d for s, d in zip(linked.site_id, linked.detail, strict=True))


def test_route_graph_is_built_once_per_region_and_not_pickled(synth_region_dir) -> None:
    """The baseline's reach test and the options share one route graph; a pickled (or new)
    Region starts without it."""
    import pickle

    region = io.load_region(synth_region_dir)
    slope = terrain.slope_deg(region.dem)
    g1 = costs.route_graph(region, region.villages, slope)
    assert costs.route_graph(region, region.villages, terrain.slope_deg(region.dem)) is g1
    fewer = region.villages.iloc[:-1]
    assert costs.route_graph(region, fewer, slope) is not g1  # other nodes, other graph
    assert pickle.loads(pickle.dumps(region)).memo == {}
    assert dataclasses.replace(region).memo == {}
