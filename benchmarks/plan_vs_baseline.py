"""Plan vs per-village cheapest technology and vs the MILP with own routes, at the same coverage.

The baseline (``optimize.baseline``) serves each village by its own cheapest option, every
shared site paid by the one village that uses it (no sharing), taking villages greedily until the
same coverage target is met. The MILP with own routes is the plan MILP with every fiber village
digging its own trench to the nearest PoP (``milp_total_cost`` of the plan); the reported plan
shares trenches (``fiberplan.design``) and carries its own objective, bound and gap. The issue's
target: the plan is at least 10% cheaper than the baseline.

Run: ``python benchmarks/plan_vs_baseline.py [--scenario NAME] [--file PATH]``; prints the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from universal_service import scenarios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=None, help="named scenario in the scenario file")
    ap.add_argument("--file", default=None, help="scenario file (default: the bundled baseline)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = scenarios.run(scenarios.load_scenario(args.file, scenario=args.scenario))
    wall = time.perf_counter() - t0
    plan, base = result.plan.attrs, result.baseline.attrs
    cost, base_cost = plan["total_cost"], base["total_cost"]
    own = plan.get("milp_total_cost", cost)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"scenario: {result.name}")
    print(
        f"plan:     NPV cost CNY {cost:,.0f}, coverage {plan['coverage_share']:.4f} of "
        f"{plan['coverage_basis']}, status {plan['status']} ({plan.get('status_method', 'milp')}),"
        f" objective {plan['objective']:,.0f}, bound {plan['bound']:,.0f}, gap {plan['gap']:.1e}"
    )
    if "milp_objective" in plan:
        print(
            f"MILP with own routes: NPV cost CNY {own:,.0f}, status {plan['milp_status']}, "
            f"gap {plan['milp_gap']:.1e} (to its own bound, fiber at own routes)"
        )
    print(f"baseline: NPV cost CNY {base_cost:,.0f}, coverage {base['coverage_share']:.4f}")
    print(f"saving vs no-sharing baseline: {100 * (1 - cost / base_cost):.1f}%")
    print(f"saving vs MILP with own routes: {100 * (1 - cost / own):.1f}%")
    print(
        "timings:  "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
        + f", end to end {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
