"""The national runner on some provinces (or all): time, villages/s, memory and gaps.

Run: ``python benchmarks/national.py [--provinces 520000,...] [--counties N] [--workers 2]
[--out DIR]``;
prints the counties and villages planned, wall time, villages per second, the peak memory of
this process and of the largest Dask worker, the coupling's status, bound and gap, and the
distribution of the counties' own MILP gaps. RESULTS.md records the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time

import numpy as np

from universal_service import national, nationalpack, scenarios, uncertainty


def a_costing(res: national.NationalResult) -> float:
    return float(res.plan.attrs.get("costing_seconds", float("nan")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provinces", default=None, help="comma-separated adcodes (default: all)")
    ap.add_argument("--counties", type=int, default=None, help="only the first N counties")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers (0: serial)")
    ap.add_argument("--out", default=None, help="also write the outputs there (timed)")
    args = ap.parse_args()
    pack = nationalpack.load_pack()
    provinces = args.provinces.split(",") if args.provinces else None
    codes = pack.county_codes(provinces)[: args.counties or None]
    scenario = scenarios.load_scenario()
    t0 = time.perf_counter()
    with (
        uncertainty.dask_client(args.workers) if args.workers else contextlib.nullcontext()
    ) as client:
        res = national.run(scenario, provinces, pack=pack, client=client, counties=codes)
    planned = time.perf_counter() - t0
    if args.out:
        national.write(res, pack, args.out)
    wall = time.perf_counter() - t0
    n_v = int(res.counties["villages"].sum())
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"counties {len(res.counties)} planned, {len(res.failed)} failed; villages {n_v:,}")
    print(
        f"wall {wall:.1f} s ({planned:.1f} s to the plan); {n_v / wall:.1f} villages/s; "
        f"{wall / max(len(codes), 1):.2f} s per county"
    )
    print(
        f"phases: counties built and costed {a_costing(res):.1f} s, price search and final "
        f"plans {planned - a_costing(res):.1f} s"
    )
    per = res.plan.prices
    print(
        f"price search: {len(per)} prices, {int(per['solved'].sum())} district solves, "
        f"{per['seconds'].sum():.1f} s (rounds: "
        + ", ".join(f"{s:.1f}" for s in per["seconds"])
        + f"); final plans {res.plan.attrs['final_plans_seconds']:.1f} s"
    )
    print(f"peak RSS: this process {me:,.0f} MiB, largest worker {kids:,.0f} MiB")
    a = res.plan.attrs
    print(
        f"coupling: status {a['status']}, NPV cost {a['objective']:,.0f}, bound {a['bound']:,.0f}, "
        f"gap {a['gap']:.2e}, {len(res.plan.prices)} prices, coverage {a['coverage_share']:.4f}"
    )
    gaps = res.counties["gap"].to_numpy(float)
    q = np.nanquantile(gaps, [0.5, 0.9, 1.0]) if np.isfinite(gaps).any() else [np.nan] * 3
    print(
        f"county MILP gaps: median {q[0]:.1e}, p90 {q[1]:.1e}, max {q[2]:.1e}; statuses "
        f"{res.counties['status'].value_counts().to_dict()}"
    )
    print(national.format_summary(res))


if __name__ == "__main__":
    main()
