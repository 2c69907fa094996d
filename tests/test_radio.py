"""Tests of ``pathloss`` and ``radio``: reference values, Bullington, RMa/Hata, coverage, hops.

Reference sources are named in each test: ITU-R P.525/P.526/P.530 practical-unit formulas, and the
worked knife-edge examples of Rappaport, *Wireless Communications: Principles and Practice*,
2nd ed. (Prentice Hall, 2002), §4.9.2, Examples 4.7 and 4.8.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rioxarray
import xarray as xr
from rasterio.enums import Resampling

from universal_service import los, pathloss, radio, terrain
from universal_service.schema import RadioConfig

ROOT = Path(__file__).resolve().parents[1]
SRTM = ROOT / "tests" / "data" / "dem" / "shenzhen_hk_srtm3.tif"
K43 = 4.0 / 3.0
C = los.SPEED_OF_LIGHT_M_S
#: The scenario's radio defaults with a 1.5 m handset and a 15 km range, at 900 MHz.
RADIO_900 = RadioConfig(village_height_m=1.5, max_range_m=15_000.0)


def make_dem(z: np.ndarray, res: float = 90.0, x0: float = 500_000.0, y0: float = 2_500_000.0):
    ny, nx = z.shape
    da = xr.DataArray(
        np.asarray(z, dtype=np.float64),
        dims=("y", "x"),
        coords={"y": y0 - res * np.arange(ny), "x": x0 + res * np.arange(nx)},
    )
    return da.rio.write_crs("EPSG:32649")


# ---------------------------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f_mhz", "d_km"), [(900.0, 1.0), (1000.0, 1.0), (2400.0, 10.0), (7000.0, 30.0), (150.0, 0.2)]
)
def test_free_space_loss_matches_p525_practical_formula(f_mhz, d_km):
    # ITU-R P.525-4 §2.2: L_bf = 32.4 + 20 log f(MHz) + 20 log d(km) (constant rounded from 32.45)
    p525 = 32.4 + 20 * np.log10(f_mhz) + 20 * np.log10(d_km)
    assert pathloss.free_space_loss_db(d_km * 1000, f_mhz) == pytest.approx(p525, abs=0.06)


def test_free_space_loss_exact_value():
    # 20 log10(4 pi d / lambda) at 1 GHz, 1 km = 92.45 dB
    assert pathloss.free_space_loss_db(1000.0, 1000.0) == pytest.approx(92.448, abs=1e-3)
    # doubling the distance adds 6.02 dB
    assert pathloss.free_space_loss_db(2000.0, 900.0) - pathloss.free_space_loss_db(
        1000.0, 900.0
    ) == pytest.approx(20 * np.log10(2))


def test_earth_bulge_textbook_form():
    # h = d1 d2 / (12.74 k) [m, d in km] (12.74 = 2 x 6.371): 50 km path, mid-point, k = 4/3
    assert los.earth_bulge_m(25_000.0, 25_000.0, K43) == pytest.approx(36.8, abs=0.05)
    d1, d2 = np.array([1e3, 5e3, 20e3]), np.array([9e3, 30e3, 20e3])
    np.testing.assert_allclose(
        los.earth_bulge_m(d1, d2, 2 / 3), (d1 / 1e3) * (d2 / 1e3) / (12.742 * 2 / 3), rtol=1e-6
    )
    assert los.earth_bulge_m(10e3, 10e3, np.inf) == 0.0


@pytest.mark.parametrize(("f_ghz", "d1_km", "d2_km"), [(7.0, 10.0, 20.0), (10.0, 10.0, 10.0)])
def test_fresnel_radius_matches_p530_practical_formula(f_ghz, d1_km, d2_km):
    # ITU-R P.530-18 eq. (3): F1 = 17.3 sqrt(d1 d2 / (f d)) m, f in GHz, d in km
    p530 = 17.3 * np.sqrt(d1_km * d2_km / (f_ghz * (d1_km + d2_km)))
    ours = los.fresnel_radius_m(d1_km * 1e3, d2_km * 1e3, f_ghz * 1e3)
    assert ours == pytest.approx(p530, rel=2e-3)  # 17.3 is 17.31 rounded
    assert los.fresnel_radius_m(d1_km * 1e3, d2_km * 1e3, f_ghz * 1e3, n=2) == pytest.approx(
        np.sqrt(2) * ours
    )
    assert los.fresnel_radius_m(0.0, 5e3, 900.0) == 0.0


def test_knife_edge_p526_values():
    # ITU-R P.526-15 eq. (31): J(0) = 6.0 dB; 0 dB for v <= -0.78
    assert pathloss.knife_edge_loss_db(0.0) == pytest.approx(6.03, abs=0.01)
    np.testing.assert_array_equal(pathloss.knife_edge_loss_db([-0.8, -2.0]), [0.0, 0.0])
    assert pathloss.knife_edge_loss_db(-0.7) > 0.0
    assert np.isnan(pathloss.knife_edge_loss_db(np.nan))
    v = np.linspace(-0.7, 5, 50)
    assert (np.diff(pathloss.knife_edge_loss_db(v)) > 0).all()


def test_knife_edge_rappaport_example_4_7():
    """Rappaport (2002) Example 4.7: lambda = 1/3 m, d1 = d2 = 1 km.

    (a) h = 25 m: v = 2.74, diffraction loss 22 dB; (b) h = 0: v = 0, 6 dB; (c) h = -25 m:
    v = -2.74, about 1 dB read from his Fig. 4.14 and 0 dB by the Lee approximation (P.526's J(v)
    is 0 below v = -0.78).
    """
    f_mhz = C / (1.0 / 3.0) / 1e6
    v = pathloss.diffraction_parameter([25.0, 0.0, -25.0], 1000.0, 1000.0, f_mhz)
    np.testing.assert_allclose(v, [2.74, 0.0, -2.74], atol=0.005)
    loss = pathloss.knife_edge_loss_db(v)
    assert loss[0] == pytest.approx(22.0, abs=0.5)
    assert loss[1] == pytest.approx(6.0, abs=0.1)
    assert loss[2] == 0.0


def test_knife_edge_rappaport_example_4_8():
    """Rappaport (2002) Example 4.8: 900 MHz, Tx 50 m, Rx 25 m, a 100 m obstacle 10 km from the
    Tx and 2 km from the Rx: v = 4.24, diffraction loss 25.5 dB."""
    f_mhz = C / (1.0 / 3.0) / 1e6
    h = 100.0 - (50.0 + (25.0 - 50.0) * 10.0 / 12.0)  # above the line of sight
    v = pathloss.diffraction_parameter(h, 10_000.0, 2_000.0, f_mhz)
    assert v == pytest.approx(4.24, abs=0.02)
    assert pathloss.knife_edge_loss_db(v) == pytest.approx(25.5, abs=0.5)


# ---------------------------------------------------------------------------------------------
# Bullington over a profile
# ---------------------------------------------------------------------------------------------


def spike_profile(spike_m: float, at: int = 30, n: int = 101, length_m: float = 10_000.0):
    """A flat 0 m profile with one sample raised to ``spike_m``."""
    d = np.linspace(0.0, length_m, n)[None, :]
    z = np.zeros_like(d)
    z[0, at] = spike_m
    return los.Profiles(
        distance_m=d,
        elevation_m=z,
        x_m=d.copy(),
        y_m=np.zeros_like(d),
        n_samples=np.array([n]),
        length_m=np.array([length_m]),
    )


@pytest.mark.parametrize("spike", [40.0, 5.0])
def test_bullington_single_edge_reduces_to_knife_edge(spike):
    """With one edge the Bullington point is the edge (P.452-16 eqs. (14)-(21)), so
    L_b = J(v) + (1 - exp(-J/6)) (10 + 0.02 d[km]) (eq. (22)), v of the edge by P.526 eq. (26)."""
    f = 900.0
    prof = spike_profile(spike)
    loss = pathloss.bullington_loss_db(prof, 10.0, 10.0, frequency_mhz=f, k_factor=np.inf)
    v = pathloss.diffraction_parameter(spike - 10.0, 3_000.0, 7_000.0, f)
    j = pathloss.knife_edge_loss_db(v)
    assert loss[0] == pytest.approx(j + (1 - np.exp(-j / 6)) * (10 + 0.02 * 10.0), rel=1e-9)


def test_bullington_clear_path_and_bad_ends():
    # antennas 200 m above a flat profile: v << -0.78, no loss
    prof = spike_profile(0.0)
    assert pathloss.bullington_loss_db(prof, 200.0, 200.0, frequency_mhz=900.0)[0] == 0.0
    prof = prof._replace(elevation_m=np.where(np.arange(101) == 0, np.nan, 0.0)[None, :])
    assert np.isnan(pathloss.bullington_loss_db(prof, 10.0, 10.0, frequency_mhz=900.0)[0])


def test_terrain_excess_loss_is_zero_on_smooth_ground_and_grows_with_the_obstacle():
    losses = [
        pathloss.terrain_excess_loss_db(spike_profile(h), 35.0, 1.5, frequency_mhz=900.0)[0]
        for h in (0.0, 20.0, 60.0, 120.0)
    ]
    assert losses[0] == 0.0
    assert losses[1] < losses[2] < losses[3]


# ---------------------------------------------------------------------------------------------
# Empirical models
# ---------------------------------------------------------------------------------------------


def test_rma_reference_value_and_shape():
    # Hand calculation from TR 38.901 Table 7.4.1-1: 900 MHz, h_BS 35 m, h_UT 1.5 m, d 5 km:
    # d_BP = 990.3 m, PL1(d_BP) = 93.56 dB, PL2 = PL1(d_BP) + 40 log10(5000.1 / 990.3) = 121.7 dB
    assert pathloss.rma_path_loss_db(5_000.0, 900.0) == pytest.approx(121.7, abs=0.1)
    d = np.geomspace(10.0, 15_000.0, 400)
    pl_los = pathloss.rma_path_loss_db(d, 900.0)
    nlos = pathloss.rma_path_loss_db(d, 900.0, los=False)
    assert (np.diff(pl_los) > 0).all()
    assert (nlos >= pl_los).all() and (nlos > pl_los + 10).any()
    # continuity at the breakpoint
    d_bp = 2 * np.pi * 35.0 * 1.5 * 900e6 / C
    below, above = pathloss.rma_path_loss_db([d_bp * 0.9999, d_bp * 1.0001], 900.0)
    assert above - below == pytest.approx(0.0, abs=0.01)


def test_hata_reference_values():
    # Hata (1980), hand calculation: 900 MHz, h_b 30 m, h_m 1.5 m, 10 km: urban 161.6 dB,
    # open area 161.6 - [4.78 (log f)^2 - 18.33 log f + 40.94] = 133.1 dB
    urban = pathloss.hata_path_loss_db(10_000.0, 900.0, environment="urban")
    open_ = pathloss.hata_path_loss_db(10_000.0, 900.0, environment="open")
    suburban = pathloss.hata_path_loss_db(10_000.0, 900.0, environment="suburban")
    assert urban == pytest.approx(161.6, abs=0.05)
    assert open_ == pytest.approx(133.1, abs=0.05)
    assert open_ < suburban < urban
    with pytest.raises(ValueError, match="environment"):
        pathloss.hata_path_loss_db(1_000.0, 900.0, environment="forest")


# ---------------------------------------------------------------------------------------------
# Link budget and coverage
# ---------------------------------------------------------------------------------------------


def test_link_budget_defaults_and_validation():
    b = radio.LinkBudget.from_config(RADIO_900, frequency_mhz=900.0)
    assert b.eirp_dbm == 46.0 + 15.0 - 2.0
    assert b.max_path_loss_db == pytest.approx(59.0 + 94.0 - 10.0)
    assert b.rx_dbm(143.0) == pytest.approx(b.threshold_dbm + b.fade_margin_db)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.frequency_mhz = 700.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_range_m"):
        dataclasses.replace(b, max_range_m=0.0)


@pytest.fixture(scope="module")
def srtm_dem():
    src = rioxarray.open_rasterio(SRTM, masked=True).squeeze("band", drop=True)
    utm = src.rio.reproject("EPSG:32649", resolution=90.0, resampling=Resampling.bilinear)
    return utm.fillna(0.0).astype("float32")


@pytest.fixture(scope="module")
def coverage_case(srtm_dem):
    dem = srtm_dem
    rng = np.random.default_rng(7)
    land = np.argwhere(dem.values > 5.0)
    pick = land[rng.choice(len(land), 300, replace=False)]
    vx, vy = dem.x.values[pick[:, 1]], dem.y.values[pick[:, 0]]
    tops = terrain.hilltops(dem, window_m=3_000.0, min_prominence_m=80.0, max_n=60)
    sx = np.concatenate([tops["x"].to_numpy(), vx[:20]])
    sy = np.concatenate([tops["y"].to_numpy(), vy[:20]])
    sh = np.where(np.arange(sx.size) % 2 == 0, 30.0, 45.0)
    site_ids = np.array([f"s{i:03d}" for i in range(sx.size)])
    village_ids = np.array([f"v{i:03d}" for i in range(vx.size)])
    budget = radio.LinkBudget.from_config(
        RadioConfig(village_height_m=1.5, max_range_m=10_000.0), frequency_mhz=900.0
    )
    cm = radio.coverage_matrix(
        dem, sx, sy, sh, vx, vy, site_ids=site_ids, village_ids=village_ids, budget=budget
    )
    return dem, (sx, sy, sh, site_ids), (vx, vy, village_ids), budget, cm


def test_coverage_matrix_pairs_are_exactly_those_in_range(coverage_case):
    _, (sx, sy, _, site_ids), (vx, vy, village_ids), budget, cm = coverage_case
    assert list(cm.columns) == [
        "site_id",
        "village_id",
        "distance_m",
        "los",
        "clearance_ratio",
        "path_loss_db",
        "rx_dbm",
        "covered",
    ]
    dist = np.hypot(sx[:, None] - vx[None, :], sy[:, None] - vy[None, :])
    si, vi = np.nonzero(dist <= budget.max_range_m)
    expected = set(zip(site_ids[si], village_ids[vi], strict=True))
    got = set(zip(cm["site_id"], cm["village_id"], strict=True))
    assert got == expected and len(cm) == len(expected)
    assert (cm["distance_m"] <= budget.max_range_m).all()
    lookup = dict(zip(zip(site_ids[si], village_ids[vi], strict=True), dist[si, vi], strict=True))
    np.testing.assert_allclose(
        cm["distance_m"], [lookup[p] for p in zip(cm["site_id"], cm["village_id"], strict=True)]
    )
    assert (cm["distance_m"] == 0).sum() == 20  # the 20 sites placed at villages


def test_coverage_matrix_invariants(coverage_case):
    _, (_, _, sh, site_ids), _, budget, cm = coverage_case
    cm = cm.assign(site_height=sh[pd.Index(site_ids).get_indexer(cm["site_id"])])
    assert cm["los"].dtype == bool and cm["covered"].dtype == bool
    threshold = budget.threshold_dbm + budget.fade_margin_db
    assert (cm.loc[cm["covered"], "rx_dbm"] >= threshold).all()
    assert (cm.loc[~cm["covered"], "rx_dbm"] < threshold).all()
    np.testing.assert_allclose(cm["rx_dbm"], budget.eirp_dbm - cm["path_loss_db"])
    finite = cm["clearance_ratio"].replace(np.inf, np.nan).dropna()
    assert (cm.loc[finite.index, "los"] == (finite >= 0)).all()
    # the terrain term only adds loss to the RMa LOS baseline (whose d_3D is at least d_2D)
    baseline = pathloss.rma_path_loss_db(
        cm["distance_m"].to_numpy(), 900.0, bs_height_m=cm["site_height"], height_difference_m=0.0
    )
    assert (cm["path_loss_db"] >= baseline - 1e-9).all()
    assert cm[["site_id", "village_id"]].apply(tuple, axis=1).is_monotonic_increasing
    assert 0 < cm["covered"].mean() < 1 and 0 < cm["los"].mean() < 1


def test_coverage_los_matches_line_of_sight(coverage_case):
    dem, (sx, sy, sh, site_ids), (vx, vy, village_ids), budget, cm = coverage_case
    sub = cm.sample(200, random_state=1)
    s = pd.Index(site_ids).get_indexer(sub["site_id"])
    v = pd.Index(village_ids).get_indexer(sub["village_id"])
    clear = los.line_of_sight(
        dem, sx[s], sy[s], sh[s], vx[v], vy[v], budget.village_height_m, k_factor=budget.k_factor
    )
    np.testing.assert_array_equal(sub["los"].to_numpy(), clear)


def test_coverage_flat_terrain_is_rma_los():
    dem = make_dem(np.full((50, 50), 300.0))
    x, y = dem.x.values, dem.y.values
    budget = radio.LinkBudget.from_config(RADIO_900, frequency_mhz=900.0)
    cm = radio.coverage_matrix(
        dem, [x[25]], [y[25]], 35.0, x[[30, 45, 49]], y[[25, 10, 0]], budget=budget
    )
    assert cm["los"].all()
    np.testing.assert_allclose(
        cm["path_loss_db"], pathloss.rma_path_loss_db(cm["distance_m"], 900.0), atol=1e-9
    )


def test_coverage_matrix_empty_inputs():
    dem = make_dem(np.zeros((5, 5)))
    budget = radio.LinkBudget.from_config(RADIO_900, frequency_mhz=900.0)
    cm = radio.coverage_matrix(
        dem, [], [], None, [dem.x.values[0]], [dem.y.values[0]], budget=budget
    )
    assert cm.empty and "covered" in cm.columns


# ---------------------------------------------------------------------------------------------
# Microwave hops
# ---------------------------------------------------------------------------------------------


def test_length_classes():
    np.testing.assert_array_equal(
        radio.length_class([500.0, 9_999.0, 10_000.0, 29_999.0, 30_000.0, 80_000.0]),
        ["short", "short", "medium", "medium", "long", "long"],
    )


def test_microwave_hop_over_flat_ground_and_a_ridge():
    z = np.zeros((3, 601))  # 60 km of flat ground at 100 m cells
    dem = make_dem(z, res=100.0)
    x, y = dem.x.values, dem.y.values[1]
    hops = radio.microwave_hop(
        dem,
        x[0],
        y,
        [60.0, 30.0, 60.0],
        x[[200, 500, 80]],
        y,
        [60.0, 30.0, 60.0],
        frequency_mhz=7_000.0,
    )
    assert list(hops["length_class"]) == ["medium", "long", "short"]
    # 20 km, 60 m masts: bulge 11.8 m at k = 2/3, F1 14.6 m: clear at both k
    assert hops["feasible"].tolist() == [True, False, True]
    # 50 km, 30 m masts: the k = 2/3 bulge (73.6 m) blocks it
    assert hops.loc[1, "clearance_ratio_low_k"] < 0
    assert (hops["clearance_ratio_median_k"] > hops["clearance_ratio_low_k"]).all()
    assert hops.loc[0, "free_space_loss_db"] == pytest.approx(
        pathloss.free_space_loss_db(20_000.0, 7_000.0)
    )
    ridge = z.copy()
    ridge[:, 95:106] = 55.0
    blocked = radio.microwave_hop(
        make_dem(ridge, res=100.0), x[0], y, 60.0, x[200], y, 60.0, frequency_mhz=7_000.0
    )
    assert not blocked.loc[0, "feasible"]
    assert blocked.loc[0, "meets_low_k"] == (blocked.loc[0, "clearance_ratio_low_k"] >= 0.6)
