"""Fiber's cost per metre by terrain class and laying method (``universal_service.fibercost``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from universal_service import catalog, fibercost, network

from .test_network import ridge_dem, village_nodes

CLASSES = fibercost.TerrainCosts((5.0, 15.0, 30.0), (1.0, 1.3, 1.6, 2.0), (0.4, 0.46, 0.54, 0.64))


def test_the_cheaper_method_in_each_slope_class() -> None:
    slope = np.array([0.0, 4.9, 5.0, 10.0, 29.0, 45.0, np.nan])
    got = fibercost.fiber_multiplier(slope, 300.0, CLASSES)
    np.testing.assert_allclose(got[:-1], [0.4, 0.4, 0.4, 0.46, 0.54, 0.64])
    assert np.isnan(got[-1])
    buried_only = fibercost.TerrainCosts(CLASSES.slope_bounds_deg, CLASSES.buried)
    np.testing.assert_allclose(
        fibercost.fiber_multiplier(slope[:-1], 300.0, buried_only), [1.0, 1.0, 1.0, 1.3, 1.6, 2.0]
    )
    # aerial dearer than buried in a class: buried is taken there
    mixed = fibercost.TerrainCosts((10.0,), (1.0, 3.0), (1.5, 2.0))
    np.testing.assert_allclose(fibercost.fiber_multiplier([2.0, 20.0], 0.0, mixed), [1.0, 2.0])
    assert CLASSES.flat == 0.4 and buried_only.flat == 1.0
    # no classes: the OnSSET trench multiplier
    np.testing.assert_allclose(
        fibercost.fiber_multiplier(slope, 300.0), fibercost.trench_multiplier(slope, 300.0)
    )


def test_the_bundled_catalog_states_its_classes() -> None:
    fib = catalog.load_catalog()["fiber"]
    classes = fibercost.terrain_costs(fib)
    assert classes is not None and classes.aerial is not None
    assert len(classes.buried) == len(classes.slope_bounds_deg) + 1 == len(classes.aerial)
    assert list(classes.buried) == sorted(classes.buried)  # steeper never cheaper
    assert fibercost.terrain_costs({"capex_cny_per_km": 1.0}) is None


def test_routes_over_the_ridge_cost_more_than_routes_beside_it() -> None:
    """With the classes, a route's multiplier is the mean of the cheaper method along it: flat
    routes at the aerial flat rate, routes across the ridge dearer."""
    G = network.route_graph(village_nodes(), ridge_dem(), terrain_classes=CLASSES)
    data = pd.DataFrame(
        [(G.nodes[a]["x"], G.nodes[b]["x"], d["multiplier"]) for a, b, d in G.edges(data=True)],
        columns=["xa", "xb", "m"],
    )
    lo, hi = data[["xa", "xb"]].min(axis=1), data[["xa", "xb"]].max(axis=1)
    away = (hi < 3_500.0) | (lo > 6_500.0)
    crosses = (lo < 4_000.0) & (hi > 6_000.0)
    np.testing.assert_allclose(data.loc[away, "m"], 0.4)
    assert (data.loc[crosses, "m"] > 0.4).all()
    assert (data["m"] <= 0.64 + 1e-9).all()


@pytest.mark.parametrize("routing", ["raster", "straight"])
def test_both_routings_use_the_same_surface(routing: str) -> None:
    G = network.route_graph(village_nodes(), ridge_dem(), terrain_classes=CLASSES, routing=routing)
    m = np.array([d for *_, d in G.edges(data="multiplier")])
    assert ((m >= 0.4 - 1e-9) & (m <= 0.64 + 1e-9)).all()
