"""Steiner tree benchmark: SteinLib set B, exact MILP and heuristic; optional larger runs.

Usage::

    python benchmarks/steiner.py                 # all of set B, exact and heuristic
    python benchmarks/steiner.py --scale         # plus a synthetic 1,600-village region
    python benchmarks/steiner.py --bundled       # plus the bundled region's fiber villages

Every heuristic solve is run twice, the second time with ten times the time limit (a safety
net only: the solvers stop on deterministic work limits), and the two results are compared
edge for edge ("repeat" columns): they must be identical.

Published optima: Koch, T., Martin, A. and Voss, S. (2000), "SteinLib: An updated library on
Steiner tree problems in graphs", ZIB-Report 00-37; https://steinlib.zib.de/showset.php?B .
Instances: benchmarks/data/steinlib (see its README for the source).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from universal_service import instances, network, steiner

DATA = Path(__file__).parent / "data" / "steinlib"

# Koch, Martin and Voss (2000), SteinLib set B (Beasley 1989).
B_OPTIMA = {
    "b01": 82, "b02": 83, "b03": 138, "b04": 59, "b05": 61, "b06": 122,
    "b07": 111, "b08": 104, "b09": 220, "b10": 86, "b11": 88, "b12": 174,
    "b13": 165, "b14": 235, "b15": 318, "b16": 127, "b17": 131, "b18": 218,
}  # fmt: skip


def same_result(a: steiner.SteinerResult, b: steiner.SteinerResult) -> bool:
    """True if two results have the same edges (in order), cost, bound and status."""
    return (
        list(a.tree.edges) == list(b.tree.edges)
        and a.edges.equals(b.edges)
        and (a.cost, a.lower_bound, a.status, a.bound_method)
        == (b.cost, b.lower_bound, b.status, b.bound_method)
    )


def run_set_b(time_limit_s: float) -> pd.DataFrame:
    """Solve every set-B instance exactly and heuristically; one row per instance."""
    rows = []
    for name, opt in B_OPTIMA.items():
        inst = instances.read_steinlib(DATA / f"{name}.stp")
        if inst.optimum is not None and inst.optimum != opt:
            raise SystemExit(f"{name}: file says optimum {inst.optimum}, published {opt}")
        G, T = inst.graph, inst.terminals
        t = time.perf_counter()
        ex = steiner.steiner_tree(G, T, method="exact", time_limit_s=time_limit_s)
        t_ex = time.perf_counter() - t
        t = time.perf_counter()
        he = steiner.steiner_tree(G, T, method="heuristic", time_limit_s=time_limit_s)
        t_he = time.perf_counter() - t
        he2 = steiner.steiner_tree(G, T, method="heuristic", time_limit_s=10 * time_limit_s)
        t = time.perf_counter()
        da = steiner.dual_ascent_bound(G, T)
        t_da = time.perf_counter() - t
        rows.append(
            {
                "instance": inst.name,
                "nodes": G.number_of_nodes(),
                "edges": G.number_of_edges(),
                "terminals": len(T),
                "optimum": opt,
                "exact_cost": ex.cost,
                "exact_bound": ex.lower_bound,
                "exact_status": ex.status,
                "exact_s": t_ex,
                "heur_cost": he.cost,
                "heur_gap_to_opt": (he.cost - opt) / opt,
                "heur_bound": he.lower_bound,
                "heur_bound_method": he.bound_method,
                "heur_status": he.status,
                "heur_s": t_he,
                "heur_repeat_same": same_result(he, he2),
                "dual_ascent": da,
                "dual_ascent_ms": 1000 * t_da,
            }
        )
        r = rows[-1]
        print(
            f"{r['instance']:>4} n={r['nodes']:3d} m={r['edges']:3d} t={r['terminals']:2d} "
            f"opt={opt:4d} | exact {ex.cost:6.1f} lb {ex.lower_bound:6.1f} {ex.status:>9} "
            f"{t_ex:5.2f}s | heur {he.cost:6.1f} gap {100 * r['heur_gap_to_opt']:4.1f}% "
            f"lb {he.lower_bound:6.1f} ({he.bound_method}) {t_he:5.2f}s "
            f"repeat {'same' if r['heur_repeat_same'] else 'DIFFERENT'} | "
            f"dual ascent {da:6.1f} ({r['dual_ascent_ms']:.0f} ms)",
            flush=True,
        )
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> None:
    exact_ok = (df["exact_cost"] == df["optimum"]) & (df["exact_status"] == "optimal")
    print("\nSummary (SteinLib set B, 18 instances)")
    print(
        f"  exact: optimal on {int(exact_ok.sum())}/{len(df)}; "
        f"time total {df['exact_s'].sum():.1f} s, max {df['exact_s'].max():.2f} s"
    )
    print(
        f"  heuristic: optimum found on {int((df['heur_gap_to_opt'] == 0).sum())}/{len(df)}; "
        f"worst gap {100 * df['heur_gap_to_opt'].max():.2f}% "
        f"({df.loc[df['heur_gap_to_opt'].idxmax(), 'instance']}); "
        f"mean gap {100 * df['heur_gap_to_opt'].mean():.2f}%; "
        f"time total {df['heur_s'].sum():.1f} s; "
        f"identical on repeat with 10x the time limit: "
        f"{int(df['heur_repeat_same'].sum())}/{len(df)}; "
        f"status time_limit: {int((df['heur_status'] == 'time_limit').sum())}"
    )
    valid = (df["heur_bound"] <= df["optimum"] + 1e-9) & (df["dual_ascent"] <= df["optimum"] + 1e-9)
    print(f"  bounds valid (<= optimum) on {int(valid.sum())}/{len(df)}; "
          f"heuristic bound = optimum on {int((df['heur_bound'] >= df['optimum'] - 1e-9).sum())}; "
          f"dual ascent (unreduced) = optimum on "
          f"{int((df['dual_ascent'] >= df['optimum'] - 1e-9).sum())}, "
          f"worst {100 * ((df['optimum'] - df['dual_ascent']) / df['optimum']).max():.2f}% below")  # fmt: skip


def _report(label: str, G, villages, pops, time_limit_s: float) -> None:
    """Shared trench twice (time limit x1 and x10): cost, bound, gap, time, repeat check."""
    t = time.perf_counter()
    res = network.shared_trench(G, villages, pops, time_limit_s=time_limit_s)
    dt = time.perf_counter() - t
    cmp_ = network.per_village_cost_vs_shared(G, villages, pops, shared=res)
    again = network.shared_trench(G, villages, pops, time_limit_s=10 * time_limit_s)
    print(f"  shared_trench {label}: {res.method} {res.status}, "
          f"cost {res.cost / 1000:,.3f} km, bound {res.lower_bound / 1000:,.3f} km "
          f"({res.bound_method}), gap {100 * res.gap:.2f}%, "
          f"saving vs per-village paths {100 * cmp_['saving_share']:.1f}%, {dt:.1f} s; "
          f"repeat with 10x time limit {'same' if same_result(res, again) else 'DIFFERENT'}"
          + (f"\n      note: {res.note}" if res.note else ""), flush=True)  # fmt: skip


def run_scale(seed: int = 0, time_limit_s: float = 60.0) -> None:
    """Route graph, nearest PoP and shared trench on a synthetic 1,600-village region."""
    import geopandas as gpd
    import shapely
    import xarray as xr

    rng = np.random.default_rng(seed)
    size, res = 60_000.0, 30.0
    x = np.arange(res / 2, size, res)
    y = x[::-1]
    X, Y = np.meshgrid(x, y)
    z = (
        800
        + 600 * np.sin(X / 7000) * np.cos(Y / 9000)
        + 1500 * np.exp(-((X - size / 2) ** 2) / (2 * 3000.0**2))
    )
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x})
    n_v, n_p = 1600, 200
    pts = rng.uniform(0, size, (n_v + n_p, 2))
    nodes = pd.DataFrame(
        {
            "node_id": [f"v:{i:06d}" for i in range(n_v)] + [f"p:{i:03d}" for i in range(n_p)],
            "kind": ["village"] * n_v + ["pop"] * n_p,
            "x": pts[:, 0],
            "y": pts[:, 1],
        }
    )
    lines = []
    for i in range(40):
        t = np.linspace(0, size, 80)
        c = rng.uniform(0, size)
        wig = rng.normal(0, 300, t.size).cumsum() * 0.2
        lines.append(shapely.LineString(np.c_[t, c + wig] if i % 2 else np.c_[c + wig, t]))
    roads = gpd.GeoDataFrame(geometry=lines, crs="EPSG:32650")
    print(f"\nScale run: DEM {dem.shape} at {res:.0f} m, {n_v} villages, {n_p} PoPs, 40 roads")
    t = time.perf_counter()
    G = network.route_graph(nodes, dem, roads=roads)
    print(f"  route_graph: {time.perf_counter() - t:.2f} s, "
          f"{G.number_of_nodes()} nodes, {G.number_of_edges()} edges")  # fmt: skip
    t = time.perf_counter()
    routes = network.nearest_pop_routes(G)
    print(f"  nearest_pop_routes: {time.perf_counter() - t:.2f} s")
    villages = routes["node_id"].tolist()
    pops = nodes.loc[nodes["kind"] == "pop", "node_id"].tolist()
    for n in (50, 200, 1600):
        _report(f"{n:4d} villages", G, villages[:n], pops, time_limit_s)


def run_bundled(time_limit_s: float = 10.0) -> None:
    """Shared trench for the fiber villages of the bundled region's default plan.

    The plan is made without shared trenches (``network.shared_trench = False``); its fiber
    villages are then joined to the PoPs, as ``fiberplan`` does (time limit 10 s there).
    """
    from universal_service import scenarios

    sc = scenarios.load_scenario()
    net = sc.config.network.model_copy(update={"shared_trench": False})
    sc.config = sc.config.model_copy(update={"network": net})
    r = scenarios.run(sc, with_baseline=False)
    fib = [
        f"v:{v}"
        for v, t in zip(r.plan.village.values, r.plan.technology.values, strict=True)
        if t == "fiber"
    ]
    G = r.options.graph
    pops = [n for n in G.nodes if str(n).startswith("p:")]
    print(f"\nBundled region: {len(fib)} fiber villages, {len(pops)} PoPs, "
          f"{G.number_of_nodes()} nodes, {G.number_of_edges()} edges")  # fmt: skip
    _report(f"{len(fib)} villages", G, fib, pops, time_limit_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0, help="safety net per solve [s]")
    ap.add_argument("--scale", action="store_true", help="also run the synthetic region")
    ap.add_argument("--bundled", action="store_true", help="also run the bundled region")
    args = ap.parse_args()
    df = run_set_b(args.time_limit)
    summarise(df)
    if args.scale:
        run_scale(time_limit_s=args.time_limit)
    if args.bundled:
        run_bundled()


if __name__ == "__main__":
    main()
