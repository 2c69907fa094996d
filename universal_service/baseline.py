"""What the existing network provides at each village, by the plan's own coverage and route tests.

A region's ``existing_service`` column is a claim about its baseline year. This module is the one
rule that says which claims the existing network supports:

* **mobile**: the best technology (``2g`` < ``3g`` < ``4g``) among the existing towers that cover
  the village under the plan's radio test (:func:`universal_service.costs.lte_coverage`: the
  catalog's 4G carrier, the scenario's link budget and Fresnel fraction, over the DEM);
* **fiber**: the village's routed distance to the nearest point of presence over the plan's route
  graph (:func:`universal_service.costs.route_graph`) is within the region's fiber reach,
  ``fiber_reach_km`` in the ``[meta]`` table of ``region.toml`` (the baseline's fixed network is
  described by that one figure: the villages that close to a PoP were fibered by the baseline
  year).

The bundled region's builder labels villages with :func:`service_levels`, so the labels and the
plan agree by construction; :func:`unsupported` finds the labels of any region that the network
does not support (the consistency check of ``universal-service validate``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import costs, network, terrain
from .catalog import Catalog, load_catalog
from .io import Region
from .schema import SERVICE_LEVELS, RadioConfig

MOBILE_LEVELS: tuple[str, ...] = ("none", "2g", "3g", "4g")
"""Mobile service levels, worst to best (a tower's ``technology`` is one of the last three)."""

_RANK = {level: i for i, level in enumerate(SERVICE_LEVELS)}


def tower_coverage(
    region: Region,
    towers: pd.DataFrame | None = None,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """The (tower, village) pairs that the plan's radio test says are covered.

    Parameters
    ----------
    region : Region
        Villages and DEM.
    towers : pandas.DataFrame, optional
        Sites to test: ``site_id``, ``x``, ``y`` [m, region CRS], ``height_m`` [m]; default the
        region's towers (``site_id`` = ``tower_id``).
    radio_cfg : RadioConfig, optional
        Link budget; default :class:`RadioConfig`.
    catalog : Catalog, optional
        For the 4G carrier frequency; default the bundled catalog.

    Returns
    -------
    pandas.DataFrame
        ``site_id``, ``village_id`` and the radio columns of the covered pairs.
    """
    radio_cfg = radio_cfg or RadioConfig()
    catalog = catalog or load_catalog()
    if towers is None:
        t = region.towers
        towers = pd.DataFrame(
            {
                "site_id": t["tower_id"].to_numpy(),
                "x": t.geometry.x.to_numpy(),
                "y": t.geometry.y.to_numpy(),
                "height_m": t["height_m"].to_numpy(float),
            }
        )
    if len(towers) == 0:
        return pd.DataFrame(columns=["site_id", "village_id"])
    return costs.lte_coverage(region.dem, towers, region.villages, catalog["lte"], radio_cfg)


def mobile_levels(
    region: Region,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
    coverage: pd.DataFrame | None = None,
) -> pd.Series:
    """The best mobile technology that an existing tower provides at each village.

    Parameters
    ----------
    region : Region
    radio_cfg : RadioConfig, optional
    catalog : Catalog, optional
    coverage : pandas.DataFrame, optional
        The region's towers' :func:`tower_coverage` (``site_id`` = ``tower_id``, ``village_id``)
        when the caller has it already (the test is per pair, so pairs tested in several
        batches are the same); computed here without.

    Returns
    -------
    pandas.Series
        One of :data:`MOBILE_LEVELS` per village, indexed by ``village_id`` in the villages'
        order.
    """
    ids = region.villages["village_id"].to_numpy()
    best = pd.Series(0, index=ids, dtype=int)
    cov = (
        tower_coverage(region, radio_cfg=radio_cfg, catalog=catalog)
        if coverage is None
        else coverage
    )
    if len(cov):
        tech = region.towers.set_index("tower_id")["technology"].astype(str)
        rank = tech.reindex(cov["site_id"]).map({m: i for i, m in enumerate(MOBILE_LEVELS)})
        pairs = pd.DataFrame({"village_id": cov["village_id"].to_numpy(), "rank": rank.to_numpy()})
        top = pairs.groupby("village_id")["rank"].max()
        best.loc[top.index] = top.to_numpy(int)
    return pd.Series(np.asarray(MOBILE_LEVELS, dtype=object)[best.to_numpy()], index=ids)


def fiber_route_km(region: Region, catalog: Catalog | None = None) -> pd.Series:
    """Each village's routed distance to the nearest point of presence [km].

    The route is the plan's own (:func:`universal_service.costs.route_graph`, the least
    terrain-weighted path to any PoP); NaN where no route exists.

    Parameters
    ----------
    region : Region
    catalog : Catalog, optional
        Prices the routes (fiber terrain classes); default the bundled catalog.

    Returns
    -------
    pandas.Series
        Route length [km], indexed by ``village_id`` in the villages' order.
    """
    v = region.villages
    G = costs.route_graph(region, v, terrain.slope_deg(region.dem), catalog)
    routes = network.nearest_pop_routes(G).set_index("node_id")
    km = routes["length_m"].reindex("v:" + v["village_id"]).to_numpy(float) / 1000.0
    return pd.Series(km, index=v["village_id"].to_numpy())


def fiber_reach_km(region: Region) -> float | None:
    """The region's fiber reach [km] from ``region.toml`` ``[meta] fiber_reach_km``, if stated."""
    value = region.meta.get("fiber_reach_km")
    return None if value is None else float(value)


def service_levels(
    region: Region,
    reach_km: float | None = None,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
    coverage: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The service level the existing network provides at each village.

    Parameters
    ----------
    region : Region
    reach_km : float, optional
        Fiber reach [km]; default :func:`fiber_reach_km` of the region. Without one, no village is
        judged fibered by the network (``fiber`` is then only the mobile level's upper bound
        left unchecked: see :func:`unsupported`).
    radio_cfg : RadioConfig, optional
    catalog : Catalog, optional
    coverage : pandas.DataFrame, optional
        The towers' coverage already tested, as :func:`mobile_levels` takes it.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``village_id``: ``mobile`` (:data:`MOBILE_LEVELS`), ``fiber_route_km`` [km],
        ``fiber`` (bool: within the reach) and ``provided`` (``fiber`` where fibered, else the
        mobile level).
    """
    reach = fiber_reach_km(region) if reach_km is None else float(reach_km)
    mobile = mobile_levels(region, radio_cfg, catalog, coverage)
    route = fiber_route_km(region, catalog)
    fibered = np.zeros(len(route), bool) if reach is None else (route.to_numpy() <= reach)
    provided = np.where(fibered, "fiber", mobile.to_numpy()).astype(object)
    return pd.DataFrame(
        {"mobile": mobile, "fiber_route_km": route, "fiber": fibered, "provided": provided},
        index=pd.Index(region.villages["village_id"].to_numpy(), name="village_id"),
    )


def calibrate_reach_km(route_km: np.ndarray, share: float) -> float:
    """The fiber reach [km] that fibers ``share`` of the given villages, nearest first.

    Parameters
    ----------
    route_km : numpy.ndarray
        Routed distance to the nearest PoP of the villages the share is stated for [km].
    share : float
        Target share of them with fiber [-], in [0, 1].

    Returns
    -------
    float
        The reach [km], rounded up to 10 m so that at least ``share`` of the villages lie
        within it.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must lie in [0, 1], got {share}")
    d = np.sort(np.asarray(route_km, float)[np.isfinite(route_km)])
    if share == 0.0 or d.size == 0:
        return 0.0
    k = int(np.ceil(share * d.size)) - 1
    return float(np.ceil(d[min(k, d.size - 1)] * 100.0) / 100.0)


def unsupported(
    region: Region,
    levels: pd.DataFrame | None = None,
    reach_km: float | None = None,
    radio_cfg: RadioConfig | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """Villages whose ``existing_service`` is better than the existing network provides.

    Where no fiber reach is known (neither ``reach_km`` nor the region's ``fiber_reach_km``),
    ``fiber`` labels are not judged (a real fixed-network layer is not part of the region
    contract yet); every mobile label is.

    Parameters
    ----------
    region : Region
    levels : pandas.DataFrame, optional
        :func:`service_levels` of the region (computed if omitted).
    reach_km : float, optional
        Fiber reach [km]; default the region's.
    radio_cfg : RadioConfig, optional
    catalog : Catalog, optional

    Returns
    -------
    pandas.DataFrame
        ``village_id``, ``name``, ``existing_service``, ``provided``; empty when every label is
        supported.
    """
    reach = fiber_reach_km(region) if reach_km is None else float(reach_km)
    if levels is None:
        levels = service_levels(region, reach, radio_cfg, catalog)
    v = region.villages
    claimed = v["existing_service"].astype(str).map(_RANK).to_numpy()
    provided = levels["provided"].reindex(v["village_id"]).map(_RANK).to_numpy()
    if reach is None:
        is_fiber = (v["existing_service"] == "fiber").to_numpy()
        provided = np.where(is_fiber, claimed, provided)
    bad = claimed > provided
    out = v.loc[bad, ["village_id", "name", "existing_service"]].copy()
    out["provided"] = levels["provided"].reindex(out["village_id"]).to_numpy()
    return out.reset_index(drop=True)
