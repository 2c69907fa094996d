"""Plan vs per-village cheapest technology on the bundled region, at the same coverage.

The baseline (``optimize.baseline``) serves each village by its own cheapest option, every
shared site paid by the one village that uses it (no sharing), taking villages greedily until the
same coverage target is met. The issue's target: the plan is at least 10% cheaper.

Run: ``python benchmarks/plan_vs_baseline.py [--scenario NAME]``; prints the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from universal_service import scenarios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=None, help="named scenario in baseline.yaml")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = scenarios.run(scenarios.load_scenario(scenario=args.scenario))
    wall = time.perf_counter() - t0
    plan, base = result.plan.attrs, result.baseline.attrs
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"scenario: {result.name}")
    print(
        f"plan:     NPV cost CNY {plan['total_cost']:,.0f}, coverage {plan['coverage_share']:.4f},"
        f" status {plan['status']}, gap {plan['gap']:.1e}"
    )
    print(
        f"baseline: NPV cost CNY {base['total_cost']:,.0f}, coverage {base['coverage_share']:.4f}"
    )
    print(f"saving:   {100 * (1 - plan['total_cost'] / base['total_cost']):.1f}%")
    print(
        "timings:  "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
        + f", end to end {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
