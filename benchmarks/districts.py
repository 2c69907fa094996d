"""The bundled region planned district by district (districts.plan_by_district), serial and Dask.

Run: ``python benchmarks/districts.py [--workers N]``; prints the time to cost the districts,
the price search (prices tried, the final price), the decomposed plan's NPV cost, bound and
gap, its coverage, and the same with ``N`` Dask workers (default 2). RESULTS.md records the
figures beside the monolithic plan MILP with own fiber routes.
"""

from __future__ import annotations

import argparse
import time

from universal_service import districts, io, scenarios, uncertainty


def _report(label: str, dp: districts.DistrictPlan, seconds: float) -> None:
    a = dp.attrs
    print(
        f"{label}: {seconds:.1f} s; {len(dp.prices)} prices, final {a['price']:,.1f} CNY per "
        f"person; NPV cost {a['objective']:,.0f}, bound {a['bound']:,.0f}, gap {a['gap']:.2e}, "
        f"status {a['status']}; coverage {a['coverage_share']:.4f} (target "
        f"{a['coverage_target']:.4f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    scenario = scenarios.load_scenario()
    region = io.load_region(scenario.region_path())
    t0 = time.perf_counter()
    opts = [
        districts.district_options(region, scenario, d)
        for d in sorted(region.districts["district_id"])
    ]
    t_opts = time.perf_counter() - t0
    print(
        f"costing {len(opts)} districts serially: {t_opts:.1f} s "
        f"(per district {min(o.seconds for o in opts):.1f}-{max(o.seconds for o in opts):.1f} s)"
    )
    t0 = time.perf_counter()
    dp = districts.plan_by_district(region, scenario, options=opts)
    _report("price search and plans, serial", dp, time.perf_counter() - t0)
    print(dp.districts.to_string(float_format=lambda x: f"{x:,.4g}"))
    with uncertainty.dask_client(workers=args.workers) as client:
        t0 = time.perf_counter()
        par = districts.plan_by_district(region, scenario, client=client)
        _report(f"end to end on {args.workers} Dask workers", par, time.perf_counter() - t0)
    same = (par.villages()["option_id"] == dp.villages()["option_id"]).all()
    print(f"Dask plan equals the serial plan: {bool(same)}")


if __name__ == "__main__":
    main()
