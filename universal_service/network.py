"""Fiber routes: terrain-weighted route graph, nearest-PoP paths, shared-trench Steiner forests."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import Delaunay, QhullError, cKDTree

from . import lcp, steiner, terrain
from .errors import InputDataError, format_rows
from .fibercost import TerrainCosts, fiber_multiplier, terrain_costs, trench_multiplier

__all__ = [
    "TerrainCosts",
    "edge_multipliers",
    "fiber_multiplier",
    "nearest_pop_routes",
    "per_village_cost_vs_shared",
    "route_graph",
    "shared_trench",
    "tree_to_lines",
    "terrain_costs",
    "trench_multiplier",
]

#: Cost of one metre of fiber laid along an existing road, relative to one metre of trench across
#: flat open ground. ASSUMPTION (no published source used): the road bed is already graded, the
#: right of way exists and the shoulder is reachable by machine, so the terrain penalty does not
#: apply and the per-metre cost is taken as half. Override per region when better data exist.
ROAD_COST_FACTOR = 0.5
#: Spacing of the terrain samples taken along each edge [m]. ASSUMPTION: about three cells of a
#: 30 m DEM; finer spacing costs proportionally more samples.
SAMPLE_SPACING_M = 100.0
#: Floor on edge lengths [m] so that every edge weight is strictly positive (coincident points).
MIN_EDGE_LENGTH_M = 1e-3
#: How terrain and spur edges are routed: ``"raster"``, the least-cost path over the DEM's
#: fiber-cost surface (:func:`fiber_multiplier` per cell; :mod:`universal_service.lcp`,
#: scikit-image ``MCP_Geometric``), so that both the route's length and its difficulty come from
#: the terrain; ``"straight"``, the straight line with the mean multiplier sampled along it
#: (:func:`edge_multipliers`).
ROUTING = "raster"
#: Edges longer than this stay straight under ``routing="raster"`` [m]: the long Delaunay edges
#: across the hull of the villages and the long spurs to distant roads, which no village's route
#: uses (the catalog's fiber reach is 40 km over several edges), would each cost a search over
#: hundreds of square kilometres. ASSUMPTION, a computing limit, not a property of fiber.
RASTER_MAX_EDGE_M = 15_000.0
#: Cell size of the routing surface [m]: the fiber-cost surface is averaged over blocks of
#: DEM cells to about this size before the least-cost search (two 90 m cells; five 30 m cells).
#: ASSUMPTION: fiber routes are planned at about this resolution; finer costs proportionally
#: more search time (about 4x per halving) for route lengths within a few percent.
ROUTING_CELL_M = 180.0


def _crop(da: xr.DataArray, bounds: tuple[float, float, float, float], margin: float):
    xmin, ymin, xmax, ymax = bounds
    xs, ys = da["x"].values, da["y"].values
    xm = (xs >= xmin - margin) & (xs <= xmax + margin)
    ym = (ys >= ymin - margin) & (ys <= ymax + margin)
    return da.isel(x=np.flatnonzero(xm), y=np.flatnonzero(ym))


def edge_multipliers(
    p0: np.ndarray,
    p1: np.ndarray,
    layers: xr.Dataset | None,
    sample_spacing_m: float = SAMPLE_SPACING_M,
    costs: TerrainCosts | None = None,
) -> np.ndarray:
    """Mean fiber multiplier along straight segments, sampling slope and elevation bilinearly.

    Parameters
    ----------
    p0, p1 : numpy.ndarray
        Segment end points, shape ``(n, 2)`` [m].
    layers : xarray.Dataset or None
        Variables ``slope`` [degrees] and ``elevation`` [m] on dims ``(y, x)``. None: all 1.
    sample_spacing_m : float
        Distance between samples [m]; every segment gets at least its two end points.
    costs : TerrainCosts, optional
        Terrain classes (:func:`fiber_multiplier`).

    Returns
    -------
    numpy.ndarray
        Mean of :func:`fiber_multiplier` over the samples of each segment [-]; 1 where every
        sample falls outside the DEM or on nodata.
    """
    n = len(p0)
    if layers is None or n == 0:
        return np.ones(n)
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    k = np.maximum(2, np.ceil(length / sample_spacing_m).astype(np.int64) + 1)
    eid = np.repeat(np.arange(n), k)
    start = np.cumsum(k) - k
    t = (np.arange(eid.size) - start[eid]) / (k[eid] - 1)
    px = p0[eid, 0] + t * d[eid, 0]
    py = p0[eid, 1] + t * d[eid, 1]
    s = layers.interp(x=xr.DataArray(px, dims="s"), y=xr.DataArray(py, dims="s"))
    m = fiber_multiplier(s["slope"].values, s["elevation"].values, costs)
    ok = np.isfinite(m)
    total = np.bincount(eid, weights=np.where(ok, m, 0.0), minlength=n)
    count = np.bincount(eid, weights=ok.astype(float), minlength=n)
    return np.where(count > 0, total / np.maximum(count, 1), 1.0)


# --------------------------------------------------------------------------------------------
# Route graph
# --------------------------------------------------------------------------------------------


def _validate_nodes(nodes: pd.DataFrame) -> None:
    problems = []
    missing = [c for c in ("node_id", "kind", "x", "y") if c not in nodes.columns]
    if missing:
        raise InputDataError(
            f"nodes: missing column(s) {missing}; expected node_id (str), kind "
            f"('village' or 'pop'), x, y [m in a metric CRS]."
        )
    dup = nodes["node_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        problems.append(
            f"nodes, {format_rows(np.flatnonzero(dup))}: node_id must be unique "
            f"(got {sorted(set(nodes['node_id'][dup]))[:5]})"
        )
    bad_kind = ~nodes["kind"].isin(["village", "pop"]).to_numpy()
    if bad_kind.any():
        problems.append(
            f"nodes, {format_rows(np.flatnonzero(bad_kind))}: kind must be 'village' or 'pop' "
            f"(got {sorted(set(map(str, nodes['kind'][bad_kind])))[:5]})"
        )
    xy = nodes[["x", "y"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad_xy = ~np.isfinite(xy).all(axis=1)
    if bad_xy.any():
        problems.append(
            f"nodes, {format_rows(np.flatnonzero(bad_xy))}: x and y must be finite numbers [m]"
        )
    if problems:
        raise InputDataError(problems)


def _neighbour_pairs(xy: np.ndarray, k_neighbors: int) -> np.ndarray:
    """Symmetric Delaunay + k-nearest neighbour pairs ``(i, j)``, i < j, joined if need be."""
    n = len(xy)
    parts = [np.empty((0, 2), dtype=np.int64)]
    if n >= 2 and k_neighbors > 0:
        k = min(k_neighbors, n - 1)
        _, idx = cKDTree(xy).query(xy, k=k + 1)
        rows = np.repeat(np.arange(n), k + 1)
        parts.append(np.column_stack([rows, idx.ravel()]))
    if n >= 3:
        try:
            simp = Delaunay(xy).simplices
            parts.append(np.vstack([simp[:, [0, 1]], simp[:, [1, 2]], simp[:, [0, 2]]]))
        except QhullError:  # all points collinear or coincident: k-nearest and joins only
            pass
    pairs = np.vstack(parts)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    # Join components (possible only with degenerate input or k_neighbors = 0) by nearest pairs.
    if n >= 2:
        while True:
            adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), (n, n))
            ncomp, lab = csgraph.connected_components(adj, directed=False)
            if ncomp == 1:
                break
            inside = np.flatnonzero(lab == lab[0])
            outside = np.flatnonzero(lab != lab[0])
            dist, j = cKDTree(xy[outside]).query(xy[inside])
            i = int(np.argmin(dist))
            new = np.sort([inside[i], outside[j[i]]])
            pairs = np.vstack([pairs, new[None, :]])
    return pairs


def _road_network(
    roads: gpd.GeoDataFrame, snap_xy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node the road lines at intersections, insert the projections of ``snap_xy`` as vertices.

    Returns vertex coordinates ``(r, 2)``, edges ``(e, 2)`` (vertex indices) and the index of
    the vertex each ``snap_xy`` point was projected onto.
    """
    geoms = shapely.get_parts(np.asarray(roads.geometry.values))
    geoms = geoms[~shapely.is_empty(geoms)]
    types = shapely.get_type_id(geoms)
    if (types != 1).any():
        raise InputDataError(
            f"roads, {int((types != 1).sum())} part(s): expected LineString or MultiLineString "
            f"geometries, got {sorted(set(shapely.get_type_id(geoms[types != 1]).tolist()))} "
            f"(shapely type ids); drop or convert them."
        )
    lines = shapely.get_parts(shapely.line_merge(shapely.union_all(geoms)))
    lines = lines[(shapely.get_type_id(lines) == 1) & ~shapely.is_empty(lines)]
    if len(lines) == 0:
        return np.empty((0, 2)), np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.int64)
    # Project each village/PoP on its nearest road line and insert that point as a vertex.
    tree = shapely.STRtree(lines)
    pts = shapely.points(snap_xy)
    _, line_of = tree.query_nearest(pts, all_matches=False)
    where = shapely.line_locate_point(lines[line_of], pts)
    proj = shapely.get_coordinates(shapely.line_interpolate_point(lines[line_of], where))
    coords, index = shapely.get_coordinates(lines, return_index=True)
    by_line = pd.Series(np.arange(len(line_of))).groupby(line_of)
    new_coords = [coords]
    new_index = [index]
    new_pos = [np.zeros(len(coords))]
    # Distance along each line of its own vertices, to merge in the projected points in order.
    seg = np.r_[0.0, np.hypot(*np.diff(coords, axis=0).T)]
    seg[np.r_[True, index[1:] != index[:-1]]] = 0.0
    pos = pd.Series(seg).groupby(index).cumsum().to_numpy()
    new_pos[0] = pos
    for li, members in by_line.groups.items():
        members = np.asarray(members)
        new_coords.append(proj[members])
        new_index.append(np.full(len(members), li))
        new_pos.append(where[members])
    coords = np.vstack(new_coords)
    index = np.concatenate(new_index)
    pos = np.concatenate(new_pos)
    order = np.lexsort((pos, index))
    coords, index = coords[order], index[order]
    key = np.round(coords, 3)
    verts, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    same_line = index[1:] == index[:-1]
    edges = np.column_stack([inv[:-1], inv[1:]])[same_line]
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    snapped = cKDTree(verts).query(np.round(proj, 3))[1]
    return verts.astype(float), edges, snapped


def route_graph(
    nodes: pd.DataFrame,
    dem: xr.DataArray | None = None,
    *,
    roads: gpd.GeoDataFrame | None = None,
    k_neighbors: int = 6,
    road_cost_factor: float = ROAD_COST_FACTOR,
    sample_spacing_m: float = SAMPLE_SPACING_M,
    road_spur_k: int = 1,
    slope: xr.DataArray | None = None,
    crs: object | None = None,
    routing: str = ROUTING,
    terrain_classes: TerrainCosts | None = None,
) -> nx.Graph:
    """Terrain-weighted candidate graph for fiber routes between villages, PoPs and roads.

    Terrain edges join each village/PoP to its Delaunay neighbours and its ``k_neighbors``
    nearest neighbours (scipy.spatial; symmetric union). With ``roads``, the lines are noded at
    their intersections, each village/PoP is projected on its nearest road line (the projection
    becomes a vertex), every vertex is a road node ``"r:<n>"`` joined to the next vertex by a
    road edge, and every village/PoP is joined by a terrain-weighted spur to its ``road_spur_k``
    nearest road nodes (the first one its projection).

    Edge attributes: ``length_m`` [m], ``multiplier`` [-], ``weight`` = ``length_m *
    multiplier`` [m of flat-equivalent trench], ``kind`` ("terrain", "road", "spur"), and for
    raster-routed edges ``path`` (the route's vertices, ``(k, 2)`` [m]). With a DEM and
    ``routing="raster"`` (the default, :data:`ROUTING`), terrain and spur edges follow the
    least-cost path over the :func:`fiber_multiplier` surface of the DEM cells
    (:func:`universal_service.lcp.least_cost_edges`; nodata cells count as flat ground): their
    length is the path's and their multiplier the path's mean. With ``routing="straight"`` they are
    straight lines carrying the mean multiplier sampled every ``sample_spacing_m`` along them (1
    where no DEM is given or all samples are nodata). Road edges carry ``road_cost_factor`` (the terrain penalty does not apply to a graded road
    bed, see :data:`ROAD_COST_FACTOR`). Node attributes: ``x``, ``y`` [m], ``kind`` ("village",
    "pop", "road"). ``G.graph["crs"]`` is ``crs``, else the CRS of ``roads`` if any.

    Parameters
    ----------
    nodes : pandas.DataFrame
        Columns ``node_id`` (str, unique), ``kind`` ("village" or "pop"), ``x``, ``y`` [m].
    dem : xarray.DataArray, optional
        Elevation [m] on dims ``(y, x)`` with 1-D cell-centre coordinates in the same metric CRS
        as ``nodes``; NaN is nodata. Checked by :func:`universal_service.terrain.check_dem`.
    roads : geopandas.GeoDataFrame, optional
        Road (Multi)LineStrings in the same CRS.
    k_neighbors : int
        Nearest neighbours joined to every village/PoP, in addition to the Delaunay edges.
    road_cost_factor : float
        Per-metre cost of road edges relative to flat open trench [-] (an assumption).
    sample_spacing_m : float
        Spacing of terrain samples along an edge [m].
    road_spur_k : int
        Road nodes each village/PoP is joined to.
    slope : xarray.DataArray, optional
        Precomputed slope [degrees] on the DEM grid; when not given,
        :func:`universal_service.terrain.slope_deg` (Horn) of ``dem``.
    crs : optional
        CRS stored in ``G.graph["crs"]`` for :func:`tree_to_lines`.
    routing : str
        ``"raster"`` or ``"straight"`` (see above).
    terrain_classes : TerrainCosts, optional
        Fiber cost by slope class and laying method (:func:`terrain_costs` of the catalog):
        the surface is then :func:`fiber_multiplier` with them instead of
        :func:`trench_multiplier`.

    Returns
    -------
    networkx.Graph
        Connected when the village/PoP set is non-empty.
    """
    if routing not in ("raster", "straight"):
        raise ValueError(f"routing must be 'raster' or 'straight', got {routing!r}")
    _validate_nodes(nodes)
    ids = nodes["node_id"].astype(str).to_numpy()
    xy = nodes[["x", "y"]].to_numpy(float)
    land = None
    if dem is not None:
        land = _terrain_layers(dem, slope, _extent(xy, roads), sample_spacing_m)
    G = nx.Graph(crs=crs if crs is not None else getattr(roads, "crs", None))
    G.add_nodes_from(
        (i, {"x": float(a), "y": float(b), "kind": str(k)})
        for i, k, a, b in zip(ids, nodes["kind"].to_numpy(), xy[:, 0], xy[:, 1], strict=True)
    )
    pairs = _neighbour_pairs(xy, k_neighbors)
    starts, ends = [xy[pairs[:, 0]]], [xy[pairs[:, 1]]]
    labels, kinds = [ids[pairs]], [np.full(len(pairs), "terrain", dtype=object)]
    if roads is not None and len(roads) and len(xy):
        verts, redges, snapped = _road_network(roads, xy)
        if len(verts):
            _add_roads(G, verts, redges, road_cost_factor)
            spur = _spur_pairs(xy, verts, snapped, road_spur_k)
            rid = np.array([f"r:{i}" for i in spur[:, 1]], dtype=object)
            starts.append(xy[spur[:, 0]])
            ends.append(verts[spur[:, 1]])
            labels.append(np.column_stack([ids[spur[:, 0]], rid]))
            kinds.append(np.full(len(spur), "spur", dtype=object))
    a, b = np.vstack(starts), np.vstack(ends)
    label, kind = np.vstack(labels), np.concatenate(kinds)
    if routing == "raster" and land is not None:
        cost = fiber_multiplier(land["slope"].values, land["elevation"].values, terrain_classes)
        cost = np.where(np.isfinite(cost), cost, 1.0)
        straight = np.hypot(*(b - a).T)
        short = straight <= RASTER_MAX_EDGE_M
        res = float(abs(land["x"].values[1] - land["x"].values[0]))
        cost, xs, ys = lcp.coarsen(
            cost, land["x"].values, land["y"].values, round(ROUTING_CELL_M / res)
        )
        routes = lcp.least_cost_edges(cost, xs, ys, a[short], b[short])
        mult = edge_multipliers(a, b, land, sample_spacing_m, terrain_classes)
        # the path's mean multiplier (no lower than the cheapest cell; clipped against rounding)
        mult[short] = np.maximum(routes.weight_m / np.maximum(routes.length_m, 1e-9), cost.min())
        length = straight.copy()
        length[short] = routes.length_m
        length = np.maximum(length, MIN_EDGE_LENGTH_M)
        paths: list = [None] * len(a)
        for i, path in zip(np.flatnonzero(short), routes.paths, strict=True):
            paths[i] = path
        G.add_edges_from(
            (
                u,
                v,
                {
                    "length_m": float(L),
                    "multiplier": float(m),
                    "weight": float(L * m),
                    "kind": k,
                    "path": path,
                },
            )
            for (u, v), L, m, k, path in zip(label, length, mult, kind, paths, strict=True)
        )
    else:
        mult = edge_multipliers(a, b, land, sample_spacing_m, terrain_classes)
        for k in ("terrain", "spur"):
            sel = kind == k
            _add_edges(G, a[sel], b[sel], label[sel], k, mult[sel])
    return G


def _extent(xy: np.ndarray, roads: gpd.GeoDataFrame | None) -> np.ndarray | None:
    """Bounds ``(xmin, ymin, xmax, ymax)`` [m] of the nodes and roads; None without nodes."""
    if not len(xy):
        return None
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    if roads is not None and len(roads):
        rb = np.asarray(roads.total_bounds, dtype=float)
        if np.isfinite(rb).all():
            lo, hi = np.minimum(lo, rb[:2]), np.maximum(hi, rb[2:])
    return np.r_[lo, hi]


def _terrain_layers(
    dem: xr.DataArray,
    slope: xr.DataArray | None,
    extent: np.ndarray | None,
    sample_spacing_m: float,
) -> xr.Dataset | None:
    """Slope [degrees] and elevation [m] around ``extent``, for :func:`edge_multipliers`.

    The DEM is cropped to ``extent`` plus three cells and one sample spacing; the slope is
    :func:`universal_service.terrain.slope_deg` (Horn) of the cropped DEM unless given. None
    when the crop leaves fewer than two cells along an axis (the DEM misses the area).
    """
    dem = terrain.check_dem(dem)
    if extent is not None:
        res = max(np.abs(np.diff(dem["x"].values[:2])).max(initial=0.0), 1.0)
        dem = _crop(dem, tuple(extent), 3 * res + sample_spacing_m)
    if dem.sizes["x"] < 2 or dem.sizes["y"] < 2:
        return None
    if slope is None:
        sl = terrain.slope_deg(dem)
    else:
        sl = terrain.check_dem(slope, name="slope").sel(x=dem["x"], y=dem["y"], method="nearest")
        sl = sl.assign_coords(x=dem["x"], y=dem["y"])
    return xr.Dataset({"slope": sl, "elevation": dem.astype(float)})


def _add_edges(G: nx.Graph, u_xy, v_xy, ends: np.ndarray, kind: str, mult: np.ndarray) -> None:
    """Add straight edges ``ends[:, 0]``-``ends[:, 1]`` of length >= MIN_EDGE_LENGTH_M [m].

    ``weight`` = ``length_m * multiplier`` [m flat-equivalent].
    """
    length = np.maximum(np.hypot(*(v_xy - u_xy).T), MIN_EDGE_LENGTH_M)
    w = length * mult
    G.add_edges_from(
        (a, b, {"length_m": float(L), "multiplier": float(m), "weight": float(c), "kind": kind})
        for a, b, L, m, c in zip(ends[:, 0], ends[:, 1], length, mult, w, strict=True)
    )


def _add_roads(G: nx.Graph, verts: np.ndarray, redges: np.ndarray, factor: float) -> None:
    """Road nodes ``"r:<n>"`` at ``verts`` and road edges, multiplier ``factor``."""
    rid = np.array([f"r:{i}" for i in range(len(verts))], dtype=object)
    G.add_nodes_from(
        (r, {"x": float(a), "y": float(b), "kind": "road"})
        for r, a, b in zip(rid, verts[:, 0], verts[:, 1], strict=True)
    )
    mult = np.full(len(redges), float(factor))
    _add_edges(G, verts[redges[:, 0]], verts[redges[:, 1]], rid[redges], "road", mult)


def _spur_pairs(xy: np.ndarray, verts: np.ndarray, snapped: np.ndarray, k: int) -> np.ndarray:
    """(node, road vertex) pairs: each node's projection plus its nearest vertices, ``k`` in all."""
    targets = [snapped[:, None]]
    if k > 1:
        n_near = min(k, len(verts))
        targets.append(cKDTree(verts).query(xy, k=n_near)[1].reshape(len(xy), -1))
    spur = np.column_stack(
        [
            np.repeat(np.arange(len(xy)), sum(t.shape[1] for t in targets)),
            np.hstack(targets).ravel(),
        ]
    )
    spur = np.unique(spur, axis=0)
    if k > 1:  # keep the projection plus the nearest vertices, k in all
        d = np.hypot(*(verts[spur[:, 1]] - xy[spur[:, 0]]).T)
        is_snap = spur[:, 1] == snapped[spur[:, 0]]
        order = np.lexsort((d, ~is_snap, spur[:, 0]))
        spur = spur[order]
        rank = np.arange(len(spur)) - np.searchsorted(spur[:, 0], spur[:, 0])
        spur = spur[rank < k]
    return spur


# --------------------------------------------------------------------------------------------
# Shortest routes to the nearest PoP
# --------------------------------------------------------------------------------------------


def _nodes_of_kind(G: nx.Graph, kind: str) -> list:
    return [n for n, k in G.nodes(data="kind") if k == kind]


def _path_length(G: nx.Graph, path: list, attr: str) -> float:
    return float(sum(G.edges[a, b].get(attr, 0.0) for a, b in nx.utils.pairwise(path)))


def nearest_pop_routes(G: nx.Graph, *, weight: str = "weight") -> pd.DataFrame:
    """Least-weight path from every village to its nearest PoP (one multi-source Dijkstra).

    Parameters
    ----------
    G : networkx.Graph
        A :func:`route_graph` (node attribute ``kind``; edge attributes ``length_m`` and
        ``weight``).
    weight : str
        Edge attribute minimised [m of flat-equivalent trench].

    Returns
    -------
    pandas.DataFrame
        One row per village node: ``node_id``, ``pop_id`` (None if unreachable), ``length_m``
        [m], ``weighted_length_m`` [m flat-equivalent], ``path`` (list of node ids, village
        first and PoP last).
    """
    pops = _nodes_of_kind(G, "pop")
    villages = _nodes_of_kind(G, "village")
    if not pops:
        raise InputDataError("route graph: no node of kind 'pop'; add points of presence.")
    dist, paths = nx.multi_source_dijkstra(G, pops, weight=weight)
    rows = []
    for v in villages:
        if v in dist:
            p = paths[v][::-1]
            rows.append((v, p[-1], _path_length(G, p, "length_m"), float(dist[v]), p))
        else:
            rows.append((v, None, np.nan, np.nan, []))
    return pd.DataFrame(
        rows, columns=["node_id", "pop_id", "length_m", "weighted_length_m", "path"]
    )


#: Size (arcs x commodities of the flow model) up to which ``shared_trench(method="auto")``
#: solves exactly.
AUTO_EXACT_MAX_FLOW_VARS = 60_000


def shared_trench(
    G: nx.Graph,
    served_villages,
    pops,
    *,
    weight: str = "weight",
    method: str = "auto",
    time_limit_s: float = 60.0,
    limits: steiner.WorkLimits | None = None,
) -> steiner.SteinerResult:
    """Least-cost shared trench network joining the served villages to the PoP set.

    The Steiner forest of :func:`universal_service.steiner.steiner_forest` with the villages as
    terminals and the PoPs as roots: one tree per PoP used. ``cost`` and ``lower_bound`` are in
    the units of ``weight`` (m of flat-equivalent trench on a :func:`route_graph`); ``edges``
    lists each trench edge with its cost. The solver stops on deterministic work limits, so the
    same graph, villages and PoPs give the same forest, cost and bound.

    Parameters
    ----------
    G : networkx.Graph
        Route graph.
    served_villages : iterable
        Village node ids to connect.
    pops : iterable
        PoP node ids any village may connect to.
    weight : str
        Edge attribute minimised.
    method : {"auto", "exact", "heuristic"}
        "auto": exact when the flow model has at most :data:`AUTO_EXACT_MAX_FLOW_VARS` flow
        variables (two per edge and village), heuristic otherwise.
    time_limit_s : float
        Wall-clock safety net [s]. If it stops a stage before its work limit, ``status`` is
        "time_limit" and ``note`` says so (the result may then differ between runs).
    limits : steiner.WorkLimits, optional
        Deterministic work limits (default ``steiner.WorkLimits()``).

    Returns
    -------
    steiner.SteinerResult
        ``tree`` is a forest (one component per PoP used).
    """
    if method not in ("auto", "exact", "heuristic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'heuristic', got {method!r}")
    if method == "auto":
        n_villages = len(set(served_villages) - set(pops))
        n_edges = G.number_of_edges() - nx.number_of_selfloops(G)
        exact = 2 * n_edges * n_villages <= AUTO_EXACT_MAX_FLOW_VARS
        method = "exact" if exact else "heuristic"
    return steiner.steiner_forest(
        G,
        served_villages,
        pops,
        weight=weight,
        method=method,
        time_limit_s=time_limit_s,
        limits=limits,
    )


def per_village_cost_vs_shared(
    G: nx.Graph,
    served_villages,
    pops,
    *,
    weight: str = "weight",
    shared: steiner.SteinerResult | None = None,
    method: str = "auto",
    time_limit_s: float = 60.0,
    limits: steiner.WorkLimits | None = None,
) -> pd.Series:
    """Sum of per-village shortest paths to the nearest PoP against the shared trench.

    Parameters
    ----------
    G, served_villages, pops, weight, method, time_limit_s, limits
        As for :func:`shared_trench`.
    shared : steiner.SteinerResult, optional
        A shared trench already computed for the same villages and PoPs.

    Returns
    -------
    pandas.Series
        ``per_village_m`` (sum of each village's own least-weight path), ``shared_m`` (shared
        tree cost), ``shared_lower_bound_m``, ``saving_m`` and ``saving_share`` [-]; lengths in
        the units of ``weight`` (m of flat-equivalent trench on a route graph).
    """
    villages = list(dict.fromkeys(served_villages))
    pops = list(dict.fromkeys(pops))
    if shared is None:
        shared = shared_trench(
            G,
            villages,
            pops,
            weight=weight,
            method=method,
            time_limit_s=time_limit_s,
            limits=limits,
        )
    dist = nx.multi_source_dijkstra_path_length(G, pops, weight=weight)
    unreached = [v for v in villages if v not in dist]
    if unreached:
        raise InputDataError(f"villages {unreached[:10]} cannot reach any PoP in the graph")
    alone = float(sum(dist[v] for v in villages))
    saving = alone - shared.cost
    return pd.Series(
        {
            "per_village_m": alone,
            "shared_m": shared.cost,
            "shared_lower_bound_m": shared.lower_bound,
            "saving_m": saving,
            "saving_share": saving / alone if alone > 0 else 0.0,
        }
    )


def tree_to_lines(tree: nx.Graph, G: nx.Graph | None = None, *, crs=None) -> gpd.GeoDataFrame:
    """One LineString per tree edge (its raster route where it has one, else straight), for a
    GeoPackage layer.

    Parameters
    ----------
    tree : networkx.Graph
        A tree or forest whose nodes are in ``G`` (e.g. ``steiner.SteinerResult.tree``).
    G : networkx.Graph, optional
        Route graph with node ``x``, ``y`` [m] and edge ``length_m``, ``weight``, ``kind``
        (default: ``tree`` itself).
    crs : optional
        CRS of the layer (default ``G.graph["crs"]``).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``u``, ``v``, ``length_m`` [m], ``weighted_length_m`` [m flat-equivalent],
        ``kind``, ``geometry``.
    """
    G = tree if G is None else G
    crs = crs if crs is not None else G.graph.get("crs")
    rows, coords = [], []
    for a, b in tree.edges:
        d = G.edges[a, b]
        rows.append((a, b, d.get("length_m", np.nan), d.get("weight", np.nan), d.get("kind")))
        path = d.get("path")
        if path is None:
            path = [[G.nodes[a]["x"], G.nodes[a]["y"]], [G.nodes[b]["x"], G.nodes[b]["y"]]]
        coords.append(np.asarray(path, dtype=float))
    df = pd.DataFrame(rows, columns=["u", "v", "length_m", "weighted_length_m", "kind"])
    geom = [shapely.linestrings(c) for c in coords]
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs=crs), crs=crs)
